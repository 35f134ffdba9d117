/**
 * Flotilla's OCI layer: a registry client for the OCI distribution API (undici) and the bundle artifact
 * format. Import from here; the files behind it are implementation detail. See docs/artifact-format.md for the format.
 */
export * from './reference.js';
export * from './digest.js';
export * from './errors.js';
export * from './auth.js';
export * from './retry.js';
export * from './stats.js';
export type { Descriptor, BlobSource } from './upload.js';
export * from './blobcache.js';
export * from './client.js';
export * from './paths.js';
export * from './artifact.js';
export * from './manifest.js';
export * from './bundle.js';
export * from './versions.js';
export * from './options.js';
export * from './sign.js';
export * from './cosign.js';
export * from './sigstore.js';
export * from './encrypt.js';
export * from './mirrors.js';
