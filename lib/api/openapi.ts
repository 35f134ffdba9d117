/**
 * Converts Flotilla's zod schemas into the structural OpenAPI v3 schemas CRDs need.
 *
 * zod's own JSON Schema output is not structural (it uses $ref, anyOf, additionalProperties:false), so
 * this walks the zod definitions directly and supports exactly the constructs lib/api uses: strict
 * objects, records of strings, arrays, strings (length, one pattern, date-time), integers and numbers
 * (bounds), booleans, enums, literals, optional fields and free-form values. Anything else throws with
 * the path, so a schema change that the CRD cannot express fails the generator instead of drifting.
 * A zod refinement must come with a CEL rule (see refineWithCel), so both sides validate the same.
 */
import type { z } from 'zod';
import { crdExtensionsOf } from './crd-extensions.js';

/** A node of a structural OpenAPI v3 schema as used in CRDs. */
export interface OpenAPISchema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  properties?: Record<string, OpenAPISchema>;
  required?: string[];
  additionalProperties?: OpenAPISchema;
  items?: OpenAPISchema;
  enum?: (string | number | boolean)[];
  format?: string;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
  minItems?: number;
  maxItems?: number;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-map-type'?: 'atomic' | 'granular';
  'x-kubernetes-validations'?: { rule: string; message: string }[];
}

/** The parts of zod 4 definitions this converter reads (zod exposes them as `schema._zod.def`). */
interface DefView {
  type: string;
  checks?: { _zod: { def: CheckView } }[];
  shape?: Record<string, z.core.$ZodType>;
  catchall?: z.core.$ZodType;
  element?: z.core.$ZodType;
  keyType?: z.core.$ZodType;
  valueType?: z.core.$ZodType;
  innerType?: z.core.$ZodType;
  entries?: Record<string, string | number>;
  values?: unknown[];
  format?: string;
}

interface CheckView {
  check: string;
  minimum?: number;
  maximum?: number;
  value?: number;
  inclusive?: boolean;
  format?: string;
  pattern?: RegExp;
}

const defOf = (schema: z.core.$ZodType): DefView => schema._zod.def as unknown as DefView;
const descriptionOf = (schema: z.core.$ZodType): string | undefined => (schema as { description?: string }).description;

/** Thrown when a zod schema uses something a structural CRD schema cannot express. */
export class UnsupportedSchemaError extends Error {
  /** Creates the error for the field at `path`. */
  constructor(path: string, what: string) {
    super(`${path || '(root)'}: ${what}`);
    this.name = 'UnsupportedSchemaError';
  }
}

/**
 * Converts a zod schema to a structural OpenAPI v3 schema. `path` is used in error messages only.
 * Optional wrappers are unwrapped (optionality shows in the parent's `required`). Every field must have
 * a description (it is what `kubectl explain` shows); array items may go without (`needsDescription`).
 */
export function toOpenAPI(schema: z.core.$ZodType, path = '', needsDescription = true): OpenAPISchema {
  const { inner, description } = unwrapOptional(schema);
  const out = convertType(inner, path);
  if (description === undefined) {
    if (needsDescription) throw new UnsupportedSchemaError(path, 'has no description (use .describe())');
    return withExtensions(out, inner, path);
  }
  // Key order only matters for readability of the generated YAML: type, then description.
  return withExtensions({ ...(out.type ? { type: out.type } : {}), description, ...out }, inner, path);
}

/** Strips `.optional()` wrappers, keeping the outermost description. */
function unwrapOptional(schema: z.core.$ZodType): { inner: z.core.$ZodType; optional: boolean; description: string | undefined } {
  let current = schema;
  let optional = false;
  let description = descriptionOf(schema);
  while (defOf(current).type === 'optional') {
    optional = true;
    const next = defOf(current).innerType;
    if (!next) throw new UnsupportedSchemaError('', 'optional without inner type');
    current = next;
    description ??= descriptionOf(current);
  }
  return { inner: current, optional, description };
}

function convertType(schema: z.core.$ZodType, path: string): OpenAPISchema {
  const def = defOf(schema);
  switch (def.type) {
    case 'object':
      return convertObject(def, path);
    case 'record':
      return convertRecord(def, path);
    case 'array':
      return { type: 'array', ...lengthBounds(def, 'Items', path), items: toOpenAPI(required(def.element, path), `${path}[]`, false) };
    case 'string':
      return { type: 'string', ...stringChecks(def, path) };
    case 'number':
      return { type: def.format === 'safeint' || def.format === 'int32' ? 'integer' : 'number', ...numberBounds(def, path) };
    case 'boolean':
      return { type: 'boolean', ...noChecks(def, path) };
    case 'enum':
      return enumOf(Object.values(def.entries ?? {}), path);
    case 'literal':
      return enumOf(def.values ?? [], path);
    case 'unknown':
      return {};
    default:
      throw new UnsupportedSchemaError(path, `zod type "${def.type}" is not supported in CRD schemas`);
  }
}

function required<T>(value: T | undefined, path: string): T {
  if (value === undefined) throw new UnsupportedSchemaError(path, 'incomplete zod definition');
  return value;
}

