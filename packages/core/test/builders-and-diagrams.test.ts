import {
  applicationMap,
  chainClassDiagram,
  chainSequenceDiagram,
  createMediator,
  defineCommand,
  defineEvent,
  defineQuery,
  handle,
  handleChain,
  type MessageBuilder,
  on,
  ValidationError,
  validation,
} from '@cqrs-ts/core';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';

const PlaceOrder = defineCommand('orders.place-order', {
  schema: z.object({ sku: z.string().min(1), quantity: z.number().int().positive() }),
}).returns<{ orderId: string }>();
const GetOrder = defineQuery('orders.get-order').withPayload<{ id: string }>().returns<string>();
const OrderPlaced = defineEvent('orders.order-placed').withPayload<{ orderId: string }>();

describe('fluent builders', () => {
  it('builds typed, validated messages with metadata', async () => {
    const base = PlaceOrder.builder().set('sku', 'A-1');
    expectTypeOf(base).toEqualTypeOf<
      MessageBuilder<ReturnType<typeof PlaceOrder.create>, { sku: string; quantity: number }>
    >();
    const cmd = await base
      .with({ quantity: 2 })
      .correlate('c-1')
      .by('user-9')
      .tenant('acme')
      .attribute('v', '2')
      .causedBy('req-0')
      .build();
    expect(cmd.payload).toEqual({ sku: 'A-1', quantity: 2 });
    expect(cmd.metadata).toMatchObject({
      correlationId: 'c-1',
      requestedBy: 'user-9',
      tenantId: 'acme',
      causationId: 'req-0',
      attributes: { v: '2' },
    });
    expect(Object.isFrozen(cmd)).toBe(true);
    // builders are immutable: the template is unchanged
    await expect(base.build()).rejects.toBeInstanceOf(ValidationError);
    // @ts-expect-error wrong field type
    base.set('quantity', 'two');
    // @ts-expect-error unknown field
    base.set('colour', 'red');
  });

  it('reports every missing or invalid field on build', async () => {
    const error = await PlaceOrder.builder()
      .set('sku', '')
      .build()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).issues.map((i) => i.path.join('.')).sort()).toEqual([
      'quantity',
      'sku',
    ]);
    await expect(
      PlaceOrder.builder().with({ sku: 'a', quantity: 1 }).correlate('bad id\n').build(),
    ).rejects.toBeInstanceOf(ValidationError);
  });

  it('executes through a mediator with inferred results', async () => {
    const mediator = createMediator({
      behaviors: [validation()],
      handlers: [
        handle(PlaceOrder, (c) => ({ orderId: `o-${c.payload.sku}` })),
        handle(GetOrder, (q) => `order ${q.payload.id}`),
      ],
    });
    const placed = await PlaceOrder.builder().with({ sku: 'B', quantity: 1 }).executeWith(mediator);
    expectTypeOf(placed).toEqualTypeOf<{ orderId: string }>();
    expect(placed).toEqual({ orderId: 'o-B' });
    expect(await GetOrder.builder().set('id', '7').executeWith(mediator)).toBe('order 7');
    await expect(OrderPlaced.builder().set('orderId', 'x').executeWith(mediator)).resolves.toBeUndefined();
  });
});

