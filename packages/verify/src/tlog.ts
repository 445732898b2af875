// Transparency-log entry verification, Rekor v1 and Rekor v2 (Rekor's SET and checkpoint formats, C2SP tlog-checkpoint/signed-note, sigstore-go's tlog verification).
//  v1 (hashedrekord 0.0.1, dsse 0.0.1, intoto 0.0.2): the canonicalized body is compared field
//     by field with the bundle, the SET is checked over JCS{body, integratedTime, logID,
//     logIndex}, and the inclusion proof over the body against a signed v1 checkpoint.
//  v2 (hashedrekord 0.0.2): the leaf is rebuilt from the bundle itself (protojson -> JCS), the
//     body is compared with it, and inclusion is checked at the top-level logIndex against a C2SP
//     checkpoint signed under name = hostname(baseUrl).
// Unknown kinds or versions fail closed; entries from logs the trusted root does not list are
// skipped; any other failure rejects the bundle.
import {
  bytesEqual,
  fromBase64,
  fromUtf8,
  toBase64,
  toHex,
  utf8,
  canonicalize,
  canonicalBytes,
  digest,
  sha256,
  verifySignature,
  keyDetails,
  defaultHash,
  HASH_ENUM,
  leafHash,
  verifyInclusion,
  parseSignedNote,
  parseCheckpoint,
  noteSignedBy,
  decodePem,
  pae,
  parseJsonBounded,
  type HashName,
  type PublicKeyInfo,
  type NoteVerifier,
  type Checkpoint,
  type Certificate,
} from '@waxseal/core';
import type { BundleContent, TimeRange, TransparencyLogEntry, TransparencyLogInstance } from '@waxseal/bundle';
import { fail, under } from './fail.ts';
import { inRange, certValidAt, formatWindow } from './chain.ts';

/** A log from the trusted root, prepared once by the Verifier. */
export interface TrustedLog {
  instance: TransparencyLogInstance;
  /** Undefined when the trusted root's key cannot be used (the reason is in keyError). */
  key: PublicKeyInfo | undefined;
  keyError?: string;
  /** Rekor v1 checkpoint key hint: SHA-256(SPKI)[:4]. */
  v1Hint: Uint8Array;
  /** Rekor v2 checkpoint verifier (name = hostname(baseUrl)); undefined if not buildable. */
  v2Verifier: NoteVerifier | undefined;
  hostname: string;
}

/** What the entry must agree with: the bundle's signature, key material and content. */
export interface TlogSubject {
  content: BundleContent;
  /** The bundle signature (messageSignature.signature or the DSSE signature). */
  signature: Uint8Array;
  material: { type: 'certificate'; cert: Certificate } | { type: 'publicKey'; spki: Uint8Array; validFor?: TimeRange };
  key: PublicKeyInfo;
  /** Digest of the artifact with `alg`, when it can be known. */
  artifactDigest(alg: HashName): Uint8Array | undefined;
}

export interface TlogEntryResult {
  entry: TransparencyLogEntry;
  rekorVersion: 1 | 2;
  log: TrustedLog;
  logIdHex: string;
  /** Set only when a SET verified it. */
  integratedTime?: Date;
  /**
   * The log index a signature or proof covers: the entry's index under a SET or in a Rekor v2
   * inclusion proof, else the (shard) index the Rekor v1 inclusion proof verified.
   */
  logIndex?: number;
  inclusionProofVerified: boolean;
}

export const SUPPORTED_ENTRY_TYPES = ['hashedrekord/0.0.1', 'dsse/0.0.1', 'intoto/0.0.2', 'hashedrekord/0.0.2'] as const;

type Json = Record<string, unknown>;

function obj(v: unknown): Json | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined;
}

