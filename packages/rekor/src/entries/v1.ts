// Rekor v1 entry types: ProposedEntry {kind, apiVersion, spec} -> canonical body (JCS of
// {apiVersion, kind, spec}), following each type's Canonicalize() in sigstore/rekor:
//   hashedrekord 0.0.1  x509 key/cert, signature over the digest (Ed25519 as Ed25519ph)
//   dsse 0.0.1          envelope verified, stored as envelope/payload hashes + signatures
//   intoto 0.0.2        envelope verified, payload dropped, payloadHash computed
//   rekord 0.0.1        inline artifact, detached x509 / pgp / minisign / ssh signature
// Unknown fields are ignored, as go-openapi does for these schemas.
import { canonicalBytes, fromBase64, fromHex, toBase64, toHex, utf8, sha256, HASH_SIZE, pae, type HashName } from '@waxseal/core';
import { parseJsonBounded } from '@waxseal/core';
import { parseX509Pem, materialIndexKeys, type X509Material } from '../pki/x509.ts';
import { parseKeyRing, parseDetachedSignature, verifyDetached } from '../pki/pgp.ts';
import { parseMinisignKey, parseMinisignSignature, verifyMinisign } from '../pki/minisign.ts';
import { parseSshPublicKey, parseSshSignature, verifySshSignature } from '../pki/ssh.ts';
import {
  admitX509,
  b64,
  checkTypeAllowed,
  invalid,
  isPlainObject,
  obj,
  str,
  text,
  unsupportedType,
  verifyMessageAnyHash,
  type CanonicalEntry,
  type EntryContext,
} from './common.ts';
import { intotoSubjectKeys } from './intoto-keys.ts';

function keyHashKey(canonical: string): string {
  return toHex(sha256(utf8(canonical)));
}

const x509Keys = materialIndexKeys;

function x509Material(content: Uint8Array, ctx: EntryContext): X509Material {
  const m = parseX509Pem(content);
  admitX509(m, ctx.policy);
  return m;
}

function wrap(kind: string, apiVersion: string, spec: unknown, indexKeys: string[]): CanonicalEntry {
  return {
    kind,
    apiVersion,
    body: canonicalBytes({ apiVersion, kind, spec }),
    indexKeys: [...new Set(indexKeys.map((k) => k.toLowerCase()))],
  };
}

const HEX_RE = /^[0-9a-fA-F]+$/;

async function hashedrekord(spec: Record<string, unknown>, ctx: EntryContext): Promise<CanonicalEntry> {
  const sig = obj(spec.signature, 'signature');
  const sigBytes = b64(sig.content, 'signature.content');
  const pk = obj(sig.publicKey, 'signature.publicKey');
  const m = x509Material(b64(pk.content, 'signature.publicKey.content'), ctx);
  const data = obj(spec.data, 'data');
  const hash = obj(data.hash, 'data.hash');
  const value = str(hash.value, 'data.hash.value');
  const algorithm = hash.algorithm === undefined ? 'sha256' : str(hash.algorithm, 'data.hash.algorithm');
  if (algorithm !== 'sha256' && algorithm !== 'sha384' && algorithm !== 'sha512')
    invalid(`unsupported hash algorithm ${JSON.stringify(algorithm.slice(0, 32))}`);
  if (!HEX_RE.test(value) || value.length !== HASH_SIZE[algorithm] * 2) invalid('invalid value for hash');
  const digest = fromHex(value);
  if (!(await ctx.verifier.verifyDigest(m.key, algorithm as HashName, digest, sigBytes)))
    invalid('verifying signature: signature does not verify over the digest', 'log.signature');
  return wrap(
    'hashedrekord',
    '0.0.1',
    {
      data: { hash: { algorithm, value } },
      signature: { content: toBase64(sigBytes), publicKey: { content: toBase64(utf8(m.canonicalPem)) } },
    },
    [`${algorithm}:${value}`, ...x509Keys(m)],
  );
}

interface Envelope {
  payloadType: string;
  payload: Uint8Array;
  signatures: { sig: string; sigBytes: Uint8Array; keyid?: string }[];
}

