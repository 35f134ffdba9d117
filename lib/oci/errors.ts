import { StallingError, TransientError } from '../errors.js';
import { Reason } from '../api/constants.js';

/**
 * Typed registry errors. Every error carries the registry host, a stable `code` and (for HTTP answers)
 * the status. `code` is the registry's own error code from the distribution spec (UNAUTHORIZED, DENIED,
 * NAME_UNKNOWN, MANIFEST_UNKNOWN, BLOB_UNKNOWN, TOOMANYREQUESTS, ...) or one of Flotilla's codes for what
 * happens below HTTP (TLS_UNKNOWN_CA, ECONNREFUSED, TIMEOUT, ...). Messages never hold credentials.
 */

/** Error codes defined by the OCI distribution spec, plus UNSUPPORTED/UNKNOWN which registries also send. */
export const DistributionErrorCode = [
  'BLOB_UNKNOWN',
  'BLOB_UPLOAD_INVALID',
  'BLOB_UPLOAD_UNKNOWN',
  'DIGEST_INVALID',
  'MANIFEST_BLOB_UNKNOWN',
  'MANIFEST_INVALID',
  'MANIFEST_UNKNOWN',
  'NAME_INVALID',
  'NAME_UNKNOWN',
  'SIZE_INVALID',
  'UNAUTHORIZED',
  'DENIED',
  'UNSUPPORTED',
  'TOOMANYREQUESTS',
  'UNKNOWN',
  'UNAVAILABLE',
  'PAGINATION_NUMBER_INVALID',
  'RANGE_INVALID',
  'TAG_INVALID',
  'MANIFEST_UNVERIFIED',
] as const;

/** Codes for failures below HTTP or without a registry error body. */
export const TransportErrorCode = {
  /** The server's certificate is not signed by a trusted CA (give `caBundle`). */
  TlsUnknownCA: 'TLS_UNKNOWN_CA',
  /** The certificate does not name the host that was dialled. */
  TlsHostnameMismatch: 'TLS_HOSTNAME_MISMATCH',
  /** The certificate is expired or not yet valid. */
  TlsCertExpired: 'TLS_CERT_EXPIRED',
  /** The server answered a TLS handshake with plain HTTP: it is an HTTP registry (set `basicHTTP`). */
  TlsToPlainHTTP: 'TLS_TO_PLAIN_HTTP',
  /** Plain HTTP was sent to a TLS server (unset `basicHTTP`). */
  PlainHTTPToTls: 'PLAIN_HTTP_TO_TLS',
  /** Any other TLS failure. */
  Tls: 'TLS_ERROR',
  /** Nothing listens on the port. */
  ConnectionRefused: 'ECONNREFUSED',
  /** The connection broke (reset, closed early). */
  ConnectionReset: 'ECONNRESET',
  /** The host name does not resolve. */
  HostNotFound: 'ENOTFOUND',
  /** Connecting, or waiting for headers or body, took too long. */
  Timeout: 'TIMEOUT',
  /** An HTTP status with no registry error code (e.g. a 502 from a proxy). */
  HTTPStatus: 'HTTP_STATUS',
} as const;

/** Fields every registry error carries. */
export interface RegistryErrorInfo {
  /** Registry host (`host:port`). */
  readonly registry: string;
  /** Registry error code or a {@link TransportErrorCode}. */
  readonly code: string;
  /** HTTP status, when the registry answered. */
  readonly status: number | undefined;
}

/** Details used to construct a registry error. */
export interface RegistryErrorDetails {
  registry: string;
  code: string;
  status?: number;
  cause?: unknown;
  retryAfterMs?: number;
}

/** Copies the registry fields onto an error (the three classes below extend different bases). */
function setInfo(err: RegistryErrorInfo, details: RegistryErrorDetails): void {
  Object.assign(err, { registry: details.registry, code: details.code, status: details.status });
}

/**
 * The registry answered and refused: wrong or missing credentials (UNAUTHORIZED, DENIED; reason
 * AuthenticationFailed) or anything else 4xx (reason RegistryRefused). Retrying the same request fails again.
 */
