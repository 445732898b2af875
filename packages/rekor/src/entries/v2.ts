// Rekor v2 (rekor-tiles) entry types: CreateEntryRequest -> canonical Entry.
//   hashedrekord 0.0.2  the v2 type; signature verified prehashed over the digest
//   dsse 0.0.2          dropped by rekor-tiles v2.3.0 but still sent by some clients
//                       (sigstore-js); refused like rekor-tiles does unless the operator
//                       opts in (policy.acceptDsseV002), then logged as kind "dsse" 0.0.2
// The leaf is the JCS form of the protojson Entry (oneof key "hashedRekordV002"/"dsseV002").
import { canonicalBytes, toBase64, toHex, bytesEqual, sha256, HASH_ENUM, HASH_SIZE, pae, type HashName, type KeyKind } from '@waxseal/core';
import { x509FromDer, materialIndexKeys, type X509Material } from '../pki/x509.ts';
import {
  admitX509,
  checkTypeAllowed,
  invalid,
  protoBytes,
  protoMessage,
  protoString,
  unsupportedType,
  type CanonicalEntry,
  type EntryContext,
} from './common.ts';
import { intotoSubjectKeys } from './intoto-keys.ts';
import { PUBLIC_KEY_DETAILS_BY_NUMBER } from '@waxseal/bundle';

interface Details {
  kind: KeyKind;
  rsaBits?: number;
  /** Hash of the prehashed signature; undefined for pure Ed25519 (DSSE only). */
  hash: HashName | undefined;
}

/** rekor-tiles' default client signing algorithms (pure Ed25519 removed, Jul-Aug 2026). */
export const V2_ALLOWED_KEY_DETAILS: Record<string, Details> = {
  PKIX_RSA_PKCS1V15_2048_SHA256: { kind: 'rsa', rsaBits: 2048, hash: 'sha256' },
  PKIX_RSA_PKCS1V15_3072_SHA256: { kind: 'rsa', rsaBits: 3072, hash: 'sha256' },
  PKIX_RSA_PKCS1V15_4096_SHA256: { kind: 'rsa', rsaBits: 4096, hash: 'sha256' },
  PKIX_ECDSA_P256_SHA_256: { kind: 'ecdsa-p256', hash: 'sha256' },
  PKIX_ECDSA_P384_SHA_384: { kind: 'ecdsa-p384', hash: 'sha384' },
  PKIX_ECDSA_P521_SHA_512: { kind: 'ecdsa-p521', hash: 'sha512' },
  PKIX_ED25519_PH: { kind: 'ed25519', hash: 'sha512' },
};

// DSSE signatures over PAE are pure Ed25519 signatures.
const DSSE_EXTRA: Record<string, Details> = { PKIX_ED25519: { kind: 'ed25519', hash: undefined } };

// protobuf-specs PublicKeyDetails numbers (JSON clients may send the number): bundle's table.

interface ParsedVerifier {
  material: X509Material;
  which: 'publicKey' | 'x509Certificate';
  raw: Uint8Array;
  detailsName: string;
  details: Details;
  /** protojson of the Verifier as it goes into the canonical entry. */
  json: Record<string, unknown>;
}

