/**
 * `@cqrs-ts/testing/contracts`: the contract suites that certify an adapter, for Vitest (a peer dependency).
 * Each `describe…Contract(name, setup)` registers a suite; `setup` returns a harness over the adapter (or
 * `undefined` to skip when its service is unreachable). Core's in-memory implementations pass every suite.
 * @module
 */

export type { BroadcastHarness } from './contracts/broadcast.contract.ts';
export { describeBroadcastContract } from './contracts/broadcast.contract.ts';
export type { BrokerConsumerOptions, BrokerDeadLetter, BrokerHarness } from './contracts/broker.contract.ts';
export { describeBrokerContract } from './contracts/broker.contract.ts';
export type { CloudEventFields, CloudEventsHarness } from './contracts/cloudevents.contract.ts';
export {
  CLOUDEVENTS_VECTORS,
  CONFORMANCE_TYPE,
  describeCloudEventsConformance,
  readableData,
} from './contracts/cloudevents.contract.ts';
export type {
  EventLogGapHarness,
  EventLogGapOptions,
  GapBatch,
  GapFigures,
} from './contracts/event-log-gaps.contract.ts';
export { describeEventLogGapContract } from './contracts/event-log-gaps.contract.ts';
export type { ContractEventStore, EventStoreHarness } from './contracts/event-store.contract.ts';
export { describeEventStoreContract } from './contracts/event-store.contract.ts';
export { rollbackVia } from './contracts/harness.ts';
export type { HttpServer, HttpServerHarness } from './contracts/http.contract.ts';
export { describeHttpContract } from './contracts/http.contract.ts';
export type { HttpFixtureState } from './contracts/http-fixture.ts';
export { createHttpFixture, OutOfStockError, objectSchema } from './contracts/http-fixture.ts';
export type { InboxHarness } from './contracts/inbox.contract.ts';
export { describeInboxContract } from './contracts/inbox.contract.ts';
export type { OutboxOutageHarness, OutboxRowDamage } from './contracts/outbox-outage.contract.ts';
export type { OutboxStoreHarness } from './contracts/outbox-store.contract.ts';
export { describeOutboxStoreContract } from './contracts/outbox-store.contract.ts';
export type {
  CounterChildArgs,
  ProjectionCounters,
  ProjectionHarness,
} from './contracts/projection.contract.ts';
export {
  counterProjection,
  describeProjectionContract,
  runCounterProjectionChild,
} from './contracts/projection.contract.ts';
export type { QueryCacheStoreHarness } from './contracts/query-cache-store.contract.ts';
export { describeQueryCacheStoreContract } from './contracts/query-cache-store.contract.ts';
export type { SagaStoreHarness } from './contracts/saga-store.contract.ts';
export { describeSagaStoreContract, SagaStepDone } from './contracts/saga-store.contract.ts';
export type { SqlSagaStoreHarness } from './contracts/sql-saga-store.contract.ts';
export { describeSqlSagaStoreContract } from './contracts/sql-saga-store.contract.ts';
export type { ContractAccount, StateRepositoryHarness } from './contracts/state-repository.contract.ts';
export {
  CONTRACT_ACCOUNT_COLUMNS,
  describeStateRepositoryContract,
} from './contracts/state-repository.contract.ts';
export type { TcpProxy } from './contracts/tcp-proxy.ts';
export { createTcpProxy } from './contracts/tcp-proxy.ts';
export type { UnitOfWorkHarness } from './contracts/unit-of-work.contract.ts';
export { describeUnitOfWorkContract } from './contracts/unit-of-work.contract.ts';
