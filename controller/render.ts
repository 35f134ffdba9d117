import type { DiscoverOptions } from '../lib/bundle/discover.js';
import type { BundleLimits, LoadedBundle } from '../lib/bundle/read.js';
import { StallingError } from '../lib/errors.js';
import { BundleRenderer } from '../lib/isolate/bundle.js';
import { contentLimitsOf, type ControllerConfig } from './config.js';

/**
 * The controller's bundle reading (lib/isolate): a commit's bundles are read, validated and rendered in a
 * capped worker thread with the same content limits and code as the agents', so that content an agent
 * would refuse stalls the GitRepo before anything is pushed, and one GitRepo's content cannot stall the
 * controller's other work. One renderer (and pool of workers) per configuration.
 *
 * A refusal is deterministic (the same commit, paths and limits always fail), and a stalled GitRepo is
 * polled again at its interval: the refusal is remembered per commit, so a costly commit is not read and
 * rendered again on every poll, only when the commit (or the configuration, i.e. a restart) changes.
 */

interface State {
  renderer: BundleRenderer;
  /** Refusals by `repo@commit paths`, oldest first. */
  refused: Map<string, StallingError>;
}

const states = new WeakMap<ControllerConfig, State>();
const MAX_REMEMBERED = 256;

function stateFor(config: ControllerConfig): State {
  let state = states.get(config);
  if (!state) {
    state = { renderer: new BundleRenderer({ limits: contentLimitsOf(config), cacheBytes: 0 }), refused: new Map() };
    states.set(config, state);
  }
  return state;
}

/**
 * Reads every bundle of the checkout of `commit` of the GitRepo `repo` (`namespace/name`) in a worker, or
 * throws the refusal remembered for that commit and those paths.
 */
export async function readCommitBundles(
  config: ControllerConfig,
  checkoutRoot: string,
  options: DiscoverOptions & { limits?: Partial<BundleLimits> },
  repo: string,
  commit: string,
): Promise<LoadedBundle[]> {
  const state = stateFor(config);
  const key = `${repo}@${commit} ${JSON.stringify(options.paths ?? [])}`;
  const known = state.refused.get(key);
  if (known) throw known;
  try {
    return await state.renderer.readGitRepoBundles(checkoutRoot, options, `GitRepo ${repo} at commit ${commit.slice(0, 12)}`);
  } catch (err) {
    if (err instanceof StallingError) {
      state.refused.set(key, err);
      for (const old of state.refused.keys()) {
        if (state.refused.size <= MAX_REMEMBERED) break;
        state.refused.delete(old);
      }
    }
    throw err;
  }
}
