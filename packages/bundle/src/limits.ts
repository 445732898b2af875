// DoS caps for everything the bundle, trusted-root and signing-config parsers accept, in one
// place. A bundle is attacker-controlled: each cap bounds the work one verification can cost.
// Values follow sigstore-go / sigstore-python where they have one (32 tlog entries, 32
// timestamps); the others are far above anything a real signer produces.

/** Transparency-log entries in one bundle (sigstore-go limits.MaxAllowedTlogEntries). */
export const MAX_TLOG_ENTRIES = 32;
/** RFC 3161 timestamps in one bundle (sigstore-go MaxAllowedTimestamps, sigstore-python MAX_ALLOWED_TIMESTAMP). */
export const MAX_TIMESTAMPS = 32;
/** Certificates in a bundle's x509CertificateChain or a trusted-root certChain. */
export const MAX_CERT_CHAIN_LENGTH = 10;
/** Decoded DSSE payload size. */
export const MAX_DSSE_PAYLOAD_BYTES = 32 * 1024 * 1024;
/** DSSE signatures accepted by the parser before the exactly-one rule rejects the envelope. */
export const MAX_DSSE_SIGNATURES = 16;
/** Hashes in one inclusion proof: a tree of at most 2^63 leaves needs at most 63. */
export const MAX_INCLUSION_PROOF_HASHES = 64;
/** Decoded canonicalizedBody of one log entry. */
export const MAX_CANONICALIZED_BODY_BYTES = 4 * 1024 * 1024;
/** Size of one encoded certificate, timestamp or signature. */
export const MAX_DER_OBJECT_BYTES = 64 * 1024;
/** Checkpoint (signed note) text. */
export const MAX_CHECKPOINT_BYTES = 64 * 1024;
/** in-toto statement subjects inspected for a digest match. */
export const MAX_INTOTO_SUBJECTS = 1024;
/** Embedded SCTs read from one certificate. */
export const MAX_EMBEDDED_SCTS = 64;
/** Entries in each list of a trusted root or signing config. */
export const MAX_TRUST_LIST_ENTRIES = 256;
/** Total JSON text accepted by the *Json parsers. */
export const MAX_JSON_TEXT_BYTES = 64 * 1024 * 1024;
