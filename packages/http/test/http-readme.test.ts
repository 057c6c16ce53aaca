import { describe, expect, it } from 'vitest';
import { main } from '../examples/orders-http.ts';

describe('README example', () => {
  it('runs as shown', async () => {
    expect(await main()).toEqual([
      '201 {"orderId":"o-1"}',
      '201 replayed=true',
      '400 application/problem+json; charset=utf-8',
      '404',
      'id: 1\ndata: {"position":1,"id":"o-1"}',
      '3.1.0',
    ]);
  });
});
