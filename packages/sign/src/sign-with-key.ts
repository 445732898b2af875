// Signing with a long-lived key (cosign's --key): no identity token, no certificate. The bundle's
// verification material is the key's hint (base64 of SHA-256 over its SubjectPublicKeyInfo, as
// cosign v3 writes it); the RFC 3161 timestamp comes from the TSA when one is configured, and the
// log entry, when a log is configured, records the public key instead of a certificate.
import {
  INTOTO_PAYLOAD_TYPE,
  WaxsealError,
  digest as hashWith,
  encodePem,
  fromUtf8,
  keyDetails,
  pae,
  publicKeyFromSpki,
  sha256,
  toBase64,
  toHex,
  utf8,
  type HashName,
  type InTotoStatement,
} from '@waxseal/core';
import {
  BUNDLE_MEDIA_TYPE_V03,
  parseBundle,
  parseTransparencyLogEntry,
  serializeBundle,
  type Bundle,
  type BundleContent,
  type DsseEnvelope,
  type TransparencyLogEntry,
} from '@waxseal/bundle';
import { postBytes } from './http-client.ts';
import { requestTimestamp } from './tsa-client.ts';
import { v1EntryToTle, type V1LogEntry } from './tlog-client.ts';

/** What key signing needs of a key (a @waxseal/keys Signer fits). */
export interface KeySigner {
  /** DER SubjectPublicKeyInfo. */
  readonly publicKeySpki: Uint8Array;
  /** The hash the key signs with (ECDSA/RSA hash the message with it). */
  readonly hash: HashName;
  /** Signs `message` (DER ECDSA, or RSA PKCS#1 v1.5, over hash(message)). */
  sign(message: Uint8Array): Promise<Uint8Array>;
}

export interface KeySignOptions {
  signer: KeySigner;
  /** Full POST URL of the timestamp endpoint; without one the bundle carries no timestamp. */
  tsaUrl?: string;
  /** A transparency log to record the signature in (Rekor API major version 1 or 2). */
  tlog?: { url: string; majorApiVersion: number };
  fetch?: typeof fetch;
}

/** cosign's key hint: base64(SHA-256(SPKI DER)). */
export function publicKeyHint(spki: Uint8Array): string {
  return toBase64(sha256(spki));
}

function keyInfo(spki: Uint8Array) {
  const info = publicKeyFromSpki(spki);
  if (info.kind === 'ed25519') {
    // cosign signs with Ed25519ph by default (hashedrekord needs a digest); Waxseal's verifier
    // takes pure Ed25519 bundles only, so refuse rather than write what cosign would not read.
    throw new WaxsealError(
      'ERR_KEY_UNSUPPORTED',
      'signing images with an Ed25519 key is not supported (cosign uses Ed25519ph): use ECDSA or RSA',
    );
  }
  return info;
}

type Upload =
  | { kind: 'messageSignature'; digest: Uint8Array; hash: HashName; signature: Uint8Array }
  | { kind: 'dsse'; envelope: DsseEnvelope; signature: Uint8Array };

function v1Proposal(u: Upload, keyPem: string): unknown {
  const key = toBase64(utf8(keyPem));
  if (u.kind === 'messageSignature') {
    return {
      apiVersion: '0.0.1',
      kind: 'hashedrekord',
      spec: {
        signature: { content: toBase64(u.signature), publicKey: { content: key } },
        data: { hash: { algorithm: u.hash, value: toHex(u.digest) } },
      },
    };
  }
  const envelope = JSON.stringify({
    payload: toBase64(u.envelope.payload),
    payloadType: u.envelope.payloadType,
    signatures: u.envelope.signatures.map((s) => ({ sig: toBase64(s.sig), keyid: s.keyid })),
  });
  return { apiVersion: '0.0.1', kind: 'dsse', spec: { proposedContent: { envelope, verifiers: [key] } } };
}

