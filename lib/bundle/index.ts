/**
 * lib/bundle: pure code that turns a directory of a git checkout into bundles and renders a bundle for a
 * cluster. Shared by the controller (discover, read, target, id), the agent (resources, render) and
 * `flotilla render`. Import from here: `import { readGitRepoBundles, renderBundle } from '../lib/bundle/index.js'`.
 */
export { bundleName, discoverBundles, normalizeRelPath, MAX_BUNDLE_NAME_LENGTH } from './discover.js';
export type { DiscoverOptions, DiscoveredBundle } from './discover.js';
export { readBundle, readGitRepoBundles, DEFAULT_BUNDLE_LIMITS } from './read.js';
export type { BundleLimits, LoadedBundle } from './read.js';
export { validateBundle, fleetYamlOptions } from './validate.js';
export { renderBundle, renderOptionsFrom, isPatchFile, patchTarget } from './render.js';
export type { RenderOptions } from './render.js';
export { mergePatch, jsonPatch, PatchError } from './patch.js';
export { CLUSTER_SCOPED_KINDS, isKnownClusterScoped, apiGroup } from './scope.js';
export {
  matchesSelector,
  matchTarget,
  customizationFor,
  selectClusters,
  mergeOptions,
  groupsOf,
  hasCriteria,
  DEFAULT_TARGETS,
} from './target.js';
export type { ClusterInfo, ClusterSelection, GroupInfo, Labels, TargetMatch } from './target.js';
export { contentsID, optionsHash, deploymentID } from './id.js';
export type { HashedFile } from './id.js';
export { filesToResources, resourcesToFiles } from './resources.js';
export type { EncodeOptions } from './resources.js';
export { parseManifest, isManifestName, FLEET_YAML_NAMES, OVERLAYS_DIR } from './manifest.js';
export type { BundleFile, RenderedObject, ManifestDocument } from './manifest.js';
