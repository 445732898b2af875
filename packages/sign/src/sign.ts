// Keyless signing, end to end: identity token -> ephemeral key -> certificate from the CA ->
// signature -> RFC 3161 timestamp over the signature (and an optional log entry) -> the typed
// Bundle v0.3 of @waxseal/bundle (serializeBundleJson writes it).
// The ephemeral private key exists only in memory for the duration of one call.
import { basename } from 'node:path';
import {
  WaxsealError,
  toHex,
  utf8,
  pae,
  INTOTO_PAYLOAD_TYPE,
  INTOTO_STATEMENT_V1,
  type InTotoStatement,
  type Certificate,
} from '@waxseal/core';
import {
  BUNDLE_MEDIA_TYPE_V03,
  parseBundle,
  serializeBundle,
  type Bundle,
  type BundleContent,
  type DsseEnvelope,
  type TransparencyLogEntry,
} from '@waxseal/bundle';
import { EphemeralKey } from './ephemeral-key.ts';
import { requestSigningCertificate } from './ca-client.ts';
import { requestTimestamp } from './tsa-client.ts';
import { hashFile, type HashProgress } from './hash-file.ts';

/** Where signing goes: a CA, a TSA and optionally a transparency log. */
export interface SigningServices {
  caUrl: string;
  /** Full POST URL of the timestamp endpoint. */
  tsaUrl: string;
  /** Optional: records the signature in a log and returns the bundle's TransparencyLogEntry. */
  tlog?: TlogUploader;
}

export interface TlogUploadInput {
  certificate: Certificate;
  /** messageSignature: the artifact digest; DSSE: the envelope. */
  content:
    | { kind: 'messageSignature'; digest: Uint8Array; signature: Uint8Array }
    | { kind: 'dsse'; envelope: DsseEnvelope; signature: Uint8Array };
}

export type TlogUploader = (input: TlogUploadInput) => Promise<TransparencyLogEntry>;

/**
 * The bundle as protobuf JSON, what serializeBundle writes. Signing returns the typed Bundle
 * of @waxseal/bundle; this name stays for callers that typed the old JSON result.
 */
export type BundleJson = ReturnType<typeof serializeBundle>;

export interface SignOptions {
  token: string;
  services: SigningServices;
  fetch?: typeof fetch;
}

async function certify(o: SignOptions, key: EphemeralKey): Promise<Certificate> {
  const chain = await requestSigningCertificate({ caUrl: o.services.caUrl, token: o.token, key, ...(o.fetch ? { fetch: o.fetch } : {}) });
  return chain[0]!;
}

async function finish(o: SignOptions, leaf: Certificate, upload: TlogUploadInput['content'], content: BundleContent): Promise<Bundle> {
  // Timestamp first: a TSA failure then leaves no orphan entry in the log.
  const tsr = await requestTimestamp({ tsaUrl: o.services.tsaUrl, signature: upload.signature, ...(o.fetch ? { fetch: o.fetch } : {}) });
  const tlogEntries = o.services.tlog ? [await o.services.tlog({ certificate: leaf, content: upload })] : [];
  const bundle: Bundle = {
    mediaType: BUNDLE_MEDIA_TYPE_V03,
    verificationMaterial: { content: { type: 'certificate', certificate: leaf.der }, tlogEntries, rfc3161Timestamps: [tsr] },
    content,
  };
  // Hand out only what every verifier accepts: the log's entry meets the v0.3 rules (an
  // inclusion proof with a checkpoint), sizes are within the parser's limits.
  parseBundle(serializeBundle(bundle));
  return bundle;
}

/** Signs an artifact digest (SHA-256) as a message signature. */
export async function signDigest(digest: Uint8Array, o: SignOptions): Promise<Bundle> {
  if (digest.length !== 32) throw new WaxsealError('ERR_INVALID_INPUT', 'artifact digest must be 32 bytes (SHA-256)');
  const key = new EphemeralKey();
  const leaf = await certify(o, key);
  const signature = key.signDigest(digest);
  return finish(
    o,
    leaf,
    { kind: 'messageSignature', digest, signature },
    { type: 'messageSignature', messageDigest: { algorithm: 'sha256', digest }, signature },
  );
}

/** Hashes and signs a file (one pass over the data, at disk speed). */
export async function signFile(path: string, o: SignOptions & { onProgress?: HashProgress }): Promise<Bundle> {
  const { digest } = hashFile(path, 'sha256', o.onProgress);
  return signDigest(digest, o);
}

/** An in-toto v1 statement about one artifact. */
export function statementFor(name: string, digest: Uint8Array, predicateType: string, predicate: unknown): InTotoStatement {
  return { _type: INTOTO_STATEMENT_V1, subject: [{ name, digest: { sha256: toHex(digest) } }], predicateType, predicate };
}

/** Signs an in-toto statement as a DSSE envelope. */
export async function signStatement(statement: InTotoStatement, o: SignOptions): Promise<Bundle> {
  const payload = utf8(JSON.stringify(statement));
  const key = new EphemeralKey();
  const leaf = await certify(o, key);
  const signature = key.signMessage(pae(INTOTO_PAYLOAD_TYPE, payload));
  const envelope: DsseEnvelope = { payload, payloadType: INTOTO_PAYLOAD_TYPE, signatures: [{ sig: signature, keyid: '' }] };
  return finish(o, leaf, { kind: 'dsse', envelope, signature }, { type: 'dsseEnvelope', envelope });
}

/** attest-blob: hashes the file and signs a statement with the given predicate. */
export async function attestFile(
  path: string,
  predicateType: string,
  predicate: unknown,
  o: SignOptions & { onProgress?: HashProgress },
): Promise<Bundle> {
  const { digest } = hashFile(path, 'sha256', o.onProgress);
  return signStatement(statementFor(basename(path), digest, predicateType, predicate), o);
}
