/**
 * Option blocks shared by several kinds and by fleet.yaml: deployment options, targets, target
 * restrictions, the pinned OCI artifact reference and inline bundle resources. Field names are Fleet's.
 */
import { z } from 'zod';
import { atomic, refineWithCel } from './crd-extensions.js';
import { HelmOptionsSchema, KustomizeOptionsSchema } from './helm.js';
import { BundleState, BundleStateSchema } from './status.js';
import { LabelSelectorSchema, namespaceName, objectName, stringMap } from './meta.js';
import { lazySchema } from './lazy.js';

/** Drift correction settings (Fleet `correctDrift`). */
export const CorrectDriftSchema = lazySchema(() =>
  z
    .strictObject({
      enabled: z.boolean().optional().describe('Re-apply the desired state when resources in the cluster were modified (drift). Default false.'),
      force: z.boolean().optional().describe('Delete and re-create resources that cannot be patched back to the desired state.'),
      keepFailHistory: z.boolean().optional().describe('Accepted for Fleet compatibility; Flotilla keeps no release history.'),
    })
    .describe('Drift correction: whether to undo changes made to deployed resources outside of git.'),
);

/** Drift correction settings. */
export type CorrectDrift = z.infer<typeof CorrectDriftSchema>;

/** One JSON patch operation used to ignore a difference. */
export const PatchOperationSchema = lazySchema(() =>
  z
    .strictObject({
      op: z.enum(['add', 'remove', 'replace', 'move', 'copy', 'test']).describe('JSON patch operation, usually "remove".'),
      path: z.string().min(1).describe('JSON pointer the operation applies to, e.g. /spec/replicas.'),
      value: z.string().optional().describe('Value for add, replace and test (as in Fleet, a string).'),
    })
    .describe('A JSON patch operation applied to both sides before comparing.'),
);

/** Which differences to ignore for the resources it names (Fleet `comparePatches[]`). */
export const ComparePatchSchema = lazySchema(() =>
  z
    .strictObject({
      apiVersion: z.string().optional().describe('apiVersion of the resources this applies to.'),
      kind: z.string().optional().describe('Kind of the resources this applies to.'),
      name: z.string().optional().describe('Name of the resource this applies to.'),
      namespace: z.string().optional().describe('Namespace of the resource this applies to.'),
      operations: z.array(PatchOperationSchema).optional().describe('JSON patch operations applied before comparing desired and actual state.'),
      jsonPointers: z.array(z.string()).optional().describe('JSON pointers of fields whose differences are ignored.'),
    })
    .describe('Differences to ignore when checking a resource for drift.'),
);

/** Which differences to ignore. */
export type ComparePatch = z.infer<typeof ComparePatchSchema>;

/** Drift comparison settings (Fleet `diff`). */
export const DiffOptionsSchema = lazySchema(() =>
  z
    .strictObject({
      comparePatches: z.array(ComparePatchSchema).optional().describe('Per-resource differences to ignore.'),
    })
    .describe('How resources are compared with the desired state.'),
);

/** Fleet `ignore`: conditions of deployed objects that do not count when their readiness is judged. */
export const IgnoreOptionsSchema = lazySchema(() =>
  z
    .strictObject({
      conditions: z
        .array(stringMap('Fields a condition must all have (e.g. type: Active, status: "False") to be ignored.'))
        .optional()
        .describe('Conditions of deployed objects that are ignored when computing readiness.'),
    })
    .describe('What is ignored when monitoring the deployed objects.'),
);

/** Plain YAML bundle options (Fleet `yaml`). */
export const YamlOptionsSchema = lazySchema(() =>
  z
    .strictObject({
      overlays: z
        .array(z.string().min(1))
        .optional()
        .describe('Names of overlays to apply, in order: files under overlays/<name>/ replace or patch the base files.'),
    })
    .describe('Options for plain YAML bundles.'),
);

/**
 * Fields of BundleDeploymentOptions, as a shape so that Bundle, BundleTarget and fleet.yaml can include
 * them. Kept flat (no nesting) because that is Fleet's layout.
 */
