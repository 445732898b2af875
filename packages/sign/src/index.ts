// Public surface of sign.
export { hashFile, hashFileAsync } from './hash-file.ts';
export { resolveIdentityToken, KUBERNETES_TOKEN_PATH, type TokenSources, type RunCommand } from './identity-token.ts';
export { attestFile, signFile, type BundleJson, type SigningServices } from './sign.ts';
export { makeTlogUploader } from './tlog-client.ts';
export { EphemeralKey } from './ephemeral-key.ts';
export { requestSigningCertificate } from './ca-client.ts';
export { requestTimestamp } from './tsa-client.ts';
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
export {
  publicKeyHint,
  signMessageWithKey,
  signStatementWithKey,
  type KeySigner,
  type KeySignOptions,
} from './sign-with-key.ts';
