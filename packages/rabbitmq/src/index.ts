/** @cqrs-ts/rabbitmq (in progress). @packageDocumentation */
export {};
