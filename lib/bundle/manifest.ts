import yaml from 'js-yaml';
import { StallingError } from '../errors.js';
import { Reason } from '../api/constants.js';
import { ContentMeter, activeContentLimits, contentLimitExceeded, markTree, type ContentLimits } from './limits.js';

/**
 * Parsing and validation of manifest files (the resources of a bundle).
 *
 * - `.yaml` / `.yml` files may hold several documents separated by `---`; empty documents (only comments,
 *   or a trailing `---`) are skipped, as kubectl does.
 * - `.json` files hold exactly one object (read with the YAML parser, as kubectl does).
 * - Every document must be a mapping with a string `apiVersion`, a string `kind` and a non-empty string
 *   `metadata.name`.
 * - YAML is read with the YAML 1.2 core schema plus merge keys (`<<`): timestamps stay strings (as they
 *   reach the API server), `yes`/`no` are strings (YAML 1.2), duplicate keys are an error.
 * - Parsing is bounded by {@link ContentLimits} (limits.ts): documents per file, line length (YAML), nesting
 *   depth and alias nodes (checked while js-yaml parses, so a deep file never recurses far), then key and
 *   string length, nodes and expanded bytes of each document with aliases expanded. `.json` files may not
 *   use aliases at all. A file over a limit is a StallingError with reason ContentLimitExceeded.
 * Every other failure is a StallingError with reason InvalidBundle whose message reads `file:line: cause`.
 */

/** A Kubernetes object as read from a bundle manifest (before it is applied; lib/kube's KubeObject is the API server's): only the identifying fields are typed. */
export interface RenderedObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [key: string]: unknown };
  [key: string]: unknown;
}

/** One file of a bundle: its path relative to the bundle root (`/`-separated) and its bytes. */
export interface BundleFile {
  path: string;
  content: Buffer;
}

/** One document of a manifest file, with the 1-based line it starts on (for messages). */
export interface ManifestDocument {
  object: RenderedObject;
  line: number;
}

/** The file names that hold a bundle's options (never a resource). */
export const FLEET_YAML_NAMES: readonly string[] = ['fleet.yaml', 'fleet.yml'];

/** The name of the directory, at a bundle's root, that holds its overlays (`overlays/<name>/...`). */
export const OVERLAYS_DIR = 'overlays';

/** File names that make their directory a Helm chart or a Kustomize folder (rendered by lib/render, kept whole). */
export const ENGINE_MARKERS: readonly string[] = ['Chart.yaml', 'kustomization.yaml', 'kustomization.yml', 'Kustomization'];

const MANIFEST_EXTENSIONS = ['.yaml', '.yml', '.json'];

/** The js-yaml schema used for manifests and fleet.yaml: YAML 1.2 core plus merge keys, no timestamps. */
export const YAML_SCHEMA = yaml.CORE_SCHEMA.extend({
  // @types/js-yaml does not declare `types`, which js-yaml 4 exports at runtime.
  implicit: [(yaml as unknown as { types: { merge: yaml.Type } }).types.merge],
});

/** True if a file (by its base name) is a manifest: `.yaml`, `.yml` or `.json`, and not fleet.yaml. */
export function isManifestName(baseName: string): boolean {
  if (FLEET_YAML_NAMES.includes(baseName)) return false;
  const lower = baseName.toLowerCase();
  return MANIFEST_EXTENSIONS.some((ext) => lower.endsWith(ext));
}

/** Builds the InvalidBundle error for a file (and line, when known). */
export function invalidBundle(file: string, line: number | undefined, cause: string, err?: unknown): StallingError {
  const where = line === undefined ? file : `${file}:${line}`;
  return new StallingError(Reason.InvalidBundle, `${where}: ${cause}`, err === undefined ? {} : { cause: err });
}

