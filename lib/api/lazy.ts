/**
 * Schemas built on first use. Every zod schema instance carries some sixty closures, and lib/api defines
 * hundreds of them (each `.describe()` and `.optional()` is another instance): built at import time they
 * cost every process about 12 MiB of heap, although the agent parses only a few kinds and the CLI often
 * none. {@link lazySchema} defers building a schema (or a shape, an object of schemas) until something
 * reads it, so a process pays only for the schemas it uses, once.
 *
 * The value returned stands for the built one everywhere: it forwards every property read, write, `in`,
 * key listing and prototype lookup (hence `instanceof`) to it. Registries keyed by identity (zod's
 * registries are WeakMaps) must be given {@link resolveLazy}'s result, since a proxy is a different key.
 */

/** Proxy -> the function that builds (once) and returns the value it stands for, and whether it has. */
const builders = new WeakMap<object, { real: () => object; built: () => boolean }>();

/**
 * Returns a stand-in for `build()`'s result that calls `build` on first use and forwards to its result
 * from then on. `build` runs at most once when it succeeds (a throw is thrown again on the next use).
 */
export function lazySchema<T extends object>(build: () => T): T {
  let built: T | undefined;
  const real = (): T => {
    built ??= build();
    return built;
  };
  const proxy = new Proxy(Object.create(null) as T, {
    get: (_, key) => Reflect.get(real(), key),
    set: (_, key, value) => Reflect.set(real(), key, value),
    has: (_, key) => Reflect.has(real(), key),
    deleteProperty: (_, key) => Reflect.deleteProperty(real(), key),
    defineProperty: (_, key, descriptor) => Reflect.defineProperty(real(), key, descriptor),
    ownKeys: () => Reflect.ownKeys(real()),
    // The stand-in's own (empty, extensible) target has none of these keys, so the Proxy invariants
    // allow them only as configurable: report them so (zod defines `_zod` non-configurable).
    getOwnPropertyDescriptor: (_, key) => {
      const descriptor = Reflect.getOwnPropertyDescriptor(real(), key);
      return descriptor && { ...descriptor, configurable: true };
    },
    getPrototypeOf: () => Reflect.getPrototypeOf(real()),
  });
  builders.set(proxy, { real, built: () => built !== undefined });
  return proxy;
}

/** The value a {@link lazySchema} stands for (built now if it was not yet); any other value as it is. */
export function resolveLazy<T>(value: T): T {
  const entry = typeof value === 'object' && value !== null ? builders.get(value) : undefined;
  return entry ? (entry.real() as T) : value;
}

/** Whether `value` is a {@link lazySchema} stand-in that was built, one not built yet, or no stand-in at all. */
export function lazyState(value: unknown): 'built' | 'pending' | undefined {
  const entry = typeof value === 'object' && value !== null ? builders.get(value) : undefined;
  if (!entry) return undefined;
  return entry.built() ? 'built' : 'pending';
}
