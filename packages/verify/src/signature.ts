// The signature over the artifact: a message signature over the artifact bytes (or a prehashed
// digest), or a DSSE signature over PAE(payloadType, payload) plus the in-toto statement's
// subject digests.
import {
  bytesEqual,
  fromUtf8,
  toHex,
  digest,
  verifySignature,
  defaultHash,
  HASH_SIZE,
  pae,
  INTOTO_PAYLOAD_TYPE,
  parseJsonBounded,
  type HashName,
  type PublicKeyInfo,
  type InTotoStatement,
} from '@waxseal/core';
import { MAX_INTOTO_SUBJECTS, type DsseEnvelope, type MessageDigest } from '@waxseal/bundle';
import { fail } from './fail.ts';

/** The artifact to verify against: its bytes, or only its digest. */
export type Artifact = { bytes: Uint8Array } | { digest: { algorithm: HashName; value: Uint8Array | string } };

/** Memoised digests of the artifact, by algorithm. */
export class ArtifactDigests {
  readonly artifact: Artifact | undefined;
  readonly #cache = new Map<HashName, Uint8Array>();

  constructor(artifact: Artifact | undefined) {
    this.artifact = artifact;
    if (artifact && 'digest' in artifact) {
      const { algorithm, value } = artifact.digest;
      if (!Object.hasOwn(HASH_SIZE, algorithm)) fail('policy', `unsupported artifact digest algorithm ${String(algorithm)}`);
      let bytes: Uint8Array;
      if (typeof value === 'string') {
        if (!/^([0-9a-fA-F]{2})*$/.test(value)) fail('policy', 'artifact digest is not hex');
        bytes = new Uint8Array(Buffer.from(value, 'hex'));
      } else bytes = value;
      if (bytes.length !== HASH_SIZE[algorithm]) fail('policy', `artifact ${algorithm} digest must be ${HASH_SIZE[algorithm]} bytes`);
      this.#cache.set(algorithm, bytes);
    }
  }

  get bytes(): Uint8Array | undefined {
    return this.artifact && 'bytes' in this.artifact ? this.artifact.bytes : undefined;
  }

  /** The digest with `alg`, or undefined when only a digest with another algorithm is known. */
  get(alg: HashName): Uint8Array | undefined {
    const hit = this.#cache.get(alg);
    if (hit) return hit;
    const b = this.bytes;
    if (!b) return undefined;
    const d = digest(alg, b);
    this.#cache.set(alg, d);
    return d;
  }
}

/** ECDSA keys on P-384/P-521 may have signed with SHA-256 (sigstore-go's compatibility path for bundles up to v0.3). */
function compatHashes(key: PublicKeyInfo): HashName[] {
  const d = defaultHash(key.kind);
  return key.kind === 'ecdsa-p384' || key.kind === 'ecdsa-p521' ? [d, 'sha256'] : [d];
}

/** Verifies a messageSignature over the artifact (bytes, or a digest verified prehashed). */
export function verifyMessageSignature(
  key: PublicKeyInfo,
  signature: Uint8Array,
  messageDigest: MessageDigest | undefined,
  artifact: ArtifactDigests,
): void {
  if (!artifact.artifact) fail('artifact.required', 'a message signature can only be verified against an artifact or its digest');
  // The bundle's digest is only a hint, but it must agree with the artifact.
  if (messageDigest) {
    const actual = artifact.get(messageDigest.algorithm);
    if (actual && !bytesEqual(actual, messageDigest.digest))
      fail('artifact.digest', `the artifact's ${messageDigest.algorithm} digest does not match the bundle's message digest`);
  }
  let ok = false;
  if (key.kind === 'ed25519') {
    // Message signatures with Ed25519 keys are Ed25519ph (as hashedrekord requires).
    const d = artifact.get('sha512');
    if (!d) fail('signature', 'an Ed25519 message signature needs the artifact or its sha512 digest');
    ok = verifySignature(key, d, signature, { prehashed: true });
  } else if (artifact.bytes) {
    for (const hash of compatHashes(key)) if (!ok) ok = verifySignature(key, artifact.bytes, signature, { hash });
  } else {
    const hashes = compatHashes(key);
    const given = (artifact.artifact as { digest: { algorithm: HashName } }).digest.algorithm;
    if (!hashes.includes(given))
      fail('signature', `a ${key.kind} signature needs the artifact's ${hashes.join(' or ')} digest, not ${given}`);
    ok = verifySignature(key, artifact.get(given)!, signature, { hash: given, prehashed: true });
  }
  if (!ok) fail('signature', 'the signature does not verify over the artifact with the signing key');
}

