/**
 * What the CRD generator (and client code) needs to know about a kind, and the helper that builds the
 * full object schema (apiVersion, kind, metadata, spec, status) from the spec and status schemas.
 */
import { z } from 'zod';
import { API_VERSION } from './constants.js';
import { ObjectMetaSchema } from './meta.js';

/** An additional printer column of `kubectl get`. */
export interface PrinterColumn {
  /** Column header. */
  name: string;
  /** OpenAPI type of the value: string, integer, number, boolean or date. */
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  /** JSONPath of the value in the object, e.g. `.status.commit`. */
  jsonPath: string;
  /** What the column shows. */
  description: string;
  /** 0 = always shown; 1 = only with `-o wide`. */
  priority?: number;
}

/** Everything about one kind: names, schemas and how `kubectl get` shows it. */
export interface KindDefinition {
  /** The kind, e.g. "GitRepo". */
  kind: string;
  /** Lowercase plural resource name, e.g. "gitrepos". */
  plural: string;
  /** Lowercase singular name, e.g. "gitrepo". */
  singular: string;
  /** Short names for kubectl, e.g. ["gr"]. */
  shortNames: string[];
  /** What the kind is for (top-level CRD description). */
  description: string;
  /** Printer columns in order; an Age column is always appended by the generator. */
  printerColumns: PrinterColumn[];
  /** Schema of the whole object (apiVersion, kind, metadata, spec, status). */
  schema: z.ZodType;
  /** Schema of `spec`. */
  specSchema: z.ZodType;
  /** Schema of `status`. */
  statusSchema: z.ZodType;
  /** Whether an object must have a `spec` (true when the spec has required fields). */
  specRequired: boolean;
}

/**
 * Builds the schema of a whole object of `kind`. `metadata` is loose (server-owned fields are kept);
 * spec and status are as given (strict). Status is always optional: a new object has none.
 */
export function objectSchema<K extends string, Spec extends z.ZodType, Status extends z.ZodType>(kind: K, spec: Spec, status: Status) {
  return z.object({
    apiVersion: z.literal(API_VERSION).describe(`Always "${API_VERSION}".`),
    kind: z.literal(kind).describe(`Always "${kind}".`),
    metadata: ObjectMetaSchema,
    spec,
    status: status.optional(),
  });
}

/** The Ready condition's status as a printer column. */
export const READY_COLUMN: PrinterColumn = {
  name: 'Ready',
  type: 'string',
  jsonPath: '.status.conditions[?(@.type=="Ready")].status',
  description: 'Status of the Ready condition.',
};
