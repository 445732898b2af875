// The audit record and its hash chain. Pure: no I/O.
//
//   hash(r) = hex(SHA-256( bytes(r.prevHash) || JCS(r without "hash") ))
//
// where bytes(prevHash) is the 32 raw bytes of the previous record's hash (64 zero hex digits
// for the first record) and JCS is RFC 8785 canonical JSON (src/core/jcs.ts). Records are
// numbered 1, 2, 3, … with no gaps. Editing any field breaks that record's hash; deleting,
// inserting or reordering records breaks seq numbering or the prevHash link; removing records
// from the end is caught only by comparing with a head (seq, hash) kept elsewhere: an anchor.
import { ERROR_CODES, WaxsealError, canonicalBytes, canonicalize, concat, fromHex, toHex, sha256, type ErrorCode } from '@waxseal/core';
import { hash as nodeHash } from 'node:crypto';

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
  return buildRecordText(prev, event, time).record;
}

/**
 * buildRecord, also returning the record's canonical JSON (what encodeRecord returns, the storage
 * form): each field is canonicalised once, for the hash and the stored text alike.
 */
export function buildRecordText(prev: AuditHead | undefined, event: AuditEvent, time: Date): { record: AuditRecord; text: string } {
  checkPrev(prev);
  return buildWithTime(prev, event, time.toISOString());
}

// Scratch for the hash input: 32 bytes of prevHash, then the body's UTF-8 (at most MAX_RECORD_BYTES).
const scratch = Buffer.allocUnsafe(32 + MAX_RECORD_BYTES);

/**
 * The record and its canonical JSON, written directly in JCS order. The fields of a record are a
 * closed set, so their order is fixed: action, actor, detail, digest, errorCode, [hash], identity,
 * keyRef, prevHash, result, seq, time (identity's: issuer, san, subject). Only `detail` needs the
 * generic canonicaliser. record.test.ts checks the result against canonicalize() and
 * computeRecordHash() over random events. This is the writer's per-record cost, so it builds two
 * strings and hashes once, with no intermediate bytes.
 */
function checkPrev(prev: AuditHead | undefined): void {
  if (prev !== undefined && !HASH_RE.test(prev.hash)) throw new WaxsealError('ERR_INVALID_INPUT', 'prevHash is not valid hex');
}

/** `prev.hash` is 64 lower-case hex digits (checkPrev; in a chain, the hash made just before). */
function buildWithTime(prev: AuditHead | undefined, event: AuditEvent, time: string): { record: AuditRecord; text: string } {
  const e = normaliseEvent(event);
  const seq = (prev?.seq ?? 0) + 1;
  const prevHash = prev?.hash ?? GENESIS_HASH;
  // JCS refuses non-finite numbers and non-JSON values in detail here, before anything is stored.
  let head = `{"action":${JSON.stringify(e.action)},"actor":${JSON.stringify(e.actor)}`;
  if (e.detail !== undefined) {
    try {
      head += `,"detail":${canonicalize(e.detail)}`;
    } catch (err) {
      throw new WaxsealError('ERR_INVALID_INPUT', `audit event detail is not plain JSON: ${(err as Error).message}`, { cause: err });
    }
  }
  if (e.digest !== undefined) head += `,"digest":${JSON.stringify(e.digest)}`;
  if (e.errorCode !== undefined) head += `,"errorCode":${JSON.stringify(e.errorCode)}`;
  let tail = '';
  if (e.identity !== undefined) {
    const id = e.identity;
    const parts: string[] = [];
    if (id.issuer !== undefined) parts.push(`"issuer":${JSON.stringify(id.issuer)}`);
    if (id.san !== undefined) parts.push(`"san":${JSON.stringify(id.san)}`);
    if (id.subject !== undefined) parts.push(`"subject":${JSON.stringify(id.subject)}`);
    tail += `"identity":{${parts.join(',')}},`;
  }
  if (e.keyRef !== undefined) tail += `"keyRef":${JSON.stringify(e.keyRef)},`;
  tail += `"prevHash":"${prevHash}","result":"${e.result}","seq":${seq},"time":${JSON.stringify(time)}}`;
  const body = `${head},${tail}`;
  const n = Buffer.byteLength(body);
  if (n > MAX_RECORD_BYTES) throw new WaxsealError('ERR_INVALID_INPUT', `audit record exceeds ${MAX_RECORD_BYTES} bytes`);
  scratch.write(prevHash, 0, 'hex');
  scratch.write(body, 32, 'utf8');
  const hash = nodeHash('sha256', scratch.subarray(0, 32 + n), 'hex');
  return { record: { seq, time, ...e, prevHash, hash }, text: `${head},"hash":"${hash}",${tail}` };
}

