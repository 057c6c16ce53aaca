/**
 * OpenTelemetry semantic-convention names this package uses, copied (not imported: the messaging conventions are
 * incubating) from `@opentelemetry/semantic-conventions` 1.45.0, as its README advises. Attribute names
 * (`messaging.system`, `messaging.operation.name`, `messaging.operation.type`, `messaging.destination.name`,
 * `messaging.message.id`, `messaging.message.conversation_id`, `messaging.consumer.group.name`,
 * `messaging.batch.message_count`, `error.type`, and the `cqrs.*` names where the conventions have none) are
 * written as literal keys where spans are made: an object literal with computed keys is slower to build.
 * @internal
 * @module
 */

/** The semantic-conventions release the `messaging.*` names below were copied from. */
export const SEMCONV_VERSION = '1.45.0';

export const METRIC_MESSAGING_CLIENT_SENT_MESSAGES = 'messaging.client.sent.messages';
export const METRIC_MESSAGING_CLIENT_CONSUMED_MESSAGES = 'messaging.client.consumed.messages';
export const METRIC_MESSAGING_CLIENT_OPERATION_DURATION = 'messaging.client.operation.duration';
export const METRIC_MESSAGING_PROCESS_DURATION = 'messaging.process.duration';
