/**
 * Freezes a value and everything reachable from it. Returns the same value. Binary data (typed arrays,
 * `Buffer`, `DataView`: e.g. protobuf `bytes` fields) cannot be frozen and is left as it is.
 */
export function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value) || Object.isFrozen(value))
    return value;
  freezeTree(value);
  return value;
}

// Objects are frozen before their children, so a cycle stops at an already frozen object. `for...in` walks a
// plain object's keys without building an array (an own-property check keeps inherited ones out).
function freezeTree(value: object): void {
  Object.freeze(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const child: unknown = value[i];
      if (
        typeof child === 'object' &&
        child !== null &&
        !Object.isFrozen(child) &&
        !ArrayBuffer.isView(child)
      )
        freezeTree(child);
    }
    return;
  }
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    const child: unknown = (value as Record<string, unknown>)[key];
    if (typeof child === 'object' && child !== null && !Object.isFrozen(child) && !ArrayBuffer.isView(child))
      freezeTree(child);
  }
}

/**
 * Whether messages are frozen when they are created: always, unless `NODE_ENV` is `production`, where freezing
 * three objects would be a third of what creating and sending a message costs (about 40 ns per `Object.freeze`).
 * Read once when core loads; `CQRS_FREEZE_MESSAGES=1` (or `0`) decides it in any environment. Message types are
 * `readonly` either way, so a mutation is a type error everywhere and a runtime `TypeError` where they are frozen.
 */
export const FREEZE_MESSAGES: boolean = freezeSetting(
  typeof process === 'undefined' ? undefined : process.env,
);

/** @internal The rule behind {@link FREEZE_MESSAGES}, for its test. */
export function freezeSetting(env: Readonly<Record<string, string | undefined>> | undefined): boolean {
  const explicit = env?.CQRS_FREEZE_MESSAGES;
  if (explicit === '1' || explicit === 'true') return true;
  if (explicit === '0' || explicit === 'false') return false;
  return env?.NODE_ENV !== 'production';
}
