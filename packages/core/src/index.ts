/**
 * @cqrs-ts/core: messages, mediator, pipeline behaviors and errors.
 * @packageDocumentation
 */

export type { AuthorizationOptions, AuthorizationPolicy } from './behaviors/authorization-behavior.ts';
export { authorization } from './behaviors/authorization-behavior.ts';
export type { CorrelationOptions } from './behaviors/correlation-behavior.ts';
export { correlation } from './behaviors/correlation-behavior.ts';
export type { MapErrorsOptions } from './behaviors/error-mapping-behavior.ts';
export { mapErrors } from './behaviors/error-mapping-behavior.ts';
export type { Logger, LoggingOptions, LogLevel } from './behaviors/logging-behavior.ts';
export { logging, noopLogger, redactSecrets } from './behaviors/logging-behavior.ts';
export type { RetryOptions } from './behaviors/retry-behavior.ts';
export { backoffDelay, isRetryable, retry, sleep } from './behaviors/retry-behavior.ts';
export type { TimeoutOptions } from './behaviors/timeout-behavior.ts';
export { timeout } from './behaviors/timeout-behavior.ts';
export type { ValidationOptions } from './behaviors/validation-behavior.ts';
export { validation } from './behaviors/validation-behavior.ts';
// outbox, inbox, broker
export type {
  CloudEventAttributes,
  EnvelopeCompression,
  EnvelopeDecoder,
  EnvelopeDecoderOptions,
  PayloadSerializer,
} from './broker/envelope.ts';
export {
  assertEnvelope,
  CLOUDEVENTS_SPEC_VERSION,
  compressData,
  createEnvelopeDecoder,
  decompressData,
  EnvelopeError,
  eventAttributes,
  eventFromEnvelope,
  fromBindingHeaders,
  jsonPayloadSerializer,
  toBindingHeaders,
} from './broker/envelope.ts';
export type {
  BrokerHandler,
  DeliveredMessage,
  InMemoryBroker,
  InMemoryBrokerOptions,
} from './broker/in-memory-broker.ts';
export { createInMemoryBroker } from './broker/in-memory-broker.ts';
export type {
  ConsumerHandlerContext,
  Disposition,
  InboxGuard,
  IncomingMessage,
  KeyedLimiter,
  MessageProcessor,
  MessageProcessorOptions,
} from './broker/message-processor.ts';
export {
  consumerTransaction,
  createKeyedLimiter,
  createMessageProcessor,
} from './broker/message-processor.ts';
export type { AmbientContext, ContextInit } from './context/ambient-context.ts';
export { currentContext, runWithContext } from './context/ambient-context.ts';
export type { ExecutionContext, Principal } from './context/execution-context.ts';
export { EMPTY_EXECUTION_CONTEXT, hasFeature, hasRole } from './context/execution-context.ts';
export type { HeaderSource, TraceParent } from './context/headers.ts';
export {
  CORRELATION_HEADERS,
  extractContext,
  formatTraceparent,
  injectContext,
  isSafeId,
  parseTraceparent,
} from './context/headers.ts';
export { applicationMap, chainClassDiagram, chainSequenceDiagram, mermaidLabel } from './diagrams/mermaid.ts';
export type { CqrsErrorCode, ValidationIssue } from './errors/cqrs-error.ts';
export {
  AuthorizationError,
  CancelledError,
  ConfigurationError,
  CQRS_ERROR_CODES,
  CqrsError,
  DuplicateHandlerError,
  HandlerNotFoundError,
  isCqrsError,
  MissingHandlerError,
  ProcessingError,
  SerializationError,
  TimeoutError,
  UnknownMessageTypeError,
  ValidationError,
} from './errors/cqrs-error.ts';
export type { EventSource } from './events/aggregate-root.ts';
export { AggregateRoot, isEventSource } from './events/aggregate-root.ts';
export type { EventHandlerFailure } from './events/event-errors.ts';
export { EventDepthExceededError, EventDispatchError } from './events/event-errors.ts';
export type { InboxStore, ProcessOnceResult } from './inbox/inbox-store.ts';
export { processOnce } from './inbox/inbox-store.ts';
export { isUuid, uuidv7, uuidv7Time } from './internal/uuid.ts';
export type { Behavior, BehaviorInput, BehaviorTarget, Middleware, Next } from './mediator/behavior.ts';
export { createBehavior, defineBehavior, targetBehavior } from './mediator/behavior.ts';
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
export type {
  DispatchContext,
  DispatchOptions,
  EmittableEvent,
  HandlerDescriptor,
} from './mediator/dispatch-context.ts';
export { NEVER_ABORTED } from './mediator/dispatch-context.ts';
export type {
  BackoffOptions,
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
export { createMediator, PUBLISH_STRATEGIES } from './mediator/mediator.ts';
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
export { createMetadata } from './messages/metadata.ts';
export type { Page, PageRequest, PaginatedQueryOptions, Pagination } from './messages/pagination.ts';
export { DEFAULT_MAX_PAGE_SIZE, definePaginatedQuery, pagination, toPage } from './messages/pagination.ts';
export type { StandardSchemaV1 } from './messages/standard-schema.ts';
export type { ValidateHookResult } from './messages/validation.ts';
export type { InMemoryOutboxStore, InMemoryOutboxTransaction } from './outbox/in-memory-outbox-store.ts';
export { createInMemoryOutboxStore } from './outbox/in-memory-outbox-store.ts';
export type { MessagePublisher, PublisherCapabilities, PublishResult } from './outbox/message-publisher.ts';
export type { OutboxCompressionOptions, OutboxEncoder, OutboxEncoderOptions } from './outbox/outbox-codec.ts';
export {
  assertTableName,
  createOutboxEncoder,
  decodeOutboxRecord,
  outboxRecordFromRow,
  parseHeaders,
  TABLE_NAME_RE,
  toOutboxMessages,
} from './outbox/outbox-codec.ts';
export type { StorageFailureReason } from './outbox/outbox-errors.ts';
export {
  OutboxError,
  PayloadTooLargeError,
  STORAGE_FAILURE_REASONS,
  StorageError,
} from './outbox/outbox-errors.ts';
export type {
  ContentEncoding,
  OutboxMessage,
  OutboxRecord,
  OutboxRecordInput,
  OutboxStatus,
} from './outbox/outbox-record.ts';
export { CONTENT_ENCODINGS, OUTBOX_STATUSES } from './outbox/outbox-record.ts';
export type {
  OutboxRelay,
  OutboxRelayHealth,
  OutboxRelayOptions,
  OutboxRetentionOptions,
  OutboxRunResult,
  OutboxWakeUp,
} from './outbox/outbox-relay.ts';
export { createOutboxRelay } from './outbox/outbox-relay.ts';
export type {
  ClaimBatchRequest,
  LockedBatchOutcome,
  LockedBatchRequest,
  OutboxFailure,
  OutboxPurgeRequest,
  OutboxStats,
  OutboxStore,
} from './outbox/outbox-store.ts';
// sagas (storage port; the engine lives in @cqrs-ts/saga)
export type { InMemorySagaStore, InMemorySagaStoreOptions } from './saga/in-memory-saga-store.ts';
export { createInMemorySagaStore } from './saga/in-memory-saga-store.ts';
export { SagaConflictError } from './saga/saga-errors.ts';
export type {
  SagaAcquire,
  SagaCommit,
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
export type { PositionalQuery } from './saga/sql-saga-rows.ts';
export {
  checkSagaQuery,
  checkSagaWrite,
  mapSagaRows,
  SAGA_DEFAULT_MAX_TEXT_BYTES,
  SAGA_MAX_KEY_LENGTH,
  SAGA_STATUSES,
  sagaListQuery,
  sagaLogEntryFromRow,
  sagaRecordFromRow,
  sagaRecoverableQuery,
} from './saga/sql-saga-rows.ts';
