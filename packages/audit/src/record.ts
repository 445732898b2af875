// The audit record and its hash chain. Pure: no I/O.
//
//   hash(r) = hex(SHA-256( bytes(r.prevHash) || JCS(r without "hash") ))
//
// where bytes(prevHash) is the 32 raw bytes of the previous record's hash (64 zero hex digits
// for the first record) and JCS is RFC 8785 canonical JSON (src/core/jcs.ts). Records are
// numbered 1, 2, 3, … with no gaps. Editing any field breaks that record's hash; deleting,
// inserting or reordering records breaks seq numbering or the prevHash link; removing records
// from the end is caught only by comparing with a head (seq, hash) kept elsewhere: an anchor.
import { WaxsealError, canonicalBytes, concat, fromHex, toHex, sha256 } from '@waxseal/core';

export type AuditResult = 'ok' | 'denied' | 'error';
export const AUDIT_RESULTS: readonly AuditResult[] = ['ok', 'denied', 'error'];

export interface AuditIdentity {
  issuer?: string;
  subject?: string;
  san?: string;
}

/** What a component reports: one key use or one refusal. */
export interface AuditEvent {
  /** Who asked: remote address and/or client (e.g. "127.0.0.1 sigstore-js/4.0"). */
  actor: string;
  /** The verified identity the request was made for, when there is one. */
  identity?: AuditIdentity;
  /** What was attempted, e.g. "ca.issue", "ca.refuse", "tsa.timestamp", "log.append". */
  action: string;
  /** The key that signed (or would have signed): the Signer's keyRef. */
  keyRef?: string;
  /** Lower-case hex digest of what was signed (TBS certificate, timestamp token, entry…). */
  digest?: string;
  result: AuditResult;
  /** The WaxsealError code for refusals and errors. */
  errorCode?: string;
  /** Any extra JSON (serial number, log index, reason…). Keep it small and free of secrets. */
  detail?: unknown;
}

export interface AuditRecord extends AuditEvent {
  seq: number;
  /** ISO 8601 UTC with milliseconds. */
  time: string;
  prevHash: string;
  hash: string;
}

/** The latest record's position and hash: what an anchor keeps. */
export interface AuditHead {
  seq: number;
  hash: string;
}

export const GENESIS_HASH = '0'.repeat(64);
/** Largest canonical record we accept (detail is the only open-ended field). */
export const MAX_RECORD_BYTES = 64 * 1024;

const HASH_RE = /^[0-9a-f]{64}$/;
const DIGEST_RE = /^[0-9a-f]+$/;
const RECORD_FIELDS = new Set([
  'seq',
  'time',
  'actor',
  'identity',
  'action',
  'keyRef',
  'digest',
  'result',
  'errorCode',
  'detail',
  'prevHash',
  'hash',
]);

/** The record's hash as defined above. */
export function computeRecordHash(record: Omit<AuditRecord, 'hash'> & { hash?: string }): string {
  const { hash: _ignored, ...rest } = record;
  return toHex(sha256(concat(fromHex(record.prevHash, 'prevHash'), canonicalBytes(rest))));
}

function isStr(v: unknown, max = 4096): v is string {
  return typeof v === 'string' && v.length <= max;
}

/** Validates and normalises an event (drops undefined members); ERR_INVALID_INPUT when malformed. */
export function normaliseEvent(e: AuditEvent): AuditEvent {
  const bad = (why: string) => new WaxsealError('ERR_INVALID_INPUT', `audit event: ${why}`);
  if (typeof e !== 'object' || e === null) throw bad('must be an object');
  if (!isStr(e.actor)) throw bad('actor must be a string');
  if (!isStr(e.action, 200) || e.action === '') throw bad('action must be a non-empty string');
  if (!AUDIT_RESULTS.includes(e.result)) throw bad(`result must be one of ${AUDIT_RESULTS.join(', ')}`);
  const out: AuditEvent = { actor: e.actor, action: e.action, result: e.result };
  if (e.identity !== undefined) {
    if (typeof e.identity !== 'object' || e.identity === null) throw bad('identity must be an object');
    const id: AuditIdentity = {};
    for (const k of ['issuer', 'subject', 'san'] as const) {
      const v = e.identity[k];
      if (v === undefined) continue;
      if (!isStr(v)) throw bad(`identity.${k} must be a string`);
      id[k] = v;
    }
    out.identity = id;
  }
  if (e.keyRef !== undefined) {
    if (!isStr(e.keyRef)) throw bad('keyRef must be a string');
    out.keyRef = e.keyRef;
  }
  if (e.digest !== undefined) {
    if (!isStr(e.digest, 256) || !DIGEST_RE.test(e.digest)) throw bad('digest must be lower-case hex');
    out.digest = e.digest;
  }
  if (e.errorCode !== undefined) {
    if (!isStr(e.errorCode, 100)) throw bad('errorCode must be a string');
    out.errorCode = e.errorCode;
  }
  if (e.detail !== undefined) out.detail = e.detail;
  return out;
}

