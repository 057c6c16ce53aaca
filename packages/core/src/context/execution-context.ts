/** Who is acting. Extra claims may ride along. */
export interface Principal {
  readonly id: string;
  readonly roles?: readonly string[];
  readonly [claim: string]: unknown;
}

/**
 * Who, where and how a dispatch was requested. Passed per dispatch and inherited by nested dispatches
 * through the ambient context.
 */
export interface ExecutionContext {
  readonly user?: Principal;
  readonly tenantId?: string;
  readonly sessionId?: string;
  /** Where the request came from, e.g. `http`, `cli`, `broker:orders`. */
  readonly source?: string;
  readonly clientIp?: string;
  readonly userAgent?: string;
  readonly featureFlags?: readonly string[];
  readonly properties?: Readonly<Record<string, unknown>>;
}

/** The empty execution context. */
export const EMPTY_EXECUTION_CONTEXT: ExecutionContext = Object.freeze({});

/** True when the flag is on in the execution context. */
export function hasFeature(context: ExecutionContext, flag: string): boolean {
  return context.featureFlags?.includes(flag) ?? false;
}

/** True when the user holds the role. */
export function hasRole(context: ExecutionContext, role: string): boolean {
  return context.user?.roles?.includes(role) ?? false;
}
