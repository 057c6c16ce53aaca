import { expect, it } from 'vitest';
import { runExample } from '../../core/test/support/services.ts';

it("the README's example runs: protobuf through the outbox, the relay and a consumer's processor", async () => {
  const out = await runExample('packages/protobuf', 'test/readme/quick-start.ts');
  expect(out.split('\n')).toEqual([
    "shop.order-placed { orderId: 'o-1', amountCents: 1250n, lines: [ { sku: 'a', qty: 2 } ] }",
    '',
  ]);
});
