// The pure core: synchronous functions over bytes, no I/O. Everything else builds on this.
export * from './errors.ts';
export * from './bytes.ts';
export * from './der.ts';
export * from './pem.ts';
export * from './jcs.ts';
export * from './oids.ts';
export * from './crypto.ts';
export * from './x509.ts';
