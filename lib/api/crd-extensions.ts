/**
 * What a zod schema cannot say but a CRD schema must: CEL rules, free-form fields, list types.
 *
 * Schemas in lib/api attach these with the helpers below; lib/api/openapi.ts reads them when it turns
 * a zod schema into the structural OpenAPI v3 schema of a CRD. A cross-field rule is written once with
 * {@link refineWithCel}: as a zod refinement (checked in TypeScript) and as a CEL rule (checked by the
 * API server), so both sides reject the same objects with the same message.
 */
import { z } from 'zod';
import { resolveLazy } from './lazy.js';

/** A Kubernetes `x-kubernetes-validations` rule. */
export interface CelRule {
  /** CEL expression over `self` that must be true. */
  rule: string;
  /** Message the API server (and zod) report when the rule is false. */
  message: string;
}

/** CRD-only facts about a zod schema. */
export interface CrdExtensions {
  /** CEL rules, emitted as `x-kubernetes-validations`. */
  celRules?: CelRule[];
  /** The value is free-form JSON: emitted as `x-kubernetes-preserve-unknown-fields: true`. */
  preserveUnknownFields?: boolean;
  /** For arrays of objects: `x-kubernetes-list-type: map` keyed by these fields (they must be required). */
  listMapKeys?: string[];
  /**
   * Server-side apply tracks the value as one field (`x-kubernetes-map-type: atomic` on an object,
   * `x-kubernetes-list-type: atomic` on an array): managedFields name the field, not every member.
   */
  atomic?: boolean;
}

/** Registry of CRD-only facts, keyed by zod schema instance. */
export const crdExtensions = z.registry<CrdExtensions>();

/** Returns the CRD facts recorded for `schema` (or one of the schemas it was cloned from). */
export function crdExtensionsOf(schema: z.core.$ZodType): CrdExtensions | undefined {
  return crdExtensions.get(resolveLazy(schema));
}

/**
 * Adds a cross-field rule to an object schema: a zod refinement `check` and the equivalent CEL `rule`.
 * The caller must make `check` and `rule` agree; the e2e test feeds both the same objects.
 * Call this before `.describe()`: zod drops descriptions when checks are added.
 */
export function refineWithCel<T extends z.ZodType>(schema: T, rule: CelRule & { check: (value: z.output<T>) => boolean }): T {
  const refined = schema.refine(rule.check, { message: rule.message }) as T;
  const previous = crdExtensionsOf(schema)?.celRules ?? [];
  crdExtensions.add(refined, { ...crdExtensionsOf(schema), celRules: [...previous, { rule: rule.rule, message: rule.message }] });
  return refined;
}

/**
 * A free-form JSON value (any type), e.g. a JSON patch `value`. Emitted as
 * `x-kubernetes-preserve-unknown-fields: true`; use only where the content really is arbitrary.
 */
export function freeForm(description: string): z.ZodType<unknown> {
  const schema = z.unknown().describe(description);
  crdExtensions.add(schema, { preserveUnknownFields: true });
  return schema;
}

/** Marks an array of objects as a map list keyed by `keys` (`x-kubernetes-list-type: map`). */
export function listMap<T extends z.ZodType>(schema: T, keys: string[]): T {
  crdExtensions.add(resolveLazy(schema), { ...crdExtensionsOf(schema), listMapKeys: keys });
  return schema;
}

/**
 * Marks an object or array as atomic for server-side apply: one writer owns it whole, and managedFields
 * record the field alone instead of every member below it (every key of every condition, every option).
 * Use it only where a single field manager writes the whole value; two appliers of an atomic value
 * replace each other's members.
 */
export function atomic<T extends z.ZodType>(schema: T): T {
  crdExtensions.add(resolveLazy(schema), { ...crdExtensionsOf(schema), atomic: true });
  return schema;
}
