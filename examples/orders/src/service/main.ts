/**
 * `npm start`: the orders service. `--role=all` (default) runs every loop in this process on the embedded
 * defaults; with Postgres and NATS each of `api`, `relay`, `consumer`, `saga-recovery` and `projections` can run
 * as a process of its own. SIGTERM or SIGINT stops it gracefully.
 */
import { isCqrsError } from '@cqrs-ts/core';
import { loadConfig, parseRoles, ServiceConfigError } from './config.ts';
import { mountOperatorConsole } from './console.ts';
import { startOrdersService } from './service.ts';

const print = (line: string) => console.log(line);

try {
  const config = loadConfig(process.env);
  const roles = parseRoles(process.argv.slice(2), config);
  const service = await startOrdersService(config, {
    roles,
    log: config.logLevel === 'info' ? print : () => {},
    mountConsole: (parts) => mountOperatorConsole(parts, config.consoleToken),
  });
  const where =
    config.storage.kind === 'sqlite'
      ? `SQLite ${config.storage.file}`
      : `Postgres ${new URL(config.storage.url).host}`;
  const via = config.broker.kind === 'memory' ? 'in-memory broker' : `NATS ${config.broker.servers}`;
  print(`orders service [${[...roles].join(',')}] on ${where}, ${via}`);
  if (service.url !== undefined) {
    print(`API:     ${service.url}/orders`);
    print(`OpenAPI: ${service.url}/openapi.json`);
    print(`health:  ${service.url}/health/ready`);
    const readOnly =
      config.consoleToken === undefined ? ' (read-only: set ORDERS_CONSOLE_TOKEN for actions)' : '';
    print(`console: ${service.url}/console${readOnly}`);
  }
  print('ready');
  let signalled = false;
  const shutdown = (signal: string) => {
    if (signalled) return;
    signalled = true;
    print(`${signal}: stopping`);
    const force = setTimeout(() => {
      print(`still stopping after ${config.shutdownTimeoutMs} ms: exiting`);
      process.exit(1);
    }, config.shutdownTimeoutMs);
    force.unref();
    service.stop().then(
      () => {
        print('stopped');
        process.exitCode = 0;
      },
      (error: unknown) => {
        print(`stop failed: ${(error as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
} catch (error) {
  if (error instanceof ServiceConfigError || isCqrsError(error, 'CQRS_CONFIGURATION')) {
    print((error as Error).message);
    process.exit(2);
  }
  throw error;
}