export const bundleDeploymentOptionsShape = lazySchema(() => ({
  defaultNamespace: namespaceName('Namespace for namespaced resources that name none.').optional(),
  namespace: namespaceName('Forces every namespaced resource into this namespace (Fleet "namespace").').optional(),
  targetNamespace: namespaceName('Same effect as namespace; kept for GitRepo.spec.targetNamespace.').optional(),
  serviceAccount: objectName('Service account the agent impersonates when applying (downstream).').optional(),
  keepResources: z.boolean().optional().describe('Keep deployed resources when the bundle is removed from the cluster instead of deleting them.'),
  deleteNamespace: z
    .boolean()
    .optional()
    .describe(
      "Delete the bundle's namespace (targetNamespace, namespace or defaultNamespace) downstream when the bundle is removed, as Fleet does; never default, kube-* or the agent's own; ignored with keepResources.",
    ),
  deleteCRDResources: z
    .boolean()
    .optional()
    .describe("Delete a chart's crds/ CRDs (and so their custom resources) when the bundle is removed, as Fleet does; kept otherwise, Helm's rule."),
  correctDrift: CorrectDriftSchema.optional(),
  diff: DiffOptionsSchema.optional(),
  yaml: YamlOptionsSchema.optional(),
  helm: HelmOptionsSchema.optional(),
  kustomize: KustomizeOptionsSchema.optional(),
  ignore: IgnoreOptionsSchema.optional(),
  namespaceLabels: stringMap('Labels put on the namespace the bundle deploys into.').optional(),
  namespaceAnnotations: stringMap('Annotations put on the namespace the bundle deploys into.').optional(),
}));

/** How a bundle is deployed to a cluster (Fleet BundleDeploymentOptions). */
export const BundleDeploymentOptionsSchema = lazySchema(() =>
  z.strictObject(bundleDeploymentOptionsShape).describe('How the bundle is deployed: namespaces, drift handling, overlays.'),
);

/** How a bundle is deployed to a cluster. */
export type BundleDeploymentOptions = z.infer<typeof BundleDeploymentOptionsSchema>;

/** Fields that select clusters; shared by targets, target restrictions and GitRepo targets. */
export const targetMatchShape = lazySchema(() => ({
  name: z.string().max(253).optional().describe('Name of this target, for display and customization.'),
  clusterName: objectName('Matches the Cluster with this name.').optional(),
  clusterSelector: LabelSelectorSchema.optional().describe('Matches Clusters whose labels match this selector.'),
  clusterGroup: objectName('Matches the Clusters in the ClusterGroup with this name.').optional(),
  clusterGroupSelector: LabelSelectorSchema.optional().describe('Matches the Clusters in every ClusterGroup whose labels match this selector.'),
}));

/** Clusters a target may reach at all (Fleet targetRestrictions): never customization. */
export const TargetRestrictionSchema = lazySchema(() => z.strictObject(targetMatchShape).describe('Restricts which clusters any target may match.'));

/** Clusters a target may reach. */
export type TargetRestriction = z.infer<typeof TargetRestrictionSchema>;

/** A target: which clusters, and how to customize the deployment for them. */
export const BundleTargetSchema = lazySchema(() =>
  z
    .strictObject({
      ...targetMatchShape,
      doNotDeploy: z.boolean().optional().describe('Matching clusters get nothing (excludes them from later targets).'),
      ...bundleDeploymentOptionsShape,
    })
    .describe('Clusters to deploy to and the options used for them; the first matching target wins.'),
);

/** A target with its customization. */
export type BundleTarget = z.infer<typeof BundleTargetSchema>;

/** A bundle another bundle depends on (Fleet `dependsOn[]`). */
export const BundleRefSchema = lazySchema(() =>
  z
    .strictObject({
      name: objectName('Name of the bundle depended on.').optional(),
      selector: LabelSelectorSchema.optional().describe('Bundles whose labels match; all of them must be ready.'),
      acceptedStates: z
        .array(BundleStateSchema)
        .max(Object.keys(BundleState).length)
        .optional()
        .describe('States of the dependency on the cluster that let this bundle deploy (default: Ready).'),
    })
    .describe('A bundle (by name or label selector) that must be ready on the cluster before this one deploys.'),
);

/** A bundle dependency. */
export type BundleRef = z.infer<typeof BundleRefSchema>;

/** `sha256:` followed by 64 lowercase hex digits. */
export const DIGEST = /^sha256:[a-f0-9]{64}$/;

