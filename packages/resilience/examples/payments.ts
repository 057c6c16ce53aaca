// biome-ignore-all lint/suspicious/noConsole: an example prints what it does
/**
 * The README example: two commands call one payment provider; after three failures in a row its circuit opens,
 * and both commands are refused at once (with when to retry) instead of waiting on a dead dependency. Run it
 * with `npx node --conditions=@cqrs-ts/source packages/resilience/examples/payments.ts`.
 */
// #region readme
import { createMediator, defineCommand, handle, isCqrsError, retry, timeout } from '@cqrs-ts/core';
import { circuitBreaker } from '@cqrs-ts/resilience';

const Charge = defineCommand('payments.charge')
  .withPayload<{ orderId: string; cents: number }>()
  .returns<string>();
const Refund = defineCommand('payments.refund').withPayload<{ orderId: string }>().returns<string>();

// A stand-in for the provider's HTTP client: down until `healthy` is set.
const provider = { healthy: false, calls: 0 };
async function callProvider(what: string): Promise<string> {
  provider.calls++;
  if (!provider.healthy) throw new Error('payments provider: 503 Service Unavailable');
  return `${what}: ok`;
}

export async function main() {
  const breaker = circuitBreaker({
    opensAfter: { consecutiveFailures: 3 },
    halfOpenAfterMs: 50,
    onStateChange: (s) => console.log(`circuit ${s.circuit} is ${s.state}`),
  });
  const mediator = createMediator({
    // retry outside the breaker (each attempt asks the circuit), timeout inside (a timeout is a failure)
    behaviors: [retry(), breaker, timeout()],
    handlers: [
      handle(Charge, (c) => callProvider(`charge ${c.payload.orderId}`), {
        circuit: 'payments-api',
        timeout: 2_000,
      }),
      handle(Refund, (c) => callProvider(`refund ${c.payload.orderId}`), {
        circuit: 'payments-api',
        timeout: 2_000,
      }),
    ],
  });

  const refusals: string[] = [];
  for (let i = 1; i <= 4; i++) {
    try {
      await mediator.send(Charge.create({ orderId: `o-${i}`, cents: 1_000 }));
    } catch (error) {
      refusals.push(isCqrsError(error, 'CQRS_CIRCUIT_OPEN') ? 'refused at once' : 'provider failed');
      console.log(`charge o-${i}: ${(error as Error).message}`);
    }
  }
  // The refund shares the circuit: refused too, without calling the provider.
  const refund = await mediator.send(Refund.create({ orderId: 'o-1' })).catch((e: unknown) => e);
  const { retryAt } = breaker.status('payments-api');
  console.log(`refund o-1: ${(refund as Error).message}`);

  // Once the provider is back and the circuit lets a trial call through, it closes again.
  provider.healthy = true;
  await new Promise((r) => setTimeout(r, Math.max(0, (retryAt ?? 0) - Date.now()) + 1));
  console.log(await mediator.send(Charge.create({ orderId: 'o-5', cents: 1_000 })));
  return { refusals, providerCalls: provider.calls, state: breaker.status('payments-api').state };
}

if (import.meta.main) await main();
// #endregion readme
