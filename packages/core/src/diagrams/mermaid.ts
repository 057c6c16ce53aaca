import type { ChainInfo } from '../mediator/chain.ts';
import type { HandlerInfo } from '../mediator/mediator.ts';

/**
 * Mermaid text for diagrams of chains and of a whole application. Labels are quoted and escaped, so message
 * types and handler names with dots, dashes or quotes are safe.
 */

/** Escapes a label for use inside double quotes in Mermaid. */
export function mermaidLabel(text: string): string {
  return text
    .replace(/"/g, '#quot;')
    .replace(/[<>]/g, (c) => (c === '<' ? '#lt;' : '#gt;'))
    .replace(/[\r\n]+/g, ' ');
}

function participantIds(chain: ChainInfo): string[] {
  return chain.links.map((_, i) => `L${i + 1}`);
}

/**
 * A sequence diagram of a chain: the request enters the first link; each link answers (`alt`) or passes on
 * (`else`) to the next, ending with the fallback or a `NoHandlerAnsweredError`.
 */
export function chainSequenceDiagram(chain: ChainInfo): string {
  const ids = participantIds(chain);
  const lines = ['sequenceDiagram', '  participant C as Caller', '  participant M as Mediator'];
  chain.links.forEach((name, i) => {
    lines.push(`  participant ${ids[i]} as ${mermaidLabel(name)}`);
  });
  if (chain.fallback) lines.push(`  participant F as ${mermaidLabel(chain.fallback)} (fallback)`);
  lines.push(`  C->>M: ${mermaidLabel(chain.messageType)}`);
  if (ids.length > 0) lines.push(`  M->>${ids[0]}: handle`);
  let indent = '  ';
  ids.forEach((id, i) => {
    lines.push(`${indent}alt ${mermaidLabel(chain.links[i]!)} answers`);
    lines.push(`${indent}  ${id}-->>M: result`);
    lines.push(`${indent}else passes`);
    if (i + 1 < ids.length) lines.push(`${indent}  ${id}->>${ids[i + 1]}: next()`);
    else if (chain.fallback) {
      lines.push(`${indent}  ${id}->>F: next()`);
      lines.push(`${indent}  F-->>M: result`);
    } else lines.push(`${indent}  ${id}-->>M: NoHandlerAnsweredError`);
    indent += '  ';
  });
  if (ids.length === 0) {
    if (chain.fallback) lines.push('  M->>F: handle', '  F-->>M: result');
    else lines.push('  M-->>M: NoHandlerAnsweredError');
  }
  for (let i = ids.length - 1; i >= 0; i--) {
    indent = indent.slice(2);
    lines.push(`${indent}end`);
  }
  lines.push('  M-->>C: result or error');
  return `${lines.join('\n')}\n`;
}

/** A class diagram of a chain: the request, its links in order and the fallback. */
export function chainClassDiagram(chain: ChainInfo): string {
  const ids = participantIds(chain);
  const lines = [
    'classDiagram',
    `  class Request["${mermaidLabel(chain.messageType)}"]`,
    '  <<request>> Request',
  ];
  chain.links.forEach((name, i) => {
    lines.push(`  class ${ids[i]}["${mermaidLabel(name)}"] {`, '    +handle(message, context, next)', '  }');
  });
  if (chain.fallback)
    lines.push(
      `  class F["${mermaidLabel(chain.fallback)}"] {`,
      '    +handle(message, context)',
      '  }',
      '  <<fallback>> F',
    );
  if (ids.length > 0) lines.push(`  Request --> ${ids[0]} : handled by`);
  for (let i = 0; i + 1 < ids.length; i++) lines.push(`  ${ids[i]} --> ${ids[i + 1]} : next`);
  if (chain.fallback && ids.length > 0) lines.push(`  ${ids[ids.length - 1]} --> F : fallback`);
  return `${lines.join('\n')}\n`;
}

/**
 * A flowchart of the whole application: each command, query or stream → its handler → the events it declares
 * (`emits`) → their handlers. Build it from `mediator.describe()`.
 */
export function applicationMap(handlers: readonly HandlerInfo[]): string {
  const lines = ['flowchart LR'];
  const messageIds = new Map<string, string>();
  const messageId = (type: string, kind: string) => {
    let id = messageIds.get(type);
    if (id === undefined) {
      id = `m${messageIds.size + 1}`;
      messageIds.set(type, id);
      const label = mermaidLabel(type);
      if (kind === 'event') lines.push(`  ${id}(["${label}"])`);
      else if (kind === 'command') lines.push(`  ${id}[/"${label}"/]`);
      else lines.push(`  ${id}[\\"${label}"\\]`);
    }
    return id;
  };
  const sorted = [...handlers].sort((a, b) => (a.mode === 'event' ? 1 : 0) - (b.mode === 'event' ? 1 : 0));
  sorted.forEach((h, i) => {
    const hid = `h${i + 1}`;
    const from = messageId(h.messageType, h.kind);
    lines.push(`  ${hid}["${mermaidLabel(h.handler)}"]`);
    lines.push(`  ${from} --> ${hid}`);
    for (const event of h.emits) lines.push(`  ${hid} -. emits .-> ${messageId(event, 'event')}`);
  });
  lines.push('  classDef command fill:#e3f2fd,stroke:#1565c0');
  lines.push('  classDef event fill:#fff3e0,stroke:#ef6c00');
  return `${lines.join('\n')}\n`;
}
