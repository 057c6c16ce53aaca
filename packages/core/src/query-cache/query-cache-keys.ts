/** Canonical JSON: object keys sorted, so two equal payloads give one text. */
export function canonical(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    const text = JSON.stringify(value);
    return text === undefined ? 'null' : text;
  }
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  const keys = Object.keys(value);
  // Fast path: keys already in order and every value a primitive: JSON.stringify gives the canonical text.
  let flat = true;
  for (let i = 0; i < keys.length; i++) {
    const v = (value as Record<string, unknown>)[keys[i]!];
    if ((v !== null && typeof v === 'object') || (i > 0 && keys[i - 1]! > keys[i]!)) {
      flat = false;
      break;
    }
  }
  if (flat) return JSON.stringify(value);
  keys.sort();
  let out = '{';
  for (const k of keys) {
    const v = (value as Record<string, unknown>)[k];
    if (v === undefined || typeof v === 'function') continue;
    out += `${out.length > 1 ? ',' : ''}${JSON.stringify(k)}:${canonical(v)}`;
  }
  return `${out}}`;
}

/** A node of a {@link KeyMemo}: the next steps of the path, and under `KEY` the key of the path ending here. */
export type KeyNode = Map<unknown, KeyNode | string>;

const KEY = Symbol('key');
/** Fields of the largest payload a memo remembers. */
const MAX_FIELDS = 8;
/** Longest string field a memo remembers (a longer one is not worth holding). */
const MAX_TEXT = 128;
/** Nodes a memo holds before it starts again empty (each a small map: about 1 MB in all). */
const MAX_NODES = 5_000;

/**
 * @internal The keys of one query type's flat payloads (at most 8 fields, each a string of at most 128
 * characters, a number, a boolean or `null`), on a trie whose path is the tenant, the user, then each field's
 * name and value in the payload's order. A repeated query finds its key with a few map lookups of values it
 * already holds, instead of serializing its payload and hashing a new key string. Bounded: past 5,000 nodes it
 * starts again empty.
 */
export class KeyMemo {
  #root: KeyNode = new Map();
  /** The node of a query asked without tenant or user (most are), one step past the root. */
  #anonymous: KeyNode = new Map();
  #nodes = 0;

  /**
   * The node of `payload` as asked by `tenant` and `user`, made on the way, or `undefined` for a payload the
   * memo does not remember.
   */
  nodeOf(tenant: string | undefined, user: string | undefined, payload: unknown): KeyNode | undefined {
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return undefined;
    const fields = Object.keys(payload);
    if (fields.length > MAX_FIELDS) return undefined;
    for (let i = 0; i < fields.length; i++) {
      const v = (payload as Record<string, unknown>)[fields[i]!];
      if (
        !(
          (typeof v === 'string' && v.length <= MAX_TEXT) ||
          typeof v === 'number' ||
          typeof v === 'boolean' ||
          v === null
        )
      )
        return undefined;
    }
    if (this.#nodes >= MAX_NODES) {
      this.#root = new Map();
      this.#anonymous = new Map();
      this.#nodes = 0;
    }
    let node =
      tenant === undefined && user === undefined
        ? this.#anonymous
        : this.#step(this.#step(this.#root, tenant), user);
    for (let i = 0; i < fields.length; i++) {
      const name = fields[i]!;
      node = this.#step(this.#step(node, name), (payload as Record<string, unknown>)[name]);
    }
    return node;
  }

  /** The key remembered at `node`, if any. */
  static keyAt(node: KeyNode): string | undefined {
    return node.get(KEY) as string | undefined;
  }

  /** Remembers `key` at `node`. */
  static remember(node: KeyNode, key: string): void {
    node.set(KEY, key);
  }

  #step(node: KeyNode, value: unknown): KeyNode {
    let next = node.get(value) as KeyNode | undefined;
    if (next === undefined) {
      next = new Map();
      node.set(value, next);
      this.#nodes++;
    }
    return next;
  }
}
