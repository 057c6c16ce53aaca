/**
 * What the `write` suite measures on each database, and the loops. A database module (`postgres.ts`,
 * `mariadb.ts`, `sqlite.ts`) provides {@link WriteParts}; the cases here are the same for all of them.
 */
import {
  type AnyEvent,
  createMediator,
  defineCommand,
  defineEvent,
  handle,
  type UnitOfWork,
} from '@cqrs-ts/core';
import type { OutboxStore } from '@cqrs-ts/core/spi';
import { suffix, usPerOp } from '../outbox/common.ts';
import { pairedRatio } from './paired.ts';

export const OrderPlaced = defineEvent('bench.order-placed', {
  topic: 'bench',
  key: (p: { k: string; n: number }) => p.k,
}).withPayload<{ k: string; n: number }>();

export const PlaceOrder = defineCommand('bench.place-order')
  .withPayload<{ k: string; n: number }>()
  .returns<{ ok: true; n: number }>();

/** What a database module provides, over fresh tables of its own (dropped by `close`). */
export interface WriteParts<C> {
  readonly store: OutboxStore<C>;
  /** The hand-written transaction: BEGIN, `fn`, COMMIT (ROLLBACK on a throw), with the same client. */
  tx(fn: (c: C) => Promise<void>): Promise<void>;
  /** Inserts one business row in the transaction. */
  insertBusiness(c: C): Promise<unknown> | unknown;
  /** The unit of work over the same client, store and tables. */
  readonly unitOfWork: UnitOfWork<C>;
  close(): Promise<void>;
}

/** The case variants of every database. */
export const WRITE_KINDS = [
  ['raw unit', 'raw-unit'],
  ['unit of work', 'unit-of-work'],
  ['idempotent first', 'idempotent-first'],
  ['idempotent replay', 'idempotent-replay'],
] as const;
export type WriteKind = (typeof WRITE_KINDS)[number][1];

/** Measurements made by this process: keys of one never meet those of another. */
let runs = 0;

/** What each case is compared with, op by op in the same process (`x_paired`); the raw unit has none. */
const PAIRED_BASE: Partial<Record<WriteKind, WriteKind>> = {
  'unit-of-work': 'raw-unit',
  'idempotent-first': 'unit-of-work',
  'idempotent-replay': 'idempotent-first',
};

/** The loops' operations over `parts`; each creates its message inside the timed loop. */
async function writeOps<C>(parts: WriteParts<C>): Promise<Record<WriteKind, () => Promise<void>>> {
  const { store, tx, insertBusiness, unitOfWork } = parts;
  const run = ++runs;
  let calls = 0;
  const mediator = createMediator({
    behaviors: [unitOfWork],
    handlers: [
      handle(PlaceOrder, async (cmd, ctx) => {
        calls++;
        await insertBusiness(unitOfWork.transaction(ctx));
        ctx.emit(OrderPlaced, cmd.payload);
        return { ok: true as const, n: cmd.payload.n };
      }),
    ],
  });
  let n = 0;
  const next = () => ({ k: `k${n % 100}`, n: n++ });
  const check = (result: { ok: true; n: number }) => {
    if (result?.ok !== true) throw new Error(`unexpected result ${JSON.stringify(result)}`);
  };
  const replayPayload = { k: 'k0', n: 0 };
  const replayKey = `replay-${suffix}-${run}`;
  check(await mediator.send(PlaceOrder.create(replayPayload, { idempotencyKey: replayKey })));
  return {
    'raw-unit': () =>
      tx(async (c) => {
        await insertBusiness(c);
        await store.append(c, [OrderPlaced.create(next()) as AnyEvent]);
      }),
    'unit-of-work': async () => check(await mediator.send(PlaceOrder.create(next()))),
    'idempotent-first': async () => {
      const payload = next();
      check(
        await mediator.send(
          PlaceOrder.create(payload, { idempotencyKey: `first-${suffix}-${run}-${payload.n}` }),
        ),
      );
    },
    'idempotent-replay': async () => {
      const at = calls;
      check(await mediator.send(PlaceOrder.create(replayPayload, { idempotencyKey: replayKey })));
      if (calls !== at) throw new Error('the handler ran again for a replayed key');
    },
  };
}

/**
 * Microseconds per operation of one case, and its time over its paired base's (`x_paired`, see
 * {@link pairedRatio}), measured in the same process on the same tables.
 */
export async function measureWrite<C>(
  parts: WriteParts<C>,
  kind: WriteKind,
): Promise<{ us_per_op: number; x_paired?: number }> {
  const ops = await writeOps(parts);
  const us = await usPerOp(ops[kind]);
  const base = PAIRED_BASE[kind];
  return base === undefined
    ? { us_per_op: us }
    : { us_per_op: us, x_paired: await pairedRatio(ops[base], ops[kind]) };
}
