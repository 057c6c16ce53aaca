/**
 * The pino adapter on a real pino writing to memory: every line of a dispatch carries its request, correlation
 * and trace ids; secret fields (a password and a token in the payload, an authorization header and a token
 * header, a configured field) never reach the output.
 */
import { Writable } from 'node:stream';
import { createMediator, defineCommand, handle, logging, runWithContext } from '@cqrs-ts/core';
import { cqrsLogMixin, createPinoLogger, createRedactor } from '@cqrs-ts/pino';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const TRACEPARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`;
const SECRETS = ['hunter2', 'tok-123', 'abc.def.ghi', 'tok-456', '123-45-6789', 'sess-cookie-1'];

const SignUp = defineCommand('accounts.sign-up')
  .withPayload<{ email: string; password: string; profile: { apiToken: string; ssn: string } }>()
  .returns<string>();

/** A pino logger at `trace` writing JSON lines into `lines`. */
function memoryPino() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return { log: pino({ level: 'trace' }, stream), lines };
}

describe('@cqrs-ts/pino', () => {
  it('puts the ids of the dispatch on every line and never writes a secret', async () => {
    const { log, lines } = memoryPino();
    const logger = createPinoLogger(log, { redact: ['ssn'] });
    const mediator = createMediator({
      // the behavior's own masking is off here: the adapter alone must keep secrets out
      behaviors: [logging({ logger, level: 'info', includePayload: true, redact: (payload) => payload })],
      handlers: [
        handle(SignUp, async (command) => {
          const headers = new Headers({ authorization: 'Bearer abc.def.ghi', 'x-refresh-token': 'tok-456' });
          logger.info(
            { headers, cookies: { session: 'sess-cookie-1' }, email: command.payload.email },
            'signing up',
          );
          logger.warn({ attempt: { payload: command.payload } }, 'slow downstream');
          return 'acc-1';
        }),
      ],
    });
    const command = SignUp.create({
      email: 'ann@example.com',
      password: 'hunter2',
      profile: { apiToken: 'tok-123', ssn: '123-45-6789' },
    });
    await runWithContext({ correlationId: 'corr-1', traceparent: TRACEPARENT }, () => mediator.send(command));

    const output = lines.join('\n');
    for (const secret of SECRETS) expect(output, secret).not.toContain(secret);
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed.map((p) => p.msg)).toEqual(expect.arrayContaining(['signing up', 'slow downstream']));
    expect(parsed.length).toBeGreaterThanOrEqual(3);
    for (const line of parsed) {
      expect(line.requestId, JSON.stringify(line)).toBe(command.metadata.requestId);
      expect(line.correlationId).toBe('corr-1');
      expect(line.traceId).toBe(TRACE_ID);
    }
    const signing = parsed.find((p) => p.msg === 'signing up')!;
    expect(signing.headers).toEqual({ authorization: '[redacted]', 'x-refresh-token': '[redacted]' });
    expect(signing.email).toBe('ann@example.com'); // not a secret: kept
    const slow = parsed.find((p) => p.msg === 'slow downstream')!;
    expect(slow.attempt).toEqual({
      payload: {
        email: 'ann@example.com',
        password: '[redacted]',
        profile: { apiToken: '[redacted]', ssn: '[redacted]' },
      },
    });
  });

  it('outside a dispatch: no ids, still redacted; a disabled level writes nothing', () => {
    const { log, lines } = memoryPino();
    log.level = 'info';
    const logger = createPinoLogger(log);
    logger.debug({ password: 'hunter2' }, 'hidden');
    logger.info({
      user: { password: 'hunter2' },
      error: Object.assign(new Error('boom'), { token: 'tok-123' }),
    });
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(line.correlationId).toBeUndefined();
    expect(line.user).toEqual({ password: '[redacted]' });
    expect(line.error).toMatchObject({ type: 'Error', message: 'boom', token: '[redacted]' });
    expect(lines[0]).not.toContain('hunter2');
    expect(logger.isLevelEnabled?.('debug')).toBe(false);
  });

  it('cqrsLogMixin gives pino the ids for its own lines; bad options are refused', async () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk, _e, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const log = pino({ mixin: cqrsLogMixin }, stream);
    runWithContext({ correlationId: 'corr-2', requestId: 'req-2', traceparent: TRACEPARENT }, () =>
      log.info('plain'),
    );
    expect(JSON.parse(lines[0]!)).toMatchObject({
      correlationId: 'corr-2',
      requestId: 'req-2',
      traceId: TRACE_ID,
      spanId: '00f067aa0ba902b7',
    });
    expect(() => createPinoLogger({} as never)).toThrow(/pino logger/);
    expect(() => createRedactor({ redact: [''] })).toThrow(/field names/);
    expect(createRedactor({ secretPattern: null, redact: ['pin'] })({ PIN: 1, password: 'x' })).toEqual({
      PIN: '[redacted]',
      password: 'x',
    });
  });
});
