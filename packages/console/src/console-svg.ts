import type { HandlerInfo } from '@cqrs-ts/core';

/**
 * Server-side SVG for the console's diagrams: the application map, a saga instance's sequence diagram and the
 * outbox throughput chart. Drawn here rather than by Mermaid in the browser so the page needs no script from
 * elsewhere, no `eval` and no inline styles (a strict Content-Security-Policy), and every label is escaped in
 * one place. The Mermaid text of the same diagrams is served too (`/api/map` carries it) for pasting elsewhere.
 * @module
 */

/** Escapes text for SVG/HTML text and attribute values. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) =>
    c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&#39;',
  );
}

const FONT = 'font-family="system-ui, sans-serif" font-size="12"';
const CHAR_W = 7;
const NODE_H = 28;
const GAP_Y = 14;
const GAP_X = 70;

const clip = (text: string, max = 48) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

interface MapNode {
  readonly id: string;
  readonly label: string;
  readonly kind: 'command' | 'query' | 'stream' | 'event' | 'handler';
  readonly column: number;
  x: number;
  y: number;
  w: number;
}

const FILL: Record<MapNode['kind'], [string, string]> = {
  command: ['#e3f2fd', '#1565c0'],
  query: ['#e8f5e9', '#2e7d32'],
  stream: ['#e8f5e9', '#2e7d32'],
  event: ['#fff3e0', '#ef6c00'],
  handler: ['#f5f5f5', '#616161'],
};

/**
 * The application map as SVG: requests (commands, queries, streams) → their handlers → the events they declare
 * in `emits` → the events' handlers, in four columns. Built from `mediator.describe()`.
 */
export function applicationMapSvg(handlers: readonly HandlerInfo[]): string {
  const nodes = new Map<string, MapNode>();
  const edges: [string, string, boolean][] = [];
  const node = (id: string, label: string, kind: MapNode['kind'], column: number) => {
    let n = nodes.get(id);
    if (n === undefined) {
      n = { id, label: clip(label), kind, column, x: 0, y: 0, w: 0 };
      nodes.set(id, n);
    }
    return n;
  };
  const requests = handlers.filter((h) => h.mode !== 'event');
  const eventHandlers = handlers.filter((h) => h.mode === 'event');
  requests.forEach((h, i) => {
    const m = node(
      `m:${h.messageType}`,
      h.messageType,
      h.kind === 'command' ? 'command' : h.mode === 'stream' ? 'stream' : 'query',
      0,
    );
    const hn = node(`h:${i}`, h.handler, 'handler', 1);
    edges.push([m.id, hn.id, false]);
    for (const e of h.emits) edges.push([hn.id, node(`m:${e}`, e, 'event', 2).id, true]);
  });
  eventHandlers.forEach((h, i) => {
    const m = node(`m:${h.messageType}`, h.messageType, 'event', 2);
    const hn = node(`e:${i}`, h.handler, 'handler', 3);
    edges.push([m.id, hn.id, false]);
    for (const e of h.emits) edges.push([hn.id, node(`m:${e}`, e, 'event', 2).id, true]);
  });
  const columns: MapNode[][] = [[], [], [], []];
  for (const n of nodes.values()) {
    n.w = Math.max(60, n.label.length * CHAR_W + 20);
    columns[n.column]!.push(n);
  }
  let x = 10;
  let height = 40;
  for (const column of columns) {
    if (column.length === 0) continue;
    const width = Math.max(...column.map((n) => n.w));
    column.forEach((n, i) => {
      n.x = x;
      n.y = 10 + i * (NODE_H + GAP_Y);
    });
    height = Math.max(height, 10 + column.length * (NODE_H + GAP_Y));
    x += width + GAP_X;
  }
  const width = Math.max(200, x - GAP_X + 10);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="diagram" role="img" aria-label="application map" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
  ];
  for (const [from, to, emits] of edges) {
    const a = nodes.get(from)!;
    const b = nodes.get(to)!;
    const x1 = a.x + a.w;
    const y1 = a.y + NODE_H / 2;
    const x2 = b.column > a.column ? b.x : b.x + b.w;
    const y2 = b.y + NODE_H / 2;
    const mid = (x1 + x2) / 2;
    out.push(
      `<path d="M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}" fill="none" stroke="#555" stroke-width="1.2"${emits ? ' stroke-dasharray="5,4"' : ''} marker-end="url(#arrow)"/>`,
    );
  }
  for (const n of nodes.values()) {
    const [fill, stroke] = FILL[n.kind];
    const rx = n.kind === 'event' ? 14 : n.kind === 'handler' ? 3 : 8;
    out.push(
      `<g class="node ${n.kind}"><rect x="${n.x}" y="${n.y}" width="${n.w}" height="${NODE_H}" rx="${rx}" fill="${fill}" stroke="${stroke}"/>`,
      `<text x="${n.x + n.w / 2}" y="${n.y + NODE_H / 2 + 4}" text-anchor="middle" ${FONT} fill="#222">${escapeXml(n.label)}</text></g>`,
    );
  }
  if (nodes.size === 0) out.push(`<text x="10" y="24" ${FONT} fill="#666">no handlers registered</text>`);
  out.push('</svg>');
  return out.join('\n');
}

