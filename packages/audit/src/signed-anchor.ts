// The signed anchor: a statement of where a pruned log now starts (or where an archive ends),
// signed by the instance's TSA key and checked against the TSA certificates of the instance's
// trusted_root.json. Pure: no I/O.
//
// Why the TSA key, signing the statement itself (not an RFC 3161 token over it): the verifier
// already trusts that key (trusted_root.json lists it, with its validity window), so no new key
// needs publishing; and a timestamp token over the statement's hash would prove only when it
// existed, not who made it: the TSA timestamps any hash for anyone who asks. A signature over
// "waxseal audit anchor v1\n" + JCS(statement) is one the TSA service never makes: it signs only
// the DER signed attributes of its own tokens (a SET, first byte 0x31), never caller-chosen bytes.
import {
  OID,
  WaxsealError,
  canonicalize,
  defaultHash,
  extendedKeyUsage,
  fromBase64,
  parseCertificate,
  publicKeyFromSpki,
  sha256,
  toBase64,
  toHex,
  utf8,
  verifySignature,
  type HashName,
  type PublicKeyInfo,
} from '@waxseal/core';
import type { AuditHead } from './record.ts';

export const ANCHOR_STATEMENT_TYPE = 'waxseal.audit.anchor/v1';
const DOMAIN = 'waxseal audit anchor v1\n';
const HASH_RE = /^[0-9a-f]{64}$/;

export interface AnchorStatement {
  type: typeof ANCHOR_STATEMENT_TYPE;
  /**
   * prune: the database's records now start after `through` (it was the last one removed).
   * export: the archive's records end at `through`.
   */
  event: 'prune' | 'export';
  /** The last record removed or archived: the first record kept chains to its hash. */
  through: AuditHead;
  /** Where the removed or archived records started: after this record (seq 0: the log's start). */
  from: AuditHead;
  /** SHA-256 (hex) of the archive's bytes before its anchor line; absent for a prune without archive. */
  archiveSha256?: string;
  /** When it was signed (ISO 8601). */
  time: string;
}

/** What the database keeps after a prune and an archive carries on its last line. */
export interface SignedAnchor {
  statement: AnchorStatement;
  /** The signing key: SHA-256 (hex) of its SubjectPublicKeyInfo. */
  keyId: string;
  hash: HashName;
  /** Base64 DER (ECDSA, RSA) or raw (Ed25519) signature over signedAnchorBytes(statement). */
  signature: string;
}

/** What an anchor signer needs of a key: a Signer from @waxseal/keys fits. */
export interface AnchorSigner {
  readonly publicKeySpki: Uint8Array;
  readonly hash: HashName;
  sign(message: Uint8Array): Promise<Uint8Array>;
}

/** A key that may sign anchors, and when. */
export interface AnchorKey {
  /** For messages: the TSA's subject or URI. */
  name: string;
  keyId: string;
  key: PublicKeyInfo;
  notBefore?: Date;
  notAfter?: Date;
}

/** The bytes a signed anchor's signature covers. */
export function signedAnchorBytes(statement: AnchorStatement): Uint8Array {
  return utf8(DOMAIN + canonicalize(statement));
}

export async function signAnchor(statement: AnchorStatement, signer: AnchorSigner): Promise<SignedAnchor> {
  checkStatement(statement);
  const signature = await signer.sign(signedAnchorBytes(statement));
  return { statement, keyId: toHex(sha256(signer.publicKeySpki)), hash: signer.hash, signature: toBase64(signature) };
}

/**
 * The keys that may sign anchors: the leaf certificate of each timestamp authority in a trusted
 * root (its first certificate, when that is a time-stamping certificate), valid within both the
 * authority's validFor and the certificate's own validity.
 */
export function anchorKeysFromTrustedRoot(root: {
  timestampAuthorities: readonly { uri?: string; certChain: readonly Uint8Array[]; validFor: { start?: Date; end?: Date } }[];
}): AnchorKey[] {
  const keys: AnchorKey[] = [];
  for (const [i, tsa] of root.timestampAuthorities.entries()) {
    const der = tsa.certChain[0];
    if (!der) continue;
    const cert = parseCertificate(der);
    if (!extendedKeyUsage(cert)?.includes(OID.kpTimeStamping)) continue;
    const start = Math.max(cert.notBefore.getTime(), tsa.validFor.start?.getTime() ?? -Infinity);
    const end = Math.min(cert.notAfter.getTime(), tsa.validFor.end?.getTime() ?? Infinity);
    keys.push({
      name: tsa.uri || `timestampAuthorities[${i}]`,
      keyId: toHex(sha256(cert.spki)),
      key: publicKeyFromSpki(cert.spki),
      notBefore: new Date(start),
      ...(Number.isFinite(end) ? { notAfter: new Date(end) } : {}),
    });
  }
  return keys;
}

