// Stands in for the module protoc-gen-es generates from proto/shop/v1/orders.proto: no code generator runs in
// this repository's tests, so the same `DescMessage` values are built at runtime (see ../../../../fixtures.ts).
export { LineSchema, OrderPlacedSchema } from '../../../../fixtures.ts';