function parseVerifier(v: unknown, what: string, ctx: EntryContext, allowed: Record<string, Details>): ParsedVerifier {
  const f = protoMessage(v, what, { publicKey: 'public_key', x509Certificate: 'x509_certificate', keyDetails: 'key_details' });
  if (f.publicKey !== undefined && f.x509Certificate !== undefined)
    invalid(`${what} must hold either a public key or a certificate, not both`);
  const which =
    f.publicKey !== undefined
      ? 'publicKey'
      : f.x509Certificate !== undefined
        ? 'x509Certificate'
        : invalid(`${what} is missing a public key or X.509 certificate`);
  const holder = protoMessage(f[which], `${what}.${which}`, { rawBytes: 'raw_bytes' });
  if (holder.rawBytes === undefined) invalid(`${what}.${which}.rawBytes is missing`);
  const raw = protoBytes(holder.rawBytes, `${what}.${which}.rawBytes`);
  if (raw.length === 0) invalid(`${what}.${which}.rawBytes is empty`);
  let name = f.keyDetails;
  if (typeof name === 'number' && Number.isInteger(name)) name = PUBLIC_KEY_DETAILS_BY_NUMBER[name] ?? `enum ${name}`;
  if (typeof name !== 'string') invalid(`${what}.keyDetails is missing`);
  const details = allowed[name];
  if (!details) invalid(`${what}.keyDetails ${JSON.stringify(name.slice(0, 64))} is not an allowed signing algorithm`, 'log.key-details');
  const material = x509FromDer(raw, which);
  admitX509(material, ctx.policy);
  const key = material.key;
  if (key.kind !== details.kind || (details.rsaBits !== undefined && key.rsaBits !== details.rsaBits)) {
    invalid(`${what}: key does not match keyDetails ${name}`, 'log.key-details');
  }
  return { material, which, raw, detailsName: name, details, json: { [which]: { rawBytes: toBase64(raw) }, keyDetails: name } };
}

const keyIndexKeys = materialIndexKeys;

async function hashedRekordV002(req: unknown, ctx: EntryContext): Promise<CanonicalEntry> {
  const f = protoMessage(req, 'hashedRekordRequestV002', { digest: 'digest', signature: 'signature' });
  if (f.signature === undefined) invalid('missing signature');
  const s = protoMessage(f.signature, 'signature', { content: 'content', verifier: 'verifier' });
  const content = s.content === undefined ? new Uint8Array(0) : protoBytes(s.content, 'signature.content');
  if (content.length === 0) invalid('missing signature');
  if (s.verifier === undefined) invalid('missing verifier');
  const digest = f.digest === undefined ? new Uint8Array(0) : protoBytes(f.digest, 'digest');
  if (digest.length === 0) invalid('missing digest');
  const v = parseVerifier(s.verifier, 'signature.verifier', ctx, V2_ALLOWED_KEY_DETAILS);
  const hash = v.details.hash!;
  if (digest.length !== HASH_SIZE[hash])
    invalid(`digest length (${digest.length}) does not match expected size (${HASH_SIZE[hash]}) for ${hash}`, 'log.digest-length');
  if (!(await ctx.verifier.verifyDigest(v.material.key, hash, digest, content)))
    invalid('verifying signature: signature does not verify over the digest', 'log.signature');
  const entry = {
    apiVersion: '0.0.2',
    kind: 'hashedrekord',
    spec: {
      hashedRekordV002: {
        data: { algorithm: HASH_ENUM[hash], digest: toBase64(digest) },
        signature: { content: toBase64(content), verifier: v.json },
      },
    },
  };
  return {
    kind: 'hashedrekord',
    apiVersion: '0.0.2',
    body: canonicalBytes(entry),
    indexKeys: [`${hash}:${toHex(digest)}`, ...keyIndexKeys(v.material)],
  };
}

function verifyDsseSignature(ctx: EntryContext, v: ParsedVerifier, message: Uint8Array, sig: Uint8Array): boolean {
  return ctx.verifier.verifyMessage(v.material.key, message, sig, v.details.hash);
}