/** One arrow of a {@link sequenceSvg}: from participant `from` to `to`; `reply` draws it dashed. */
export interface SequenceArrow {
  readonly from: number;
  readonly to: number;
  readonly label: string;
  readonly reply?: boolean;
  readonly failed?: boolean;
}

/** A sequence diagram as SVG: participants in columns, arrows top to bottom. */
export function sequenceSvg(participants: readonly string[], arrows: readonly SequenceArrow[]): string {
  const labels = participants.map((p) => clip(p, 32));
  const colW = Math.max(120, ...labels.map((l) => l.length * CHAR_W + 24));
  const width = 20 + labels.length * colW;
  const rowH = 30;
  const top = 44;
  const height = top + arrows.length * rowH + 20;
  const cx = (i: number) => 10 + i * colW + colW / 2;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="diagram" role="img" aria-label="sequence diagram" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    '<defs><marker id="sq" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#444"/></marker></defs>',
  ];
  labels.forEach((label, i) => {
    const w = colW - 20;
    out.push(
      `<rect x="${cx(i) - w / 2}" y="6" width="${w}" height="26" rx="4" fill="#eef2f7" stroke="#5c6b7a"/>`,
      `<text x="${cx(i)}" y="23" text-anchor="middle" ${FONT} fill="#222">${escapeXml(label)}</text>`,
      `<line x1="${cx(i)}" y1="32" x2="${cx(i)}" y2="${height - 6}" stroke="#aab" stroke-dasharray="3,3"/>`,
    );
  });
  arrows.forEach((a, i) => {
    const y = top + i * rowH + 12;
    const x1 = cx(a.from);
    const x2 = cx(a.to);
    const color = a.failed === true ? '#c62828' : '#444';
    out.push(
      `<line x1="${x1}" y1="${y}" x2="${x2}" y2="${y}" stroke="${color}" stroke-width="1.3"${a.reply === true ? ' stroke-dasharray="5,4"' : ''} marker-end="url(#sq)"/>`,
      `<text x="${(x1 + x2) / 2}" y="${y - 5}" text-anchor="middle" ${FONT} fill="${color}">${escapeXml(clip(a.label, 40))}</text>`,
    );
  });
  out.push('</svg>');
  return out.join('\n');
}

/** A small bar chart as SVG (e.g. records published per minute); `labels` name the bars (oldest first). */
export function barChartSvg(values: readonly number[], options: { readonly unit: string }): string {
  const width = 320;
  const height = 110;
  const max = Math.max(1, ...values);
  const barW = values.length === 0 ? 0 : (width - 40) / values.length;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" aria-label="${escapeXml(options.unit)}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<line x1="34" y1="${height - 20}" x2="${width - 4}" y2="${height - 20}" stroke="#999"/>`,
    `<text x="30" y="16" text-anchor="end" ${FONT} fill="#555">${max}</text>`,
    `<text x="30" y="${height - 20}" text-anchor="end" ${FONT} fill="#555">0</text>`,
    `<text x="${width - 4}" y="${height - 4}" text-anchor="end" ${FONT} fill="#555">${escapeXml(options.unit)}</text>`,
  ];
  values.forEach((v, i) => {
    const h = Math.round(((height - 34) * v) / max);
    out.push(
      `<rect class="bar" x="${(36 + i * barW).toFixed(1)}" y="${height - 20 - h}" width="${Math.max(1, barW - 3).toFixed(1)}" height="${h}" fill="#1976d2"><title>${v}</title></rect>`,
    );
  });
  out.push('</svg>');
  return out.join('\n');
}
