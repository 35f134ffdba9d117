import { API_VERSION, type GitRepo } from '../lib/api/index.js';
import { KubeApiError, type KubeClient, type KubeObject } from '../lib/kube/client.js';

/**
 * The dashboard's actions on a GitRepo, each one patch of its spec made with the caller's own credentials
 * (so RBAC decides, and the API server's answer is what the page shows):
 * - pause / resume: `spec.paused` (bundles are still built; new versions are not rolled out while paused);
 * - sync: `spec.forceSyncGeneration` + 1 (a new fetch and a re-apply on every cluster), with the
 *   resourceVersion read as a precondition, so two clicks never collapse into one increment silently.
 */

/** The actions the page offers. */
export const ACTIONS = ['pause', 'resume', 'sync'] as const;

/** One of {@link ACTIONS}. */
export type Action = (typeof ACTIONS)[number];

/** A request for an action on GitRepo `namespace/name`. */
export interface ActionRequest {
  action: Action;
  namespace: string;
  name: string;
}

/** The outcome: `status` is the HTTP status the page gets (the API server's own on refusal) and a message to show. */
export interface ActionResult {
  status: number;
  message: string;
}

/** Performs actions; the server holds one only when actions are enabled. */
export type ActionPort = (request: ActionRequest) => Promise<ActionResult>;

/** Parses a request body; returns an error message for anything that is not exactly an action on a named GitRepo. */
export function parseActionRequest(body: unknown): ActionRequest | string {
  if (typeof body !== 'object' || body === null) return 'the body must be a JSON object {action, namespace, name}';
  const { action, namespace, name } = body as Record<string, unknown>;
  if (typeof action !== 'string' || !(ACTIONS as readonly string[]).includes(action)) return `action must be one of ${ACTIONS.join(', ')}`;
  if (typeof namespace !== 'string' || !namespace || typeof name !== 'string' || !name) return 'namespace and name of the GitRepo are required';
  return { action: action as Action, namespace, name };
}

/** The actions done with `kube` (the caller's credentials). */
export function kubeActions(kube: KubeClient): ActionPort {
  return async ({ action, namespace, name }) => {
    const ref = { apiVersion: API_VERSION, kind: 'GitRepo', namespace, name };
    const what = `GitRepo ${namespace}/${name}`;
    try {
      if (action === 'sync') {
        const repo = await kube.get<GitRepo & KubeObject>(ref);
        if (!repo) return { status: 404, message: `${what} does not exist` };
        const next = (repo.spec.forceSyncGeneration ?? 0) + 1;
        await kube.mergePatch(ref, { metadata: { resourceVersion: repo.metadata.resourceVersion }, spec: { forceSyncGeneration: next } });
        return { status: 200, message: `${what}: forceSyncGeneration set to ${next}; a new fetch and re-apply follow` };
      }
      await kube.mergePatch(ref, { spec: { paused: action === 'pause' } });
      return { status: 200, message: action === 'pause' ? `${what} paused: new versions are not rolled out` : `${what} resumed` };
    } catch (err) {
      if (err instanceof KubeApiError) {
        const hint =
          err.statusCode === 403
            ? ' (your Kubernetes identity may not patch GitRepos here: ask for "patch" on gitrepos.flotilla.dev)'
            : err.statusCode === 409
              ? ' (it changed meanwhile: try again)'
              : '';
        return { status: err.statusCode, message: `${action} on ${what} refused by the API server: ${err.message}${hint}` };
      }
      return { status: 502, message: `${action} on ${what} failed: ${(err as Error).message}` };
    }
  };
}
