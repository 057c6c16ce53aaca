import { describe, expect, it } from 'vitest';
import { formatFigure, roundFigure } from '../src/lib/format.ts';
import { latencyRatio, median } from '../src/lib/samples.ts';

describe('bench figures', () => {
  it('compares latencies at the load generator resolution: under 1 ms counts as 1 ms, never 0/0', () => {
    expect(latencyRatio(0, 0)).toBe(1);
    expect(latencyRatio(1, 0)).toBe(1);
    expect(latencyRatio(0, 2)).toBe(0.5);
    expect(latencyRatio(3, 2)).toBe(1.5);
    // the median of pairs whose latencies were all under the resolution is a number, not NaN
    expect(median([0, 0, 1].map((c, i) => latencyRatio(c, [0, 1, 1][i]!)))).toBe(1);
  });

  it('refuses a latency that is not a finite, non-negative number', () => {
    expect(() => latencyRatio(Number.NaN, 1)).toThrow(/latency/);
    expect(() => latencyRatio(1, -1)).toThrow(/latency/);
  });

  it('prints a missing or non-finite figure as n/a instead of failing the whole table', () => {
    expect(formatFigure(1234.5, 1)).toBe('1,234.5');
    expect(formatFigure(null, 2)).toBe('n/a');
    expect(formatFigure(Number.NaN, 2)).toBe('n/a');
    expect(formatFigure(Number.POSITIVE_INFINITY, 2)).toBe('n/a');
    expect(roundFigure(1.23456, 2)).toBe(1.23);
    expect(roundFigure(Number.NaN, 2)).toBeUndefined();
  });
});