export class RegistryRefusedError extends StallingError implements RegistryErrorInfo {
  declare readonly registry: string;
  declare readonly code: string;
  declare readonly status: number | undefined;

  constructor(message: string, details: RegistryErrorDetails) {
    const auth = details.code === 'UNAUTHORIZED' || details.code === 'DENIED';
    super(auth ? Reason.AuthenticationFailed : Reason.RegistryRefused, message, details);
    setInfo(this, details);
  }
}

/**
 * The registry's TLS identity could not be verified, or the scheme is wrong (HTTP vs HTTPS). The user must
 * fix the configuration (`caBundle`, `basicHTTP`, `insecureSkipTLS`) or the registry's certificate.
 */
export class RegistryTLSError extends StallingError implements RegistryErrorInfo {
  declare readonly registry: string;
  declare readonly code: string;
  declare readonly status: number | undefined;

  constructor(message: string, details: RegistryErrorDetails) {
    super(Reason.RegistryUnreachable, message, details);
    setInfo(this, details);
  }
}

/**
 * The registry could not be reached or failed transiently (connection refused or reset, timeout, 5xx,
 * TOOMANYREQUESTS); retry with backoff, or after `retryAfterMs` when the registry said so.
 */
export class RegistryUnavailableError extends TransientError implements RegistryErrorInfo {
  declare readonly registry: string;
  declare readonly code: string;
  declare readonly status: number | undefined;

  constructor(message: string, details: RegistryErrorDetails) {
    super(Reason.RegistryUnreachable, message, details);
    setInfo(this, details);
  }
}

/** Which artifact-level reason an {@link ArtifactError} has. */
export type ArtifactErrorReason = typeof Reason.ArtifactTampered | typeof Reason.InvalidBundle | typeof Reason.BundleTooLarge;

/**
 * The artifact itself is wrong: bytes that do not match their digest or size (ArtifactTampered), a
 * manifest or layer Flotilla does not accept (InvalidBundle), or more than the configured limits
 * (BundleTooLarge). Nothing of such an artifact is ever applied.
 */
export class ArtifactError extends StallingError {
  /** The layer (its title, i.e. path in the bundle) or blob the error is about, when there is one. */
  readonly layer: string | undefined;

  constructor(reason: ArtifactErrorReason, message: string, options: { layer?: string; cause?: unknown } = {}) {
    super(reason, message, options);
    this.layer = options.layer;
  }
}

/** True for any of the registry errors above (they all carry registry, code and status). */
export function isRegistryError(err: unknown): err is RegistryRefusedError | RegistryTLSError | RegistryUnavailableError {
  return err instanceof RegistryRefusedError || err instanceof RegistryTLSError || err instanceof RegistryUnavailableError;
}

/** The registry or transport code of an error, if it is a registry error. */
export function registryErrorCode(err: unknown): string | undefined {
  return isRegistryError(err) ? err.code : undefined;
}

/** The first `{code, message}` of a distribution error body (`{"errors":[...]}`), if the body is one. */
export function parseErrorBody(text: string): { code: string; message: string } | undefined {
  try {
    const parsed = JSON.parse(text) as { errors?: Array<{ code?: unknown; message?: unknown }> };
    const first = parsed.errors?.[0];
    if (first && typeof first.code === 'string') {
      return { code: first.code, message: typeof first.message === 'string' ? first.message : '' };
    }
  } catch {
    // not JSON: the caller falls back to the status
  }
  return undefined;
}

/** The code to use for an HTTP status when the body names none. */
export function codeForStatus(status: number): string {
  switch (status) {
    case 401:
      return 'UNAUTHORIZED';
    case 403:
      return 'DENIED';
    case 429:
      return 'TOOMANYREQUESTS';
    case 405:
      return 'UNSUPPORTED';
    default:
      return TransportErrorCode.HTTPStatus;
  }
}

/** True for statuses worth retrying: 408, 429 and 5xx except 501/505 (which never change). */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status !== 501 && status !== 505);
}

