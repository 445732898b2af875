// Keyless signing, end to end: identity token -> ephemeral key -> certificate from the CA ->
// signature -> RFC 3161 timestamp over the signature (-> optional log entry) -> bundle v0.3.
// The ephemeral private key exists only in memory for the duration of one call.
import { basename } from 'node:path';
import {
  WaxsealError,
  toBase64,
  toHex,
  utf8,
  pae,
  INTOTO_PAYLOAD_TYPE,
  INTOTO_STATEMENT_V1,
  type InTotoStatement,
  type Certificate,
} from '@waxseal/core';
import { EphemeralKey } from './ephemeral-key.ts';
import { requestSigningCertificate } from './ca-client.ts';
import { requestTimestamp } from './tsa-client.ts';
import { hashFile, type HashProgress } from './hash-file.ts';

export const BUNDLE_V03_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';

/** Where signing goes: a CA, a TSA and optionally transparency logs. */
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
    | { kind: 'dsse'; envelope: DsseEnvelopeJson; signature: Uint8Array };
}

export type TlogUploader = (input: TlogUploadInput) => Promise<unknown>;

export interface DsseEnvelopeJson {
  payload: string;
  payloadType: string;
  signatures: { sig: string; keyid: string }[];
}

export interface BundleJson {
  mediaType: string;
  verificationMaterial: {
    certificate: { rawBytes: string };
    tlogEntries: unknown[];
    timestampVerificationData: { rfc3161Timestamps: { signedTimestamp: string }[] };
  };
  messageSignature?: { messageDigest: { algorithm: 'SHA2_256'; digest: string }; signature: string };
  dsseEnvelope?: DsseEnvelopeJson;
}

export interface SignOptions {
  token: string;
  services: SigningServices;
  fetch?: typeof fetch;
}

async function certify(o: SignOptions, key: EphemeralKey): Promise<Certificate> {
  const chain = await requestSigningCertificate({ caUrl: o.services.caUrl, token: o.token, key, ...(o.fetch ? { fetch: o.fetch } : {}) });
  return chain[0]!;
}

async function finish(
  o: SignOptions,
  leaf: Certificate,
  signature: Uint8Array,
  content: TlogUploadInput['content'],
  body: Pick<BundleJson, 'messageSignature' | 'dsseEnvelope'>,
): Promise<BundleJson> {
  const tsr = await requestTimestamp({ tsaUrl: o.services.tsaUrl, signature, ...(o.fetch ? { fetch: o.fetch } : {}) });
  const tlogEntries = o.services.tlog ? [await o.services.tlog({ certificate: leaf, content })] : [];
  return {
    mediaType: BUNDLE_V03_MEDIA_TYPE,
    verificationMaterial: {
      certificate: { rawBytes: toBase64(leaf.der) },
      tlogEntries,
      timestampVerificationData: { rfc3161Timestamps: [{ signedTimestamp: toBase64(tsr) }] },
    },
    ...body,
  };
}

/** Signs an artifact digest (SHA-256) as a message signature. */
export async function signDigest(digest: Uint8Array, o: SignOptions): Promise<BundleJson> {
  if (digest.length !== 32) throw new WaxsealError('ERR_INVALID_INPUT', 'artifact digest must be 32 bytes (SHA-256)');
  const key = new EphemeralKey();
  const leaf = await certify(o, key);
  const signature = key.signDigest(digest);
  return finish(
    o,
    leaf,
    signature,
    { kind: 'messageSignature', digest, signature },
    {
      messageSignature: { messageDigest: { algorithm: 'SHA2_256', digest: toBase64(digest) }, signature: toBase64(signature) },
    },
  );
}

/** Hashes and signs a file (one pass over the data, at disk speed). */
export async function signFile(path: string, o: SignOptions & { onProgress?: HashProgress }): Promise<BundleJson> {
  const { digest } = hashFile(path, 'sha256', o.onProgress);
  return signDigest(digest, o);
}

/** An in-toto v1 statement about one artifact. */
export function statementFor(name: string, digest: Uint8Array, predicateType: string, predicate: unknown): InTotoStatement {
  return { _type: INTOTO_STATEMENT_V1, subject: [{ name, digest: { sha256: toHex(digest) } }], predicateType, predicate };
}

/** Signs an in-toto statement as a DSSE envelope. */
export async function signStatement(statement: InTotoStatement, o: SignOptions): Promise<BundleJson> {
  const payload = utf8(JSON.stringify(statement));
  const key = new EphemeralKey();
  const leaf = await certify(o, key);
  const signature = key.signMessage(pae(INTOTO_PAYLOAD_TYPE, payload));
  const envelope: DsseEnvelopeJson = {
    payload: toBase64(payload),
    payloadType: INTOTO_PAYLOAD_TYPE,
    signatures: [{ sig: toBase64(signature), keyid: '' }],
  };
  return finish(o, leaf, signature, { kind: 'dsse', envelope, signature }, { dsseEnvelope: envelope });
}

/** attest-blob: hashes the file and signs a statement with the given predicate. */
export async function attestFile(
  path: string,
  predicateType: string,
  predicate: unknown,
  o: SignOptions & { onProgress?: HashProgress },
): Promise<BundleJson> {
  const { digest } = hashFile(path, 'sha256', o.onProgress);
  return signStatement(statementFor(basename(path), digest, predicateType, predicate), o);
}
