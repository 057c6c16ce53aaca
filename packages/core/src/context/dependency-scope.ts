/**
 * A key a container knows a dependency by: a class (the usual case for handlers), or a name or symbol for
 * containers that register by name (awilix) or by token (NestJS).
 */
export type DependencyToken<TValue = unknown> = (abstract new (...args: never[]) => TValue) | string | symbol;

/**
 * The dependencies of one top-level dispatch (one command, query, stream or publish, with everything it
 * dispatches in turn). Handlers and behaviors read it as `context.scope`; class handlers are resolved from it.
 * Adapters: `@cqrs-ts/awilix`, `@cqrs-ts/nestjs`.
 */
export interface DependencyScope {
  /**
   * The dependency registered for `token` in this scope. Containers that build asynchronously (NestJS request
   * scope) return a promise: `await context.scope.resolve(Token)` works with both.
   */
  resolve<TValue>(token: DependencyToken<TValue>): TValue | Promise<TValue>;
  /**
   * Ends the scope, releasing what it created. The mediator calls it once on the scopes it opened (through a
   * {@link DependencyContainer}), when the top-level dispatch settles; never on a scope it was given.
   */
  dispose?(): void | Promise<void>;
}
