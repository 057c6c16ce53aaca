/**
 * How the runner prints and records a figure. A case's metrics come back from its process over IPC as JSON, where
 * `NaN` and infinities arrive as `null`: such a figure is shown as `n/a` (and left out of `--json` lines) instead
 * of failing the whole table.
 */

/** `value` rounded to `digits` decimals, or `undefined` when it is not a finite number. */
export function roundFigure(value: number | null | undefined, digits: number): number | undefined {
  if (typeof value !== 'number' || !Number.isFinite(value)) return undefined;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** `value` with `digits` decimals and thousands separators, or `n/a` when it is not a finite number. */
export function formatFigure(value: number | null | undefined, digits: number): string {
  if (typeof value !== 'number' || !Number.isFinite(value)) return 'n/a';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