function v2Request(u: Upload, spki: Uint8Array, details: string): unknown {
  const digest = u.kind === 'messageSignature' ? u.digest : sha256(pae(u.envelope.payloadType, u.envelope.payload));
  return {
    hashedRekordRequestV002: {
      digest: toBase64(digest),
      signature: { content: toBase64(u.signature), verifier: { publicKey: { rawBytes: toBase64(spki) }, keyDetails: details } },
    },
  };
}

async function upload(o: KeySignOptions, u: Upload): Promise<TransparencyLogEntry> {
  const log = o.tlog!;
  if (log.majorApiVersion !== 1 && log.majorApiVersion !== 2) {
    throw new WaxsealError('ERR_CONFIG', `transparency log API version ${log.majorApiVersion} is not supported (1 or 2)`);
  }
  const v2 = log.majorApiVersion === 2;
  const spki = o.signer.publicKeySpki;
  const body = v2 ? v2Request(u, spki, keyDetails(keyInfo(spki))) : v1Proposal(u, encodePem('PUBLIC KEY', spki));
  const res = await postBytes(`${log.url.replace(/\/$/, '')}/api/v${v2 ? 2 : 1}/log/entries`, JSON.stringify(body), {
    what: 'the transparency log',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    timeoutMs: 30_000,
    ...(o.fetch ? { fetch: o.fetch } : {}),
  });
  let parsed: unknown;
  try {
    parsed = JSON.parse(fromUtf8(res.body));
  } catch {
    throw new WaxsealError('ERR_INVALID_INPUT', 'the transparency log answered with something that is not JSON');
  }
  if (v2) return parseTransparencyLogEntry(parsed, { code: 'ERR_INVALID_INPUT', path: 'transparency log entry' });
  const entries = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? Object.values(parsed) : [];
  if (entries.length !== 1) throw new WaxsealError('ERR_INVALID_INPUT', 'the transparency log response does not hold exactly one entry');
  return v1EntryToTle(entries[0] as V1LogEntry);
}

async function finish(o: KeySignOptions, u: Upload, content: BundleContent): Promise<Bundle> {
  // Timestamp first: a TSA failure then leaves no orphan entry in the log.
  const rfc3161Timestamps = o.tsaUrl
    ? [await requestTimestamp({ tsaUrl: o.tsaUrl, signature: u.signature, ...(o.fetch ? { fetch: o.fetch } : {}) })]
    : [];
  const tlogEntries = o.tlog ? [await upload(o, u)] : [];
  const bundle: Bundle = {
    mediaType: BUNDLE_MEDIA_TYPE_V03,
    verificationMaterial: { content: { type: 'publicKey', hint: publicKeyHint(o.signer.publicKeySpki) }, tlogEntries, rfc3161Timestamps },
    content,
  };
  parseBundle(serializeBundle(bundle));
  return bundle;
}

/** Signs `message` (e.g. a simple-signing payload) with the key: a message-signature bundle. */
export async function signMessageWithKey(message: Uint8Array, o: KeySignOptions): Promise<Bundle> {
  keyInfo(o.signer.publicKeySpki);
  const hash = o.signer.hash;
  const signature = await o.signer.sign(message);
  const digest = hashWith(hash, message);
  return finish(
    o,
    { kind: 'messageSignature', digest, hash, signature },
    { type: 'messageSignature', messageDigest: { algorithm: hash, digest }, signature },
  );
}

/** Signs an in-toto statement as a DSSE envelope with the key. */
export async function signStatementWithKey(statement: InTotoStatement, o: KeySignOptions): Promise<Bundle> {
  keyInfo(o.signer.publicKeySpki);
  const payload = utf8(JSON.stringify(statement));
  const signature = await o.signer.sign(pae(INTOTO_PAYLOAD_TYPE, payload));
  const envelope: DsseEnvelope = { payload, payloadType: INTOTO_PAYLOAD_TYPE, signatures: [{ sig: signature, keyid: '' }] };
  return finish(o, { kind: 'dsse', envelope, signature }, { type: 'dsseEnvelope', envelope });
}
