/**
 * Flotilla's API: every kind as a zod schema and TypeScript type, plus the constants (condition types,
 * reasons, labels, annotations, finalizers) and helpers shared by the controller, the agent and the CLI.
 * Import from here: `import { GitRepoSchema, ConditionType, setCondition } from '../lib/api/index.js'`.
 */
export * from './constants.js';
export * from './crd-extensions.js';
export * from './meta.js';
export * from './options.js';
export * from './status.js';
export * from './validate.js';
export * from './rollout.js';
export * from './fleetyaml.js';
export * from './kind.js';
export * from './gitrepo.js';
export * from './images.js';
export * from './bundle.js';
export * from './bundledeployment.js';
export * from './mirror.js';
export * from './cluster.js';
export * from './registration.js';
export * from './kinds.js';
export * from './openapi.js';
export * from './crd.js';
