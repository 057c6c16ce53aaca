/** @cqrs-ts/kafka (in progress). @packageDocumentation */
export {};