function parseEnvelopeJson(s: string, ctx: EntryContext): Envelope {
  let v: unknown;
  try {
    v = parseJsonBounded(s, { maxBytes: 3 * ctx.policy.maxEnvelopeBytes });
  } catch {
    invalid('envelope is not valid JSON');
  }
  const e = obj(v, 'envelope');
  const payloadType = typeof e.payloadType === 'string' ? e.payloadType : invalid('envelope.payloadType is missing');
  const payload = typeof e.payload === 'string' ? decodeDsseB64(e.payload, 'envelope.payload') : invalid('envelope.payload is missing');
  if (!Array.isArray(e.signatures) || e.signatures.length === 0) invalid('DSSE envelope must contain 1 or more signatures');
  if (e.signatures.length > ctx.policy.maxSignatures)
    invalid(`too many signatures: ${e.signatures.length}, max allowed: ${ctx.policy.maxSignatures}`, 'log.size');
  const signatures = e.signatures.map((x, i) => {
    const so = obj(x, `envelope.signatures[${i}]`);
    const sig = str(so.sig, `envelope.signatures[${i}].sig`);
    return {
      sig,
      sigBytes: decodeDsseB64(sig, `envelope.signatures[${i}].sig`),
      ...(typeof so.keyid === 'string' ? { keyid: so.keyid } : {}),
    };
  });
  return { payloadType, payload, signatures };
}

