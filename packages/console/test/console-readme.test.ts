import { describe, expect, it } from 'vitest';
import { main } from '../examples/console-node.ts';

describe('README example', () => {
  it('runs as shown, over loopback HTTP', async () => {
    expect(await main()).toEqual([
      'page 200',
      'dead letters 1',
      '{"orderId":"o-1"}',
      'replay 200 {"action":"outbox.replay","result":1,"by":"ops"}',
      'published 1',
      'ops outbox.replay done',
    ]);
  });
});
