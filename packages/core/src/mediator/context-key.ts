/** A typed key for per-dispatch values (a transaction, the current span, ...). */
export interface ContextKey<TValue> {
  readonly id: symbol;
  readonly defaultValue: TValue;
  readonly description: string;
}

/** Creates a typed context key with a default value. */
export function createContextKey<TValue>(
  defaultValue: TValue,
  options?: { description?: string },
): ContextKey<TValue> {
  const description = options?.description ?? 'context value';
  return Object.freeze({ id: Symbol(description), defaultValue, description });
}
