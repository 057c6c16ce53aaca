import { mermaidLabel, type SagaLogEntry } from '@cqrs-ts/core/spi';
import type { AnySagaDefinition, NormalizedStep } from './define-saga.ts';

/**
 * Mermaid diagrams of saga definitions, with the conventions of core's chain diagrams: quoted, escaped labels
 * (`mermaidLabel`), short participant aliases (`S1..Sn` for steps, `F1..Fn` for fallbacks), one trailing newline.
 */

const retryText = (step: NormalizedStep) => {
  const parts: string[] = [];
  if ((step.retry.maxAttempts ?? 1) > 1) parts.push(`${step.retry.maxAttempts} attempts`);
  if (step.timeoutMs !== undefined) parts.push(`timeout ${step.timeoutMs} ms`);
  return parts.length === 0 ? '' : ` (${parts.join(', ')})`;
};

/**
 * A sequence diagram of a saga: every step's act in order, each followed by an `alt` for its failure. A failure
 * runs the fallback when there is one (nested `alt`), else compensates the completed compensable steps in
 * reverse order and answers `SagaFailedError`. A circuit-guarded primary is noted with its circuit key.
 */
export function sagaSequenceDiagram(saga: AnySagaDefinition): string {
  const lines = [
    'sequenceDiagram',
    '  participant C as Caller',
    `  participant R as ${mermaidLabel(saga.name)}`,
  ];
  saga.steps.forEach((s, i) => {
    lines.push(`  participant S${i + 1} as ${mermaidLabel(s.id)}`);
    if (s.fallback) lines.push(`  participant F${i + 1} as ${mermaidLabel(s.fallback.id)} (fallback)`);
  });
  lines.push('  C->>R: start(context)');
  if (saga.deadlineMs !== undefined)
    lines.push(`  Note over R: deadline ${saga.deadlineMs} ms, then compensate`);
  const compensations = (upTo: number, indent: string) => {
    const out: string[] = [];
    for (let j = upTo - 1; j >= 0; j--) {
      const done = saga.steps[j]!;
      if (done.compensable || done.fallback?.compensable) out.push(`${indent}R->>S${j + 1}: compensate`);
    }
    if (out.length === 0) out.push(`${indent}Note over R: nothing to compensate`);
    out.push(`${indent}R-->>C: SagaFailedError (compensated or compensation_failed)`);
    return out;
  };
  saga.steps.forEach((s, i) => {
    const n = i + 1;
    if (s.circuit) lines.push(`  Note over R,S${n}: circuit ${mermaidLabel(s.circuit.key)}`);
    lines.push(`  R->>S${n}: act${mermaidLabel(retryText(s))}`);
    lines.push(`  alt ${mermaidLabel(s.id)} succeeds`);
    lines.push(`    S${n}-->>R: result (recorded)`);
    if (s.fallback) {
      lines.push(`  else ${mermaidLabel(s.id)} fails${s.circuit ? ' or circuit open' : ''}`);
      lines.push(`    R->>F${n}: act${mermaidLabel(retryText(s.fallback))}`);
      lines.push(`    alt ${mermaidLabel(s.fallback.id)} succeeds`);
      lines.push(`      F${n}-->>R: result (recorded)`);
      lines.push(`    else ${mermaidLabel(s.fallback.id)} fails`);
      lines.push(...compensations(i, '      '));
      lines.push('    end');
    } else {
      lines.push(`  else ${mermaidLabel(s.id)} fails`);
      lines.push(...compensations(i, '    '));
    }
    lines.push('  end');
  });
  lines.push('  R-->>C: completed (context, results)');
  return `${lines.join('\n')}\n`;
}

/** A class diagram of a saga: the saga, its steps in order (act, compensate, policies) and their fallbacks. */
export function sagaClassDiagram(saga: AnySagaDefinition): string {
  const lines = ['classDiagram'];
  lines.push(`  class Saga["${mermaidLabel(saga.name)}"] {`, '    <<saga>>', `    +version ${saga.version}`);
  if (saga.deadlineMs !== undefined) lines.push(`    +deadlineMs ${saga.deadlineMs}`);
  lines.push(`    +context ${saga.schema ? 'schema' : 'type'}`, '  }');
  const body = (s: NormalizedStep, kind: string) => {
    const out = [`    <<${kind}>>`, '    +act()'];
    if (s.compensable) out.push('    +compensate()');
    if ((s.retry.maxAttempts ?? 1) > 1) out.push(`    +retry ${s.retry.maxAttempts}`);
    if (s.timeoutMs !== undefined) out.push(`    +timeoutMs ${s.timeoutMs}`);
    if (s.circuit) out.push(`    +circuit ${mermaidLabel(s.circuit.key).replace(/[{}]/g, '')}`);
    return out;
  };
  saga.steps.forEach((s, i) => {
    const n = i + 1;
    lines.push(`  class S${n}["${mermaidLabel(s.id)}"] {`, ...body(s, 'step'), '  }');
    lines.push(`  Saga *-- S${n} : step ${n}`);
    if (i > 0) lines.push(`  S${i} --> S${n} : then`);
    if (s.fallback) {
      lines.push(`  class F${n}["${mermaidLabel(s.fallback.id)}"] {`, ...body(s.fallback, 'fallback'), '  }');
      lines.push(`  S${n} ..> F${n} : fallback`);
    }
  });
  return `${lines.join('\n')}\n`;
}

/** A sequence diagram of what one saga instance actually did, from its log (`runner.history(id)`). */
export function sagaLogSequenceDiagram(saga: AnySagaDefinition, log: readonly SagaLogEntry[]): string {
  const lines = ['sequenceDiagram', `  participant R as ${mermaidLabel(saga.name)}`];
  const ids = new Map<string, string>();
  saga.steps.forEach((s, i) => {
    ids.set(s.id, `S${i + 1}`);
    lines.push(`  participant S${i + 1} as ${mermaidLabel(s.id)}`);
    if (s.fallback) {
      ids.set(s.fallback.id, `F${i + 1}`);
      lines.push(`  participant F${i + 1} as ${mermaidLabel(s.fallback.id)} (fallback)`);
    }
  });
  for (const e of log) {
    const who = ids.get(e.stepId);
    if (who === undefined) {
      lines.push(`  Note over R: unknown step ${mermaidLabel(e.stepId)}`);
      continue;
    }
    const tries = e.attempts > 1 ? ` x${e.attempts}` : '';
    lines.push(`  R->>${who}: ${e.action}${tries}`);
    lines.push(`  ${who}-->>R: ${e.status}${e.status === 'failed' ? ' (error logged)' : ''}`);
  }
  return `${lines.join('\n')}\n`;
}
