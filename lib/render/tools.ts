import { DEFAULT_CONTENT_LIMITS } from '../bundle/limits.js';

/**
 * Where the helm and kustomize programs are. The agent image and `flotilla render` find them on PATH by
 * default; FLOTILLA_HELM / FLOTILLA_KUSTOMIZE (or the caller's own configuration) name other paths. The
 * project's install script (stack/tools/install.sh) builds the pinned versions: helm v4.3.1 (the engine
 * Fleet renders with since v0.15) and kustomize v5.8.1.
 */

/** Paths (or PATH names) of the rendering programs. */
export interface RenderTools {
  helm: string;
  kustomize: string;
}

/** The programs named by FLOTILLA_HELM and FLOTILLA_KUSTOMIZE in `env`, else `helm` and `kustomize` on PATH. */
export function renderToolsFromEnv(env: NodeJS.ProcessEnv = process.env): RenderTools {
  return { helm: env.FLOTILLA_HELM || 'helm', kustomize: env.FLOTILLA_KUSTOMIZE || 'kustomize' };
}

/**
 * Limits of one helm or kustomize run when the caller configures none: one minute, 32 MiB of output, and
 * the default `renderToolMemoryMb` (1 GiB) of memory: helm rendering 29 MB of templated output (close to
 * the output limit) peaked at 490 MiB RSS and needed more than 512 MiB of RLIMIT_DATA; kustomize building a
 * 29 MB tree peaked at 430 MiB; a small chart or kustomization needs about 100-130 MiB (measured with helm
 * v4.3.1 and kustomize v5.8.1).
 */
export const DEFAULT_RENDER_LIMITS: Readonly<{ timeoutMs: number; maxOutputBytes: number; maxMemoryBytes: number }> = {
  timeoutMs: 60_000,
  maxOutputBytes: 32 * 1024 * 1024,
  maxMemoryBytes: DEFAULT_CONTENT_LIMITS.renderToolMemoryMb * 1024 * 1024,
};

/** Kubernetes version given to Helm's `.Capabilities` when the cluster's is not known (`flotilla render` without --kube-version). */
export const DEFAULT_KUBE_VERSION = 'v1.36.0';
