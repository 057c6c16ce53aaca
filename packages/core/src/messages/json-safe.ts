/**
 * The shape of `TPayload` when every part of it survives `JSON.stringify` and `JSON.parse` unchanged; otherwise the same
 * shape with an explanation in place of each part that would not (a `Date` comes back as a string, a `bigint`
 * throws, a `Map` comes back as `{}`). `withPayload<P>()` requires `P` to fit `JsonSafe<P>`, so a payload type
 * that would come back from the outbox or a broker as something else is refused by the type checker; a
 * definition with a `schema` may carry such values, because decoding runs the schema (e.g. `z.coerce.date()`
 * turns the string back into a `Date`, `z.date()` refuses it).
 */
export type JsonSafe<TPayload> = TPayload extends string | number | boolean | null | undefined
  ? TPayload
  : TPayload extends bigint
    ? 'a bigint does not survive JSON: use a string, or a schema that converts it'
    : TPayload extends Date
      ? 'a Date comes back from JSON as a string: use an ISO string, or a schema that converts it (z.coerce.date())'
      : TPayload extends ReadonlyMap<unknown, unknown> | ReadonlySet<unknown>
        ? 'a Map or Set comes back from JSON as {}: use an object or an array'
        : TPayload extends ArrayBuffer | ArrayBufferView
          ? 'binary data does not survive JSON: use base64 text, or a schema and a binary serializer (@cqrs-ts/protobuf)'
          : TPayload extends (...args: never[]) => unknown
            ? 'a function does not survive JSON'
            : TPayload extends symbol
              ? 'a symbol does not survive JSON'
              : TPayload extends object
                ? { [TKey in keyof TPayload]: JsonSafe<TPayload[TKey]> }
                : TPayload;

/**
 * @internal The `this` type of `withPayload<P>()`: anything when `P` is JSON-safe; otherwise an object the
 * definition lacks, so the call fails to compile with the reason for each part of `P`, e.g.
 * `{ at: "a Date comes back from JSON as a string: ..." }`.
 */
export type JsonSafeCheck<TPayload> = [TPayload] extends [JsonSafe<TPayload>]
  ? unknown
  : { readonly 'this payload type does not survive JSON': JsonSafe<TPayload> };
