import type { ValidationIssue } from '../errors/cqrs-error.ts';
import { ConfigurationError, ValidationError } from '../errors/cqrs-error.ts';
import type { Behavior, BehaviorTarget, Middleware, Next } from '../mediator/behavior.ts';
import { policyBehavior } from '../mediator/behavior.ts';
import type { DispatchContext } from '../mediator/dispatch-context.ts';
import type { ValidateHook } from '../messages/define-message.ts';
import type { AnyMessage } from '../messages/message.ts';
import type { StandardSchemaV1 } from '../messages/standard-schema.ts';
import { fromStandardIssues, hasErrors, normalizeHookResult } from '../messages/validation.ts';

/** Options of {@link validation}. */
export interface ValidationOptions {
  readonly target?: BehaviorTarget;
  /** Called with warnings (issues of severity `warning`); they never fail the dispatch. */
  readonly onWarnings?: (message: AnyMessage, warnings: readonly ValidationIssue[]) => void;
}

async function runHooks(
  hooks: readonly ValidateHook<unknown>[],
  message: AnyMessage,
  context: DispatchContext,
  next: Next,
  onWarnings: ValidationOptions['onWarnings'],
): Promise<unknown> {
  let issues: ValidationIssue[] | undefined;
  for (const hook of hooks) {
    let found: readonly ValidationIssue[];
    try {
      found = normalizeHookResult(await hook(message.payload, context), message.type);
    } catch (error) {
      if (error instanceof ValidationError) found = error.issues;
      else throw error;
    }
    if (found.length > 0) {
      issues ??= [];
      issues.push(...found);
    }
  }
  if (issues !== undefined) {
    if (hasErrors(issues)) throw new ValidationError(message.type, issues);
    onWarnings?.(message, issues);
  }
  return next(message, context);
}

async function afterAsyncSchema(
  pending: Promise<StandardSchemaV1.Result<unknown>>,
  message: AnyMessage,
  context: DispatchContext,
  next: Next,
  hooks: readonly ValidateHook<unknown>[],
  onWarnings: ValidationOptions['onWarnings'],
): Promise<unknown> {
  const result = await pending;
  if (result.issues) throw new ValidationError(message.type, fromStandardIssues(result.issues));
  return hooks.length > 0 ? runHooks(hooks, message, context, next, onWarnings) : next(message, context);
}

/**
 * Validates the payload with the definition's Standard Schema, then runs the definition's and the handler's
 * `validate` hooks. Every issue is collected into one {@link ValidationError}; warnings never fail.
 * Handlers with neither schema nor hook skip this behavior entirely. Enforces the `validation` policy.
 */
export function validation(options: ValidationOptions = {}): Behavior {
  const onWarnings = options.onWarnings;
  if (onWarnings !== undefined && typeof onWarnings !== 'function')
    throw new ConfigurationError('validation: onWarnings must be a function (message, warnings) => void');
  return policyBehavior(
    'validation',
    (handler) => {
      const schema = handler.definition.schema;
      const hooks = [handler.definition.validate, handler.options.validate].filter(
        (h): h is ValidateHook<unknown> => typeof h === 'function',
      );
      if (schema === undefined && hooks.length === 0) return undefined;
      const middleware: Middleware = (message, context, next) => {
        if (schema !== undefined) {
          const result = schema['~standard'].validate(message.payload);
          if (result instanceof Promise)
            return afterAsyncSchema(result, message, context, next, hooks, onWarnings);
          if (result.issues)
            return Promise.reject(new ValidationError(message.type, fromStandardIssues(result.issues)));
        }
        return hooks.length > 0
          ? runHooks(hooks, message, context, next, onWarnings)
          : next(message, context);
      };
      return middleware;
    },
    options.target,
  );
}
