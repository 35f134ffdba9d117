import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

/**
 * Test PKI with the real `openssl` CLI: a CA per run and certificates it issues (server, client or
 * both). Keys are P-256 EC by default (instant to generate on slow machines); RSA on request.
 */

const run = promisify(execFile);

/** A certificate and its key, as files and as PEM text. */
export interface CertFiles {
  certFile: string;
  keyFile: string;
  certPem: string;
  keyPem: string;
}

/** A certificate authority made by {@link createCA}. */
export interface CA extends CertFiles {
  name: string;
}

/** Key algorithm of a generated key. */
export type KeyType = 'ec' | 'rsa';

/** What {@link issueCert} puts in a certificate. */
export interface CertSubject {
  commonName: string;
  /** Subject alternative names of type DNS. */
  dnsNames?: string[];
  /** Subject alternative names of type IP. */
  ipAddresses?: string[];
  /** Subject O= values (Kubernetes reads them as groups, e.g. system:masters). */
  organizations?: string[];
  /** Extended key usages; default both serverAuth and clientAuth. */
  usage?: 'server' | 'client' | 'both';
  /** Base name of the files (`<fileName>.crt`, `<fileName>.key`); default derived from the common name. */
  fileName?: string;
  keyType?: KeyType;
  /** Validity in days (default 30). */
  days?: number;
}

function newKeyArgs(keyType: KeyType): string[] {
  return keyType === 'rsa' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];
}

function subjectString(commonName: string, organizations: string[] = []): string {
  const esc = (s: string) => s.replace(/[/\\]/g, (c) => `\\${c}`);
  return `${organizations.map((o) => `/O=${esc(o)}`).join('')}/CN=${esc(commonName)}`;
}

async function openssl(args: string[], what: string): Promise<void> {
  try {
    await run('openssl', args, { maxBuffer: 1024 * 1024 });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`openssl failed while ${what}: ${stderr.trim() || (err as Error).message}`);
  }
}

/** Creates a self-signed CA (`<dir>/<name>-ca.crt`, `.key`), valid 10 years, EC P-256 unless said otherwise. */
export async function createCA(dir: string, name: string, options: { keyType?: KeyType } = {}): Promise<CA> {
  await mkdir(dir, { recursive: true });
  const base = join(dir, `${name.replace(/[^A-Za-z0-9_.-]+/g, '-')}-ca`);
  const certFile = `${base}.crt`;
  const keyFile = `${base}.key`;
  await openssl(
    [
      'req',
      '-x509',
      '-new',
      ...newKeyArgs(options.keyType ?? 'ec'),
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '3650',
      '-subj',
      subjectString(`${name} CA`),
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
    ],
    `creating CA ${name}`,
  );
  return { name, certFile, keyFile, certPem: await readFile(certFile, 'utf8'), keyPem: await readFile(keyFile, 'utf8') };
}

/**
 * Issues a certificate signed by `ca` into `dir` with the given names; returns the file paths and PEMs.
 * Safe to call concurrently in one folder (random serials, per-certificate temporary files).
 */
export async function issueCert(ca: CA, dir: string, subject: CertSubject): Promise<CertFiles> {
  await mkdir(dir, { recursive: true });
  const base = join(dir, subject.fileName ?? subject.commonName.replace(/[^A-Za-z0-9_.-]+/g, '-'));
  const certFile = `${base}.crt`;
  const keyFile = `${base}.key`;
  const csrFile = `${base}.csr`;
  const extFile = `${base}.ext`;
  const keyType = subject.keyType ?? 'ec';
  const sans = [...(subject.dnsNames ?? []).map((d) => `DNS:${d}`), ...(subject.ipAddresses ?? []).map((ip) => `IP:${ip}`)];
  const eku = { server: 'serverAuth', client: 'clientAuth', both: 'serverAuth,clientAuth' }[subject.usage ?? 'both'];
  const ext = [
    'basicConstraints=critical,CA:FALSE',
    `keyUsage=critical,${keyType === 'rsa' ? 'digitalSignature,keyEncipherment' : 'digitalSignature'}`,
    `extendedKeyUsage=${eku}`,
    'subjectKeyIdentifier=hash',
    'authorityKeyIdentifier=keyid,issuer',
    ...(sans.length > 0 ? [`subjectAltName=${sans.join(',')}`] : []),
  ];
  await writeFile(extFile, `${ext.join('\n')}\n`);
  try {
    await openssl(
      ['req', '-new', ...newKeyArgs(keyType), '-nodes', '-keyout', keyFile, '-out', csrFile, '-subj', subjectString(subject.commonName, subject.organizations)],
      `creating a key for ${subject.commonName}`,
    );
    await openssl(
      [
        'x509',
        '-req',
        '-in',
        csrFile,
        '-CA',
        ca.certFile,
        '-CAkey',
        ca.keyFile,
        '-set_serial',
        `0x${randomBytes(16).toString('hex')}`,
        '-days',
        String(subject.days ?? 30),
        '-extfile',
        extFile,
        '-out',
        certFile,
      ],
      `signing the certificate of ${subject.commonName}`,
    );
  } finally {
    await rm(csrFile, { force: true });
    await rm(extFile, { force: true });
  }
  return { certFile, keyFile, certPem: await readFile(certFile, 'utf8'), keyPem: await readFile(keyFile, 'utf8') };
}
