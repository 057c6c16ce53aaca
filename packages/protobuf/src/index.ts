/** @cqrs-ts/protobuf (in progress). @packageDocumentation */
export {};