/** DSSE allows standard or URL-safe base64 (go-securesystemslib tries both). */
function decodeDsseB64(s: string, what: string): Uint8Array {
  if (/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return fromBase64(s, what);
  if (/^[A-Za-z0-9_-]*={0,2}$/.test(s)) return new Uint8Array(Buffer.from(s, 'base64url'));
  invalid(`${what} is not valid base64`);
}

/** Matches every envelope signature with a key that verifies it over PAE. */
function verifyEnvelope(env: Envelope, keys: X509Material[], ctx: EntryContext): Map<string, X509Material> {
  const message = pae(env.payloadType, env.payload);
  const bySig = new Map<string, X509Material>();
  for (const s of env.signatures) {
    const k = keys.find((m) => verifyMessageAnyHash(ctx, m.key, message, s.sigBytes));
    if (!k) invalid('all signatures must have a key that verifies it', 'log.signature');
    bySig.set(s.sig, k);
  }
  return bySig;
}

async function dsse(spec: Record<string, unknown>, ctx: EntryContext): Promise<CanonicalEntry> {
  const pc = obj(spec.proposedContent, 'proposedContent');
  const envText = str(pc.envelope, 'proposedContent.envelope');
  if (envText.length > ctx.policy.maxEnvelopeBytes) invalid(`envelope exceeds ${ctx.policy.maxEnvelopeBytes} bytes`, 'log.size');
  if (!Array.isArray(pc.verifiers) || pc.verifiers.length === 0) invalid('proposedContent.verifiers is missing');
  if (pc.verifiers.length > ctx.policy.maxSignatures)
    invalid(`too many verifiers: ${pc.verifiers.length}, max allowed: ${ctx.policy.maxSignatures}`, 'log.size');
  const keys = pc.verifiers.map((v, i) => x509Material(b64(v, `proposedContent.verifiers[${i}]`), ctx));
  const env = parseEnvelopeJson(envText, ctx);
  const bySig = verifyEnvelope(env, keys, ctx);
  const signatures = [...bySig.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([signature, m]) => ({ signature, verifier: toBase64(utf8(m.canonicalPem)) }));
  const payloadHash = toHex(sha256(env.payload));
  const envelopeHash = toHex(sha256(utf8(envText)));
  const used = [...new Set(bySig.values())];
  return wrap(
    'dsse',
    '0.0.1',
    { envelopeHash: { algorithm: 'sha256', value: envelopeHash }, payloadHash: { algorithm: 'sha256', value: payloadHash }, signatures },
    [`sha256:${payloadHash}`, `sha256:${envelopeHash}`, ...used.flatMap(x509Keys), ...intotoSubjectKeys(env.payloadType, env.payload)],
  );
}

async function intoto(spec: Record<string, unknown>, ctx: EntryContext): Promise<CanonicalEntry> {
  const content = obj(spec.content, 'content');
  const e = obj(content.envelope, 'content.envelope');
  const payloadType = str(e.payloadType, 'content.envelope.payloadType');
  // The payload and signatures are base64 of the base64 text (double encoded), as Rekor expects.
  const payloadB64 = text(b64(e.payload, 'content.envelope.payload'), 'content.envelope.payload');
  if (payloadB64.length > ctx.policy.maxEnvelopeBytes) invalid(`envelope exceeds ${ctx.policy.maxEnvelopeBytes} bytes`, 'log.size');
  const payload = decodeDsseB64(payloadB64, 'content.envelope.payload');
  if (!Array.isArray(e.signatures) || e.signatures.length === 0) invalid('missing signatures');
  if (e.signatures.length > ctx.policy.maxSignatures)
    invalid(`too many signatures: ${e.signatures.length}, max allowed: ${ctx.policy.maxSignatures}`, 'log.size');
  const message = pae(payloadType, payload);
  const keys: X509Material[] = [];
  const signatures = e.signatures.map((x, i) => {
    const so = obj(x, `content.envelope.signatures[${i}]`);
    const sigText = text(b64(so.sig, `signatures[${i}].sig`), `signatures[${i}].sig`);
    const sigBytes = decodeDsseB64(sigText, `signatures[${i}].sig`);
    const pkBytes = b64(so.publicKey, `signatures[${i}].publicKey`);
    const m = x509Material(pkBytes, ctx);
    if (!verifyMessageAnyHash(ctx, m.key, message, sigBytes)) invalid('all signatures must have a key that verifies it', 'log.signature');
    keys.push(m);
    const keyid = typeof so.keyid === 'string' && so.keyid !== '' ? so.keyid : undefined;
    return { ...(keyid ? { keyid } : {}), publicKey: toBase64(pkBytes), sig: toBase64(utf8(sigText)) };
  });
  const h = obj(content.hash, 'content.hash');
  const hashAlg = str(h.algorithm, 'content.hash.algorithm');
  const hashValue = str(h.value, 'content.hash.value');
  if (hashAlg !== 'sha256' || !/^[0-9a-f]{64}$/.test(hashValue)) invalid('content.hash must be a sha256 hex digest');
  const payloadHash = toHex(sha256(payload));
  return wrap(
    'intoto',
    '0.0.2',
    {
      content: {
        envelope: { payloadType, signatures },
        hash: { algorithm: hashAlg, value: hashValue },
        payloadHash: { algorithm: 'sha256', value: payloadHash },
      },
    },
    [`sha256:${payloadHash}`, ...keys.flatMap(x509Keys), ...intotoSubjectKeys(payloadType, payload)],
  );
}

async function rekord(spec: Record<string, unknown>, ctx: EntryContext): Promise<CanonicalEntry> {
  const sig = obj(spec.signature, 'signature');
  const format = str(sig.format, 'signature.format');
  const sigBytes = b64(sig.content, 'signature.content');
  const keyBytes = b64(obj(sig.publicKey, 'signature.publicKey').content, 'signature.publicKey.content');
  const data = obj(spec.data, 'data');
  if (typeof data.url === 'string' || typeof sig.url === 'string') invalid('fetching content by URL is not supported; send it inline');
  if (data.content === undefined) invalid("'content' must be specified for data");
  const contentB64 = data.content;
  if (typeof contentB64 === 'string' && contentB64.length > Math.ceil(ctx.policy.maxArtifactBytes / 3) * 4)
    invalid(`artifact exceeds ${ctx.policy.maxArtifactBytes} bytes`, 'log.size');
  const artifact = b64(contentB64, 'data.content');
  const digest = toHex(sha256(artifact));
  if (isPlainObject(data.hash)) {
    const given = str(data.hash.value, 'data.hash.value');
    if (data.hash.algorithm !== undefined && data.hash.algorithm !== 'sha256') invalid('data.hash.algorithm must be sha256');
    if (given !== digest) invalid(`SHA mismatch: ${digest} != ${given.slice(0, 64)}`);
  }
  let canonicalSig: string;
  let canonicalKey: string;
  let keys: string[];
  switch (format) {
    case 'x509': {
      const m = x509Material(keyBytes, ctx);
      if (!verifyMessageAnyHash(ctx, m.key, artifact, sigBytes)) invalid('signature does not verify over the artifact', 'log.signature');
      canonicalSig = toBase64(sigBytes);
      canonicalKey = toBase64(utf8(m.canonicalPem));
      keys = x509Keys(m);
      break;
    }
    case 'pgp': {
      const ring = parseKeyRing(keyBytes);
      const s = parseDetachedSignature(sigBytes);
      if (!verifyDetached(ring, s, artifact))
        invalid('pgp: signature does not verify over the artifact with the given key', 'log.signature');
      canonicalSig = toBase64(utf8(s.canonical));
      canonicalKey = toBase64(utf8(ring.canonical));
      keys = [keyHashKey(ring.canonical), ...ring.emails];
      break;
    }
    case 'minisign': {
      const k = parseMinisignKey(keyBytes);
      const s = parseMinisignSignature(sigBytes);
      if (!verifyMinisign(k, s, artifact))
        invalid('minisign: signature does not verify over the artifact with the given key', 'log.signature');
      canonicalSig = toBase64(utf8(s.canonical));
      canonicalKey = toBase64(utf8(k.canonical));
      keys = [keyHashKey(k.canonical)];
      break;
    }
    case 'ssh': {
      const k = parseSshPublicKey(keyBytes);
      const s = parseSshSignature(sigBytes);
      if (!verifySshSignature(k, s, artifact))
        invalid('ssh: signature does not verify over the artifact with the given key', 'log.signature');
      canonicalSig = toBase64(utf8(s.canonical));
      canonicalKey = toBase64(utf8(k.canonical));
      keys = [keyHashKey(k.canonical), ...(/^[^\s@]+@[^\s@]+$/.test(k.comment) ? [k.comment] : [])];
      break;
    }
    default:
      invalid(`unsupported signature format ${JSON.stringify(format.slice(0, 32))}`);
  }
  return wrap(
    'rekord',
    '0.0.1',
    {
      data: { hash: { algorithm: 'sha256', value: digest } },
      signature: { content: canonicalSig, format, publicKey: { content: canonicalKey } },
    },
    [`sha256:${digest}`, ...keys],
  );
}

const TYPES: Record<string, (spec: Record<string, unknown>, ctx: EntryContext) => Promise<CanonicalEntry>> = {
  'hashedrekord/0.0.1': hashedrekord,
  'dsse/0.0.1': dsse,
  'intoto/0.0.2': intoto,
  'rekord/0.0.1': rekord,
};

export const SUPPORTED_V1_TYPES = Object.keys(TYPES);

/** Validates a Rekor v1 ProposedEntry and returns the canonical entry to append. */
export async function canonicalizeProposedEntry(pe: unknown, ctx: EntryContext): Promise<CanonicalEntry> {
  const p = obj(pe, 'proposed entry');
  const kind = typeof p.kind === 'string' ? p.kind : invalid('proposed entry kind is missing');
  const apiVersion = typeof p.apiVersion === 'string' ? p.apiVersion : invalid('proposed entry apiVersion is missing');
  const fn = TYPES[`${kind}/${apiVersion}`];
  if (!fn)
    unsupportedType(
      `unsupported entry type ${JSON.stringify(kind.slice(0, 32))} version ${JSON.stringify(apiVersion.slice(0, 16))}; supported: ${SUPPORTED_V1_TYPES.join(', ')}`,
    );
  checkTypeAllowed(ctx.policy, kind, apiVersion);
  return fn(obj(p.spec, 'spec'), ctx);
}
