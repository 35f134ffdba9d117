import { BundleRenderer } from '../lib/isolate/bundle.js';
import { contentLimitsOf, type ControllerConfig } from './config.js';

/**
 * The controller's bundle renderer (lib/isolate): a commit's bundles are read, validated and rendered in a
 * capped worker thread with the same content limits and code as the agents', so that content an agent
 * would refuse stalls the GitRepo before anything is pushed, and one GitRepo's content cannot stall the
 * controller's other work. One renderer (and pool of workers) per configuration.
 */

const renderers = new WeakMap<ControllerConfig, BundleRenderer>();

/** The renderer for `config`, created on first use. */
export function bundleRendererFor(config: ControllerConfig): BundleRenderer {
  let renderer = renderers.get(config);
  if (!renderer) {
    renderer = new BundleRenderer({ limits: contentLimitsOf(config), cacheBytes: 0 });
    renderers.set(config, renderer);
  }
  return renderer;
}