function path(v: unknown, ...keys: string[]): unknown {
  let cur: unknown = v;
  for (const k of keys) {
    const o = obj(cur);
    if (!o || !Object.hasOwn(o, k)) return undefined;
    cur = o[k];
  }
  return cur;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function mismatch(message: string): never {
  fail('tlog.body-mismatch', message);
}

function bodyBytes(v: unknown, what: string): Uint8Array {
  const s = str(v);
  if (s === undefined) mismatch(`the log entry has no ${what}`);
  return under('tlog.body', what, () => fromBase64(s, what));
}

/** Decodes a base64 PEM (Rekor v1 key fields) to DER and checks it is the bundle's key material. */
function checkPemKey(v: unknown, subject: TlogSubject, what: string): void {
  const pemText = under('tlog.body', what, () => fromUtf8(bodyBytes(v, what), what));
  const block = under('tlog.body', what, () => decodePem(pemText, ['CERTIFICATE', 'PUBLIC KEY']));
  const m = subject.material;
  const ok =
    m.type === 'certificate'
      ? block.label === 'CERTIFICATE' && bytesEqual(block.der, m.cert.der)
      : block.label === 'PUBLIC KEY' && bytesEqual(block.der, m.spki);
  if (!ok) mismatch(`the ${what} in the log entry is not the bundle's ${m.type === 'certificate' ? 'certificate' : 'public key'}`);
}

function hashFromRekorName(name: unknown): HashName | undefined {
  return name === 'sha256' || name === 'sha384' || name === 'sha512' ? name : undefined;
}

function dsseOf(subject: TlogSubject) {
  if (subject.content.type !== 'dsseEnvelope') fail('tlog.body-mismatch', 'a DSSE log entry cannot back a message signature bundle');
  return subject.content.envelope;
}

// ---------------------------------------------------------------- Rekor v1 bodies

function checkHashedRekordV001(body: unknown, subject: TlogSubject): void {
  if (subject.content.type !== 'messageSignature') mismatch('a hashedrekord log entry cannot back a DSSE bundle');
  const sig = bodyBytes(path(body, 'spec', 'signature', 'content'), 'signature');
  if (!bytesEqual(sig, subject.signature)) mismatch('the signature in the log entry is not the bundle signature');
  checkPemKey(path(body, 'spec', 'signature', 'publicKey', 'content'), subject, 'public key');
  const alg = hashFromRekorName(path(body, 'spec', 'data', 'hash', 'algorithm'));
  const value = str(path(body, 'spec', 'data', 'hash', 'value'));
  if (!alg || value === undefined) mismatch('the log entry has no supported artifact hash');
  const want = subject.artifactDigest(alg);
  if (!want) mismatch(`the artifact's ${alg} digest is not known, so the log entry cannot be matched to it`);
  if (value.toLowerCase() !== toHex(want)) mismatch("the artifact digest in the log entry is not the artifact's digest");
}

function checkPayloadHash(v: unknown, payload: Uint8Array): void {
  const alg = hashFromRekorName(path(v, 'algorithm'));
  const value = str(path(v, 'value'));
  if (!alg || value === undefined) mismatch('the log entry has no supported payload hash');
  if (value.toLowerCase() !== toHex(digest(alg, payload))) mismatch('the payload hash in the log entry does not match the DSSE payload');
}

function checkDsseV001(body: unknown, subject: TlogSubject): void {
  const env = dsseOf(subject);
  checkPayloadHash(path(body, 'spec', 'payloadHash'), env.payload);
  const sigs = path(body, 'spec', 'signatures');
  if (!Array.isArray(sigs) || sigs.length !== 1) mismatch('the log entry must record exactly one signature');
  const sig = bodyBytes(path(sigs[0], 'signature'), 'signature');
  if (!bytesEqual(sig, subject.signature)) mismatch('the signature in the log entry is not the envelope signature');
  checkPemKey(path(sigs[0], 'verifier'), subject, 'verifier');
}

function checkIntotoV002(body: unknown, subject: TlogSubject): void {
  const env = dsseOf(subject);
  const content = path(body, 'spec', 'content');
  checkPayloadHash(path(content, 'payloadHash'), env.payload);
  const payloadType = str(path(content, 'envelope', 'payloadType'));
  if (payloadType !== undefined && payloadType !== env.payloadType) mismatch('the payload type in the log entry differs from the envelope');
  const sigs = path(content, 'envelope', 'signatures');
  if (!Array.isArray(sigs) || sigs.length !== 1) mismatch('the log entry must record exactly one signature');
  // intoto 0.0.2 stores the envelope's base64 signature text base64-encoded once more.
  const inner = under('tlog.body', 'signature', () => fromUtf8(bodyBytes(path(sigs[0], 'sig'), 'signature'), 'signature'));
  const sig = under('tlog.body', 'signature', () => fromBase64(inner, 'signature'));
  if (!bytesEqual(sig, subject.signature)) mismatch('the signature in the log entry is not the envelope signature');
  checkPemKey(path(sigs[0], 'publicKey'), subject, 'public key');
}

// ---------------------------------------------------------------- Rekor v2

interface V2Leaf {
  algorithm: HashName;
  digest: Uint8Array;
  keyDetails: string;
}

/** What a hashedrekord v0.0.2 entry for this bundle must contain (rekor-v2-spec 6.1.4). */
function expectedV2(subject: TlogSubject): V2Leaf {
  const details = keyDetails(subject.key, true);
  if (subject.content.type === 'messageSignature') {
    const algorithm = subject.content.messageDigest?.algorithm ?? defaultHash(subject.key.kind);
    const d = subject.artifactDigest(algorithm);
    if (!d) mismatch(`the artifact's ${algorithm} digest is not known, so the log entry cannot be matched to it`);
    return { algorithm, digest: d, keyDetails: details };
  }
  // DSSE is logged as hashedrekord over H(PAE(payloadType, payload)).
  const env = subject.content.envelope;
  const algorithm = defaultHash(subject.key.kind);
  return { algorithm, digest: digest(algorithm, pae(env.payloadType, env.payload)), keyDetails: details };
}

/** The canonical leaf bytes: JCS of the protojson encoding of the Entry. */
export function hashedRekordV002Leaf(subject: TlogSubject, e: V2Leaf): Uint8Array {
  const m = subject.material;
  const verifier =
    m.type === 'certificate'
      ? { keyDetails: e.keyDetails, x509Certificate: { rawBytes: toBase64(m.cert.der) } }
      : { keyDetails: e.keyDetails, publicKey: { rawBytes: toBase64(m.spki) } };
  return canonicalBytes({
    apiVersion: '0.0.2',
    kind: 'hashedrekord',
    spec: {
      hashedRekordV002: {
        data: { algorithm: HASH_ENUM[e.algorithm], digest: toBase64(e.digest) },
        signature: { content: toBase64(subject.signature), verifier },
      },
    },
  });
}

function checkHashedRekordV002(body: unknown, subject: TlogSubject, e: V2Leaf): void {
  const spec = path(body, 'spec', 'hashedRekordV002');
  if (!obj(spec)) mismatch('the log entry has no hashedRekordV002 spec');
  if (path(spec, 'data', 'algorithm') !== HASH_ENUM[e.algorithm])
    mismatch(`the log entry's digest algorithm is not ${HASH_ENUM[e.algorithm]}`);
  if (!bytesEqual(bodyBytes(path(spec, 'data', 'digest'), 'digest'), e.digest))
    mismatch('the digest in the log entry does not match the bundle');
  if (!bytesEqual(bodyBytes(path(spec, 'signature', 'content'), 'signature'), subject.signature))
    mismatch('the signature in the log entry is not the bundle signature');
  const verifier = path(spec, 'signature', 'verifier');
  if (path(verifier, 'keyDetails') !== e.keyDetails) mismatch(`the log entry's key details are not ${e.keyDetails}`);
  const m = subject.material;
  const raw = m.type === 'certificate' ? path(verifier, 'x509Certificate', 'rawBytes') : path(verifier, 'publicKey', 'rawBytes');
  const want = m.type === 'certificate' ? m.cert.der : m.spki;
  if (raw === undefined || !bytesEqual(bodyBytes(raw, 'verifier'), want))
    mismatch(`the log entry's verifier is not the bundle's ${m.type === 'certificate' ? 'certificate' : 'public key'}`);
}

// ---------------------------------------------------------------- checkpoints

function readCheckpoint(text: string): { note: ReturnType<typeof parseSignedNote>; cp: Checkpoint } {
  return under('tlog.checkpoint', 'malformed checkpoint', () => {
    const note = parseSignedNote(text);
    return { note, cp: parseCheckpoint(note.text) };
  });
}

const V1_ORIGIN = /^.+ - [0-9]+$/;

function verifyV1Checkpoint(text: string, log: TrustedLog, key: PublicKeyInfo): Checkpoint {
  const { note, cp } = readCheckpoint(text);
  if (!V1_ORIGIN.test(cp.origin))
    fail('tlog.checkpoint', `origin ${JSON.stringify(cp.origin.slice(0, 80))} is not a Rekor v1 origin ("<host> - <tree ID>")`);
  // Rekor v1 names the signer by hostname, which deployments do not always match to baseUrl:
  // the key hint and the signature decide.
  const msg = utf8(note.text);
  const signed = note.signatures.some((s) => bytesEqual(s.keyHint, log.v1Hint) && verifySignature(key, msg, s.signature));
  if (!signed) fail('tlog.checkpoint', `checkpoint is not signed by log ${log.instance.baseUrl}`);
  return cp;
}

function verifyV2Checkpoint(text: string, log: TrustedLog): Checkpoint {
  const { note, cp } = readCheckpoint(text);
  if (!log.v2Verifier) fail('tlog.key', `log ${log.instance.baseUrl} has no usable checkpoint key`);
  if (cp.origin !== log.v2Verifier.name)
    fail('tlog.checkpoint', `checkpoint origin ${JSON.stringify(cp.origin.slice(0, 80))} is not ${log.v2Verifier.name}`);
  if (!noteSignedBy(note, log.v2Verifier)) fail('tlog.checkpoint', `checkpoint is not signed by log ${log.instance.baseUrl}`);
  return cp;
}

// ---------------------------------------------------------------- one entry

/**
 * Verifies one entry. Returns null for an entry from a log the trusted root does not list
 * (skipped, never counted); throws a WaxsealError (check tlog.*) for any other failure.
 */
export function verifyTlogEntry(
  entry: TransparencyLogEntry,
  subject: TlogSubject,
  logs: ReadonlyMap<string, TrustedLog>,
): TlogEntryResult | null {
  const kv = `${entry.kindVersion.kind}/${entry.kindVersion.version}`;
  if (!(SUPPORTED_ENTRY_TYPES as readonly string[]).includes(kv))
    fail('tlog.unsupported-kind', `log entry type ${JSON.stringify(kv.slice(0, 80))} is not supported`);
  const body = under('tlog.body', 'canonicalizedBody is not JSON', () =>
    parseJsonBounded(fromUtf8(entry.canonicalizedBody, 'canonicalizedBody'), {
      maxBytes: entry.canonicalizedBody.length,
      what: 'canonicalizedBody',
    }),
  );
  if (path(body, 'kind') !== entry.kindVersion.kind || path(body, 'apiVersion') !== entry.kindVersion.version) {
    fail('tlog.body-mismatch', `the log entry body is not a ${kv} entry`);
  }
  const logIdHex = toHex(entry.logId);
  const log = logs.get(logIdHex);
  if (!log) return null;
  if (!log.key) fail('tlog.key', `log ${log.instance.baseUrl} has an unusable key: ${log.keyError ?? 'unknown'}`);
  const key = log.key;

  if (kv === 'hashedrekord/0.0.2') {
    if (!entry.inclusionProof) fail('tlog.missing-proof', 'a Rekor v2 entry needs an inclusion proof');
    const expected = expectedV2(subject);
    checkHashedRekordV002(body, subject, expected);
    const cp = verifyV2Checkpoint(entry.inclusionProof.checkpoint, log);
    const leaf = leafHash(hashedRekordV002Leaf(subject, expected));
    if (entry.logIndex >= cp.size) fail('tlog.inclusion-proof', `log index ${entry.logIndex} is beyond the checkpoint size ${cp.size}`);
    if (!verifyInclusion(entry.logIndex, cp.size, leaf, entry.inclusionProof.hashes, cp.rootHash)) {
      fail('tlog.inclusion-proof', `the entry is not included in log ${log.instance.baseUrl} at index ${entry.logIndex}`);
    }
    return { entry, rekorVersion: 2, log, logIdHex, logIndex: entry.logIndex, inclusionProofVerified: true };
  }

  if (kv === 'hashedrekord/0.0.1') checkHashedRekordV001(body, subject);
  else if (kv === 'dsse/0.0.1') checkDsseV001(body, subject);
  else checkIntotoV002(body, subject);

  if (!entry.inclusionPromise && !entry.inclusionProof)
    fail('tlog.missing-proof', 'the entry has neither an inclusion promise nor an inclusion proof');
  const result: TlogEntryResult = { entry, rekorVersion: 1, log, logIdHex, inclusionProofVerified: false };
  if (entry.inclusionPromise) {
    const payload = canonicalize({
      body: toBase64(entry.canonicalizedBody),
      integratedTime: entry.integratedTime,
      logID: logIdHex,
      logIndex: entry.logIndex,
    });
    if (!verifySignature(key, utf8(payload), entry.inclusionPromise.signedEntryTimestamp)) {
      fail('tlog.set', `the signed entry timestamp does not verify under log ${log.instance.baseUrl}`);
    }
    const t = new Date(entry.integratedTime * 1000);
    checkLogKeyAt(log, t, 'integrated time', 'tlog.set');
    result.integratedTime = t;
    result.logIndex = entry.logIndex;
  }
  // Even without a SET, a logged time outside the signing key's validity is a contradiction.
  if (entry.integratedTime !== 0) {
    const t = new Date(entry.integratedTime * 1000);
    const m = subject.material;
    if (m.type === 'certificate' && !certValidAt(m.cert, t))
      fail('tlog.integrated-time', `integrated time ${t.toISOString()} is outside the certificate's validity`);
    if (m.type === 'publicKey' && m.validFor && !inRange(m.validFor, t))
      fail('tlog.integrated-time', `integrated time ${t.toISOString()} is outside the public key's validity`);
  }
  if (entry.inclusionProof) {
    const p = entry.inclusionProof;
    const cp = verifyV1Checkpoint(p.checkpoint, log, key);
    if (!bytesEqual(cp.rootHash, p.rootHash) || cp.size !== p.treeSize)
      fail('tlog.checkpoint', "the checkpoint does not match the inclusion proof's tree size and root hash");
    if (!verifyInclusion(p.logIndex, p.treeSize, leafHash(entry.canonicalizedBody), p.hashes, p.rootHash)) {
      fail('tlog.inclusion-proof', `the entry is not included in log ${log.instance.baseUrl} at index ${p.logIndex}`);
    }
    result.inclusionProofVerified = true;
    result.logIndex ??= p.logIndex;
  }
  return result;
}

/**
 * Fails (`check`, by default tlog.key) unless the log's key is valid at `t`, naming the key, the
 * log, its window and what `t` is ("integrated time", "entry time"), with where it came from.
 */
export function checkLogKeyAt(log: TrustedLog, t: Date, what: string, check: 'tlog.key' | 'tlog.set' = 'tlog.key', from?: string): void {
  const window = log.instance.publicKey.validFor;
  if (window && !inRange(window, t)) {
    fail(
      check,
      `log key ${toHex(log.instance.logId)} of ${log.instance.baseUrl} is valid ${formatWindow(window)}, ${what} ${t.toISOString()}${from ? ` (${from})` : ''}`,
    );
  }
}

/** Rekor v1 entry UUID / leaf hash of a canonical body (hex). */
export function entryUuid(canonicalizedBody: Uint8Array): string {
  return toHex(leafHash(canonicalizedBody));
}

/** The SHA-256 of a DER SPKI: the Rekor v1 log ID and the CT log ID. */
export function spkiLogId(spki: Uint8Array): Uint8Array {
  return sha256(spki);
}
