/**
 * OpenTelemetry semantic-convention names this package uses, copied (not imported: the messaging conventions are
 * incubating) from `@opentelemetry/semantic-conventions` 1.45.0, as its README advises; plus `cqrs.*` names where
 * the conventions have none. @internal
 * @module
 */

/** The semantic-conventions release the `messaging.*` names below were copied from. */
export const SEMCONV_VERSION = '1.45.0';

export const ATTR_ERROR_TYPE = 'error.type';
export const ATTR_MESSAGING_SYSTEM = 'messaging.system';
export const ATTR_MESSAGING_OPERATION_NAME = 'messaging.operation.name';
export const ATTR_MESSAGING_OPERATION_TYPE = 'messaging.operation.type';
export const ATTR_MESSAGING_DESTINATION_NAME = 'messaging.destination.name';
export const ATTR_MESSAGING_MESSAGE_ID = 'messaging.message.id';
export const ATTR_MESSAGING_MESSAGE_CONVERSATION_ID = 'messaging.message.conversation_id';
export const ATTR_MESSAGING_CONSUMER_GROUP_NAME = 'messaging.consumer.group.name';
export const ATTR_MESSAGING_BATCH_MESSAGE_COUNT = 'messaging.batch.message_count';

export const METRIC_MESSAGING_CLIENT_SENT_MESSAGES = 'messaging.client.sent.messages';
export const METRIC_MESSAGING_CLIENT_CONSUMED_MESSAGES = 'messaging.client.consumed.messages';
export const METRIC_MESSAGING_CLIENT_OPERATION_DURATION = 'messaging.client.operation.duration';
export const METRIC_MESSAGING_PROCESS_DURATION = 'messaging.process.duration';

export const ATTR_CQRS_MESSAGE_TYPE = 'cqrs.message.type';
export const ATTR_CQRS_MESSAGE_KIND = 'cqrs.message.kind';
export const ATTR_CQRS_HANDLER = 'cqrs.handler';
export const ATTR_CQRS_REQUEST_ID = 'cqrs.request_id';
export const ATTR_CQRS_DELIVERY_ATTEMPT = 'cqrs.delivery_attempt';
export const ATTR_CQRS_DISPOSITION = 'cqrs.disposition';
export const ATTR_CQRS_RELAY_ID = 'cqrs.relay.id';
export const ATTR_CQRS_RELAY = 'cqrs.relay';
export const ATTR_CQRS_SAGA_NAME = 'cqrs.saga.name';
export const ATTR_CQRS_SAGA_ID = 'cqrs.saga.id';
export const ATTR_CQRS_SAGA_STEP = 'cqrs.saga.step';
export const ATTR_CQRS_SAGA_ACTION = 'cqrs.saga.action';
export const ATTR_CQRS_SAGA_FALLBACK = 'cqrs.saga.fallback';
export const ATTR_CQRS_PROJECTION = 'cqrs.projection';
export const ATTR_CQRS_OUTCOME = 'cqrs.outcome';
