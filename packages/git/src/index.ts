// Git commit and tag signatures in gitsign's format: the CMS codec, the object parser, offline
// verification over already-loaded trust material, and the source.yaml policy model.
export {
  OID_REKOR_TLOG_ENTRY,
  OID_TIMESTAMP_TOKEN,
  SIGNED_MESSAGE_LABEL,
  armorSignature,
  assembleCmsSignature,
  dearmorSignature,
  parseCmsSignature,
  signedAttributes,
  signerCertificate,
  signerCertificateDer,
  timeStampToken,
  type CmsParts,
  type CmsSignature,
  type CmsSigner,
} from './cms.ts';
export { parseCommit, parseTag, parseGitObject, type GitIdent, type SignatureFormat, type SignedGitObject } from './object.ts';
export { decodeTransparencyLogEntry, encodeTransparencyLogEntry } from './protobuf.ts';
export {
  GIT_CHECKS,
  bundleFromCms,
  checkCommitterMatch,
  hashedRekordBody,
  verifyGitSignature,
  type GitVerification,
  type GitVerifyOptions,
} from './verify.ts';
export {
  keylessIdentities,
  parseSourcePolicy,
  type Authority,
  type KeyAuthority,
  type KeylessAuthority,
  type KeySource,
  type SourcePolicy,
} from './policy.ts';
export { evaluateObject, type LoadedKeyAuthority, type ObjectVerdict, type PolicyContext } from './evaluate.ts';
export { evaluateMany, startEvaluators, EvaluatorThreads, type EvaluateManyOptions, type RawObject, type WorkerSetup } from './pool.ts';
