import { expect } from 'chai';
import { StallingError, TransientError } from '../errors.js';
import {
  RegistryRefusedError,
  RegistryTLSError,
  RegistryUnavailableError,
  codeForStatus,
  isRetryableStatus,
  parseErrorBody,
  registryErrorCode,
  translateNetworkError,
} from './errors.js';

function netError(code: string, message = code, nested = false): Error {
  const inner = Object.assign(new Error(message), { code });
  return nested ? Object.assign(new Error('fetch failed'), { cause: inner }) : inner;
}

describe('registry error translation', () => {
  const cases: Array<[Error, new (...a: never[]) => Error, string]> = [
    [netError('UNABLE_TO_VERIFY_LEAF_SIGNATURE'), RegistryTLSError, 'TLS_UNKNOWN_CA'],
    [netError('SELF_SIGNED_CERT_IN_CHAIN', 'x', true), RegistryTLSError, 'TLS_UNKNOWN_CA'],
    [netError('DEPTH_ZERO_SELF_SIGNED_CERT'), RegistryTLSError, 'TLS_UNKNOWN_CA'],
    [netError('ERR_TLS_CERT_ALTNAME_INVALID'), RegistryTLSError, 'TLS_HOSTNAME_MISMATCH'],
    [netError('CERT_HAS_EXPIRED'), RegistryTLSError, 'TLS_CERT_EXPIRED'],
    [netError('ERR_SSL_WRONG_VERSION_NUMBER'), RegistryTLSError, 'TLS_TO_PLAIN_HTTP'],
    [netError('EPROTO', 'routines:ssl3_get_record:wrong version number'), RegistryTLSError, 'TLS_TO_PLAIN_HTTP'],
    [netError('ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE'), RegistryTLSError, 'TLS_ERROR'],
    [netError('ECONNREFUSED'), RegistryUnavailableError, 'ECONNREFUSED'],
    [Object.assign(new AggregateError([netError('ECONNREFUSED')]), { code: undefined }), RegistryUnavailableError, 'ECONNREFUSED'],
    [netError('UND_ERR_CONNECT_TIMEOUT'), RegistryUnavailableError, 'TIMEOUT'],
    [netError('UND_ERR_HEADERS_TIMEOUT'), RegistryUnavailableError, 'TIMEOUT'],
    [netError('ECONNRESET', 'x', true), RegistryUnavailableError, 'ECONNRESET'],
    [netError('UND_ERR_SOCKET'), RegistryUnavailableError, 'ECONNRESET'],
    [netError('ENOTFOUND'), RegistryUnavailableError, 'ENOTFOUND'],
  ];
  const label = (e: unknown): string => {
    const x = e as { code?: string; cause?: unknown; errors?: unknown[] };
    return x.code ?? (x.cause ? `${label(x.cause)} (as cause)` : x.errors ? `${label(x.errors[0])} (in AggregateError)` : '?');
  };
  for (const [err, type, code] of cases) {
    it(`turns ${label(err)} into ${type.name} ${code}, naming the registry`, () => {
      const out = translateNetworkError(err, 'reg.example.com:5000', 'pulling x');
      expect(out).to.be.instanceOf(type);
      expect(registryErrorCode(out)).to.equal(code);
      expect(out.message).to.include('reg.example.com:5000').and.include('pulling x');
    });
  }

  it('tells the user to set basicHTTP when a plain-HTTP registry answers a TLS handshake', () => {
    expect(translateNetworkError(netError('ERR_SSL_WRONG_VERSION_NUMBER'), 'r:1', 'op').message).to.match(/basicHTTP/);
  });

  it('treats TLS failures as stalling and connection failures as transient', () => {
    expect(translateNetworkError(netError('UNABLE_TO_VERIFY_LEAF_SIGNATURE'), 'r', 'op')).to.be.instanceOf(StallingError);
    expect(translateNetworkError(netError('ECONNREFUSED'), 'r', 'op')).to.be.instanceOf(TransientError);
  });

  it('removes userinfo from unknown error messages', () => {
    const out = translateNetworkError(new Error('bad url https://user:hunter2@host/x'), 'r', 'op');
    expect(out.message).to.not.include('hunter2');
  });

  it('passes Flotilla errors through unchanged', () => {
    const e = new RegistryRefusedError('m', { registry: 'r', code: 'DENIED' });
    expect(translateNetworkError(e, 'r', 'op')).to.equal(e);
  });

  it('gives authentication refusals the AuthenticationFailed reason and others RegistryRefused', () => {
    expect(new RegistryRefusedError('m', { registry: 'r', code: 'UNAUTHORIZED' }).reason).to.equal('AuthenticationFailed');
    expect(new RegistryRefusedError('m', { registry: 'r', code: 'DENIED' }).reason).to.equal('AuthenticationFailed');
    expect(new RegistryRefusedError('m', { registry: 'r', code: 'NAME_UNKNOWN' }).reason).to.equal('RegistryRefused');
    const e = new RegistryUnavailableError('m', { registry: 'r', code: 'TOOMANYREQUESTS', status: 429, retryAfterMs: 5000 });
    expect([e.reason, e.code, e.status, e.retryAfterMs, e.registry]).to.deep.equal(['RegistryUnreachable', 'TOOMANYREQUESTS', 429, 5000, 'r']);
  });

  it('reads the first error of a distribution error body', () => {
    expect(parseErrorBody('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}')).to.deep.equal({
      code: 'MANIFEST_UNKNOWN',
      message: 'manifest unknown',
    });
    expect(parseErrorBody('<html>502</html>')).to.equal(undefined);
    expect(parseErrorBody('{"errors":[]}')).to.equal(undefined);
  });

  it('derives codes from statuses and retries only transient statuses', () => {
    expect([401, 403, 429, 405, 502].map(codeForStatus)).to.deep.equal(['UNAUTHORIZED', 'DENIED', 'TOOMANYREQUESTS', 'UNSUPPORTED', 'HTTP_STATUS']);
    expect([408, 429, 500, 502, 503, 504].every(isRetryableStatus)).to.equal(true);
    expect([400, 401, 403, 404, 405, 501, 505].some(isRetryableStatus)).to.equal(false);
  });
});
