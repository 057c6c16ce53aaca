/**
 * @cqrs-ts/awilix: the cqrs-ts mediator over an awilix container. One scoped container per top-level dispatch,
 * handler registration helpers, saga steps built from the container.
 * @packageDocumentation
 */

export type {
  AwilixContainerOptions,
  AwilixStepResolver,
  RegisterHandlersOptions,
} from './awilix-container.ts';
export {
  awilixContainer,
  awilixScope,
  awilixScopeOf,
  awilixStepResolver,
  registerHandlers,
} from './awilix-container.ts';
