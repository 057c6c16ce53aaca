/**
 * @cqrs-ts/nestjs: the cqrs-ts mediator as a NestJS module. Handlers are discovered from Nest providers, resolved
 * from Nest in a scope per top-level dispatch (request-scoped providers honoured), saga steps built by Nest.
 * @packageDocumentation
 */

export type { CqrsModuleOptions } from './nestjs-module.ts';
export { CQRS_MEDIATOR, CQRS_STEP_RESOLVER, CqrsModule, MessageHandler } from './nestjs-module.ts';
export type { NestStepResolver } from './nestjs-scope.ts';
export { nestScopeOf, requestScope } from './nestjs-scope.ts';
