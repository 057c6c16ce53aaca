import { AuthorizationError } from '../errors/cqrs-error.ts';
import type { Behavior, BehaviorTarget, Middleware } from '../mediator/behavior.ts';
import { createBehavior } from '../mediator/behavior.ts';
import type { HandlerDescriptor } from '../mediator/dispatch-context.ts';
import type { AuthorizationDecision, AuthorizeHook } from '../messages/define-message.ts';
import type { AnyMessage } from '../messages/message.ts';

/** A global policy: like a message hook, but it also sees the handler descriptor. */
export type AuthorizationPolicy = (
  message: AnyMessage,
  context: Parameters<AuthorizeHook<AnyMessage>>[1] & { readonly handler: HandlerDescriptor },
) => AuthorizationDecision | Promise<AuthorizationDecision>;

/** Options of {@link authorization}. */
export interface AuthorizationOptions {
  /** Policies run for every targeted handler, after the message's and the handler's own hooks. */
  readonly policies?: readonly AuthorizationPolicy[];
  /** Set to `false` to turn authorization off (e.g. in some tests). Default `true`. */
  readonly enabled?: boolean;
  readonly target?: BehaviorTarget;
}

function denial(messageType: string, decision: AuthorizationDecision): AuthorizationError | undefined {
  if (decision === undefined || decision === true) return undefined;
  if (decision === false) return new AuthorizationError(messageType);
  if (typeof decision === 'object' && decision !== null) {
    if (decision.allowed) return undefined;
    return new AuthorizationError(messageType, decision.reason, decision.code);
  }
  return new AuthorizationError(
    messageType,
    'authorization hook returned an invalid decision',
    'invalid_decision',
  );
}

/**
 * Runs the message definition's `authorize` hook, the handler's, then the global policies. The first denial
 * fails the dispatch with an {@link AuthorizationError}. Handlers with nothing to check skip this behavior.
 */
export function authorization(options: AuthorizationOptions = {}): Behavior {
  const policies = options.policies ?? [];
  return createBehavior(
    'authorization',
    (handler) => {
      if (options.enabled === false) return undefined;
      const checks = [handler.definition.authorize, handler.options.authorize, ...policies].filter(
        (h): h is AuthorizationPolicy => typeof h === 'function',
      );
      if (checks.length === 0) return undefined;
      const runFrom = async (
        index: number,
        pending: Promise<AuthorizationDecision>,
        message: AnyMessage,
        context: Parameters<Middleware>[1],
        next: Parameters<Middleware>[2],
      ): Promise<unknown> => {
        const first = denial(message.type, await pending);
        if (first) throw first;
        for (let i = index + 1; i < checks.length; i++) {
          const error = denial(message.type, await checks[i]!(message, context));
          if (error) throw error;
        }
        return next(message, context);
      };
      const middleware: Middleware = (message, context, next) => {
        for (let i = 0; i < checks.length; i++) {
          const decision = checks[i]!(message, context);
          if (decision instanceof Promise) return runFrom(i, decision, message, context, next);
          const error = denial(message.type, decision);
          if (error) return Promise.reject(error);
        }
        return next(message, context);
      };
      return middleware;
    },
    options.target,
  );
}
