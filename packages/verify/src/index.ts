// The Sigstore bundle verifier: pure, synchronous, trust material indexed once.
export {
  Verifier,
  trustedKeyFromPem,
  type VerifierOptions,
  type VerificationPolicy,
  type TrustedKey,
  type VerificationResult,
  type VerifiedSigner,
  type VerifiedTimestamp,
  type VerifiedTlogEntry,
} from './verifier.ts';
export type { Artifact } from './signature.ts';
export type { CertificateIdentity, SignerIdentity } from './identity.ts';
export { signerIdentity, matchIdentities } from './identity.ts';
export { parseTimestampResponse, type ParsedTimestamp } from './timestamp.ts';
export { CHECKS, type CheckName } from './fail.ts';
export { SUPPORTED_ENTRY_TYPES } from './tlog.ts';
// The verifier's inputs, so that a consumer needs no second package to read a bundle and its trust root.
export { parseBundleJson, parseTrustedRootJson, parseClientTrustConfigJson, type Bundle, type TrustedRoot } from '@waxseal/bundle';
