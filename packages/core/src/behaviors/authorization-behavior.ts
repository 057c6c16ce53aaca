import { AuthorizationError, ConfigurationError } from '../errors/cqrs-error.ts';
import type { Behavior, BehaviorTarget, Middleware } from '../mediator/behavior.ts';
import { policyBehavior } from '../mediator/behavior.ts';
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
  readonly target?: BehaviorTarget;
}

const MAX_REASON = 500;

function denial(messageType: string, decision: unknown): AuthorizationError | undefined {
  if (decision === true) return undefined;
  if (decision === false) return new AuthorizationError(messageType);
  if (decision === undefined || decision === null) {
    return new AuthorizationError(
      messageType,
      'an authorization hook returned no decision (return true, or { allowed: true }, to allow)',
      'no_decision',
    );
  }
  if (typeof decision === 'object' && typeof (decision as { allowed?: unknown }).allowed === 'boolean') {
    const d = decision as { allowed: boolean; reason?: unknown; code?: unknown };
    if (d.allowed) return undefined;
    const reason = typeof d.reason === 'string' ? d.reason.slice(0, MAX_REASON) : undefined;
    const code = typeof d.code === 'string' ? d.code.slice(0, 100) : undefined;
    return new AuthorizationError(messageType, reason, code);
  }
  return new AuthorizationError(
    messageType,
    'an authorization hook returned an invalid decision (return true, false, or { allowed, reason?, code? })',
    'invalid_decision',
  );
}

/**
 * Runs the message definition's `authorize` hook, the handler's, then the global policies. Only an explicit
 * allow (`true` or `{ allowed: true }`) lets the dispatch through: the first denial, a hook that returns
 * nothing, or a hook that throws fails it with an {@link AuthorizationError} (a thrown error passes as is).
 * Handlers with nothing to check skip this behavior. Enforces the `authorization` policy.
 * @throws ConfigurationError (`CQRS_CONFIGURATION`) when `policies` is not a list of functions.
 */
export function authorization(options: AuthorizationOptions = {}): Behavior {
  if ('enabled' in options) {
    throw new ConfigurationError(
      "authorization: the enabled option is gone; to run without authorization, leave authorization() out and list 'authorization' in createMediator's unenforced",
    );
  }
  const policies = options.policies ?? [];
  if (!Array.isArray(policies) || policies.some((p) => typeof p !== 'function'))
    throw new ConfigurationError(
      'authorization: policies must be a list of functions (message, context) => decision',
    );
  return policyBehavior(
    'authorization',
    (handler) => {
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
