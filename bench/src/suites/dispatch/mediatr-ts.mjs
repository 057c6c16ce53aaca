/**
 * mediatr-ts cases. Plain JavaScript: Node's type stripping cannot run decorators, so `@requestHandler(...)` and
 * `@pipelineBehavior()` are applied as plain function calls. mediatr-ts keeps its registrations in a module-level
 * registry; each case runs in its own process, so only the variant's own handler and behavior are registered.
 * The default resolver instantiates the handler (and each behavior) per `send`, as documented.
 */
import { Mediator, pipelineBehavior, RequestData, requestHandler } from 'mediatr-ts';

class PingRequest extends RequestData {
  constructor(payload) {
    super();
    this.payload = payload;
  }
}

class PingHandler {
  async handle(request) {
    return { ok: true, n: request.payload.n };
  }
}

/** The no-op pipeline behavior (the README's `PipelineBehavior` shape, without any work). */
class NoopBehavior {
  handle(_request, next) {
    return next();
  }
}

export async function setup(variant) {
  requestHandler(PingRequest)(PingHandler);
  if (variant === 'send-1-behavior') pipelineBehavior()(NoopBehavior);
  else if (variant !== 'create-and-send') throw new Error(`unknown mediatr-ts variant ${variant}`);
  const mediator = new Mediator();
  // The request is created in each operation, as applications do (as in every case, for every library).
  return { op: () => mediator.send(new PingRequest({ n: 1 })) };
}
