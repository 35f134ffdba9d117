import { expect } from 'chai';
import { ANNOTATION_TITLE, BUNDLE_ARTIFACT_TYPE, BUNDLE_CONFIG_MEDIA_TYPE, BUNDLE_FILE_MEDIA_TYPE } from './artifact.js';
import { ArtifactError } from './errors.js';
import { DEFAULT_ARTIFACT_LIMITS, parseBundleConfig, parseBundleManifest, type ArtifactLimits } from './manifest.js';

const d = (c: string) => `sha256:${c.repeat(64)}`;
const layer = (title: unknown, extra: Record<string, unknown> = {}) => ({
  mediaType: BUNDLE_FILE_MEDIA_TYPE,
  digest: d('1'),
  size: 10,
  annotations: { [ANNOTATION_TITLE]: title },
  ...extra,
});
const manifest = (over: Record<string, unknown> = {}) => ({
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  artifactType: BUNDLE_ARTIFACT_TYPE,
  config: { mediaType: BUNDLE_CONFIG_MEDIA_TYPE, digest: d('c'), size: 50 },
  layers: [layer('a.yaml'), layer('b/c.yaml', { digest: d('2') })],
  ...over,
});
const bytes = (m: unknown) => Buffer.from(typeof m === 'string' ? m : JSON.stringify(m));

describe('pulled bundle manifests', () => {
  it('accepts a well-formed bundle manifest', () => {
    const parsed = parseBundleManifest(bytes(manifest({ annotations: { x: 'y' } })), 'bundle X');
    expect(parsed.layers.map((l) => l.path)).to.deep.equal(['a.yaml', 'b/c.yaml']);
    expect(parsed.annotations).to.deep.equal({ x: 'y' });
    expect(parsed.totalBytes).to.equal(20);
  });

  const small: ArtifactLimits = { ...DEFAULT_ARTIFACT_LIMITS, maxFiles: 2, maxFileBytes: 100, maxTotalBytes: 150, maxManifestBytes: 2000, maxConfigBytes: 60 };
  const rejected: Array<[string, unknown, string, RegExp, string?]> = [
    ['not JSON', '{', 'InvalidBundle', /not JSON/],
    ['a JSON array', '[]', 'InvalidBundle', /not a JSON object/],
    ['schemaVersion 1', manifest({ schemaVersion: 1 }), 'InvalidBundle', /schemaVersion/],
    ['an image index', manifest({ mediaType: 'application/vnd.oci.image.index.v1+json' }), 'InvalidBundle', /mediaType/],
    ['a Docker manifest', manifest({ mediaType: 'application/vnd.docker.distribution.manifest.v2+json' }), 'InvalidBundle', /mediaType/],
    ['another artifact type', manifest({ artifactType: 'application/vnd.example' }), 'InvalidBundle', /not a Flotilla bundle/],
    ['no artifact type', manifest({ artifactType: undefined }), 'InvalidBundle', /artifactType/],
    [
      'another config type',
      manifest({ config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: d('c'), size: 2 } }),
      'InvalidBundle',
      /config has media type/,
    ],
    [
      'a config digest that is not sha256/sha512',
      manifest({ config: { mediaType: BUNDLE_CONFIG_MEDIA_TYPE, digest: 'md5:abc', size: 2 } }),
      'InvalidBundle',
      /config has no valid digest/,
    ],
    ['a negative size', manifest({ layers: [layer('a', { size: -1 })] }), 'InvalidBundle', /layer "a" has no valid size/, 'a'],
    [
      'a gzip layer',
      manifest({ layers: [layer('a', { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' })] }),
      'InvalidBundle',
      /layer "a" has media type/,
      'a',
    ],
    [
      'a layer without title',
      manifest({ layers: [{ mediaType: BUNDLE_FILE_MEDIA_TYPE, digest: d('1'), size: 1 }] }),
      'InvalidBundle',
      /layer 0 has no org\.opencontainers\.image\.title/,
    ],
    ['an absolute title', manifest({ layers: [layer('/etc/cron.d/x')] }), 'InvalidBundle', /layer "\/etc\/cron\.d\/x": path is absolute/, '/etc/cron.d/x'],
    ['a title with ..', manifest({ layers: [layer('a/../../x')] }), 'InvalidBundle', /path contains "\.\."/, 'a/../../x'],
    ['an unclean title', manifest({ layers: [layer('a//b')] }), 'InvalidBundle', /empty segment/, 'a//b'],
    ['duplicate titles', manifest({ layers: [layer('a'), layer('a', { digest: d('2') })] }), 'InvalidBundle', /layer "a" appears twice/, 'a'],
    ['a title that is also a directory', manifest({ layers: [layer('a'), layer('a/b')] }), 'InvalidBundle', /"a\/b" is inside "a"/, 'a/b'],
    ['non-string annotations', manifest({ annotations: { a: 1 } }), 'InvalidBundle', /annotations are not strings/],
    ['too many files', manifest({ layers: [layer('a'), layer('b'), layer('c')] }), 'BundleTooLarge', /3 files, over the limit of 2/],
    ['a file over the size limit', manifest({ layers: [layer('a', { size: 101 })] }), 'BundleTooLarge', /layer "a" has 101 bytes/, 'a'],
    ['files over the total limit', manifest({ layers: [layer('a', { size: 100 }), layer('b', { size: 51 })] }), 'BundleTooLarge', /151 bytes in total/],
    [
      'a config over the limit',
      manifest({ config: { mediaType: BUNDLE_CONFIG_MEDIA_TYPE, digest: d('c'), size: 61 } }),
      'BundleTooLarge',
      /config has 61 bytes/,
    ],
    ['a manifest over the limit', manifest({ annotations: { big: 'x'.repeat(2000) } }), 'BundleTooLarge', /manifest has \d+ bytes/],
  ];
  for (const [what, m, reason, message, layerName] of rejected) {
    it(`rejects ${what} (${reason})`, () => {
      try {
        parseBundleManifest(bytes(m), 'bundle r/x@sha256:1', small);
        expect.fail('expected a rejection');
      } catch (err) {
        expect(err).to.be.instanceOf(ArtifactError);
        expect((err as ArtifactError).reason).to.equal(reason);
        expect((err as Error).message)
          .to.match(message)
          .and.to.include('bundle r/x@sha256:1');
        if (layerName !== undefined) expect((err as ArtifactError).layer).to.equal(layerName);
      }
    });
  }

  it('rejects configs without bundle metadata', () => {
    expect(() => parseBundleConfig(Buffer.from('{"formatVersion":1}'), 'w')).to.throw(ArtifactError, /no bundle name/);
    expect(() => parseBundleConfig(Buffer.from('nope'), 'w')).to.throw(ArtifactError, /not JSON/);
    expect(() => parseBundleConfig(Buffer.from('{"bundle":{"name":"a","namespace":"b"}}'), 'w')).to.throw(ArtifactError, /formatVersion/);
  });
});