/** Translates a js-yaml error into InvalidBundle, with the line in the whole file. */
function yamlError(file: string, lineOffset: number, err: unknown): StallingError {
  if (err instanceof StallingError) return err;
  if (err instanceof yaml.YAMLException) {
    const line = err.mark ? err.mark.line + 1 + lineOffset : undefined;
    return invalidBundle(file, line, `invalid YAML: ${err.reason}`, err);
  }
  return invalidBundle(file, undefined, `invalid YAML: ${String(err)}`, err);
}

/**
 * Splits YAML text into documents at `---` marker lines, keeping the marker with the document it starts,
 * and returns each with the 0-based line it starts on. A `---` at column 0 always starts a new document in
 * YAML, so this split is the one the YAML parser makes; parsing per document gives exact line numbers.
 * Refuses, before anything is parsed, more than `maxDocuments` documents and lines over `maxLineLength`.
 */
function splitDocuments(file: string, text: string, limits: ContentLimits): { text: string; startLine: number }[] {
  const lines = text.split('\n');
  const docs: { text: string; startLine: number }[] = [];
  let start = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.length > limits.maxLineLength) {
      throw contentLimitExceeded(`${file}:${i + 1}`, `a line of ${line.length} characters`, 'maxLineLength', limits.maxLineLength);
    }
    if (i > start && /^---(?:[ \t].*)?\r?$/.test(line)) {
      docs.push({ text: lines.slice(start, i).join('\n'), startLine: start });
      start = i;
      if (docs.length >= limits.maxDocuments) {
        throw contentLimitExceeded(`${file}:${i + 1}`, `more than ${limits.maxDocuments} YAML documents`, 'maxDocuments', limits.maxDocuments);
      }
    }
  }
  docs.push({ text: lines.slice(start).join('\n'), startLine: start });
  return docs;
}

/**
 * Loads one YAML document, refusing while it parses nesting deeper than `maxDepth` and more alias nodes
 * than the file's remaining allowance (`aliases.left`, shared by the documents of a file).
 */
function loadBounded(file: string, text: string, lineOffset: number, limits: ContentLimits, aliases: { left: number }): unknown {
  let depth = 0;
  const listener = (event: 'open' | 'close', state: { line: number; kind: string | null; result: unknown }) => {
    const where = `${file}:${state.line + 1 + lineOffset}`;
    if (event === 'open') {
      // js-yaml opens one node more than the value's nesting (the document's own), hence the + 1.
      if (++depth > limits.maxDepth + 1) throw contentLimitExceeded(where, `nested deeper than ${limits.maxDepth} levels`, 'maxDepth', limits.maxDepth);
      return;
    }
    depth--;
    // An alias node is the only node that closes with a value but no kind (js-yaml reuses the anchored value).
    if (state.kind === null && state.result !== null && --aliases.left < 0) {
      throw limits.maxAliases === 0 && isJsonPath(file)
        ? invalidBundle(where, undefined, 'JSON has no aliases (*name); this file is YAML, name it .yaml')
        : contentLimitExceeded(where, `more than ${limits.maxAliases} alias nodes (*name) in the file`, 'maxAliases', limits.maxAliases);
    }
  };
  return yaml.load(text, { filename: file, schema: YAML_SCHEMA, listener } as yaml.LoadOptions);
}

/** Parses YAML text (one or more documents) into plain values; empty documents are dropped. */
export function parseYamlDocuments(file: string, text: string, limits: ContentLimits = activeContentLimits()): { value: unknown; line: number }[] {
  const out: { value: unknown; line: number }[] = [];
  const meter = new ContentMeter(limits, file);
  const aliases = { left: limits.maxAliases };
  for (const doc of splitDocuments(file, text, limits)) {
    let value: unknown;
    const aliasesBefore = aliases.left;
    try {
      value = loadBounded(file, doc.text, doc.startLine, limits, aliases);
    } catch (err) {
      throw yamlError(file, doc.startLine, err);
    }
    if (value === null || value === undefined) continue;
    if (aliases.left === aliasesBefore) markTree(value); // no alias: nothing shared
    const line = doc.startLine + firstContentLine(doc.text) + 1;
    meter.add(value, `${file}:${line}`);
    out.push({ value, line });
  }
  return out;
}

