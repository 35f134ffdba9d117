import { createRequire } from 'node:module';
import type * as Undici from 'undici';

/**
 * The two parts of undici Flotilla uses, `Agent` and `request`, loaded without undici's index. The index loads
 * every dispatcher, the mock and snapshot agents, the caches, fetch, WebSocket and EventSource: 7 MiB of
 * every process's resident memory that none of them uses (bench/README.md, Memory). The paths are those of
 * the undici version package.json pins; lib/util/undici.test.ts fails if an upgrade moves them. Types
 * (`Dispatcher.ResponseData`, ...) are imported from 'undici' as types only, which loads nothing.
 */
const load = createRequire(import.meta.url);

/** undici's `Agent` (a pool of connections per origin). */
export const Agent = load('undici/lib/dispatcher/agent.js') as typeof Undici.Agent;
export type Agent = Undici.Agent;

type RequestOptions = Omit<Undici.Dispatcher.RequestOptions, 'origin' | 'path' | 'method'> & {
  /** Every request names its dispatcher: there is no global one here. */
  dispatcher: Undici.Dispatcher;
  method?: Undici.Dispatcher.HttpMethod;
};

const apiRequest = load('undici/lib/api/api-request.js') as (
  this: Undici.Dispatcher,
  options: Undici.Dispatcher.RequestOptions,
) => Promise<Undici.Dispatcher.ResponseData>;

/** undici's `request(url, options)`: origin and path from `url`, GET (PUT with a body) unless `method` says otherwise. */
export async function request(url: string | URL, options: RequestOptions): Promise<Undici.Dispatcher.ResponseData> {
  const u = typeof url === 'string' ? new URL(url) : url;
  const { dispatcher, ...rest } = options;
  return await apiRequest.call(dispatcher, {
    ...rest,
    origin: u.origin,
    path: `${u.pathname}${u.search}`,
    method: options.method ?? (options.body ? 'PUT' : 'GET'),
  });
}