function convertObject(def: DefView, path: string): OpenAPISchema {
  // Only strict objects: a loose or stripping zod object would accept what the API server rejects.
  if (!def.catchall || defOf(def.catchall).type !== 'never') {
    throw new UnsupportedSchemaError(path, 'objects in CRD schemas must be strict (z.strictObject) so zod and the API server agree');
  }
  const properties: Record<string, OpenAPISchema> = {};
  const requiredKeys: string[] = [];
  for (const [key, field] of Object.entries(def.shape ?? {})) {
    const fieldPath = path ? `${path}.${key}` : key;
    properties[key] = toOpenAPI(field, fieldPath);
    if (!unwrapOptional(field).optional) requiredKeys.push(key);
  }
  return { type: 'object', properties, ...(requiredKeys.length ? { required: requiredKeys } : {}) };
}

function convertRecord(def: DefView, path: string): OpenAPISchema {
  const keyType = defOf(required(def.keyType, path));
  if (keyType.type !== 'string' || (keyType.checks?.length ?? 0) > 0) {
    throw new UnsupportedSchemaError(path, 'record keys must be plain strings');
  }
  const value = required(def.valueType, path);
  const { description: _ignored, ...valueSchema } = withExtensions(convertType(value, `${path}[*]`), value, `${path}[*]`);
  return { type: 'object', additionalProperties: valueSchema };
}

function enumOf(values: unknown[], path: string): OpenAPISchema {
  if (values.length > 0 && values.every((v) => typeof v === 'string')) return { type: 'string', enum: values as string[] };
  throw new UnsupportedSchemaError(path, 'only string enums and literals are supported');
}

function checksOf(def: DefView): CheckView[] {
  return (def.checks ?? []).map((c) => c._zod.def);
}

function noChecks(def: DefView, path: string): OpenAPISchema {
  const check = checksOf(def).find((c) => c.check !== 'custom');
  if (check) throw new UnsupportedSchemaError(path, `check "${check.check}" is not supported here`);
  return {};
}

function lengthBounds(def: DefView, unit: 'Items' | 'Length', path: string): OpenAPISchema {
  const out: OpenAPISchema = {};
  for (const check of checksOf(def)) {
    if (check.check === 'min_length') out[`min${unit}`] = check.minimum;
    else if (check.check === 'max_length') out[`max${unit}`] = check.maximum;
    else if (check.check !== 'custom') throw new UnsupportedSchemaError(path, `check "${check.check}" is not supported here`);
  }
  return out;
}

function stringChecks(def: DefView, path: string): OpenAPISchema {
  const out: OpenAPISchema = {};
  const formats: CheckView[] = def.format === undefined ? [] : [{ check: 'string_format', format: def.format }];
  for (const check of [...formats, ...checksOf(def)]) {
    if (check.check === 'min_length') out.minLength = check.minimum;
    else if (check.check === 'max_length') out.maxLength = check.maximum;
    else if (check.check === 'string_format' && check.format === 'datetime') out.format = 'date-time';
    else if (check.check === 'string_format' && check.format === 'regex' && check.pattern) {
      if (out.pattern !== undefined) throw new UnsupportedSchemaError(path, 'at most one regex per string');
      if (check.pattern.flags !== '') throw new UnsupportedSchemaError(path, 'regex flags are not supported');
      out.pattern = check.pattern.source;
    } else if (check.check !== 'custom') {
      throw new UnsupportedSchemaError(path, `string check "${check.format ?? check.check}" is not supported`);
    }
  }
  return out;
}

function numberBounds(def: DefView, path: string): OpenAPISchema {
  const out: OpenAPISchema = {};
  for (const check of checksOf(def)) {
    if (check.check === 'greater_than') {
      out.minimum = check.value;
      if (!check.inclusive) out.exclusiveMinimum = true;
    } else if (check.check === 'less_than') {
      out.maximum = check.value;
      if (!check.inclusive) out.exclusiveMaximum = true;
    } else if (check.check !== 'custom') {
      throw new UnsupportedSchemaError(path, `number check "${check.check}" is not supported`);
    }
  }
  return out;
}

/** Adds CEL rules, free-form and list-type markers; refuses zod refinements that have no CEL twin. */
function withExtensions(out: OpenAPISchema, schema: z.core.$ZodType, path: string): OpenAPISchema {
  const ext = crdExtensionsOf(schema);
  const custom = checksOf(defOf(schema)).filter((c) => c.check === 'custom').length;
  const rules = ext?.celRules ?? [];
  if (custom > rules.length) {
    throw new UnsupportedSchemaError(path, 'a zod refinement has no CEL rule: use refineWithCel so the API server checks it too');
  }
  const result = { ...out };
  if (rules.length) result['x-kubernetes-validations'] = rules.map((r) => ({ rule: r.rule, message: r.message }));
  if (ext?.preserveUnknownFields) result['x-kubernetes-preserve-unknown-fields'] = true;
  else if (defOf(schema).type === 'unknown') throw new UnsupportedSchemaError(path, 'z.unknown() must be declared with freeForm()');
  if (ext?.listMapKeys) {
    const keys = ext.listMapKeys;
    const itemRequired = out.items?.required ?? [];
    if (!keys.every((k) => itemRequired.includes(k))) throw new UnsupportedSchemaError(path, 'list map keys must be required fields');
    result['x-kubernetes-list-type'] = 'map';
    result['x-kubernetes-list-map-keys'] = keys;
  }
  if (ext?.atomic) {
    if (out.type === 'object') result['x-kubernetes-map-type'] = 'atomic';
    else if (out.type === 'array' && !ext.listMapKeys) result['x-kubernetes-list-type'] = 'atomic';
    else throw new UnsupportedSchemaError(path, 'only an object or an array that is not a map list can be atomic');
  }
  return result;
}