const UNKNOWN_CA_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
]);
const HOSTNAME_CODES = new Set(['ERR_TLS_CERT_ALTNAME_INVALID', 'HOSTNAME_MISMATCH']);
const EXPIRED_CODES = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);
const PLAIN_HTTP_CODES = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ERR_SSL_HTTP_REQUEST']);
const REFUSED_CODES = new Set(['ECONNREFUSED']);
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'EHOSTUNREACH', 'ENETUNREACH']);
const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ESOCKETTIMEDOUT']);
const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN']);

/** Every `code` found on an error, its causes and the members of an AggregateError. */
function errorCodes(err: unknown, depth = 0): string[] {
  if (typeof err !== 'object' || err === null || depth > 5) return [];
  const out: string[] = [];
  const { code, cause, errors } = err as { code?: unknown; cause?: unknown; errors?: unknown };
  if (typeof code === 'string') out.push(code);
  if (Array.isArray(errors)) for (const e of errors) out.push(...errorCodes(e, depth + 1));
  out.push(...errorCodes(cause, depth + 1));
  return out;
}

/**
 * Translates what undici or Node threw for a request into a registry error: TLS failures (unknown CA,
 * hostname mismatch, expired, a plain-HTTP server) become {@link RegistryTLSError}; refused, reset,
 * unresolvable and timed-out connections become {@link RegistryUnavailableError}. Flotilla errors pass through.
 */
export function translateNetworkError(err: unknown, registry: string, operation: string): Error {
  if (err instanceof StallingError || err instanceof TransientError) return err;
  const codes = errorCodes(err);
  const has = (set: Set<string>) => codes.find((c) => set.has(c));
  const raw = err instanceof Error ? err.message : String(err);
  const tls = (code: string, what: string) =>
    new RegistryTLSError(`${operation}: TLS error talking to registry ${registry}: ${what}`, { registry, code, cause: err });
  const down = (code: string, what: string) =>
    new RegistryUnavailableError(`${operation}: cannot reach registry ${registry}: ${what}`, { registry, code, cause: err });
  const unknownCA = has(UNKNOWN_CA_CODES);
  if (unknownCA) {
    return tls(
      TransportErrorCode.TlsUnknownCA,
      `its certificate is not signed by a trusted CA (${unknownCA}); give the registry's CA (caBundle), or insecureSkipTLS for tests only`,
    );
  }
  const hostname = has(HOSTNAME_CODES);
  if (hostname) return tls(TransportErrorCode.TlsHostnameMismatch, `its certificate does not name ${registry} (${hostname})`);
  const expired = has(EXPIRED_CODES);
  if (expired) return tls(TransportErrorCode.TlsCertExpired, `its certificate is expired or not yet valid (${expired})`);
  if (has(PLAIN_HTTP_CODES) || /wrong version number|packet length too long|http request/i.test(raw)) {
    return tls(
      TransportErrorCode.TlsToPlainHTTP,
      'it answered the TLS handshake with plain HTTP; this registry serves plain HTTP: set basicHTTP: true to use it without TLS',
    );
  }
  const otherTls = codes.find((x) => x.startsWith('ERR_SSL_') || x.startsWith('ERR_TLS_') || x === 'EPROTO');
  if (otherTls) return tls(TransportErrorCode.Tls, otherTls);
  if (has(REFUSED_CODES)) return down(TransportErrorCode.ConnectionRefused, 'connection refused');
  const timeout = has(TIMEOUT_CODES);
  if (timeout) return down(TransportErrorCode.Timeout, `timed out (${timeout})`);
  const dns = has(DNS_CODES);
  if (dns) return down(TransportErrorCode.HostNotFound, `the host does not resolve (${dns})`);
  const reset = has(RESET_CODES);
  if (reset) return down(TransportErrorCode.ConnectionReset, `the connection broke (${reset})`);
  return down(codes[0] ?? 'UNKNOWN', raw.replace(/\/\/[^/@\s]*@/g, '//'));
}
