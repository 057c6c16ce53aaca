import type { StandardSchemaV1 } from '@cqrs-ts/core';
import { ValidationError } from '@cqrs-ts/core';
import { isForbiddenKey } from './http-body.ts';

/** A JSON Schema object (draft 2020-12, the dialect of OpenAPI 3.1). */
export type JsonSchema = Readonly<Record<string, unknown>>;

/**
 * Turns a Standard Schema into JSON Schema when its library does not implement Standard JSON Schema
 * (`~standard.jsonSchema`), e.g. valibot through `@valibot/to-json-schema`. Return `undefined` when it cannot.
 */
export type JsonSchemaConverter = (
  schema: StandardSchemaV1,
  io: 'input' | 'output',
) => Record<string, unknown> | undefined;

interface StandardJsonSchemaProps {
  readonly jsonSchema?: {
    readonly input?: (options: { target: string }) => Record<string, unknown>;
    readonly output?: (options: { target: string }) => Record<string, unknown>;
  };
}

/**
 * The JSON Schema of a Standard Schema: from the library (Standard JSON Schema: zod 4, arktype), else from
 * `convert`, else `undefined`. The `$schema` key is dropped (the OpenAPI 3.1 document sets the dialect).
 */
export function toJsonSchema(
  schema: StandardSchemaV1 | undefined,
  io: 'input' | 'output',
  convert?: JsonSchemaConverter,
): JsonSchema | undefined {
  if (schema === undefined) return undefined;
  let out: Record<string, unknown> | undefined;
  const props = schema['~standard'] as StandardSchemaV1['~standard'] & StandardJsonSchemaProps;
  const fn = props.jsonSchema?.[io];
  if (typeof fn === 'function') {
    try {
      out = fn({ target: 'draft-2020-12' });
    } catch {
      out = undefined;
    }
  }
  if (out === undefined && convert !== undefined) out = convert(schema, io);
  if (out === undefined || typeof out !== 'object' || out === null) return undefined;
  const { $schema: _dialect, ...rest } = out;
  return rest;
}

/** How a query-string or path value is turned into the type its schema property expects. */
type Coercion = 'number' | 'integer' | 'boolean' | 'array' | 'string';

/** Per property of a query's payload, how to coerce it from a string. Built once per route. */
export type CoercionPlan = ReadonlyMap<string, Coercion>;

function kindOf(property: unknown): Coercion {
  if (typeof property !== 'object' || property === null) return 'string';
  const p = property as Record<string, unknown>;
  const types = Array.isArray(p.type) ? p.type : [p.type];
  if (types.includes('array')) return 'array';
  if (types.includes('integer')) return 'integer';
  if (types.includes('number')) return 'number';
  if (types.includes('boolean')) return 'boolean';
  for (const key of ['anyOf', 'oneOf'] as const) {
    const options = p[key];
    if (Array.isArray(options))
      for (const option of options) {
        const k = kindOf(option);
        if (k !== 'string') return k;
      }
  }
  return 'string';
}

/** The coercion of each property the JSON Schema declares; `page` and `pageSize` are integers when `paged`. */
export function coercionPlan(schema: JsonSchema | undefined, paged: boolean): CoercionPlan {
  const plan = new Map<string, Coercion>();
  const properties = schema?.properties;
  if (typeof properties === 'object' && properties !== null)
    for (const [name, property] of Object.entries(properties)) plan.set(name, kindOf(property));
  if (paged) {
    plan.set('page', 'integer');
    plan.set('pageSize', 'integer');
  }
  return plan;
}

const NUMBER_RE = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

function coerce(value: string, kind: Coercion): unknown {
  switch (kind) {
    case 'number':
    case 'integer':
      // A value that is not a number stays a string, so the schema reports it with its path.
      return NUMBER_RE.test(value) ? Number(value) : value;
    case 'boolean':
      return value === 'true' ? true : value === 'false' ? false : value;
    default:
      return value;
  }
}

/** Largest number of query-string parameters read. */
export const MAX_QUERY_PARAMETERS = 100;

/**
 * Builds a query payload from path parameters and the query string, coercing each value as the plan says (a
 * repeated key is an array only where the schema says so; elsewhere the last value wins).
 * @throws ValidationError (`CQRS_VALIDATION`) for a refused key (`__proto__`, `constructor`, `prototype`), a
 *   repeated key that is not an array, or more than {@link MAX_QUERY_PARAMETERS} parameters.
 */
export function queryPayload(
  params: Readonly<Record<string, string>> | undefined,
  search: URLSearchParams,
  plan: CoercionPlan,
): Record<string, unknown> {
  const payload: Record<string, unknown> = {};
  let count = 0;
  for (const [key, value] of search) {
    if (++count > MAX_QUERY_PARAMETERS)
      throw new ValidationError('query string', [
        { path: [], message: `at most ${MAX_QUERY_PARAMETERS} parameters`, code: 'too_big' },
      ]);
    if (isForbiddenKey(key))
      throw new ValidationError('query string', [
        { path: [key], message: `the key ${key} is not accepted`, code: 'forbidden_key' },
      ]);
    const kind = plan.get(key) ?? 'string';
    if (kind === 'array') {
      const list = (payload[key] as unknown[] | undefined) ?? [];
      list.push(value);
      payload[key] = list;
    } else payload[key] = coerce(value, kind);
  }
  if (params !== undefined)
    for (const key of Object.keys(params)) {
      if (isForbiddenKey(key)) continue;
      payload[key] = coerce(params[key]!, plan.get(key) ?? 'string');
    }
  return payload;
}
