// Public surface of sign.
export { hashFile } from './hash-file.ts';
export { resolveIdentityToken } from './identity-token.ts';
export { attestFile, signFile, type BundleJson, type SigningServices } from './sign.ts';
export { makeTlogUploader } from './tlog-client.ts';
export { configDir, writeCachedToken } from './token-cache.ts';
