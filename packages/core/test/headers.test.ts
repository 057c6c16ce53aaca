import {
  CORRELATION_HEADERS,
  ConfigurationError,
  createMediator,
  currentContext,
  defineCommand,
  defineQuery,
  extractContext,
  formatTraceparent,
  handle,
  injectContext,
  parseTraceparent,
  runWithContext,
} from '@cqrs-ts/core';
import { describe, expect, it } from 'vitest';
import { isTraceparent } from '../src/context/headers.ts';

const TP = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('W3C traceparent', () => {
  it('parses valid headers and rejects malformed ones', () => {
    expect(parseTraceparent(TP)).toEqual({
      version: '00',
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      parentId: '00f067aa0ba902b7',
      flags: 1,
    });
    expect(parseTraceparent(TP.toUpperCase())?.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    for (const bad of [
      '',
      'garbage',
      '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
      'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      `${TP}-extra`,
      '00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01',
      'x'.repeat(10_000),
    ]) {
      expect(parseTraceparent(bad)).toBeUndefined();
    }
    expect(formatTraceparent({ traceId: 'a'.repeat(32), parentId: 'b'.repeat(16), flags: 1 })).toBe(
      `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`,
    );
  });

  it('checks validity without parsing exactly as parseTraceparent decides it', () => {
    for (const value of [
      TP,
      TP.toUpperCase(),
      ` ${TP} `,
      '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future',
      '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
      'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      `${TP}-extra`,
      '00-4bf92f3577b34da6a3ce929d0e0e473x-00f067aa0ba902b7-01',
      '00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      '',
      'x'.repeat(10_000),
      undefined,
      null,
    ]) {
      expect(isTraceparent(value), String(value)).toBe(parseTraceparent(value) !== undefined);
    }
  });
});

describe('header propagation', () => {
  it('extracts case-insensitively from records, arrays and Fetch Headers', () => {
    expect(extractContext({ 'X-Correlation-ID': 'abc', TraceParent: TP })).toMatchObject({
      correlationId: 'abc',
      traceparent: TP,
    });
    expect(extractContext({ 'x-correlation-id': ['first', 'second'] })).toMatchObject({
      correlationId: 'first',
    });
    const headers = new Headers({ 'x-correlation-id': 'from-fetch', 'x-causation-id': 'cause-1' });
    expect(extractContext(headers)).toMatchObject({ correlationId: 'from-fetch', causationId: 'cause-1' });
  });

  it('falls back to the trace id, then a new UUID v7, and ignores unsafe values', () => {
    expect(extractContext({ traceparent: TP }).correlationId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    const generated = extractContext({ 'x-correlation-id': 'evil\r\nSet-Cookie: x', traceparent: 'bogus' });
    expect(generated.correlationId).toMatch(/^[0-9a-f-]{36}$/);
    expect(generated.traceparent).toBeUndefined();
    expect(extractContext({ 'x-correlation-id': 'x'.repeat(300) }).correlationId).not.toBe('x'.repeat(300));
  });

  it('injects the ambient context into outbound headers', async () => {
    expect(injectContext()).toEqual({});
    const record = runWithContext({ correlationId: 'c-1', requestId: 'r-1', traceparent: TP }, () =>
      injectContext(),
    );
    expect(record).toEqual({
      [CORRELATION_HEADERS.correlationId]: 'c-1',
      [CORRELATION_HEADERS.causationId]: 'r-1',
      traceparent: TP,
    });
    const fetchHeaders = runWithContext({ correlationId: 'c-2' }, () => injectContext(new Headers()));
    expect(fetchHeaders.get('x-correlation-id')).toBe('c-2');
  });

  it('carries an inbound request context through a dispatch and back out', async () => {
    const Call = defineCommand('t.call').returns<Record<string, string>>();
    const Inner = defineQuery('t.inner-headers').returns<unknown>();
    const mediator = createMediator({
      handlers: [
        handle(Call, async () => {
          await mediator.query(Inner.create({}));
          return injectContext();
        }),
        handle(Inner, () => currentContext()),
      ],
    });
    const inbound = extractContext({ 'x-correlation-id': 'from-client', traceparent: TP });
    const { outbound, command } = await runWithContext(inbound, async () => {
      const command = Call.create({});
      return { outbound: await mediator.send(command), command };
    });
    expect(command.metadata.correlationId).toBe('from-client');
    expect(command.metadata.traceparent).toBe(TP);
    expect(outbound).toEqual({
      'x-correlation-id': 'from-client',
      'x-causation-id': command.metadata.requestId,
      traceparent: TP,
    });
  });

  it('requires a correlation id when there is no outer context, and checks what it is given', () => {
    const refused = (init: unknown, fn: unknown = () => 1) => {
      let error: unknown;
      try {
        runWithContext(init as never, fn as never);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConfigurationError);
      return (error as Error).message;
    };
    expect(refused({})).toMatch(/needs init\.correlationId.*extractContext/);
    expect(refused(null)).toMatch(/init must be an object/);
    expect(refused('c-1')).toMatch(/init must be an object/);
    expect(refused({ correlationId: 'c-1' }, 'not a function')).toMatch(/fn must be the function/);
    expect(refused({ correlationId: 'a b' })).toMatch(/correlationId must be 1 to 256 printable/);
    expect(refused({ correlationId: 'x'.repeat(257) })).toMatch(/correlationId/);
    expect(refused({ correlationId: 'c', tenantId: 'evil\r\nheader: 1' })).toMatch(/tenantId/);
    expect(refused({ correlationId: 'c', traceparent: 'garbage' })).toMatch(/traceparent/);
    expect(refused({ correlationId: 'c', execution: 'admin' })).toMatch(/execution must be/);
    expect(runWithContext({ correlationId: 'c-1' }, () => currentContext()?.correlationId)).toBe('c-1');
  });
});
