/**
 * Airgap fields (issue 17): GitRepo `spec.images` (where images are copied and how their source registries are
 * reached) and fleet.yaml `images` (local images and image paths of custom resources). See docs/airgap.md.
 */
import { z } from 'zod';
import { objectName } from './meta.js';
import { caBundle } from './options.js';
import { lazySchema } from './lazy.js';

const HOST_PORT = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$/;

const registryAccess = lazySchema(() => ({
  authSecretName: objectName('Secret (same namespace) with username/password or a kubernetes.io/dockerconfigjson for this registry.').optional(),
  basicHTTP: z.boolean().optional().describe('Use plain HTTP instead of HTTPS (test registries only).'),
  insecureSkipTLS: z.boolean().optional().describe('Do not verify the registry TLS certificate (test registries only).'),
  caBundle: caBundle('Base64 PEM CA bundle used to verify the registry certificate.').optional(),
}));

/** Where the controller copies every locked image (KOTS `--registry-endpoint` and `--image-namespace`). */
export const ImageRelocationSchema = lazySchema(() =>
  z
    .strictObject({
      registryEndpoint: z.string().max(255).regex(HOST_PORT, 'must be host[:port]').describe('host[:port] of the private registry images are copied to.'),
      imageNamespace: z
        .string()
        .max(255)
        .regex(/^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/, 'must be a repository path such as "apps" or "team/apps"')
        .optional()
        .describe('Path under the endpoint; an image host/path becomes registryEndpoint/imageNamespace/path@digest.'),
      imagePullSecret: objectName(
        'Secret downstream, in each namespace of a workload running a relocated image, that its pods name in imagePullSecrets (added by the agent); a cluster without it applies nothing (ImagePullSecretNotFound).',
      ).optional(),
      ...registryAccess,
    })
    .describe('Relocation: every locked image is copied by digest to this registry and agents apply the copies.'),
);

/** Access to a source registry images are resolved and copied from. */
export const ImageSourceSchema = lazySchema(() =>
  z
    .strictObject({
      registry: z.string().max(255).regex(HOST_PORT, 'must be host[:port]').describe('host[:port] as written in image references.'),
      mirror: z
        .string()
        .max(512)
        .regex(/^[^/\s]+(\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/, 'must be host[:port] with an optional /path')
        .optional()
        .describe(
          "Resolve and copy this registry's images from host[:port][/path] instead, each under its own path (inside an air gap: the registry and --namespace of flotilla airgap import). The access settings of this entry apply to it.",
        ),
      ...registryAccess,
    })
    .describe('How the controller reaches one source registry (default: HTTPS, anonymous).'),
);

/** GitRepo `spec.images`: turns on the images lock for every bundle of the repository. */
export const GitRepoImagesSchema = lazySchema(() =>
  z
    .strictObject({
      relocation: ImageRelocationSchema.optional(),
      sources: z.array(ImageSourceSchema).max(64).optional().describe('How the controller reaches source registries that are not HTTPS and anonymous.'),
    })
    .describe('Images lock (every image resolved to a digest when a version is built) and optional relocation to a private registry.'),
);

/** GitRepo `spec.images`. */
export type GitRepoImages = z.infer<typeof GitRepoImagesSchema>;
/** GitRepo `spec.images.relocation`. */
export type ImageRelocation = z.infer<typeof ImageRelocationSchema>;

/** fleet.yaml `images`: turns on the images lock for this bundle. */
export const FleetYamlImagesSchema = lazySchema(() =>
  z
    .strictObject({
      local: z
        .array(z.string().min(1).max(255))
        .max(256)
        .optional()
        .describe('Image names (e.g. "app" or "team/app") pulled from each cluster\'s own registry (KEP-1755 local-registry-hosting).'),
      paths: z
        .array(
          z.strictObject({
            kind: z.string().min(1).max(253),
            apiVersion: z.string().min(1).max(253).optional(),
            paths: z
              .array(z.string().regex(/^[A-Za-z0-9_-]+(\[\*\])?(\.[A-Za-z0-9_-]+(\[\*\])?)*$/, 'must be field names joined by "." (a list: name[*])'))
              .min(1)
              .max(32),
          }),
        )
        .max(64)
        .optional()
        .describe('Image fields of custom resources, e.g. {kind: App, paths: ["spec.image", "spec.sidecars[*].image"]}.'),
    })
    .describe('Images of this bundle: local images and image paths of custom resources.'),
);

/** fleet.yaml `images`. */
export type FleetYamlImages = z.infer<typeof FleetYamlImagesSchema>;
