/**
 * Service availability for integration tests: a test file calls `await service('postgres', probe)` and skips
 * (printing why) when the service is unreachable, unless CQRS_REQUIRE_SERVICES=1, which turns that into a failure.
 */
export async function service(name: string, probe: () => Promise<unknown>): Promise<boolean> {
  try {
    await probe();
    return true;
  } catch (error) {
    const reason = `${name} unreachable: ${error instanceof Error ? error.message : String(error)}`;
    if (process.env.CQRS_REQUIRE_SERVICES === '1') throw new Error(`${reason} (CQRS_REQUIRE_SERVICES=1)`);
    console.warn(`SKIP ${reason}`);
    return false;
  }
}

/** A table-name suffix unique to this process and run. */
export const uniqueSuffix = `${process.pid}_${Math.floor(Math.random() * 1e6)}`;

export const PG_URL = process.env.CQRS_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const MYSQL_URL = process.env.CQRS_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

export { waitFor } from '@cqrs-ts/testing';
