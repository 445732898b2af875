// Public surface of keys.
export { ResourcePool, assertSignatureMatches, canonicalPublicKey, errorText, rawEcdsaToDer } from './backend-util.ts';
export { intermediateCa, selfSignedRoot, tsaLeaf } from './certify.ts';
export { KeyObjectSigner, generateSigner, signerFromPem, type GeneratedKeyKind } from './memory.ts';
export { openSigner, resolveKeyUri } from './open.ts';
export { checkSecretFileTarget, writeSecretFile, type SecretFileOptions } from './secret-file.ts';
export { signatureAlgorithmIdentifier, type Signer } from './signer.ts';
export type { SigningThread } from './signing-thread.ts';
export {
  COSIGN_DEFAULT_SCRYPT,
  COSIGN_KEY_LABEL,
  COSIGN_KEY_LABEL_OLD,
  COSIGN_SCRYPT_PARAMS,
  checkCosignKeyType,
  cosignSigner,
  decryptCosignKey,
  decryptCosignKeyDer,
  encryptCosignKey,
  importPrivateKeyPem,
  loadSigningKey,
  parseCosignKey,
  publicKeyPem,
  type CosignEncryptedKey,
  type ScryptParams,
} from './cosign-key.ts';
