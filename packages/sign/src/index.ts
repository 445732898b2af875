// Public surface of sign.
export { hashFile } from './hash-file.ts';
export { resolveIdentityToken } from './identity-token.ts';
export { attestFile, signFile, type BundleJson, type SigningServices } from './sign.ts';
export { makeTlogUploader } from './tlog-client.ts';
export { configDir, writeCachedToken } from './token-cache.ts';
export {
  signDigest,
  signStatement,
  statementFor,
  type SignOptions,
  type TlogUploader,
  type TlogUploadInput,
} from './sign.ts';
export type { Bundle } from '@waxseal/bundle';
// Signing returns a typed Bundle: this writes it as the .sigstore.json that verifiers read.
export { serializeBundleJson } from '@waxseal/bundle';
