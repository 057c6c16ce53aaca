import { ConfigurationError } from '../errors/cqrs-error.ts';
import type { DispatchContext } from '../mediator/dispatch-context.ts';
import { Dispatch } from '../mediator/dispatch-context.ts';
import type { ActiveUnitOfWork } from '../unit-of-work/unit-of-work.ts';
import { currentUnitOfWork, unitOfWorkOf } from '../unit-of-work/unit-of-work.ts';

/**
 * Where a repository takes its transaction: a transaction of the store's driver that you opened, or the context
 * of a handler that runs inside a unit of work (the repository then writes in the unit's transaction).
 */
export type TransactionSource<TTx> = TTx | DispatchContext;

/**
 * The transaction of `source`, and the unit of work it belongs to (also for a transaction passed by hand that
 * is the current unit's own).
 * @throws ConfigurationError when `source` is a handler context outside any unit of work, or nothing at all
 */
export function resolveTransaction<TTx>(
  source: TransactionSource<TTx>,
  what: string,
): { readonly tx: TTx; readonly unit: ActiveUnitOfWork | undefined } {
  if (source === undefined || source === null) {
    throw new ConfigurationError(
      `${what}: pass a transaction, or the context of a handler inside a unit of work`,
    );
  }
  if (source instanceof Dispatch) {
    const unit = unitOfWorkOf(source);
    if (unit === undefined) {
      throw new ConfigurationError(
        `${what}: ${source.message.type} does not run inside a unit of work; add one to the mediator's behaviors or pass a transaction`,
      );
    }
    return { tx: unit.transaction as TTx, unit };
  }
  const unit = currentUnitOfWork();
  return { tx: source as TTx, unit: unit !== undefined && unit.transaction === source ? unit : undefined };
}
