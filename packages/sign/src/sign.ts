// Keyless signing, end to end: identity token -> ephemeral key -> certificate from the CA ->
// signature -> RFC 3161 timestamp over the signature (and an optional log entry) -> the typed
// Bundle v0.3 of @waxseal/bundle (serializeBundleJson writes it).
// The ephemeral private key exists only in memory for the duration of one call.
import { statSync } from 'node:fs';
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
import { hashFileAsync, type HashProgress } from './hash-file.ts';

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
  return signDigestWith(key, await certify(o, key), digest, o);
}

function signDigestWith(key: EphemeralKey, leaf: Certificate, digest: Uint8Array, o: SignOptions): Promise<Bundle> {
  const signature = key.signDigest(digest);
  return finish(
    o,
    leaf,
    { kind: 'messageSignature', digest, signature },
    { type: 'messageSignature', messageDigest: { algorithm: 'sha256', digest }, signature },
  );
}

/**
 * Hashes a file while the CA issues the certificate: the certificate does not depend on the
 * digest, so the round trip hides behind the hashing of a large file. Whichever fails first stops
 * the other (a refused identity does not wait for a gigabyte to be read).
 */
async function hashWhileCertifying(
  path: string,
  o: SignOptions & { onProgress?: HashProgress },
): Promise<{ key: EphemeralKey; leaf: Certificate; digest: Uint8Array }> {
  // An unreadable path fails here, before the CA is asked for anything.
  let isFile: boolean;
  try {
    isFile = statSync(path).isFile() || path.startsWith('/dev/');
  } catch (e) {
    throw new WaxsealError('ERR_IO', `cannot open ${path}: ${(e as NodeJS.ErrnoException).code ?? e}`, { cause: e });
  }
  if (!isFile) throw new WaxsealError('ERR_IO', `cannot sign ${path}: not a file`);
  const key = new EphemeralKey();
  const stop = new AbortController();
  const hashing = hashFileAsync(path, 'sha256', o.onProgress, stop.signal);
  const certifying = certify(o, key);
  // Neither rejection may go unhandled while the other is awaited.
  hashing.catch(() => stop.abort());
  certifying.catch(() => stop.abort());
  try {
    const [{ digest }, leaf] = await Promise.all([hashing, certifying]);
    return { key, leaf, digest };
  } catch (e) {
    stop.abort();
    // Report the cause, not the abort it caused in the other task.
    throw await firstRealError(hashing, certifying, e);
  }
}

async function firstRealError(hashing: Promise<unknown>, certifying: Promise<unknown>, fallback: unknown): Promise<unknown> {
  const [h, c] = await Promise.allSettled([hashing, certifying]);
  for (const r of [h, c]) if (r.status === 'rejected' && !(r.reason instanceof Error && r.reason.name === 'AbortError')) return r.reason;
  return fallback;
}

/** Hashes and signs a file (one pass over the data, at disk speed, overlapped with the CA request). */
export async function signFile(path: string, o: SignOptions & { onProgress?: HashProgress }): Promise<Bundle> {
  const { key, leaf, digest } = await hashWhileCertifying(path, o);
  return signDigestWith(key, leaf, digest, o);
}

/** An in-toto v1 statement about one artifact. */
export function statementFor(name: string, digest: Uint8Array, predicateType: string, predicate: unknown): InTotoStatement {
  return { _type: INTOTO_STATEMENT_V1, subject: [{ name, digest: { sha256: toHex(digest) } }], predicateType, predicate };
}

/** Signs an in-toto statement as a DSSE envelope. */
export async function signStatement(statement: InTotoStatement, o: SignOptions): Promise<Bundle> {
  const key = new EphemeralKey();
  return signStatementWith(key, await certify(o, key), statement, o);
}

function signStatementWith(key: EphemeralKey, leaf: Certificate, statement: InTotoStatement, o: SignOptions): Promise<Bundle> {
  const payload = utf8(JSON.stringify(statement));
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
  const { key, leaf, digest } = await hashWhileCertifying(path, o);
  return signStatementWith(key, leaf, statementFor(basename(path), digest, predicateType, predicate), o);
}