/** The key of a signer, as a verifier would trust it (for checks made by the signing side). */
export function anchorKeyOf(signer: AnchorSigner, name = 'the signing key'): AnchorKey {
  return { name, keyId: toHex(sha256(signer.publicKeySpki)), key: publicKeyFromSpki(signer.publicKeySpki) };
}

function bad(why: string): WaxsealError {
  return new WaxsealError('ERR_AUDIT_TAMPERED', `signed audit anchor: ${why}`);
}

const isHead = (h: unknown): h is AuditHead =>
  typeof h === 'object' &&
  h !== null &&
  Object.keys(h).length === 2 &&
  Number.isSafeInteger((h as AuditHead).seq) &&
  (h as AuditHead).seq >= 0 &&
  typeof (h as AuditHead).hash === 'string' &&
  HASH_RE.test((h as AuditHead).hash);

function checkStatement(s: unknown): asserts s is AnchorStatement {
  if (typeof s !== 'object' || s === null) throw bad('the statement is not an object');
  const o = s as Record<string, unknown>;
  for (const k of Object.keys(o))
    if (!['type', 'event', 'through', 'from', 'archiveSha256', 'time'].includes(k)) throw bad(`unexpected field ${JSON.stringify(k)}`);
  if (o['type'] !== ANCHOR_STATEMENT_TYPE) throw bad(`type is not ${ANCHOR_STATEMENT_TYPE}`);
  if (o['event'] !== 'prune' && o['event'] !== 'export') throw bad('event must be prune or export');
  if (!isHead(o['through']) || !isHead(o['from'])) throw bad('through and from must be {seq, hash}');
  if ((o['from'] as AuditHead).seq > (o['through'] as AuditHead).seq) throw bad('from is after through');
  if (o['archiveSha256'] !== undefined && (typeof o['archiveSha256'] !== 'string' || !HASH_RE.test(o['archiveSha256'])))
    throw bad('archiveSha256 must be 64 hex digits');
  if (typeof o['time'] !== 'string' || Number.isNaN(Date.parse(o['time']))) throw bad('time is not a time');
}

/** A signed anchor's shape (parsed JSON), its signature not checked: ERR_AUDIT_TAMPERED when malformed. */
export function readSignedAnchor(value: unknown): SignedAnchor {
  if (typeof value !== 'object' || value === null) throw bad('not an object');
  const a = value as Partial<Record<keyof SignedAnchor, unknown>>;
  for (const k of Object.keys(a))
    if (!['statement', 'keyId', 'hash', 'signature'].includes(k)) throw bad(`unexpected field ${JSON.stringify(k)}`);
  checkStatement(a.statement);
  if (typeof a.signature !== 'string' || a.signature === '') throw bad('it is not signed');
  if (typeof a.keyId !== 'string' || !HASH_RE.test(a.keyId)) throw bad('keyId must be 64 hex digits');
  if (a.hash !== 'sha256' && a.hash !== 'sha384' && a.hash !== 'sha512') throw bad('hash must be sha256, sha384 or sha512');
  return a as SignedAnchor;
}

/**
 * Checks a signed anchor (parsed JSON) against the keys that may sign anchors; returns its
 * statement. ERR_AUDIT_TAMPERED when it is malformed, altered, or signed by no such key (or by
 * one outside its validity at the statement's time).
 */
export function verifySignedAnchor(value: unknown, keys: readonly AnchorKey[]): AnchorStatement & { signedBy: string } {
  const a = readSignedAnchor(value);
  let signature: Uint8Array;
  try {
    signature = fromBase64(a.signature, 'signature');
  } catch {
    throw bad('the signature is not base64');
  }
  const candidates = keys.filter((k) => k.keyId === a.keyId);
  if (candidates.length === 0) throw bad('it is not signed by a timestamp authority key of the trusted root');
  const bytes = signedAnchorBytes(a.statement);
  const time = Date.parse(a.statement.time);
  let why = 'the signature does not verify (the statement or the signature was altered)';
  for (const k of candidates) {
    const hash = k.key.kind === 'ed25519' ? defaultHash(k.key.kind) : a.hash;
    if (!verifySignature(k.key, bytes, signature, { hash })) continue;
    if ((k.notBefore && time < k.notBefore.getTime()) || (k.notAfter && time > k.notAfter.getTime())) {
      why = `${k.name} was not valid at ${a.statement.time}`;
      continue;
    }
    return { ...a.statement, signedBy: k.name };
  }
  throw bad(why);
}
