import { CqrsError } from '../errors/cqrs-error.ts';
import type { AnyRequestDefinition, InferMessage } from '../messages/define-message.ts';
import type { AnyMessage, InferResult } from '../messages/message.ts';
import type { DispatchContext } from './dispatch-context.ts';
import type { HandlerBinding, HandlerOptions } from './handler.ts';
import { handle } from './handler.ts';

/** No link of a chain answered and no fallback is bound. */
export class NoHandlerAnsweredError extends CqrsError {
  readonly messageType: string;
  readonly links: readonly string[];
  constructor(messageType: string, links: readonly string[]) {
    super(
      'CQRS_NO_HANDLER_ANSWERED',
      `No handler of the chain for ${messageType} answered (tried ${links.join(' → ') || 'none'})`,
    );
    this.name = 'NoHandlerAnsweredError';
    this.messageType = messageType;
    this.links = links;
  }
}

/** One link: answer by returning a result, or pass the message on with `next()`. */
export type ChainLinkFunction<TMessage extends AnyMessage, TResult> = (
  message: TMessage,
  context: DispatchContext,
  next: () => Promise<TResult>,
) => TResult | Promise<TResult>;

/** A link as an object, e.g. an instance with dependencies. */
export interface ChainLinkObject<TMessage extends AnyMessage, TResult> {
  readonly name?: string;
  handle(
    message: TMessage,
    context: DispatchContext,
    next: () => Promise<TResult>,
  ): TResult | Promise<TResult>;
}

export type ChainLink<TMessage extends AnyMessage, TResult> =
  | ChainLinkFunction<TMessage, TResult>
  | ChainLinkObject<TMessage, TResult>;

/** Options of {@link handleChain}. */
export interface ChainOptions<TMessage extends AnyMessage, TResult> extends HandlerOptions<TMessage> {
  /** Answers when no link does. Without it, the dispatch fails with {@link NoHandlerAnsweredError}. */
  readonly fallback?: (message: TMessage, context: DispatchContext) => TResult | Promise<TResult>;
}

/** Describes a bound chain, for diagrams. */
export interface ChainInfo {
  readonly messageType: string;
  readonly links: readonly string[];
  readonly fallback: string | undefined;
}

const chains = new WeakMap<object, ChainInfo>();

function linkName(link: unknown, index: number): string {
  if (typeof link === 'function') return link.name || `link${index + 1}`;
  const named = link as { name?: unknown; constructor?: { name?: string } };
  if (typeof named.name === 'string' && named.name) return named.name;
  const ctor = named.constructor?.name;
  return ctor && ctor !== 'Object' ? ctor : `link${index + 1}`;
}

/**
 * Binds several handlers to one request, tried in order: each answers or calls `next()` to pass. Events recorded
 * by every link that ran (the answering one included) are dispatched once, after success.
 */
export function handleChain<TDefinition extends AnyRequestDefinition>(
  definition: TDefinition,
  links: readonly ChainLink<InferMessage<TDefinition>, InferResult<InferMessage<TDefinition>>>[],
  options: ChainOptions<InferMessage<TDefinition>, InferResult<InferMessage<TDefinition>>> = {},
): HandlerBinding {
  type TMessage = InferMessage<TDefinition>;
  type TResult = InferResult<TMessage>;
  const names = links.map(linkName);
  const calls = links.map((link, i) => {
    if (typeof link === 'function') return link;
    if (typeof link?.handle === 'function')
      return link.handle.bind(link) as ChainLinkFunction<TMessage, TResult>;
    throw new CqrsError(
      'CQRS_CONFIGURATION',
      `${definition.type}: chain link ${i + 1} is neither a function nor has handle()`,
    );
  });
  const { fallback, ...handlerOptions } = options;
  const run = (index: number, message: TMessage, context: DispatchContext): Promise<TResult> => {
    if (index < calls.length) {
      try {
        return Promise.resolve(calls[index]!(message, context, () => run(index + 1, message, context)));
      } catch (error) {
        return Promise.reject(error);
      }
    }
    if (fallback) return Promise.resolve().then(() => fallback(message, context));
    return Promise.reject(new NoHandlerAnsweredError(message.type, names));
  };
  const chainHandler = (message: TMessage, context: DispatchContext) => run(0, message, context);
  Object.defineProperty(chainHandler, 'name', { value: `chain(${names.join(', ')})` });
  chains.set(chainHandler, {
    messageType: definition.type,
    links: names,
    fallback: fallback ? fallback.name || 'fallback' : undefined,
  });
  return handle(definition, chainHandler as never, handlerOptions as never);
}

/** The chain behind a binding, if it was made by {@link handleChain}. */
export function chainOf(binding: HandlerBinding): ChainInfo | undefined {
  return chains.get(binding.implementation as object);
}