const HOST = '([a-zA-Z0-9]([-a-zA-Z0-9.]*[a-zA-Z0-9])?|\\[[0-9a-fA-F:]+\\])(:[0-9]{1,5})?';
const PATH_COMPONENT = '[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*';
const REPOSITORY = `${HOST}/${PATH_COMPONENT}(/${PATH_COMPONENT})*`;

/** A registry repository without tag or digest: `host[:port]/path`. */
export const REPOSITORY_REFERENCE = new RegExp(`^${REPOSITORY}$`);

/** A repository pinned by manifest digest: `host[:port]/path@sha256:<hex>`. */
export const PINNED_REFERENCE = new RegExp(`^${REPOSITORY}@sha256:[a-f0-9]{64}$`);

/** A base64-encoded PEM CA bundle. */
export function caBundle(description: string) {
  return z
    .string()
    .max(1 << 20)
    .regex(/^[A-Za-z0-9+/=\s]*$/, 'must be base64')
    .describe(description);
}

/** Where a bundle version lives in an OCI registry, always pinned by digest. */
export const OCIArtifactRefSchema = lazySchema(() =>
  // Atomic: the reference, its digest and how to reach it change together (one writer, one value).
  atomic(
    refineWithCel(
      z.strictObject({
        reference: z
          .string()
          .max(1024)
          .regex(PINNED_REFERENCE, 'must be "host[:port]/path@sha256:<64 hex>"')
          .describe('The artifact: repository pinned by manifest digest, "host[:port]/path@sha256:<hex>".'),
        digest: z
          .string()
          .max(71)
          .regex(DIGEST, 'must be "sha256:<64 lowercase hex>"')
          .describe('Manifest digest "sha256:<hex>"; equals the digest in reference. Every pulled blob is verified against it.'),
        secretName: objectName('Secret (same namespace) with read credentials for the registry (username/password).').optional(),
        basicHTTP: z.boolean().optional().describe('Use plain HTTP instead of HTTPS (test registries only).'),
        insecureSkipTLS: z.boolean().optional().describe('Do not verify the registry TLS certificate (test registries only).'),
        caBundle: caBundle('Base64 PEM CA bundle used to verify the registry certificate.').optional(),
        verify: z
          .strictObject({
            publicKeys: z
              .array(z.string().max(4096))
              .min(1)
              .max(16)
              .describe('PEM public keys (ECDSA P-256) trusted to sign the artifact; one valid cosign signature by any of them is enough.'),
          })
          .optional()
          .describe('Agents verify a cosign signature of the digest before applying anything (from the GitRepo verify Secret).'),
        decryptionSecretName: objectName('Secret (same namespace) holding the bundle keys (key-<id>) the encrypted layers are read with.').optional(),
        encryptionKeyID: z.string().max(64).optional().describe('ID of the key the layers of this version are encrypted under.'),
      }),
      {
        rule: "self.reference.endsWith('@' + self.digest)",
        message: 'reference must be pinned by the same digest as digest',
        check: (ref) => ref.reference.endsWith(`@${ref.digest}`),
      },
    ).describe('A bundle artifact in an OCI registry, pinned by manifest digest.'),
  ),
);

/** A pinned bundle artifact. */
export type OCIArtifactRef = z.infer<typeof OCIArtifactRefSchema>;

/** A path inside a bundle: relative, no empty, "." or ".." segments. */
const SEGMENT = '([^/.][^/]*|\\.[^/.][^/]*|\\.\\.[^/]+)';
/** A relative path inside a bundle that cannot escape it. */
export const BUNDLE_PATH = new RegExp(`^${SEGMENT}(/${SEGMENT})*$`);

/** One file of a bundle, inline (etcd mode). */
export const BundleResourceSchema = lazySchema(() =>
  z
    .strictObject({
      name: z
        .string()
        .max(4096)
        .regex(BUNDLE_PATH, 'must be a relative path inside the bundle (no "..", no leading "/")')
        .describe('Path of the file in the bundle, e.g. "deploy.yaml" or "overlays/prod/svc_patch.yaml".'),
      content: z.string().describe('File content, encoded as said by encoding.'),
      encoding: z
        .enum(['', 'base64', 'base64+gz'])
        .optional()
        .describe('Encoding of content: "" (plain text, default), "base64" or "base64+gz" (gzip, then base64).'),
    })
    .describe('A file of the bundle, stored inline in the object.'),
);

/** One inline bundle file. */
export type BundleResource = z.infer<typeof BundleResourceSchema>;
