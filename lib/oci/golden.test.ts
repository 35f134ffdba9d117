import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { contentsID, deploymentID, optionsHash, readGitRepoBundles } from '../bundle/index.js';
import { removeTree, writeTree } from '../bundle/testing.js';
import { buildArtifact, bundleConfigBytes } from './artifact.js';

/**
 * Golden digests of one fixed bundle: the bytes that identify a bundle version (contents ID, artifact
 * config, manifest) and a deployment (options hash) must never change by accident, since Bundles,
 * BundleDeployments and registries already hold them. The expected strings were computed once and are
 * written here literally; a change of any of them is a format change and needs a new format version.
 */

const TREE = {
  'apps/web/fleet.yaml': [
    'defaultNamespace: web',
    'namespaceAnnotations: {zeta.example.com/owner: "Zoë", alpha.example.com/note: "日本"}',
    'diff: {comparePatches: [{kind: ConfigMap, name: greeting, jsonPointers: [/data/rocket]}]}',
    'targetCustomizations: [{name: prod, clusterSelector: {matchLabels: {env: prod}}, yaml: {overlays: [prod]}}]',
    '',
  ].join('\n'),
  'apps/web/configmap.yaml': [
    'apiVersion: v1',
    'kind: ConfigMap',
    'metadata: {name: greeting}',
    'data:',
    '  de: "Grüße aus Köln"',
    '  ja: "こんにちは世界"',
    '  rocket: "🚀"',
    '',
  ].join('\n'),
  'apps/web/z-service.yaml': 'apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n',
  'apps/web/ç-secret-free.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cedille}\ndata: {note: "ç"}\n',
  'apps/web/overlays/prod/configmap_patch.yaml': 'data: {env: "prod – ünïcode"}\n',
};

const META = {
  bundleNamespace: 'fleet-default',
  source: 'https://user:token@git.example.com/org/repo.git',
  revision: '0123456789abcdef0123456789abcdef01234567',
};

const sha256 = (bytes: Buffer | string): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

describe('golden digests of a fixed bundle', () => {
  it('keep its contents ID, artifact config digest, manifest digest and options hash', async () => {
    const root = await writeTree(TREE);
    try {
      const [bundle, ...others] = await readGitRepoBundles(root, { repoName: 'golden', paths: ['apps/web'] });
      expect(others).to.have.length(0);
      if (!bundle) throw new Error('no bundle read from the golden tree');
      expect(bundle.files.map((f) => f.path)).to.deep.equal(['configmap.yaml', 'overlays/prod/configmap_patch.yaml', 'z-service.yaml', 'ç-secret-free.yaml']);

      expect(bundle.fleetYaml.namespaceAnnotations).to.deep.equal({ 'zeta.example.com/owner': 'Zoë', 'alpha.example.com/note': '日本' });
      expect(bundle.fleetYaml.diff?.comparePatches?.[0]?.jsonPointers).to.deep.equal(['/data/rocket']);

      const id = contentsID(bundle.files);
      const meta = { ...META, bundleName: bundle.name, contentsID: id };
      const artifact = await buildArtifact(bundle.files, meta);
      const options = optionsHash({
        defaultNamespace: bundle.fleetYaml.defaultNamespace,
        namespaceAnnotations: bundle.fleetYaml.namespaceAnnotations,
        diff: bundle.fleetYaml.diff,
        yaml: { overlays: ['prod'] },
      });

      expect(bundle.name).to.equal('golden-apps-web');
      expect(id).to.equal('06d65fc52330fb32babdb3c74cc778edc93587a920c7c573c2078ffbeb4add6c');
      expect(sha256(bundleConfigBytes(meta))).to.equal('sha256:9077e3f94f529ddd665412a2e22c52dec9cd09722556817fd71fe10a79dcc6f6');
      expect(artifact.config.digest).to.equal('sha256:9077e3f94f529ddd665412a2e22c52dec9cd09722556817fd71fe10a79dcc6f6');
      expect(sha256(artifact.manifest)).to.equal('sha256:1c309deac7ef1b3c0e08beea5f5227270c598aa515012c78fa617c3cdf9214f0');
      expect(artifact.digest).to.equal('sha256:1c309deac7ef1b3c0e08beea5f5227270c598aa515012c78fa617c3cdf9214f0');
      expect(options).to.equal('88862a7c5a917ef29fbbf5503e87674f94cb8c7bb33100510c04092a07d27f35');
      expect(deploymentID(id, options)).to.equal(`s-${id}:${options}`);
    } finally {
      await removeTree(root);
    }
  });
});
