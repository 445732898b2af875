// The pure core: synchronous functions over bytes, no I/O. Everything else builds on this.
export * from './errors.ts';
export * from './bytes.ts';
export { ByteReader } from './byte-reader.ts';
export * from './der.ts';
export * from './pem.ts';
export * from './jcs.ts';
export { DEFAULT_JSON_MAX_DEPTH, JsonScanner, parseJsonBounded, type JsonLimits, type JsonReviver } from './json.ts';
export * from './oids.ts';
export * from './crypto.ts';
export * from './x509.ts';
export { INTOTO_PAYLOAD_TYPE, INTOTO_STATEMENT_V1, pae, type InTotoStatement } from './dsse.ts';
export { ecdsaJobSize, nativeEcdsa, packEcdsaJob, parseEcdsaSignatureDer, type EcdsaCurveBits } from './ecdsa-digest.ts';
export {
  bits2int,
  ecdsaDigestJob,
  ecPointFromUncompressed,
  verifyEcdsaDigestBatch,
  verifyEcdsaDigestEcdh,
  verifyEcdsaPackedEcdh,
  type EcdsaDigestJob,
} from './ecdsa-ecdh.ts';
export { verifyEd25519ph } from './ed25519ph.ts';
export { EMPTY_ROOT, leafHash, nodeHash, verifyConsistency, verifyInclusion } from './merkle.ts';
export {
  formatCheckpoint,
  formatSignedNote,
  noteKeyId,
  noteSignedBy,
  noteVerifier,
  parseCheckpoint,
  parseSignedNote,
  rekorV1NoteVerifier,
  type Checkpoint,
  type NoteVerifier,
} from './note.ts';
export {
  assembleCertificate,
  encodeExtension,
  encodeTbs,
  ext,
  keyIdentifier,
  randomSerial,
  simpleName,
  type ExtensionSpec,
} from './x509-build.ts';
export { compileRegexp, quoteRegexp, MAX_REGEXP_STATES, type Regexp, type RegexpOptions, type RegexpRun } from './regexp.ts';