/** Builds the next record after `prev` (undefined = the first record). */
export function buildRecord(prev: AuditHead | undefined, event: AuditEvent, time: Date): AuditRecord {
  const body: Omit<AuditRecord, 'hash'> = {
    seq: (prev?.seq ?? 0) + 1,
    time: time.toISOString(),
    ...normaliseEvent(event),
    prevHash: prev?.hash ?? GENESIS_HASH,
  };
  // JCS refuses non-finite numbers and non-JSON values in detail here, before anything is stored.
  let size: number;
  try {
    size = canonicalBytes(body).length;
  } catch (e) {
    throw new WaxsealError('ERR_INVALID_INPUT', `audit event detail is not plain JSON: ${(e as Error).message}`, { cause: e });
  }
  if (size > MAX_RECORD_BYTES) throw new WaxsealError('ERR_INVALID_INPUT', `audit record exceeds ${MAX_RECORD_BYTES} bytes`);
  return { ...body, hash: computeRecordHash(body) };
}

/** The canonical one-line JSON form of a record (export format; also the SQLite storage form). */
export function encodeRecord(r: AuditRecord): string {
  return new TextDecoder().decode(canonicalBytes(r));
}

function tampered(seq: number, why: string): WaxsealError {
  return new WaxsealError('ERR_AUDIT_TAMPERED', `audit log tampered at seq ${seq}: ${why}`, { detail: { seq } });
}

export interface AuditVerifyResult {
  /** Number of records checked. */
  records: number;
  /** The last record's seq and hash (undefined for an empty log). */
  head: AuditHead | undefined;
  /** Whether an anchor was compared (and matched). */
  anchored: boolean;
}

/**
 * Walks records in order and reports the first one that breaks the chain. Feed every record to
 * `push` (it throws ERR_AUDIT_TAMPERED at the first bad one), then call `finish` with the anchor
 * to catch records removed from the end.
 */
export class ChainVerifier {
  #expectedSeq = 1;
  #prevHash = GENESIS_HASH;
  #count = 0;
  #anchor: AuditHead | undefined;
  #anchorSeen = false;

  constructor(anchor?: AuditHead) {
    if (anchor !== undefined && (!Number.isSafeInteger(anchor.seq) || anchor.seq < 0 || (anchor.seq > 0 && !HASH_RE.test(anchor.hash)))) {
      throw new WaxsealError('ERR_INVALID_INPUT', 'audit anchor must be {seq, hash}');
    }
    this.#anchor = anchor;
  }

  push(value: unknown): void {
    const at = this.#expectedSeq;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw tampered(at, 'record is not a JSON object');
    const r = value as Record<string, unknown>;
    for (const k of Object.keys(r)) if (!RECORD_FIELDS.has(k)) throw tampered(at, `unexpected field ${JSON.stringify(k)}`);
    if (r['seq'] !== at) {
      const seen = typeof r['seq'] === 'number' ? r['seq'] : JSON.stringify(r['seq']);
      throw tampered(at, `found seq ${seen} where ${at} was expected (records deleted, inserted or reordered)`);
    }
    if (typeof r['hash'] !== 'string' || !HASH_RE.test(r['hash']) || typeof r['prevHash'] !== 'string' || !HASH_RE.test(r['prevHash'])) {
      throw tampered(at, 'hash or prevHash is malformed');
    }
    if (r['prevHash'] !== this.#prevHash)
      throw tampered(at, 'prevHash does not match the previous record (records deleted, inserted or reordered)');
    let recomputed: string;
    try {
      const rec = r as unknown as AuditRecord;
      // Shape check: the fields a writer produces, with their types.
      normaliseEvent(rec);
      if (typeof rec.time !== 'string' || Number.isNaN(Date.parse(rec.time))) throw new Error('bad time');
      recomputed = computeRecordHash(rec);
    } catch {
      throw tampered(at, 'record fields are malformed');
    }
    if (recomputed !== r['hash']) throw tampered(at, 'record content does not match its hash (edited)');
    if (this.#anchor && this.#anchor.seq === at) {
      if (this.#anchor.hash !== r['hash']) throw tampered(at, 'record does not match the anchored head hash');
      this.#anchorSeen = true;
    }
    this.#prevHash = r['hash'];
    this.#expectedSeq++;
    this.#count++;
  }

  finish(): AuditVerifyResult {
    const head = this.#count === 0 ? undefined : { seq: this.#expectedSeq - 1, hash: this.#prevHash };
    const a = this.#anchor;
    if (a && a.seq > 0 && !this.#anchorSeen) {
      throw tampered(
        this.#expectedSeq,
        `the log ends at seq ${this.#count} but the anchor records seq ${a.seq}: records were removed from the end`,
      );
    }
    return { records: this.#count, head, anchored: a !== undefined };
  }
}
