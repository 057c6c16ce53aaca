/**
 * `@cqrs-ts/core`: what an application uses. Messages, the mediator and its pipeline behaviors, typed errors,
 * correlation context, events, the outbox relay, the broker-neutral message processor and the in-memory
 * implementations. Ports and helpers for adapter authors live in `@cqrs-ts/core/spi`, SQL helpers in
 * `@cqrs-ts/core/sql`.
 * @module
 */

// aggregates
export type {
  AggregateUpdate,
  EventSourcedRepository,
  EventSourcedRepositoryOptions,
  LoadedAggregate,
  SnapshotOptions,
} from './aggregates/event-sourced-repository.ts';
export { createEventSourcedRepository } from './aggregates/event-sourced-repository.ts';
export type {
  InMemoryStateRepository,
  InMemoryStateRepositoryOptions,
  StateRepository,
  StateWriteOptions,
  VersionedState,
} from './aggregates/state-repository.ts';
export { createInMemoryStateRepository } from './aggregates/state-repository.ts';
export type { TransactionSource } from './aggregates/transaction-source.ts';
// behaviors
export type { AuthorizationOptions, AuthorizationPolicy } from './behaviors/authorization-behavior.ts';
export { authorization } from './behaviors/authorization-behavior.ts';
export type { CorrelationOptions } from './behaviors/correlation-behavior.ts';
export { correlation } from './behaviors/correlation-behavior.ts';
export type { MapErrorsOptions } from './behaviors/error-mapping-behavior.ts';
export { mapErrors } from './behaviors/error-mapping-behavior.ts';
export type { LoggingOptions } from './behaviors/logging-behavior.ts';
export { logging, redactSecrets } from './behaviors/logging-behavior.ts';
export type { RetryOptions } from './behaviors/retry-behavior.ts';
export { retry } from './behaviors/retry-behavior.ts';
export type { TimeoutOptions } from './behaviors/timeout-behavior.ts';
export { timeout } from './behaviors/timeout-behavior.ts';
export type { ValidationOptions } from './behaviors/validation-behavior.ts';
export { validation } from './behaviors/validation-behavior.ts';
// broker: in-memory broker and the consumer-side processor
export type { EnvelopeProblem } from './broker/envelope.ts';
export { ENVELOPE_PROBLEMS, EnvelopeError, jsonPayloadSerializer } from './broker/envelope.ts';
export type {
  BrokerHandler,
  DeliveredMessage,
  InMemoryBroker,
  InMemoryBrokerOptions,
} from './broker/in-memory-broker.ts';
export { createInMemoryBroker } from './broker/in-memory-broker.ts';
export type {
  InMemoryBroadcastConsumerOptions,
  InMemoryConsumer,
  InMemoryConsumerOptions,
  InMemoryDeadLetter,
} from './broker/in-memory-consumer.ts';
export { createInMemoryBroadcastConsumer, createInMemoryConsumer } from './broker/in-memory-consumer.ts';
export type { MessageConsumer, MessageConsumerHealth } from './broker/message-consumer.ts';
export type {
  ConsumerHandlerContext,
  ConsumerPauseOptions,
  Disposition,
  IncomingMessage,
  MessageProcessor,
  MessageProcessorOptions,
  ProcessorPauseState,
} from './broker/message-processor.ts';
export {
  consumerTransaction,
  createMessageProcessor,
  incomingCloudEvent,
} from './broker/message-processor.ts';
// context
export type { AmbientContext, ContextInit } from './context/ambient-context.ts';
export { currentContext, runWithContext } from './context/ambient-context.ts';
export type { DependencyScope, DependencyToken } from './context/dependency-scope.ts';
export type { ExecutionContext, Principal } from './context/execution-context.ts';
export { EMPTY_EXECUTION_CONTEXT, hasFeature, hasRole } from './context/execution-context.ts';
export type { ExtractContextOptions, HeaderSource, InvalidHeader, TraceParent } from './context/headers.ts';
export {
  CORRELATION_HEADERS,
  extractContext,
  formatTraceparent,
  injectContext,
  isSafeId,
  parseTraceparent,
} from './context/headers.ts';
// diagrams
export { applicationMap, chainClassDiagram, chainSequenceDiagram } from './diagrams/mermaid.ts';
// errors
export type { BrokerFailureReason, BrokerFailureScope } from './errors/broker-error.ts';
export {
  BROKER_FAILURE_REASONS,
  BROKER_FAILURE_SCOPES,
  BrokerError,
  isDestinationFailure,
} from './errors/broker-error.ts';
export type { ExpectedVersion } from './errors/concurrency-error.ts';
export { ConcurrencyError, isConcurrencyError } from './errors/concurrency-error.ts';
export type { CqrsErrorCode, ValidationIssue } from './errors/cqrs-error.ts';
export {
  AuthorizationError,
  CancelledError,
  CircuitOpenError,
  ConfigurationError,
  CQRS_ERROR_CODES,
  CqrsError,
  DuplicateHandlerError,
  HandlerNotFoundError,
  isCqrsError,
  MissingHandlerError,
  NotFoundError,
  ProcessingError,
  SerializationError,
  TimeoutError,
  UnknownMessageTypeError,
  ValidationError,
} from './errors/cqrs-error.ts';
export { isRetryable } from './errors/retryable.ts';
export type { StorageFailureReason } from './errors/storage-error.ts';
export { PayloadTooLargeError, STORAGE_FAILURE_REASONS, StorageError } from './errors/storage-error.ts';
export { isUnavailableError } from './errors/unavailable.ts';
// event log
export type {
  EventLog,
  EventLogCapabilities,
  EventLogEntry,
  EventStore,
  LoadedStream,
  LogBatch,
  LogPositionGuarantee,
  LogReadRequest,
  StreamAppendOptions,
  StreamAppendResult,
  StreamLoadOptions,
  StreamReadOptions,
  StreamSnapshot,
} from './event-log/event-log.ts';
export {
  compareLogPositions,
  LOG_POSITION_GUARANTEES,
  LOG_START,
  MAX_LOG_BATCH,
} from './event-log/event-log.ts';
export type { InMemoryEventStore, InMemoryEventStoreOptions } from './event-log/in-memory-event-store.ts';
export { createInMemoryEventStore } from './event-log/in-memory-event-store.ts';
export type { LogDecoder } from './event-log/log-decoder.ts';
export { createLogDecoder } from './event-log/log-decoder.ts';
// events
export type { EventSource } from './events/aggregate-root.ts';
export { AggregateRoot, isEventSource } from './events/aggregate-root.ts';
export type { EventHandlerFailure } from './events/event-errors.ts';
export { EventDepthExceededError, EventDispatchError } from './events/event-errors.ts';
export type {
  Health,
  HealthCheckEntry,
  HealthCheckResult,
  HealthComponent,
  HealthOptions,
  HealthReport,
  HealthStatus,
} from './health/health.ts';
export { createHealth, worstStatus } from './health/health.ts';
// health
export type {
  ConsumerHealthOptions,
  LoopHealthOptions,
  ProjectionHealthOptions,
  RelayHealthOptions,
} from './health/health-checks.ts';
export {
  connectionHealth,
  consumerHealth,
  loopHealth,
  projectionHealth,
  relayHealth,
} from './health/health-checks.ts';
// inbox
export type {
  InMemoryInboxGuardOptions,
  InMemoryInboxStore,
  InMemoryInboxTransaction,
} from './inbox/in-memory-inbox-store.ts';
export { createInMemoryInboxGuard, createInMemoryInboxStore } from './inbox/in-memory-inbox-store.ts';
export type { ProcessOnceResult } from './inbox/inbox-store.ts';
export { processOnce } from './inbox/inbox-store.ts';
// mediator
export type {
  Behavior,
  BehaviorInput,
  BehaviorTarget,
  Middleware,
  Next,
  Policy,
} from './mediator/behavior.ts';
export { createBehavior, defineBehavior, POLICIES, targetBehavior } from './mediator/behavior.ts';
export type {
  ChainInfo,
  ChainLink,
  ChainLinkFunction,
  ChainLinkObject,
  ChainOptions,
} from './mediator/chain.ts';
export { chainOf, handleChain, NoHandlerAnsweredError } from './mediator/chain.ts';
export type { ContextKey } from './mediator/context-key.ts';
export { createContextKey } from './mediator/context-key.ts';
export type { DependencyContainer, ScopeInit } from './mediator/dependency-container.ts';
export type {
  DispatchContext,
  DispatchOptions,
  EmittableEvent,
  HandlerDescriptor,
  IdempotencyDispatchOptions,
} from './mediator/dispatch-context.ts';
export type {
  EventHandlerFunction,
  HandlerBinding,
  HandlerClass,
  HandlerFunction,
  HandlerObject,
  HandlerOptions,
  HandlerResolver,
  StreamHandlerFunction,
} from './mediator/handler.ts';
export { defaultResolver, handle, handleStream, handles, on } from './mediator/handler.ts';
export type {
  ErrorInfo,
  EventOptions,
  HandlerInfo,
  HandlerRegistration,
  Mediator,
  MediatorOptions,
  PublishOptions,
  PublishStrategy,
} from './mediator/mediator.ts';
export { createMediator, PUBLISH_STRATEGIES, UnenforcedPolicyError } from './mediator/mediator.ts';
// messages
export type {
  AnyCommandDefinition,
  AnyEventDefinition,
  AnyMessageDefinition,
  AnyQueryDefinition,
  AnyRequestDefinition,
  AnyStreamQueryDefinition,
  AuthorizationContext,
  AuthorizationDecision,
  AuthorizationDenial,
  AuthorizeHook,
  CommandDefinition,
  DecodeOptions,
  DefineEventOptions,
  DefineOptions,
  EmptyPayload,
  EventCategory,
  EventDefinition,
  InferMessage,
  MessageDefinitionBase,
  QueryDefinition,
  StreamQueryDefinition,
  ValidateHook,
  ValidationContext,
} from './messages/define-message.ts';
export {
  defineCommand,
  defineEvent,
  defineQuery,
  defineStreamQuery,
  EVENT_CATEGORIES,
} from './messages/define-message.ts';
export type {
  AnyCommand,
  AnyEvent,
  AnyMessage,
  AnyQuery,
  AnyRequest,
  AnyStreamQuery,
  Command,
  Event,
  InferItem,
  InferPayload,
  InferResult,
  Message,
  MessageKind,
  MessageMetadata,
  Query,
  StreamQuery,
} from './messages/message.ts';
export { MESSAGE_KINDS } from './messages/message.ts';
export { MessageBuilder } from './messages/message-builder.ts';
export type { MessageCatalog } from './messages/message-catalog.ts';
export { createMessageCatalog, serializeMessage } from './messages/message-catalog.ts';
export type { MetadataInit } from './messages/metadata.ts';
export { createMetadata, isIdempotencyKey, MAX_IDEMPOTENCY_KEY_LENGTH } from './messages/metadata.ts';
export type { Page, PageRequest, PaginatedQueryOptions, Pagination } from './messages/pagination.ts';
export { DEFAULT_MAX_PAGE_SIZE, definePaginatedQuery, pagination, toPage } from './messages/pagination.ts';
export type { StandardSchemaV1 } from './messages/standard-schema.ts';
export type { ValidateHookResult, ValidationIssueInput } from './messages/validation.ts';
// outbox
export type {
  InMemoryOutboxStore,
  InMemoryOutboxStoreOptions,
  InMemoryOutboxTransaction,
  InMemoryStoreTransaction,
  InMemoryTransactionHandle,
} from './outbox/in-memory-outbox-store.ts';
export { createInMemoryOutboxStore } from './outbox/in-memory-outbox-store.ts';
export { OutboxError } from './outbox/outbox-errors.ts';
export type {
  OutboxCircuitOptions,
  OutboxCircuitState,
  OutboxRelay,
  OutboxRelayHealth,
  OutboxRelayOptions,
  OutboxRetentionOptions,
  OutboxRunResult,
} from './outbox/outbox-relay.ts';
export { createOutboxRelay } from './outbox/outbox-relay.ts';
// projections
export type { DocumentReader } from './projections/document-reader.ts';
export { createDocumentReader } from './projections/document-reader.ts';
export type { InMemoryProjectionStore } from './projections/in-memory-projection-store.ts';
export { createInMemoryProjectionStore } from './projections/in-memory-projection-store.ts';
export type { InlineProjectionsOptions } from './projections/inline-projections.ts';
export { createInlineProjections } from './projections/inline-projections.ts';
export type {
  LiveItem,
  LiveQueryOptions,
  ProjectionFollower,
  ProjectionFollowerOptions,
} from './projections/live-query.ts';
export { createProjectionFollower, liveQuery } from './projections/live-query.ts';
export type {
  AnyProjection,
  BatchProjection,
  BatchProjectionDefinition,
  DocumentProjection,
  DocumentProjectionDefinition,
  EventTypeRef,
  PoisonPolicy,
  ProjectionBatchItem,
  ProjectionContext,
} from './projections/projection.ts';
export { defineDocumentProjection, defineProjection, POISON_POLICIES } from './projections/projection.ts';
export type {
  ConsistencyToken,
  ProjectionChange,
  ProjectionRunner,
  ProjectionRunnerOptions,
  ProjectionStatus,
} from './projections/projection-runner.ts';
export { consistencyToken, createProjectionRunner } from './projections/projection-runner.ts';
export type { ParkedEvent, PoisonReport, ProjectionCheckpoint } from './projections/projection-store.ts';
// query cache
export type {
  AnyQueryCachePolicy,
  CacheInvalidation,
  CacheInvalidationRule,
  QueryCache,
  QueryCacheOptions,
  QueryCachePolicy,
} from './query-cache/query-cache-behavior.ts';
export { createCacheInvalidation, queryCache } from './query-cache/query-cache-behavior.ts';
export type {
  CachedValue,
  InMemoryQueryCacheStore,
  InMemoryQueryCacheStoreOptions,
  QueryCacheStore,
} from './query-cache/query-cache-store.ts';
export { createInMemoryQueryCacheStore } from './query-cache/query-cache-store.ts';
// sagas (storage; the engine lives in @cqrs-ts/saga)
export type { InMemorySagaStore, InMemorySagaStoreOptions } from './saga/in-memory-saga-store.ts';
export { createInMemorySagaStore } from './saga/in-memory-saga-store.ts';
export { SagaConflictError } from './saga/saga-errors.ts';
// shared
export type { BackoffOptions } from './shared/backoff.ts';
export type { Heartbeat } from './shared/heartbeat.ts';
export { heartbeatLateness } from './shared/heartbeat.ts';
export type { Logger, LogLevel } from './shared/logger.ts';
export { noopLogger } from './shared/logger.ts';
export type {
  ConsumeDispositionContext,
  ConsumeTraceContext,
  DispatchTraceContext,
  OutboxAppendTraceContext,
  ProjectionBatchTraceContext,
  RelayPublishTraceContext,
  RelayTraceMessage,
  SagaStepTraceContext,
} from './shared/tracing.ts';
export { DIAGNOSTICS_CHANNELS, TRACING_CHANNELS } from './shared/tracing.ts';
// unit of work
export { IdempotencyConflictError, IdempotencyInFlightError } from './unit-of-work/idempotency.ts';
export type {
  InMemoryIdempotencyStore,
  InMemoryTransaction,
  InMemoryUnitOfWork,
  InMemoryUnitOfWorkOptions,
} from './unit-of-work/in-memory-unit-of-work.ts';
export {
  createInMemoryIdempotencyStore,
  createInMemoryUnitOfWork,
} from './unit-of-work/in-memory-unit-of-work.ts';
export type { UnitOfWork } from './unit-of-work/unit-of-work.ts';
export { outsideUnitOfWork } from './unit-of-work/unit-of-work.ts';
