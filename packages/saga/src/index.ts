/** @cqrs-ts/saga (in progress). @packageDocumentation */
export {};