/**
 * Chains `events` after `head`, all stamped `time`. An event that is malformed gets its error in
 * its slot and takes no seq, so one bad event never fails the others of a group commit.
 */
export function chainEvents(
  head: AuditHead | undefined,
  events: readonly AuditEvent[],
  time: Date,
): { results: (AuditRecord | WaxsealError)[]; records: AuditRecord[]; texts: string[]; head: AuditHead | undefined } {
  const results: (AuditRecord | WaxsealError)[] = [];
  const records: AuditRecord[] = [];
  const texts: string[] = [];
  const iso = time.toISOString();
  try {
    checkPrev(head);
  } catch (e) {
    return { results: events.map(() => e as WaxsealError), records, texts, head };
  }
  for (const event of events) {
    try {
      const { record: rec, text } = buildWithTime(head, event, iso);
      results.push(rec);
      records.push(rec);
      texts.push(text);
      head = { seq: rec.seq, hash: rec.hash };
    } catch (e) {
      results.push(e instanceof WaxsealError ? e : new WaxsealError('ERR_INVALID_INPUT', `audit event: ${(e as Error).message}`));
    }
  }
  return { results, records, texts, head };
}

/**
 * The result a refusal is recorded with: `denied` when the request was refused for what it
 * asked or who asked (a 4xx: policy, token, bad request), `error` when Waxseal failed (a 5xx:
 * signer, configuration, internal error, an unavailable dependency).
 */
export function auditResultForError(code: string | undefined): 'denied' | 'error' {
  const known = code !== undefined && Object.hasOwn(ERROR_CODES, code) ? ERROR_CODES[code as ErrorCode] : undefined;
  return known && known.status < 500 ? 'denied' : 'error';
}

/** The action of the record a prune appends; its detail names the last pruned record. */
export const PRUNE_ACTION = 'audit.prune';

/** The `through` head a prune record names, or undefined when `r` is not a well-formed one. */
export function prunedThrough(r: { action?: unknown; detail?: unknown }): AuditHead | undefined {
  if (r.action !== PRUNE_ACTION || typeof r.detail !== 'object' || r.detail === null) return undefined;
  const t = (r.detail as { through?: unknown }).through;
  if (typeof t !== 'object' || t === null) return undefined;
  const { seq, hash } = t as { seq?: unknown; hash?: unknown };
  return Number.isSafeInteger(seq) && typeof hash === 'string' && HASH_RE.test(hash) ? { seq: seq as number, hash } : undefined;
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
  /** Where the records start when earlier ones were pruned: the last pruned record's seq and hash. */
  base?: AuditHead;
  /**
   * The signed anchor checked (a pruned database's, or an archive's last one): what it states, and
   * which trusted key signed it (undefined when no trusted keys were given to check it).
   */
  signed?: { event: 'prune' | 'export'; from: AuditHead; through: AuditHead; time: string; archiveSha256?: string; signedBy?: string };
  /** An archive's SHA-256 (hex): of its bytes before its (last) anchor line, or of all of them. */
  archiveSha256?: string;
}

export interface ChainVerifierOptions {
  /** A head kept elsewhere: catches records removed from the end. */
  anchor?: AuditHead;
  /**
   * The log was pruned: records start after `base` (the last pruned record). A database must then
   * hold an `audit.prune` record naming `base`, covered by the anchor when there is one; an
   * archive does not (its base is the end of the archive before it).
   */
  base?: AuditHead;
  /** Require the `audit.prune` record that vouches for `base` (database verification). */
  requirePruneRecord?: boolean;
}

