/**
 * Splits a byte stream into lines of UTF-8 text. A watch response arrives in chunks that may end in the
 * middle of a multi-byte character, so bytes are decoded with a streaming decoder that keeps an incomplete
 * sequence until the next chunk, never chunk by chunk (which replaced both halves with U+FFFD).
 */

/** Yields each non-empty, trimmed line of `chunks`, decoded as UTF-8; a last line without a newline is yielded too. */
export async function* utf8Lines(chunks: AsyncIterable<Uint8Array | string>): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8');
  let buffer = '';
  for await (const chunk of chunks) {
    buffer += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
      const line = buffer.slice(0, nl).trim();
      buffer = buffer.slice(nl + 1);
      if (line) yield line;
    }
  }
  const last = (buffer + decoder.decode()).trim();
  if (last) yield last;
}
