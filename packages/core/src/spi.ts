/**
 * `@cqrs-ts/core/spi`: what an adapter author implements and uses. The ports (outbox, inbox, saga storage,
 * message publisher), the CloudEvents envelope and its codecs, the outbox encoder, and the small runtime
 * helpers the relay and the message processor share (backoff, abortable sleep, error text). Applications
 * rarely need it: `@cqrs-ts/core` is their entry.
 * @module
 */

// aggregates: the row port of state-based repositories
export type { VersionedRowStore } from './aggregates/state-repository.ts';
export { createStateRepository, MAX_STATE_ID_LENGTH } from './aggregates/state-repository.ts';
export { resolveTransaction } from './aggregates/transaction-source.ts';
export type { AvailabilityListeners } from './broker/availability-listeners.ts';
export { createAvailabilityListeners } from './broker/availability-listeners.ts';
// broker: envelope, publisher port, consumer helpers
export type {
  BroadcastConsumer,
  BroadcastConsumerOptions,
  BroadcastOpenContext,
  BroadcastSource,
  BroadcastSubscription,
} from './broker/broadcast-consumer.ts';
export { createBroadcastConsumer } from './broker/broadcast-consumer.ts';
export type {
  CloudEventAttributes,
  DecodedMessage,
  EnvelopeCompression,
  EnvelopeDecoder,
  EnvelopeDecoderOptions,
  PayloadSerializer,
} from './broker/envelope.ts';
export {
  assertEnvelope,
  CLOUDEVENTS_JSON_CONTENT_TYPE,
  CLOUDEVENTS_SPEC_VERSION,
  compressData,
  createEnvelopeDecoder,
  decompressData,
  eventAttributes,
  eventFromEnvelope,
  fromBindingHeaders,
  isUriReference,
  openEnvelope,
  percentDecodeHeader,
  percentEncodeHeader,
  requestIdOf,
  toBindingHeaders,
} from './broker/envelope.ts';
export type { KeyedLimiter } from './broker/message-processor.ts';
export { createKeyedLimiter } from './broker/message-processor.ts';
export type {
  MessagePublisher,
  OutboxMessage,
  PublisherCapabilities,
  PublishResult,
} from './broker/message-publisher.ts';
// diagrams
export { mermaidLabel } from './diagrams/mermaid.ts';
// errors
export { createStorageErrorMapper } from './errors/storage-error.ts';
// event log: request checks and position helpers for stores
export type { CheckedLogRead, CheckedStreamAppend, CheckedStreamRead } from './event-log/event-log.ts';
export {
  checkLogRead,
  checkStreamAppend,
  checkStreamId,
  checkStreamRead,
  DEFAULT_LOG_BATCH,
  expectationMet,
  formatLogPosition,
  keyedByStream,
  MAX_LOG_TYPES,
  MAX_SNAPSHOT_LENGTH,
  MAX_STREAM_ID_LENGTH,
  parseLogPosition,
} from './event-log/event-log.ts';
// inbox
export type { InboxGuard, InboxGuardOptions } from './inbox/inbox-guard.ts';
export { createInboxGuard } from './inbox/inbox-guard.ts';
export type { InboxStore } from './inbox/inbox-store.ts';
// container adapters: one scope per top-level dispatch
export type { ContainerAdapterOptions } from './mediator/dependency-container.ts';
export { containerAdapter, handlerClassesOf } from './mediator/dependency-container.ts';
// outbox
export type { OutboxCompressionOptions, OutboxEncoder, OutboxEncoderOptions } from './outbox/outbox-codec.ts';
export {
  createOutboxEncoder,
  decodeOutboxRecord,
  outboxHeadersProblem,
  toOutboxMessages,
} from './outbox/outbox-codec.ts';
export type {
  ContentEncoding,
  OutboxRecord,
  OutboxRecordInput,
  OutboxStatus,
} from './outbox/outbox-record.ts';
export { CONTENT_ENCODINGS, OUTBOX_STATUSES } from './outbox/outbox-record.ts';
export type { OutboxWakeUp } from './outbox/outbox-relay.ts';
export type {
  ClaimBatchRequest,
  LockedBatchOutcome,
  LockedBatchRequest,
  OutboxFailure,
  OutboxPurgeRequest,
  OutboxStats,
  OutboxStore,
  PublishedCountsRequest,
} from './outbox/outbox-store.ts';
// projections: the storage port and its name checks
export {
  checkProjectionName,
  checkProjectionVersion,
  MAX_PROJECTION_NAME_LENGTH,
  MAX_PROJECTION_VERSION,
} from './projections/projection.ts';
export type {
  DocumentWrite,
  ProjectionAcquire,
  ProjectionAdvance,
  ProjectionKey,
  ProjectionStore,
  StoredDocument,
} from './projections/projection-store.ts';
// saga storage port
export type {
  SagaAcquire,
  SagaCommit,
  SagaCountQuery,
  SagaCreate,
  SagaListQuery,
  SagaLogAction,
  SagaLogEntry,
  SagaLogEntryInput,
  SagaLogStatus,
  SagaRecord,
  SagaRecoveryQuery,
  SagaRelease,
  SagaRenew,
  SagaStatus,
  SagaStore,
  SagaStoreCapabilities,
} from './saga/saga-store.ts';
export { SAGA_STATUSES } from './saga/saga-store.ts';
// shared runtime helpers
export { NEVER_ABORTED, sleep } from './shared/abort.ts';
export { backoffDelay } from './shared/backoff.ts';
export { errorText } from './shared/error-text.ts';
export type { HeartbeatRecorder } from './shared/heartbeat.ts';
export { createHeartbeat } from './shared/heartbeat.ts';
export { CONNECTION_ERROR_CODES, connectionErrorCode } from './shared/network-errors.ts';
export { sagaStepChannel } from './shared/tracing.ts';
// ids
export { isUuid, uuidv7, uuidv7Time } from './shared/uuid.ts';
// unit of work: the transaction behavior over a storage package's transactions, and idempotency records
export type { IdempotencyRecord, IdempotencyStore } from './unit-of-work/idempotency.ts';
export {
  commandFingerprint,
  DEFAULT_MAX_RESULT_BYTES,
  decodeIdempotentResult,
  encodeIdempotentResult,
  IDEMPOTENCY_CONSUMER,
  idempotencyId,
} from './unit-of-work/idempotency.ts';
export type {
  ActiveUnitOfWork,
  InlineProjector,
  TransactionRunner,
  TransactionRunOptions,
  UnitOfWorkOptions,
  UnitOfWorkStoreOptions,
} from './unit-of-work/unit-of-work.ts';
export { createUnitOfWork, currentUnitOfWork, unitOfWorkOf } from './unit-of-work/unit-of-work.ts';