async function dsseV002(req: unknown, ctx: EntryContext): Promise<CanonicalEntry> {
  const f = protoMessage(req, 'dsseRequestV002', { envelope: 'envelope', verifiers: 'verifiers' });
  if (f.envelope === undefined) invalid('missing envelope');
  const env = protoMessage(f.envelope, 'envelope', { payload: 'payload', payloadType: 'payload_type', signatures: 'signatures' });
  const payload = env.payload === undefined ? new Uint8Array(0) : protoBytes(env.payload, 'envelope.payload');
  if (payload.length > ctx.policy.maxEnvelopeBytes) invalid(`envelope payload exceeds ${ctx.policy.maxEnvelopeBytes} bytes`, 'log.size');
  const payloadType = env.payloadType === undefined ? '' : protoString(env.payloadType, 'envelope.payloadType');
  const sigs = env.signatures ?? [];
  if (!Array.isArray(sigs) || sigs.length === 0) invalid('envelope missing signatures');
  if (sigs.length > ctx.policy.maxSignatures)
    invalid(`too many signatures: ${sigs.length}, max allowed: ${ctx.policy.maxSignatures}`, 'log.size');
  const sigBytes = sigs.map((s, i) => {
    const sf = protoMessage(s, `envelope.signatures[${i}]`, { sig: 'sig', keyid: 'keyid' });
    if (sf.keyid !== undefined) protoString(sf.keyid, `envelope.signatures[${i}].keyid`);
    const b = sf.sig === undefined ? new Uint8Array(0) : protoBytes(sf.sig, `envelope.signatures[${i}].sig`);
    if (b.length === 0) invalid('envelope signature empty');
    return b;
  });
  const vs = f.verifiers ?? [];
  if (!Array.isArray(vs) || vs.length === 0) invalid('missing verifiers');
  if (vs.length > ctx.policy.maxSignatures)
    invalid(`too many verifiers: ${vs.length}, max allowed: ${ctx.policy.maxSignatures}`, 'log.size');
  const verifiers = vs.map((v, i) => parseVerifier(v, `verifiers[${i}]`, ctx, { ...V2_ALLOWED_KEY_DETAILS, ...DSSE_EXTRA }));
  for (let i = 0; i < verifiers.length; i++) {
    for (let j = i + 1; j < verifiers.length; j++) if (bytesEqual(verifiers[i]!.raw, verifiers[j]!.raw)) invalid('duplicate verifier');
  }
  const message = pae(payloadType, payload);
  const signed = new Map<string, { sig: Uint8Array; v: ParsedVerifier }>();
  for (const sig of sigBytes) {
    const v = verifiers.find((cand) => verifyDsseSignature(ctx, cand, message, sig));
    if (!v) invalid('all signatures must have a key that verifies it', 'log.signature');
    signed.set(toHex(sig), { sig, v });
  }
  const sorted = [...signed.values()].sort((a, b) => Buffer.compare(a.sig, b.sig));
  const payloadHash = sha256(payload);
  const entry = {
    apiVersion: '0.0.2',
    kind: 'dsse',
    spec: {
      dsseV002: {
        payloadHash: { algorithm: 'SHA2_256', digest: toBase64(payloadHash) },
        signatures: sorted.map((s) => ({ content: toBase64(s.sig), verifier: s.v.json })),
      },
    },
  };
  const keys = [
    `sha256:${toHex(payloadHash)}`,
    ...verifiers.flatMap((v) => keyIndexKeys(v.material)),
    ...intotoSubjectKeys(payloadType, payload),
  ];
  return { kind: 'dsse', apiVersion: '0.0.2', body: canonicalBytes(entry), indexKeys: keys };
}

/** Validates a Rekor v2 CreateEntryRequest and returns the canonical entry to append. */
export async function canonicalizeCreateEntryRequest(req: unknown, ctx: EntryContext): Promise<CanonicalEntry> {
  const f = protoMessage(req, 'CreateEntryRequest', {
    hashedRekordRequestV002: 'hashed_rekord_request_v002',
    dsseRequestV002: 'dsse_request_v002',
  });
  const set = Object.keys(f);
  if (set.length === 0) unsupportedType('invalid type, must be hashedrekord');
  if (set.length > 1) invalid('CreateEntryRequest must set exactly one entry type');
  if (f.hashedRekordRequestV002 !== undefined) {
    checkTypeAllowed(ctx.policy, 'hashedrekord', '0.0.2');
    return hashedRekordV002(f.hashedRekordRequestV002, ctx);
  }
  if (!ctx.policy.acceptDsseV002) {
    unsupportedType(
      'invalid type, must be hashedrekord (dsse 0.0.2 was dropped from Rekor v2: log a DSSE envelope as a hashedrekord over the digest of its PAE)',
    );
  }
  checkTypeAllowed(ctx.policy, 'dsse', '0.0.2');
  return dsseV002(f.dsseRequestV002, ctx);
}