function checkHead(h: AuditHead | undefined, what: string): void {
  if (h !== undefined && (!Number.isSafeInteger(h.seq) || h.seq < 0 || (h.seq > 0 && !HASH_RE.test(h.hash)))) {
    throw new WaxsealError('ERR_INVALID_INPUT', `audit ${what} must be {seq, hash}`);
  }
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
  #base: AuditHead | undefined;
  #requirePruneRecord: boolean;
  /** Seq of the prune record that names the base. */
  #pruneSeq: number | undefined;

  constructor(anchorOrOptions?: AuditHead | ChainVerifierOptions) {
    const o: ChainVerifierOptions =
      anchorOrOptions && 'seq' in anchorOrOptions
        ? { anchor: anchorOrOptions as AuditHead }
        : ((anchorOrOptions ?? {}) as ChainVerifierOptions);
    checkHead(o.anchor, 'anchor');
    this.#anchor = o.anchor;
    this.#requirePruneRecord = o.requirePruneRecord ?? false;
    if (o.base) this.setBase(o.base);
  }

  /**
   * Records continue after `base`: at the start (a pruned log, an archive after the first), or
   * mid-stream where it must equal the head so far (archives read one after the other).
   */
  setBase(base: AuditHead): void {
    checkHead(base, 'base');
    if (this.#count > 0 || this.#base) {
      if (base.seq !== this.#expectedSeq - 1 || base.hash !== this.#prevHash)
        throw tampered(this.#expectedSeq, `the next part starts after seq ${base.seq}, not after seq ${this.#expectedSeq - 1}`);
      return;
    }
    this.#base = base;
    this.#expectedSeq = base.seq + 1;
    this.#prevHash = base.seq === 0 ? GENESIS_HASH : base.hash;
    const a = this.#anchor;
    if (a && a.seq > 0 && a.seq <= base.seq) {
      throw new WaxsealError(
        'ERR_INVALID_INPUT',
        `the anchor (seq ${a.seq}) is older than the records kept here, which start after seq ${base.seq}: ` +
          'check it against the archive that holds that seq, and these records against a newer anchor',
      );
    }
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
    const through = prunedThrough(r);
    if (through && this.#base && through.seq === this.#base.seq && through.hash === this.#base.hash) this.#pruneSeq = at;
    this.#prevHash = r['hash'];
    this.#expectedSeq++;
    this.#count++;
  }

  /** The last record pushed so far (or the base, or seq 0 before any). */
  current(): AuditHead {
    return { seq: this.#expectedSeq - 1, hash: this.#prevHash };
  }

  finish(): AuditVerifyResult {
    const head = this.#count === 0 ? this.#base : { seq: this.#expectedSeq - 1, hash: this.#prevHash };
    const a = this.#anchor;
    const base = this.#base;
    if (a && a.seq > 0 && !this.#anchorSeen) {
      throw tampered(
        this.#expectedSeq,
        `the log ends at seq ${this.#expectedSeq - 1} but the anchor records seq ${a.seq}: records were removed from the end`,
      );
    }
    if (base && base.seq > 0 && this.#requirePruneRecord) {
      // Records cut off the start leave a valid shorter chain too; only a prune record written
      // into the chain (and, with an anchor, older than it) says the cut was made by a prune.
      if (this.#pruneSeq === undefined)
        throw tampered(base.seq + 1, `records up to seq ${base.seq} are missing and no ${PRUNE_ACTION} record names that cut`);
      if (a && this.#pruneSeq > a.seq)
        throw tampered(this.#pruneSeq, `the ${PRUNE_ACTION} record at seq ${this.#pruneSeq} is newer than the anchor (seq ${a.seq})`);
    }
    return { records: this.#count, head, anchored: a !== undefined, ...(base && base.seq > 0 ? { base } : {}) };
  }
}