/** 0-based index of the first line that is not blank, a comment or a `---` marker (for messages). */
function firstContentLine(text: string): number {
  const lines = text.split('\n');
  const index = lines.findIndex((l) => !/^\s*(?:#.*)?$/.test(l) && !/^---\s*$/.test(l));
  return Math.max(index, 0);
}

/**
 * Parses a JSON file into one value. Like kubectl, which decodes JSON with its YAML decoder, the text is
 * read by the YAML parser (JSON is YAML 1.2 flow syntax), which gives syntax errors a line number.
 */
export function parseJsonDocument(file: string, text: string, limits: ContentLimits = activeContentLimits()): { value: unknown; line: number } {
  const bounded = { ...limits, maxAliases: 0, maxLineLength: Number.MAX_SAFE_INTEGER, maxDocuments: 1 };
  let value: unknown;
  try {
    value = loadBounded(file, text, 0, bounded, { left: 0 });
  } catch (err) {
    if (err instanceof StallingError) throw err;
    const line = err instanceof yaml.YAMLException && err.mark ? err.mark.line + 1 : undefined;
    throw invalidBundle(file, line, `invalid JSON: ${err instanceof yaml.YAMLException ? err.reason : String(err)}`, err);
  }
  const line = 1 + firstContentLine(text);
  markTree(value); // JSON has no aliases
  new ContentMeter(limits, file).add(value, `${file}:${line}`);
  return { value, line };
}

/** Checks that a parsed document is a Kubernetes object; the message names the missing field. */
export function validateObject(file: string, line: number, value: unknown): RenderedObject {
  const fail = (cause: string) => invalidBundle(file, line, cause);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw fail(`a resource must be a mapping with apiVersion, kind and metadata, got ${describe(value)}`);
  }
  const obj = value as Record<string, unknown>;
  if (typeof obj.apiVersion !== 'string' || obj.apiVersion === '') throw fail('resource has no apiVersion');
  if (typeof obj.kind !== 'string' || obj.kind === '') throw fail('resource has no kind');
  const metadata = obj.metadata;
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw fail(`${obj.kind} has no metadata`);
  }
  const meta = metadata as Record<string, unknown>;
  if (typeof meta.name !== 'string' || meta.name === '') throw fail(`${obj.kind} has no metadata.name`);
  if (meta.namespace !== undefined && meta.namespace !== null && typeof meta.namespace !== 'string') {
    throw fail(`${obj.kind} ${meta.name}: metadata.namespace must be a string`);
  }
  return value as RenderedObject;
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'null';
  return `a ${typeof value}`;
}

/** True if the path names a JSON file (one document) rather than YAML. */
export function isJsonPath(path: string): boolean {
  return path.toLowerCase().endsWith('.json');
}

/** Parses a file into raw documents (YAML: several; JSON: one), without validating them as objects. */
export function parseDocuments(file: string, content: Buffer | string, limits: ContentLimits = activeContentLimits()): { value: unknown; line: number }[] {
  const text = typeof content === 'string' ? content : decodeUtf8(file, content);
  return isJsonPath(file) ? [parseJsonDocument(file, text, limits)] : parseYamlDocuments(file, text, limits);
}

/** Parses and validates a manifest file into its Kubernetes objects. */
export function parseManifest(file: string, content: Buffer | string, limits: ContentLimits = activeContentLimits()): ManifestDocument[] {
  return parseDocuments(file, content, limits).map(({ value, line }) => ({ object: validateObject(file, line, value), line }));
}

/** Decodes UTF-8 strictly: a binary file with a manifest extension is an error, not garbage. */
export function decodeUtf8(file: string, content: Buffer): string {
  try {
    // A leading byte-order mark is dropped by TextDecoder.
    return new TextDecoder('utf-8', { fatal: true }).decode(content);
  } catch (err) {
    throw invalidBundle(file, undefined, 'not valid UTF-8 text', err);
  }
}
