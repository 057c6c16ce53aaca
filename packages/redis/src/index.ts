/** @cqrs-ts/redis (in progress). @packageDocumentation */
export {};
