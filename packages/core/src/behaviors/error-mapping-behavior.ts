import { isCqrsError, ProcessingError } from '../errors/cqrs-error.ts';
import type { Behavior, BehaviorTarget, Middleware } from '../mediator/behavior.ts';
import { createBehavior } from '../mediator/behavior.ts';
import type { DispatchContext } from '../mediator/dispatch-context.ts';
import type { AnyMessage } from '../messages/message.ts';

/** Options of {@link mapErrors}. */
export interface MapErrorsOptions {
  /**
   * Maps an error thrown inside the pipeline. Default: cqrs-ts errors pass unchanged, anything else becomes a
   * {@link ProcessingError} with the original as `cause`.
   */
  readonly map?: (error: unknown, message: AnyMessage, context: DispatchContext) => unknown;
  readonly target?: BehaviorTarget;
}

/**
 * Maps errors thrown by the handler or inner behaviors. Without this behavior, a handler's error reaches the
 * caller unchanged.
 */
export function mapErrors(options: MapErrorsOptions = {}): Behavior {
  const map =
    options.map ??
    ((error: unknown, message: AnyMessage) =>
      isCqrsError(error) ? error : new ProcessingError(message.type, error));
  const middleware: Middleware = async (message, context, next) => {
    try {
      return await next(message, context);
    } catch (error) {
      throw map(error, message, context);
    }
  };
  return createBehavior('mapErrors', () => middleware, options.target);
}
