import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cacheDir } from '../stack/binaries.js';

/**
 * The real cosign CLI (built by `stack/tools/install.sh --extras`) for the signing e2e: key pairs made
 * by `cosign generate-key-pair`, signatures by `cosign sign --key` and checks by `cosign verify --key`,
 * all offline (no transparency log) against the stack's plain-HTTP registry. cosign v3 signs by attaching a sigstore
 * bundle as an OCI referrer (the `sha256-<hex>` referrers tag here), not the classic `.sig` tag.
 */

const run = promisify(execFile);

/** The cosign binary the installer recorded; fails saying how to build it. */
export function cosignBinary(): string {
  let recorded: string | undefined;
  try {
    recorded = (JSON.parse(readFileSync(join(cacheDir(), 'stack-binaries.json'), 'utf8')) as { cosign?: string }).cosign;
  } catch {
    // no manifest: the default path below
  }
  const path = recorded ?? join(cacheDir(), 'cosign-v3.1.3', 'bin', 'cosign');
  if (!existsSync(path)) throw new Error(`the cosign CLI is required by this test and missing (${path}); build it with: bash stack/tools/install.sh --extras`);
  return path;
}

/** A key pair written by `cosign generate-key-pair` (encrypted private key, its password, the public key). */
export interface CosignKeyPair {
  dir: string;
  keyFile: string;
  pubFile: string;
  key: string;
  pub: string;
  password: string;
}

/** Runs cosign with `args` in `cwd`; HOME is `cwd` so nothing of the user's is read. Rejects with cosign's stderr. */
export async function cosign(args: string[], cwd: string, password = ''): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run(cosignBinary(), args, {
      cwd,
      env: { ...process.env, HOME: cwd, COSIGN_PASSWORD: password, COSIGN_YES: 'true', TUF_ROOT: join(cwd, '.sigstore') },
      maxBuffer: 4 * 1024 * 1024,
      timeout: 120_000,
    });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`cosign ${args[0]} failed: ${e.stderr?.trim() || e.message}`);
  }
}

/** Makes a key pair with `cosign generate-key-pair` in `dir`. */
export async function generateKeyPair(dir: string, password: string): Promise<CosignKeyPair> {
  await mkdir(dir, { recursive: true });
  await cosign(['generate-key-pair'], dir, password);
  const keyFile = join(dir, 'cosign.key');
  const pubFile = join(dir, 'cosign.pub');
  return { dir, keyFile, pubFile, key: await readFile(keyFile, 'utf8'), pub: await readFile(pubFile, 'utf8'), password };
}

/** `cosign sign --key` of a pinned reference, offline (no transparency log): a sigstore bundle attached as a referrer (cosign v3). */
export async function cosignSign(pair: CosignKeyPair, reference: string): Promise<void> {
  await cosign(
    ['sign', '--key', pair.keyFile, '--tlog-upload=false', '--use-signing-config=false', '--allow-http-registry=true', '--yes', reference],
    pair.dir,
    pair.password,
  );
}

/** `cosign verify --key` of a pinned reference with a public key file, offline; resolves to cosign's stdout. */
export async function cosignVerify(pubFile: string, reference: string, cwd: string): Promise<string> {
  const out = await cosign(['verify', '--key', pubFile, '--insecure-ignore-tlog=true', '--allow-http-registry=true', reference], cwd);
  return out.stdout;
}
