/**
 * A message schema built at runtime (no code generator runs here): the same `DescMessage` values that
 * protoc-gen-es would generate for
 *
 * ```proto
 * syntax = "proto3";
 * package shop.v1;
 * enum Status { STATUS_UNSPECIFIED = 0; STATUS_PAID = 1; }
 * message Line { string sku = 1; int32 qty = 2; }
 * message OrderPlaced {
 *   string order_id = 1; int64 amount_cents = 2; repeated Line lines = 3; bytes blob = 4; Status status = 5;
 *   map<string, string> tags = 6;
 * }
 * message Nested { Nested child = 1; }
 * ```
 */
import { create, createFileRegistry } from '@bufbuild/protobuf';
import {
  FileDescriptorProtoSchema,
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as T,
} from '@bufbuild/protobuf/wkt';

const file = create(FileDescriptorProtoSchema, {
  name: 'shop/v1/orders.proto',
  package: 'shop.v1',
  syntax: 'proto3',
  enumType: [
    {
      name: 'Status',
      value: [
        { name: 'STATUS_UNSPECIFIED', number: 0 },
        { name: 'STATUS_PAID', number: 1 },
      ],
    },
  ],
  messageType: [
    {
      name: 'Line',
      field: [
        { name: 'sku', number: 1, type: T.STRING, label: Label.OPTIONAL, jsonName: 'sku' },
        { name: 'qty', number: 2, type: T.INT32, label: Label.OPTIONAL, jsonName: 'qty' },
      ],
    },
    {
      name: 'OrderPlaced',
      field: [
        { name: 'order_id', number: 1, type: T.STRING, label: Label.OPTIONAL, jsonName: 'orderId' },
        { name: 'amount_cents', number: 2, type: T.INT64, label: Label.OPTIONAL, jsonName: 'amountCents' },
        {
          name: 'lines',
          number: 3,
          type: T.MESSAGE,
          typeName: '.shop.v1.Line',
          label: Label.REPEATED,
          jsonName: 'lines',
        },
        { name: 'blob', number: 4, type: T.BYTES, label: Label.OPTIONAL, jsonName: 'blob' },
        {
          name: 'status',
          number: 5,
          type: T.ENUM,
          typeName: '.shop.v1.Status',
          label: Label.OPTIONAL,
          jsonName: 'status',
        },
        {
          name: 'tags',
          number: 6,
          type: T.MESSAGE,
          typeName: '.shop.v1.OrderPlaced.TagsEntry',
          label: Label.REPEATED,
          jsonName: 'tags',
        },
      ],
      nestedType: [
        {
          name: 'TagsEntry',
          options: { mapEntry: true },
          field: [
            { name: 'key', number: 1, type: T.STRING, label: Label.OPTIONAL, jsonName: 'key' },
            { name: 'value', number: 2, type: T.STRING, label: Label.OPTIONAL, jsonName: 'value' },
          ],
        },
      ],
    },
    {
      name: 'Nested',
      field: [
        {
          name: 'child',
          number: 1,
          type: T.MESSAGE,
          typeName: '.shop.v1.Nested',
          label: Label.OPTIONAL,
          jsonName: 'child',
        },
      ],
    },
  ],
});

const registry = createFileRegistry(file, () => undefined);

function message(name: string) {
  const m = registry.getMessage(name);
  if (m === undefined) throw new Error(`fixture: ${name} missing`);
  return m;
}

export const OrderPlacedSchema = message('shop.v1.OrderPlaced');
export const LineSchema = message('shop.v1.Line');
export const NestedSchema = message('shop.v1.Nested');
