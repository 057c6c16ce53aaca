import {
  CancelledError,
  ConfigurationError,
  createMediator,
  currentContext,
  type DispatchContext,
  DuplicateHandlerError,
  defineCommand,
  defineEvent,
  defineQuery,
  HandlerNotFoundError,
  type HandlerResolver,
  handle,
  isCqrsError,
  MissingHandlerError,
} from '@cqrs-ts/core';
import { describe, expect, it } from 'vitest';

const CreateUser = defineCommand('users.create').withPayload<{ name: string }>().returns<{ id: string }>();
const GetUser = defineQuery('users.get')
  .withPayload<{ id: string }>()
  .returns<{ id: string; name: string } | null>();
const UserCreated = defineEvent('users.created').withPayload<{ id: string }>();

describe('mediator', () => {
  it('sends commands and queries to their handlers and returns their results', async () => {
    const users = new Map<string, string>();
    const mediator = createMediator({
      handlers: [
        handle(CreateUser, async (cmd) => {
          const id = `u${users.size + 1}`;
          users.set(id, cmd.payload.name);
          return { id };
        }),
        handle(GetUser, (q) => {
          const name = users.get(q.payload.id);
          return name === undefined ? null : { id: q.payload.id, name };
        }),
      ],
    });
    const { id } = await mediator.send(CreateUser.create({ name: 'Ada' }));
    expect(id).toBe('u1');
    expect(await mediator.query(GetUser.create({ id }))).toEqual({ id: 'u1', name: 'Ada' });
    expect(await mediator.query(GetUser.create({ id: 'nope' }))).toBeNull();
  });

  it('reports duplicate handlers when built, not at the first call', () => {
    const build = () =>
      createMediator({
        handlers: [handle(CreateUser, () => ({ id: '1' })), handle(CreateUser, () => ({ id: '2' }))],
      });
    expect(build).toThrow(DuplicateHandlerError);
    expect(build).toThrow(/users\.create/);
  });

  it('allows an explicit override of an earlier handler', async () => {
    const mediator = createMediator({
      handlers: [
        handle(CreateUser, () => ({ id: '1' })),
        handle(CreateUser, () => ({ id: '2' }), { override: true }),
      ],
    });
    expect(await mediator.send(CreateUser.create({ name: 'x' }))).toEqual({ id: '2' });
  });

  it('reports declared messages without a handler when built', () => {
    expect(() =>
      createMediator({
        messages: [CreateUser, GetUser, UserCreated],
        handlers: [handle(CreateUser, () => ({ id: '1' }))],
      }),
    ).toThrow(MissingHandlerError);
    try {
      createMediator({ messages: [CreateUser, GetUser], handlers: [] });
    } catch (error) {
      expect((error as MissingHandlerError).messageTypes).toEqual(['users.create', 'users.get']);
    }
  });

  it('rejects bad registrations with a configuration error', () => {
    expect(() => handle(UserCreated as never, (() => undefined) as never)).toThrow(ConfigurationError);
    expect(() => handle(CreateUser, 42 as never)).toThrow(ConfigurationError);
    expect(() => handle({} as never, (() => undefined) as never)).toThrow(ConfigurationError);
    expect(() => handle(CreateUser, () => ({ id: '' }), { timeout: -1 })).toThrow(/timeout/);
    expect(() => handle(CreateUser, () => ({ id: '' }), { retries: -1 })).toThrow(/retries/);
    expect(() => createMediator({ handlers: [{} as never] })).toThrow(ConfigurationError);
    expect(() => createMediator({ behaviors: [42 as never] })).toThrow(ConfigurationError);
    expect(() => createMediator({ resolver: {} as never })).toThrow(ConfigurationError);
  });

  it('keeps mediators isolated: no global registry', async () => {
    const a = createMediator({ handlers: [handle(CreateUser, () => ({ id: 'a' }))] });
    const b = createMediator({ handlers: [handle(GetUser, () => null)] });
    expect(a.has('users.create')).toBe(true);
    expect(b.has('users.create')).toBe(false);
    await expect(b.send(CreateUser.create({ name: 'x' }))).rejects.toBeInstanceOf(HandlerNotFoundError);
    await expect(a.query(GetUser.create({ id: '1' }))).rejects.toBeInstanceOf(HandlerNotFoundError);
  });

  it('rejects wrong kinds and non-messages with typed errors (never a sync throw)', async () => {
    const mediator = createMediator({
      handlers: [handle(CreateUser, () => ({ id: '1' })), handle(GetUser, () => null)],
    });
    await expect(mediator.send(GetUser.create({ id: '1' }) as never)).rejects.toMatchObject({
      code: 'CQRS_WRONG_MESSAGE_KIND',
    });
    await expect(mediator.query(CreateUser.create({ name: 'x' }) as never)).rejects.toMatchObject({
      code: 'CQRS_WRONG_MESSAGE_KIND',
    });
    await expect(mediator.send(UserCreated.create({ id: '1' }) as never)).rejects.toMatchObject({
      message: expect.stringContaining('publish()'),
    });
    for (const bad of [undefined, null, 42, 'users.create', {}, { kind: 'command' }]) {
      await expect(mediator.send(bad as never)).rejects.toSatisfy(
        (e) => isCqrsError(e, 'CQRS_INVALID_MESSAGE') || isCqrsError(e, 'CQRS_HANDLER_NOT_FOUND'),
      );
    }
    // a forged message of the right kind with a type registered for another kind
    await expect(
      mediator.send({ ...GetUser.create({ id: '1' }), kind: 'command' } as never),
    ).rejects.toBeInstanceOf(HandlerNotFoundError);
  });

  it('passes the handler error to the caller unchanged, also for sync throws', async () => {
    class DomainError extends Error {}
    const boom = new DomainError('boom');
    const mediator = createMediator({
      handlers: [
        handle(CreateUser, () => {
          throw boom;
        }),
        handle(GetUser, async () => {
          throw boom;
        }),
      ],
    });
    const p = mediator.send(CreateUser.create({ name: 'x' }));
    expect(p).toBeInstanceOf(Promise);
    await expect(p).rejects.toBe(boom);
    await expect(mediator.query(GetUser.create({ id: '1' }))).rejects.toBe(boom);
  });

  it('creates class handlers per dispatch through the resolver', async () => {
    const created: object[] = [];
    class CreateUserHandler {
      readonly prefix: string;
      constructor(prefix: string) {
        this.prefix = prefix;
        created.push(this);
      }
      handle(cmd: ReturnType<typeof CreateUser.create>) {
        return { id: `${this.prefix}-${cmd.payload.name}` };
      }
    }
    const seen: DispatchContext[] = [];
    const resolver: HandlerResolver = {
      resolve(token, context) {
        seen.push(context);
        return new (token as unknown as new (p: string) => never)('x');
      },
    };
    const mediator = createMediator({ handlers: [handle(CreateUser, CreateUserHandler)], resolver });
    expect(await mediator.send(CreateUser.create({ name: 'a' }))).toEqual({ id: 'x-a' });
    expect(await mediator.send(CreateUser.create({ name: 'b' }))).toEqual({ id: 'x-b' });
    expect(created).toHaveLength(2);
    expect(created[0]).not.toBe(created[1]);
    expect(seen[0]!.message.type).toBe('users.create');
    const defaults = createMediator({
      handlers: [
        handle(
          GetUser,
          class {
            handle() {
              return null;
            }
          },
        ),
      ],
    });
    expect(await defaults.query(GetUser.create({ id: '1' }))).toBeNull();
  });

  it('hands the execution context to the handler, explicit or ambient', async () => {
    const seen: unknown[] = [];
    const mediator = createMediator({
      handlers: [
        handle(GetUser, (_q, ctx) => {
          seen.push(ctx.execution);
          return null;
        }),
      ],
    });
    const context = {
      user: { id: 'u1', roles: ['admin'] },
      tenantId: 't1',
      source: 'http',
      clientIp: '127.0.0.1',
      featureFlags: ['beta'],
      properties: { a: 1 },
    };
    await mediator.query(GetUser.create({ id: '1' }), { context });
    await mediator.query(GetUser.create({ id: '1' }));
    expect(seen[0]).toBe(context);
    expect(seen[1]).toEqual({});
    expect(currentContext()).toBeUndefined();
  });

  it('rejects at once when the caller signal is already aborted, and hands the signal to the handler', async () => {
    let received: AbortSignal | undefined;
    const mediator = createMediator({
      handlers: [
        handle(GetUser, (_q, ctx) => {
          received = ctx.signal;
          return null;
        }),
      ],
    });
    const controller = new AbortController();
    await mediator.query(GetUser.create({ id: '1' }), { signal: controller.signal });
    expect(received).toBe(controller.signal);
    controller.abort(new Error('stop'));
    await expect(
      mediator.query(GetUser.create({ id: '1' }), { signal: controller.signal }),
    ).rejects.toBeInstanceOf(CancelledError);
  });

  it('describes handlers and refuses work after disposal', async () => {
    const mediator = createMediator({
      handlers: [
        handle(
          CreateUser,
          function createUser() {
            return { id: '1' };
          },
          { description: 'creates a user', tags: ['users'] },
        ),
      ],
      behaviors: [(m, c, next) => next(m, c)],
    });
    expect(mediator.describe()).toEqual([
      {
        messageType: 'users.create',
        kind: 'command',
        handler: 'createUser',
        behaviors: [expect.any(String)],
        policies: [],
        tags: ['users'],
        description: 'creates a user',
        mode: 'request',
        emits: [],
        chain: undefined,
      },
    ]);
    await mediator[Symbol.asyncDispose]();
    await expect(mediator.send(CreateUser.create({ name: 'x' }))).rejects.toMatchObject({
      code: 'CQRS_CONFIGURATION',
    });
  });
});
