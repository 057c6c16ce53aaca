/** @cqrs-ts/nats (in progress). @packageDocumentation */
export {};
