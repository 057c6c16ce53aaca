/**
 * @cqrs-ts/tsyringe: the cqrs-ts mediator over a tsyringe container. One child container per top-level
 * dispatch, handler registration, saga steps from the container.
 * @packageDocumentation
 */

export type {
  RegisterHandlersOptions,
  TsyringeContainerOptions,
  TsyringeStepResolver,
} from './tsyringe-container.ts';
export {
  registerHandlers,
  tsyringeContainer,
  tsyringeScope,
  tsyringeScopeOf,
  tsyringeStepResolver,
} from './tsyringe-container.ts';
