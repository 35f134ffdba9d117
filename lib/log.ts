import { pino, type Logger, type DestinationStream } from 'pino';

/**
 * Paths that are redacted from every log line, wherever they appear. Secrets must never be logged;
 * this is the safety net, not the mechanism: code must not pass secret values to the logger at all.
 */
export const REDACTED_PATHS = [
  'password',
  '*.password',
  'token',
  '*.token',
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'auth',
  '*.auth',
  'secret',
  '*.secret',
  'data',
  '*.data',
  'stringData',
  '*.stringData',
];

/** Options for {@link createLogger}. */
export interface LoggerOptions {
  /** Component name, e.g. "controller" or "agent". */
  name: string;
  /** pino level; default "info". */
  level?: string;
  /** Where to write; default stdout. */
  destination?: DestinationStream;
}

/** Creates the structured (JSON) logger every Flotilla process uses. */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      name: options.name,
      level: options.level ?? 'info',
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      base: { component: options.name },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination,
  );
}

export type { Logger };