/** Verifies the DSSE envelope signature (pure Ed25519 for Ed25519 keys). */
export function verifyDsseSignature(key: PublicKeyInfo, envelope: DsseEnvelope): void {
  const sig = envelope.signatures[0];
  if (envelope.signatures.length !== 1 || !sig) fail('signature', 'the envelope must carry exactly one signature');
  const message = pae(envelope.payloadType, envelope.payload);
  let ok = false;
  for (const hash of compatHashes(key)) if (!ok) ok = verifySignature(key, message, sig.sig, { hash });
  if (!ok) fail('signature', 'the DSSE signature does not verify over PAE(payloadType, payload)');
}

/** Parses the envelope payload as an in-toto Statement. */
export function parseStatement(envelope: DsseEnvelope): InTotoStatement {
  if (envelope.payloadType !== INTOTO_PAYLOAD_TYPE)
    fail('dsse.payload-type', `payload type ${JSON.stringify(envelope.payloadType.slice(0, 80))} is not ${INTOTO_PAYLOAD_TYPE}`);
  let v: unknown;
  try {
    v = parseJsonBounded(fromUtf8(envelope.payload, 'payload'), { maxBytes: envelope.payload.length, what: 'payload' });
  } catch (e) {
    fail('dsse.statement', 'the payload is not a JSON in-toto statement', e);
  }
  const o = typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  if (!o) fail('dsse.statement', 'the payload is not a JSON object');
  if (typeof o._type !== 'string' || !o._type.startsWith('https://in-toto.io/Statement/'))
    fail('dsse.statement', 'the payload is not an in-toto Statement (_type)');
  if (typeof o.predicateType !== 'string') fail('dsse.statement', 'the statement has no predicateType');
  if (!Array.isArray(o.subject) || o.subject.length === 0) fail('dsse.statement', 'the statement has no subjects');
  if (o.subject.length > MAX_INTOTO_SUBJECTS) fail('dsse.statement', `the statement has more than ${MAX_INTOTO_SUBJECTS} subjects`);
  const subject = o.subject.map((s, i) => {
    const so = typeof s === 'object' && s !== null && !Array.isArray(s) ? (s as Record<string, unknown>) : undefined;
    const d =
      so && typeof so.digest === 'object' && so.digest !== null && !Array.isArray(so.digest)
        ? (so.digest as Record<string, unknown>)
        : undefined;
    if (!so || !d) fail('dsse.statement', `subject ${i} has no digest set`);
    const digestSet: Record<string, string> = {};
    for (const [k, val] of Object.entries(d)) if (typeof val === 'string') digestSet[k] = val;
    return typeof so.name === 'string' ? { name: so.name, digest: digestSet } : { digest: digestSet };
  });
  const out: InTotoStatement = { _type: o._type, subject, predicateType: o.predicateType };
  if (o.predicate !== undefined) out.predicate = o.predicate;
  return out;
}

const SUBJECT_HASH_PREFERENCE: HashName[] = ['sha512', 'sha384', 'sha256'];

/** The artifact must be one of the statement's subjects (by the strongest digest they list). */
export function checkSubject(statement: InTotoStatement, artifact: ArtifactDigests): void {
  if (!artifact.artifact) return;
  const listed = new Set(statement.subject.flatMap((s) => Object.keys(s.digest)));
  let candidates = SUBJECT_HASH_PREFERENCE.filter((h) => listed.has(h));
  if (!artifact.bytes) candidates = candidates.filter((h) => artifact.get(h) !== undefined);
  const alg = candidates[0];
  if (!alg)
    fail(
      'dsse.subject',
      artifact.bytes
        ? 'no subject lists a sha256, sha384 or sha512 digest'
        : "no subject lists a digest with the given artifact digest's algorithm",
    );
  const want = toHex(artifact.get(alg)!);
  if (!statement.subject.some((s) => s.digest[alg]?.toLowerCase() === want))
    fail('dsse.subject', `the artifact's ${alg} digest is not a subject of the statement`);
}
