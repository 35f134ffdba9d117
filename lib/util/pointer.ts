/** JSON pointers (RFC 6901), as JSON patches and `diff.comparePatches` use them. */

/**
 * Decodes a JSON pointer into its reference tokens (`/a~1b/0` -> `['a/b', '0']`; `''`, the whole document,
 * -> `[]`), or undefined when `pointer` is not one (it must be empty or start with `/`). `~1` is decoded
 * before `~0`, so `~01` is the token `~1`, as the RFC requires.
 */
export function parsePointer(pointer: string): string[] | undefined {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) return undefined;
  return pointer
    .slice(1)
    .split('/')
    .map((t) => t.replaceAll('~1', '/').replaceAll('~0', '~'));
}