/** Structural check of Mermaid text: known headers, balanced blocks, every edge endpoint declared. */
function checkMermaid(text: string): void {
  const lines = text.trimEnd().split('\n');
  const header = lines[0];
  expect(['sequenceDiagram', 'classDiagram', 'flowchart LR']).toContain(header);
  let depth = 0;
  const declared = new Set<string>();
  for (const raw of lines.slice(1)) {
    const line = raw.trim();
    expect(line).not.toMatch(/[\r\t]/);
    if (header === 'sequenceDiagram') {
      const participant = /^participant (\w+) as .+$/.exec(line);
      if (participant) declared.add(participant[1]!);
      else if (/^alt |^else|^opt /.test(line)) depth += line.startsWith('else') ? 0 : 1;
      else if (line === 'end') depth--;
      else {
        const msg = /^(\w+)(-->>|->>)(\w+): .+$/.exec(line);
        expect(msg, `unparsable line: ${line}`).not.toBeNull();
        expect(declared.has(msg![1]!) && declared.has(msg![3]!), line).toBe(true);
      }
      expect(depth).toBeGreaterThanOrEqual(0);
    } else if (header === 'classDiagram') {
      const cls = /^class (\w+)\["[^"]*"\]( \{)?$/.exec(line);
      if (cls) {
        declared.add(cls[1]!);
        if (cls[2]) depth++;
      } else if (line === '}') depth--;
      else if (/^<<\w+>> \w+$/.test(line) || /^\+\w+\(.*\)$/.test(line)) continue;
      else {
        const rel = /^(\w+) --> (\w+) : \w[\w ]*$/.exec(line);
        expect(rel, `unparsable line: ${line}`).not.toBeNull();
        expect(declared.has(rel![1]!) && declared.has(rel![2]!), line).toBe(true);
      }
    } else {
      const node = /^(\w+)(\(\["[^"]*"\]\)|\[\/"[^"]*"\/\]|\[\\"[^"]*"\\\]|\["[^"]*"\])$/.exec(line);
      if (node) declared.add(node[1]!);
      else if (/^classDef \w+ /.test(line)) continue;
      else {
        const edge = /^(\w+) (-->|-\. emits \.->) (\w+)$/.exec(line);
        expect(edge, `unparsable line: ${line}`).not.toBeNull();
        expect(declared.has(edge![1]!) && declared.has(edge![3]!), line).toBe(true);
      }
    }
  }
  expect(depth).toBe(0);
}

describe('Mermaid diagrams', () => {
  const Quote = defineQuery('shipping.quote').withPayload<{ country: string }>().returns<string>();
  const chainBinding = handleChain(
    Quote,
    [
      function domestic(q, _c, next) {
        return q.payload.country === 'FR' ? 'laposte' : next();
      },
      function europe(_q, _c, next) {
        return next();
      },
    ],
    {
      fallback: function manual() {
        return 'manual';
      },
    },
  );
  const mediator = createMediator({
    behaviors: [validation()],
    handlers: [
      chainBinding,
      handle(
        PlaceOrder,
        function placeOrder() {
          return { orderId: '1' };
        },
        { emits: [OrderPlaced] },
      ),
      on(OrderPlaced, function sendReceipt() {}),
      on(OrderPlaced, function updateStats() {}),
    ],
  });
  const chain = mediator.describe().find((h) => h.chain)!.chain!;

  it('draws a chain as a sequence diagram', () => {
    const text = chainSequenceDiagram(chain);
    expect(text).toBe(`sequenceDiagram
  participant C as Caller
  participant M as Mediator
  participant L1 as domestic
  participant L2 as europe
  participant F as manual (fallback)
  C->>M: shipping.quote
  M->>L1: handle
  alt domestic answers
    L1-->>M: result
  else passes
    L1->>L2: next()
    alt europe answers
      L2-->>M: result
    else passes
      L2->>F: next()
      F-->>M: result
    end
  end
  M-->>C: result or error
`);
    checkMermaid(text);
    checkMermaid(chainSequenceDiagram({ messageType: 'x', links: ['a'], fallback: undefined }));
  });

  it('draws a chain as a class diagram', () => {
    const text = chainClassDiagram(chain);
    expect(text).toBe(`classDiagram
  class Request["shipping.quote"]
  <<request>> Request
  class L1["domestic"] {
    +handle(message, context, next)
  }
  class L2["europe"] {
    +handle(message, context, next)
  }
  class F["manual"] {
    +handle(message, context)
  }
  <<fallback>> F
  Request --> L1 : handled by
  L1 --> L2 : next
  L2 --> F : fallback
`);
    checkMermaid(text);
  });

  it('maps the whole application: message → handler → events → event handlers', () => {
    const text = applicationMap(mediator.describe());
    expect(text).toBe(`flowchart LR
  m1[\\"shipping.quote"\\]
  h1["chain(domestic, europe)"]
  m1 --> h1
  m2[/"orders.place-order"/]
  h2["placeOrder"]
  m2 --> h2
  m3(["orders.order-placed"])
  h2 -. emits .-> m3
  h3["sendReceipt"]
  m3 --> h3
  h4["updateStats"]
  m3 --> h4
  classDef command fill:#e3f2fd,stroke:#1565c0
  classDef event fill:#fff3e0,stroke:#ef6c00
`);
    checkMermaid(text);
  });

  it('has a structural check that rejects broken diagrams', () => {
    expect(() => checkMermaid('sequenceDiagram\n  A->>B: x\n')).toThrow();
    expect(() => checkMermaid('sequenceDiagram\n  participant A as a\n  alt x\n')).toThrow();
    expect(() => checkMermaid('flowchart LR\n  a --> b\n')).toThrow();
    expect(() => checkMermaid('pie\n')).toThrow();
  });

  it('escapes hostile labels', () => {
    const text = chainClassDiagram({ messageType: 'a"b<c>', links: ['x"y'], fallback: undefined });
    expect(text).toContain('class Request["a#quot;b#lt;c#gt;"]');
    checkMermaid(text);
  });
});
