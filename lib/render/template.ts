/**
 * Fleet's cluster templating of Helm values: `${ ... }` actions in the strings of `helm.values`, evaluated
 * against the cluster (`.ClusterName`, `.ClusterNamespace`, `.ClusterLabels`, `.ClusterAnnotations`,
 * `.ClusterValues`). Fleet evaluates them with Go text/template and sprig (without env, expandenv, include,
 * tpl, getHostByName) and `missingkey=error`.
 *
 * Flotilla implements the part of that language values use: field paths (`.ClusterLabels.env`), string,
 * number and boolean literals, pipelines (`a | b`) and the functions in {@link FUNCTIONS}. Control actions
 * (`if`, `range`, `with`, ...) and other functions are refused with a message naming them, never guessed.
 * A missing key is an error, as in Fleet.
 */

/** What templates can read. */
export type TemplateContext = Readonly<Record<string, unknown>>;

/** A template that cannot be evaluated; the message names the expression and the cause. */
export class TemplateError extends Error {}

type Fn = (...args: unknown[]) => unknown;

function str(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function isEmpty(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return true;
  if (Array.isArray(v)) return v.length === 0;
  return typeof v === 'object' && Object.keys(v).length === 0;
}

/** The sprig functions Flotilla evaluates, with sprig's argument order (the piped value comes last). */
const FUNCTIONS: Readonly<Record<string, Fn>> = {
  // As Go's index: a missing map key gives the zero value (no error, even with missingkey=error).
  index: (m, ...keys) =>
    keys.reduce((cur, k) => {
      if (typeof cur !== 'object' || cur === null) throw new TemplateError(`index of ${str(k)} in a value that is not a map`);
      return (cur as Record<string, unknown>)[str(k)];
    }, m),
  // sprig's get: a map's value for a key, "" when absent (for label keys with dots or slashes).
  get: (m, k) => (typeof m === 'object' && m !== null && Object.hasOwn(m, str(k)) ? (m as Record<string, unknown>)[str(k)] : ''),
  default: (d, v) => (isEmpty(v) ? d : v),
  empty: (v) => isEmpty(v),
  quote: (v) => JSON.stringify(str(v)),
  squote: (v) => `'${str(v)}'`,
  upper: (v) => str(v).toUpperCase(),
  lower: (v) => str(v).toLowerCase(),
  trim: (v) => str(v).trim(),
  trimPrefix: (p, v) => (str(v).startsWith(str(p)) ? str(v).slice(str(p).length) : str(v)),
  trimSuffix: (s, v) => (str(v).endsWith(str(s)) ? str(v).slice(0, str(v).length - str(s).length) : str(v)),
  replace: (a, b, v) => str(v).split(str(a)).join(str(b)),
  contains: (s, v) => str(v).includes(str(s)),
  hasPrefix: (p, v) => str(v).startsWith(str(p)),
  hasSuffix: (s, v) => str(v).endsWith(str(s)),
  b64enc: (v) => Buffer.from(str(v), 'utf8').toString('base64'),
  b64dec: (v) => Buffer.from(str(v), 'base64').toString('utf8'),
  hasKey: (m, k) => typeof m === 'object' && m !== null && Object.hasOwn(m, str(k)),
  toJson: (v) => JSON.stringify(v ?? null),
  toString: (v: unknown) => str(v),
  cat: (...vs) =>
    vs
      .filter((v: unknown) => v !== undefined && v !== null)
      .map(str)
      .join(' '),
};

const CONTROL = new Set(['if', 'else', 'end', 'range', 'with', 'define', 'template', 'block', 'break', 'continue']);

function lookup(from: unknown, key: string, path: string): unknown {
  if (typeof from !== 'object' || from === null || !Object.hasOwn(from, key)) {
    throw new TemplateError(`map has no entry for key "${key}" (${path})`);
  }
  return (from as Record<string, unknown>)[key];
}

/** Splits an action into tokens: strings keep their quotes, `|` is its own token. */
function tokenize(action: string): string[] {
  const tokens = action.match(/"(?:[^"\\]|\\.)*"|`[^`]*`|\||[^\s|]+/g);
  return tokens ?? [];
}

function operand(token: string, ctx: TemplateContext): unknown {
  if (token.startsWith('"')) return JSON.parse(token) as string;
  if (token.startsWith('`')) return token.slice(1, -1);
  if (/^-?\d+(\.\d+)?$/.test(token)) return Number(token);
  if (token === 'true' || token === 'false') return token === 'true';
  if (token === '.') return ctx;
  if (token.startsWith('.')) {
    return token
      .slice(1)
      .split('.')
      .reduce<unknown>((cur, key) => lookup(cur, key, token), ctx);
  }
  throw new TemplateError(`"${token}" is not a value`);
}

function command(tokens: readonly string[], piped: unknown[], ctx: TemplateContext): unknown {
  const [head, ...rest] = tokens;
  if (head === undefined) throw new TemplateError('empty command');
  if (CONTROL.has(head)) throw new TemplateError(`the "${head}" action is not supported by Flotilla's values templating`);
  const fn = FUNCTIONS[head];
  if (!fn) {
    if (rest.length > 0 || /^[A-Za-z]/.test(head)) {
      throw new TemplateError(`function "${head}" is not supported by Flotilla's values templating (supported: ${Object.keys(FUNCTIONS).join(', ')})`);
    }
    return operand(head, ctx);
  }
  return fn(...rest.map((t) => operand(t, ctx)), ...piped);
}

/** Evaluates one action (the text between `${` and `}`). */
function evaluate(action: string, ctx: TemplateContext): unknown {
  const tokens = tokenize(action.trim());
  let value: unknown[] = [];
  let current: string[] = [];
  const flush = () => {
    value = [command(current, value, ctx)];
    current = [];
  };
  for (const token of tokens) {
    if (token === '|') flush();
    else current.push(token);
  }
  flush();
  return value[0];
}

/** Expands every `${ ... }` action of `text` (see the module comment); throws TemplateError. */
export function expandTemplate(text: string, ctx: TemplateContext): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const start = text.indexOf('${', i);
    if (start < 0) break;
    const end = text.indexOf('}', start + 2);
    if (end < 0) throw new TemplateError(`unclosed action in "${text}"`);
    out += text.slice(i, start);
    const action = text.slice(start + 2, end);
    try {
      out += str(evaluate(action, ctx));
    } catch (err) {
      if (err instanceof TemplateError) throw new TemplateError(`\${${action}}: ${err.message}`);
      throw err;
    }
    i = end + 1;
  }
  return out + text.slice(i);
}
