import { expect, it, vi } from 'vitest';
import { main } from '../examples/logs.ts';

it('the README example logs both lines with the ids of the dispatch and no secret', async () => {
  vi.spyOn(console, 'log').mockImplementation(() => {});
  const lines = await main();
  expect(lines).toHaveLength(2);
  const text = lines.join('\n');
  for (const secret of ['hunter2', '123-45-6789', 'eyJhbGciOi']) expect(text).not.toContain(secret);
  for (const line of lines.map((l) => JSON.parse(l) as Record<string, unknown>)) {
    expect(line).toMatchObject({ correlationId: 'corr-1', traceId: '4bf92f3577b34da6a3ce929d0e0e4736' });
    expect(typeof line.requestId).toBe('string');
  }
  expect(JSON.parse(lines[1]!).payload).toEqual({
    email: 'ann@example.com',
    password: '[redacted]',
    ssn: '[redacted]',
  });
});
