// biome-ignore-all lint/suspicious/noConsole: the example shows its results on stdout
// #region readme
import { Writable } from 'node:stream';
import { createMediator, defineCommand, handle, logging, runWithContext } from '@cqrs-ts/core';
import { createPinoLogger } from '@cqrs-ts/pino';
import { pino } from 'pino';

const SignUp = defineCommand('accounts.sign-up')
  .withPayload<{ email: string; password: string; ssn: string }>()
  .returns<string>();

export async function main(): Promise<string[]> {
  const lines: string[] = [];
  const out = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk).trim());
      done();
    },
  });
  // your pino, as configured for the service (here writing into `lines` instead of stdout)
  const logger = createPinoLogger(pino({ level: 'info', base: null, timestamp: false }, out), {
    redact: ['ssn'], // besides the built-in pattern: password, token, secret, authorization, cookie, api key, ...
  });
  const mediator = createMediator({
    behaviors: [logging({ logger, level: 'info', includePayload: true })],
    handlers: [
      handle(SignUp, async (c) => {
        logger.info(
          { headers: { authorization: 'Bearer eyJhbGciOi' }, email: c.payload.email },
          'calling crm',
        );
        return 'acc-1';
      }),
    ],
  });
  const command = SignUp.create({ email: 'ann@example.com', password: 'hunter2', ssn: '123-45-6789' });
  // e.g. from the HTTP request's headers; `@cqrs-ts/http` does this for its routes
  await runWithContext(
    { correlationId: 'corr-1', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
    () => mediator.send(command),
  );
  for (const line of lines) console.log(line);
  // {"level":30,"correlationId":"corr-1","requestId":"…","traceId":"4bf92f35…","headers":{"authorization":"[redacted]"},"email":"ann@example.com","msg":"calling crm"}
  // {"level":30,…,"messageType":"accounts.sign-up","payload":{"email":"ann@example.com","password":"[redacted]","ssn":"[redacted]"},…}
  return lines;
}

if (import.meta.main) await main();
// #endregion readme
