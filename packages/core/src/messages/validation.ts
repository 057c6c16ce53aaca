import type { ValidationIssue } from '../errors/cqrs-error.ts';
import { ConfigurationError } from '../errors/cqrs-error.ts';
import type { StandardSchemaV1 } from './standard-schema.ts';

/** An issue as a `validate` hook may return it: `path` defaults to the whole payload, `code` to `invalid`. */
export interface ValidationIssueInput {
  readonly path?: readonly (string | number)[];
  readonly message: string;
  readonly code?: string;
  readonly severity?: 'error' | 'warning';
}

/**
 * What a business-rule `validate` hook may return: `true` or nothing when valid; `false` (invalid, with a
 * generic message), a message string, an issue or a list of issues when not. Each becomes a `ValidationError`
 * with field issues; anything else is a `ConfigurationError`.
 */
export type ValidateHookResult =
  // biome-ignore lint/suspicious/noConfusingVoidType: hooks may return nothing when valid
  void | undefined | null | boolean | string | ValidationIssueInput | readonly ValidationIssueInput[];

const MAX_HOOK_ISSUES = 1000;
const NONE: readonly ValidationIssue[] = Object.freeze([]);

function toPath(path: StandardSchemaV1.Issue['path']): (string | number)[] {
  if (!path) return [];
  const out: (string | number)[] = [];
  for (const seg of path) {
    const key = typeof seg === 'object' && seg !== null ? seg.key : seg;
    out.push(typeof key === 'number' ? key : String(key));
  }
  return out;
}

/** Turns Standard Schema issues into cqrs-ts issues, keeping the vendor's code where it has one. */
export function fromStandardIssues(issues: ReadonlyArray<StandardSchemaV1.Issue>): ValidationIssue[] {
  return issues.map((issue) => {
    const raw = issue as StandardSchemaV1.Issue & { code?: unknown; type?: unknown; kind?: unknown };
    const code =
      typeof raw.code === 'string' ? raw.code : typeof raw.type === 'string' ? raw.type : 'invalid';
    return { path: toPath(issue.path), message: issue.message, code, severity: 'error' as const };
  });
}

function wrongResult(messageType: string, what: string): ConfigurationError {
  return new ConfigurationError(
    `the validate hook of ${messageType} returned ${what}; return true or nothing when valid, or false, a message, an issue { path, message, code } or a list of issues`,
  );
}

function toIssue(messageType: string, value: unknown): ValidationIssue {
  if (typeof value === 'string') return { path: [], message: value, code: 'invalid', severity: 'error' };
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw wrongResult(messageType, `a list holding ${value === null ? 'null' : typeof value}`);
  const v = value as ValidationIssueInput;
  const pathOk =
    v.path === undefined ||
    (Array.isArray(v.path) && v.path.every((p) => typeof p === 'string' || typeof p === 'number'));
  if (typeof v.message !== 'string' || !pathOk)
    throw wrongResult(
      messageType,
      'an object that is not an issue (it needs a message string, and a path of keys)',
    );
  if (v.code !== undefined && typeof v.code !== 'string')
    throw wrongResult(messageType, 'an issue whose code is not a string');
  if (v.severity !== undefined && v.severity !== 'error' && v.severity !== 'warning')
    throw wrongResult(messageType, "an issue whose severity is neither 'error' nor 'warning'");
  return {
    path: v.path ?? [],
    message: v.message,
    code: v.code ?? 'invalid',
    severity: v.severity ?? 'error',
  };
}

/**
 * Turns what a `validate` hook returned into issues (see {@link ValidateHookResult}).
 * @throws ConfigurationError (`CQRS_CONFIGURATION`) for any other value.
 */
export function normalizeHookResult(
  result: unknown,
  messageType = 'the message',
): readonly ValidationIssue[] {
  if (result === undefined || result === null || result === true) return NONE;
  if (result === false)
    return [{ path: [], message: 'failed its validate hook', code: 'invalid', severity: 'error' }];
  if (typeof result === 'string') {
    if (result.length === 0) throw wrongResult(messageType, 'an empty message');
    return [toIssue(messageType, result)];
  }
  if (Array.isArray(result)) {
    if (result.length > MAX_HOOK_ISSUES)
      throw wrongResult(messageType, `${result.length} issues (at most ${MAX_HOOK_ISSUES})`);
    return result.map((i) => toIssue(messageType, i));
  }
  if (typeof result === 'object') return [toIssue(messageType, result)];
  throw wrongResult(messageType, `a ${typeof result}`);
}

/** True when at least one issue is an error (warnings never fail). */
export function hasErrors(issues: readonly ValidationIssue[]): boolean {
  for (const issue of issues) if (issue.severity !== 'warning') return true;
  return false;
}
