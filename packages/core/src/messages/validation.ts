import type { ValidationIssue } from '../errors/cqrs-error.ts';
import type { StandardSchemaV1 } from './standard-schema.ts';

/** What a business-rule `validate` hook may return: nothing when valid, or the issues it found. */
// biome-ignore lint/suspicious/noConfusingVoidType: hooks may return nothing when valid
export type ValidateHookResult = void | undefined | readonly ValidationIssue[] | ValidationIssue;

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

/** Normalizes a hook result into a list. */
export function normalizeHookResult(result: ValidateHookResult): readonly ValidationIssue[] {
  if (result === undefined || result === null) return [];
  if (Array.isArray(result)) return result as readonly ValidationIssue[];
  return [result as ValidationIssue];
}

/** True when at least one issue is an error (warnings never fail). */
export function hasErrors(issues: readonly ValidationIssue[]): boolean {
  for (const issue of issues) if (issue.severity !== 'warning') return true;
  return false;
}
