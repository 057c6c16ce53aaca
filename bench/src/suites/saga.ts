/**
 * `saga` suite: 3-step sagas with no-op steps through the cqrs-ts saga runner (`<storage> saga`) against the raw
 * transactions that storage must do for one such saga with the same client (`<storage> raw`), both in sagas per
 * second. Each storage's cases live in `saga/<storage>.ts`; an unreachable database reports nothing.
 */
import type { CaseSpec, Metrics, Suite } from '../lib/types.ts';

/** What each `saga/<storage>.ts` module implements. */
export interface SagaBenchModule {
  /** Variants: `saga`, `raw`. Returns `{}` when the database is unreachable. */
  run(variant: string): Promise<Metrics>;
}

const STORAGES = ['postgres', 'mariadb', 'sqlite', 'memory'] as const;

const moduleUrl = (storage: string): string => new URL(`./saga/${storage}.ts`, import.meta.url).href;

const cases: CaseSpec[] = STORAGES.flatMap((storage) =>
  (['saga', 'raw'] as const).map((variant) => ({
    name: `${storage} ${variant}`,
    module: moduleUrl(storage),
    variant,
  })),
);

async function run(spec: CaseSpec): Promise<Metrics> {
  let mod: SagaBenchModule;
  try {
    mod = (await import(spec.module)) as SagaBenchModule;
  } catch (error) {
    if ((error as { code?: string }).code === 'ERR_MODULE_NOT_FOUND') return {};
    throw error;
  }
  return mod.run(spec.variant);
}

export const saga: Suite = {
  name: 'saga',
  description: 'sagas: 3-step no-op sagas per second vs the raw storage transactions of one saga',
  columns: [{ field: 'per_s', label: 'sagas/s', digits: 0 }],
  notes: [
    'raw: the same storage transactions one 3-step saga needs, with the same client, as sagas per second.',
  ],
  nodeFlags: [],
  timeoutMs: 180_000,
  cases,
  run,
};
