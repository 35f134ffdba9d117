import { expect } from 'chai';
import {
  ANNOTATION_CREATED,
  BUNDLE_FORMAT_VERSION,
  buildArtifact,
  bundleConfigBytes,
  parseBundleConfig,
  parseBundleManifest,
  sha256Digest,
} from '../lib/oci/index.js';

/**
 * Artifacts of an older shape stay readable after a migration copies them by digest (controller/migrate-versions.ts):
 * format version 1 has had two shapes, before releases (no `created` annotation, no contents ID in the config) and
 * now. Both are built here by the test, the older one with the metadata older controllers had.
 */

const files = [{ path: 'cm.yaml', content: Buffer.from('apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n') }];
const base = { bundleName: 'web', bundleNamespace: 'ws', source: 'https://git.example/apps.git', revision: 'a'.repeat(40) };

describe('artifacts of an older shape', () => {
  it('are read: manifest without the created annotation, config without a contents ID', async () => {
    const old = await buildArtifact(files, base);
    const manifest = parseBundleManifest(old.manifest, 'old artifact');
    expect(manifest.annotations[ANNOTATION_CREATED]).to.equal(undefined);
    expect(manifest.layers.map((l) => l.path)).to.deep.equal(['cm.yaml']);
    const config = parseBundleConfig(bundleConfigBytes(base), 'old artifact');
    expect(config).to.deep.equal({ formatVersion: BUNDLE_FORMAT_VERSION, bundle: { name: 'web', namespace: 'ws' } });
  });

  it('are rewritten in the current shape at the next push: same files, another config and manifest digest', async () => {
    const old = await buildArtifact(files, base);
    const current = await buildArtifact(files, { ...base, commitTime: '2026-01-01T00:00:00Z', contentsID: 'c'.repeat(64) });
    expect(current.layers.map((l) => l.digest)).to.deep.equal(old.layers.map((l) => l.digest));
    expect(current.config.digest).to.not.equal(old.config.digest);
    expect(current.digest).to.not.equal(old.digest);
    expect(parseBundleManifest(current.manifest, 'current').annotations[ANNOTATION_CREATED]).to.equal('2026-01-01T00:00:00Z');
    expect(sha256Digest(current.manifest)).to.equal(current.digest);
  });

  it('a config without a formatVersion is refused, naming the artifact', () => {
    const noVersion = Buffer.from(JSON.stringify({ bundle: { name: 'web', namespace: 'ws' } }));
    expect(() => parseBundleConfig(noVersion, 'artifact x')).to.throw(/artifact x.*formatVersion|formatVersion.*artifact x/);
  });
});
