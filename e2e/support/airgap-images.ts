import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OCI_INDEX_MEDIA_TYPE, OCI_MANIFEST_MEDIA_TYPE, sha256Digest, type Descriptor, type RegistryClient } from '../../lib/oci/index.js';

/** Test images for the airgap suites, built here from random layers and pushed by tag (no image engine). */

const LAYER = 'application/vnd.oci.image.layer.v1.tar';

/** An image pushed by a test: its top digest and every blob it uses. */
export interface Built {
  digest: string;
  blobs: Descriptor[];
}

async function pushBlob(client: RegistryClient, repo: string, bytes: Buffer, mediaType: string): Promise<Descriptor> {
  const desc = { mediaType, digest: sha256Digest(bytes), size: bytes.length };
  await client.pushBlob(repo, desc, bytes);
  return desc;
}

/** Pushes an image manifest (config + layers); returns its descriptor and the blobs it uses. */
export async function pushManifest(client: RegistryClient, repo: string, layers: Buffer[], platform: string, tag?: string): Promise<Built & { size: number }> {
  const [os, architecture] = platform.split('/');
  const config = await pushBlob(
    client,
    repo,
    Buffer.from(JSON.stringify({ os, architecture, rootfs: { type: 'layers', diff_ids: layers.map((l) => sha256Digest(l)) } })),
    'application/vnd.oci.image.config.v1+json',
  );
  const layerDescs: Descriptor[] = [];
  for (const l of layers) layerDescs.push(await pushBlob(client, repo, l, LAYER));
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST_MEDIA_TYPE, config, layers: layerDescs }));
  const digest = await client.putManifest(repo, tag ?? sha256Digest(manifest), manifest, OCI_MANIFEST_MEDIA_TYPE);
  return { digest, size: manifest.length, blobs: [config, ...layerDescs] };
}

/** Pushes a two-platform index over `base` plus one layer per platform (and `extra`). */
export async function pushIndex(client: RegistryClient, repo: string, tag: string, base: Buffer[], extra: Buffer): Promise<Built> {
  const manifests = [];
  const blobs: Descriptor[] = [];
  for (const platform of ['linux/amd64', 'linux/arm64']) {
    const m = await pushManifest(client, repo, [...base, Buffer.from(`${platform} layer`), extra], platform);
    const [os, architecture] = platform.split('/');
    manifests.push({ mediaType: OCI_MANIFEST_MEDIA_TYPE, digest: m.digest, size: m.size, platform: { os, architecture } });
    blobs.push(...m.blobs);
  }
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX_MEDIA_TYPE, manifests }));
  return { digest: await client.putManifest(repo, tag, index, OCI_INDEX_MEDIA_TYPE), blobs };
}

/**
 * A small Helm chart (the test's own) whose Deployment `<release>-web` references `multi` and `single`
 * by tag through its values, as a bundle directory with its fleet.yaml (release `chart`).
 */
export function chartBundle(dir: string, namespace: string, multi: string, single: string): Record<string, string> {
  return {
    [`${dir}/fleet.yaml`]: `defaultNamespace: ${namespace}\nhelm:\n  releaseName: chart\n`,
    [`${dir}/Chart.yaml`]: 'apiVersion: v2\nname: airgap-chart\nversion: 0.1.0\n',
    [`${dir}/values.yaml`]: `images:\n  multi: "${multi}"\n  single: "${single}"\n`,
    [`${dir}/templates/web.yaml`]: `apiVersion: apps/v1
kind: Deployment
metadata: {name: "{{ .Release.Name }}-web"}
spec:
  replicas: 0
  selector: {matchLabels: {app: chart-web}}
  template:
    metadata: {labels: {app: chart-web}}
    spec:
      initContainers: [{name: init, image: {{ .Values.images.single | quote }}}]
      containers: [{name: web, image: {{ .Values.images.multi | quote }}}]
`,
  };
}

/** A HOME for the cosign CLI whose docker config logs in to `registry` (cosign reads no other credentials). */
export async function cosignHome(dir: string, registry: { host: string; username?: string; password?: string }): Promise<string> {
  const auth = Buffer.from(`${registry.username ?? ''}:${registry.password ?? ''}`).toString('base64');
  await mkdir(join(dir, '.docker'), { recursive: true });
  await writeFile(join(dir, '.docker', 'config.json'), JSON.stringify({ auths: { [registry.host]: { auth } } }));
  return dir;
}
