/**
 * Freezes a value and everything reachable from it. Returns the same value. Binary data (typed arrays,
 * `Buffer`, `DataView`: e.g. protobuf `bytes` fields) cannot be frozen and is left as it is.
 */
export function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value) || Object.isFrozen(value))
    return value;
  Object.freeze(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) deepFreeze(value[i]);
  } else {
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
  }
  return value;
}
