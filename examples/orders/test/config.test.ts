import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, loadConfig, parseRoles, ServiceConfigError } from '../src/service/config.ts';
import { startProcess } from './support.ts';

describe('service configuration', () => {
  it('is the embedded defaults without environment variables', () => {
    expect(loadConfig({})).toEqual(DEFAULT_CONFIG);
  });

  it('is overridden by environment variables', () => {
    const config = loadConfig({
      ORDERS_PORT: '8080',
      ORDERS_STORAGE: 'postgres',
      DATABASE_URL: 'postgres://u@db/orders',
      ORDERS_BROKER: 'nats',
      NATS_SERVERS: 'n1:4222,n2:4222',
      ORDERS_SAGA_LEASE_MS: '5000',
    });
    expect(config.http.port).toBe(8080);
    expect(config.storage).toEqual({ kind: 'postgres', url: 'postgres://u@db/orders', poolSize: 10 });
    expect(config.broker).toEqual({
      kind: 'nats',
      servers: 'n1:4222,n2:4222',
      stream: 'ORDERS',
      subjectPrefix: 'orders',
      ackWaitMs: 30_000,
    });
    expect(config.saga.leaseMs).toBe(5000);
  });

  it('names every bad value with what is wrong with it', () => {
    let error: unknown;
    try {
      loadConfig({
        ORDERS_PORT: '70000',
        ORDERS_HOST: 'bad host!',
        ORDERS_STORAGE: 'oracle',
        ORDERS_BROKER: 'nats',
        ORDERS_NATS_STREAM: 'a.b',
        ORDERS_SAGA_LEASE_MS: '1.5',
        ORDERS_CACHE_TTL_MS: 'soon',
        ORDERS_LOG_LEVEL: 'loud',
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ServiceConfigError);
    const issues = (error as ServiceConfigError).issues;
    expect(issues.map((i) => i.key)).toEqual([
      'ORDERS_HOST',
      'ORDERS_PORT',
      'ORDERS_STORAGE',
      'ORDERS_NATS_STREAM',
      'ORDERS_SAGA_LEASE_MS',
      'ORDERS_CACHE_TTL_MS',
      'ORDERS_LOG_LEVEL',
    ]);
    expect((error as Error).message).toContain('ORDERS_PORT: "70000" is not an integer from 0 to 65535');
    expect((error as Error).message).toContain('ORDERS_STORAGE: "oracle" is not one of sqlite, postgres');
    expect((error as ServiceConfigError).code).toBe('CQRS_CONFIGURATION');
  });

  it('requires a postgres URL with postgres storage, and refuses split roles on the embedded defaults', () => {
    expect(() => loadConfig({ ORDERS_STORAGE: 'postgres' })).toThrow(/DATABASE_URL: is required/);
    expect(() => loadConfig({ ORDERS_STORAGE: 'postgres', DATABASE_URL: 'mysql://x' })).toThrow(
      /DATABASE_URL: is not a postgres/,
    );
    expect(() => parseRoles(['--role=relay'], DEFAULT_CONFIG)).toThrow(/in-memory broker runs every role/);
    expect(() => parseRoles(['--role=api,worker'], DEFAULT_CONFIG)).toThrow(/"worker" is not one of/);
    const split = loadConfig({
      ORDERS_STORAGE: 'postgres',
      DATABASE_URL: 'postgres://x/y',
      ORDERS_BROKER: 'nats',
    });
    expect([...parseRoles(['--role=api,relay'], split)]).toEqual(['api', 'relay']);
    expect([...parseRoles([], split)]).toEqual(['all']);
  });

  it('a process started with bad values prints each one and exits with status 2', async () => {
    const service = startProcess([], { ORDERS_PORT: 'eighty', ORDERS_BROKER: 'kafka' });
    const { code } = await service.exited;
    expect(code).toBe(2);
    expect(service.output()).toContain('ORDERS_PORT: "eighty" is not an integer from 0 to 65535');
    expect(service.output()).toContain('ORDERS_BROKER: "kafka" is not one of memory, nats');
  });
});
