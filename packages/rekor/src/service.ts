// The Rekor personality of the Waxseal transparency log, as a Service.
//
// One tree, one key, three views (see docs/log.md):
//   <prefix>/api/v1/...        Rekor v1 REST (entries with SETs, proofs, search)
//   <prefix>/api/v2/log/entries Rekor v2 write API (TransparencyLogEntry with inclusion proof)
//   <tiles>/checkpoint, <tiles>/tile/...   C2SP tlog-tiles read API (the v2 read path)
// Every entry, whichever API wrote it, is a leaf of the same tree. Each published size has two
// checkpoints signed by the log key: the C2SP one (origin "<host>") served by the tiles API and
// embedded in v2 responses, and the Rekor v1 one (origin "<host> - <treeID>") used by the v1 API.
// The engine (@waxseal/tlog) knows none of Rekor: the tree ID, integratedTime, the v1 note and
// the search keys live in its opaque slots (personality.ts).
import {
  WaxsealError,
  canonicalBytes,
  toBase64,
  toHex,
  fromHex,
  utf8,
  encodePem,
  keyDetails,
  sha256,
  type Certificate,
} from '@waxseal/core';
import {
  Router,
  json,
  requestListener,
  listen,
  type Request,
  type Response,
  type RunningServer,
  type ErrorFormatter,
  type Service,
  withService,
} from '@waxseal/server';
import type { Signer } from '@waxseal/keys';
import { TransparencyLog, SqliteFileStorage, mountTileReadApi, type PublishedCheckpoint, type LogStorage } from '@waxseal/tlog';
import { integratedTimeOf, rekorLogOptions, treeIdOf, v1LogId, v1NoteOf } from './personality.ts';
import { SignatureVerifier } from './verifier.ts';
import { DEFAULT_POLICY, type CanonicalEntry, type EntryContext, type EntryPolicy } from './entries/common.ts';
import { canonicalizeProposedEntry } from './entries/v1.ts';
import { canonicalizeCreateEntryRequest } from './entries/v2.ts';
import { parseTrustedCas, parseX509Pem } from './pki/x509.ts';
import { parseKeyRing } from './pki/pgp.ts';
import { parseMinisignKey } from './pki/minisign.ts';
import { parseSshPublicKey } from './pki/ssh.ts';

export interface LogServiceOptions {
  /** Where the log keeps its database and tiles (ignored when `storage` is given). */
  dataDir: string;
  /** The log key (Ed25519 recommended for C2SP/witnesses; ECDSA P-256 works too). */
  signer: Signer;
  /** Host name clients use for the log: the v2 checkpoint origin and the v1 note signer name. */
  hostname?: string;
  /** Alias of `hostname`. */
  origin?: string;
  /** Rekor v1 tree ID (decimal int64); random for a new log. */
  treeId?: string;
  batchSize?: number;
  batchMaxDelayMs?: number;
  checkpointIntervalMs?: number;
  /** Pending entries beyond which submissions get 503. */
  maxPending?: number;
  /** PEM texts of CA certificates entries' certificates must chain to (off when empty). */
  trustedCas?: readonly (string | Certificate)[];
  /** Accept entries verified by bare public keys. Default true. */
  allowPublicKeys?: boolean;
  /** Largest request body. Default 10 MiB (v1 `rekord` carries the artifact inline). */
  maxRequestBytes?: number;
  /** Largest v2 request body. Default 256 KiB. */
  maxV2RequestBytes?: number;
  policy?: Partial<Omit<EntryPolicy, 'trustedCas' | 'allowPublicKeys'>>;
  /** Worker threads for P-256 digest verification (0 = on the event loop, batched). */
  verifyWorkers?: number;
  /** A storage driver other than the embedded SQLite/file one. */
  storage?: LogStorage;
  /** Refuse new entries (405), as a frozen Rekor shard does. */
  frozen?: boolean;
  /** Path under the mount prefix where checkpoint and tile/ are served. Default ''. */
  tilesPath?: string;
}

/** TrustedRoot `tlogs[]` entry (protobuf JSON). */
export interface TransparencyLogInstance {
  baseUrl: string;
  hashAlgorithm: 'SHA2_256';
  publicKey: { rawBytes: string; keyDetails: string; validFor: { start: string; end?: string } };
  logId: { keyId: string };
  checkpointKeyId?: { keyId: string };
}

const GRPC_CODE: Partial<Record<number, number>> = { 400: 3, 404: 5, 405: 12, 409: 6, 413: 3, 415: 3, 500: 13, 503: 14 };

/** rekor-tiles answers through grpc-gateway: {code: <gRPC code>, message, details}. */
export const v2ErrorFormatter: ErrorFormatter = (err) =>
  json(err.status, { code: GRPC_CODE[err.status] ?? 2, message: err.message, details: [] });

/** Rekor v1 error model: {code: <HTTP status>, message}. */
export const v1ErrorFormatter: ErrorFormatter = (err) => json(err.status, { code: err.status, message: err.message });

function intParam(v: string | null, what: string): number | undefined {
  if (v === null || v === '') return undefined;
  if (!/^\d{1,16}$/.test(v) || !Number.isSafeInteger(Number(v)))
    throw new WaxsealError('ERR_INVALID_INPUT', `${what} must be a non-negative integer`);
  return Number(v);
}

function requireJson(req: Request): void {
  if (req.mediaType !== '' && req.mediaType !== 'application/json')
    throw new WaxsealError('ERR_MEDIA_TYPE', `expected application/json, got ${req.mediaType}`);
}

const SHA_LENGTHS: Record<number, string> = { 40: 'sha1', 64: 'sha256', 96: 'sha384', 128: 'sha512' };

export class LogService implements Service {
  readonly name = 'log';
  readonly log: TransparencyLog;
  readonly verifier: SignatureVerifier;
  readonly ctx: EntryContext;
  /** Rekor v1 tree ID (decimal int64), recorded with the log. */
  readonly treeId: string;
  /** Rekor v1 log ID: SHA-256 of the log key's SPKI. */
  readonly v1LogId: Uint8Array;
  /** Rekor v2 log ID: the C2SP key ID of the checkpoint signer. */
  readonly v2LogId: Uint8Array;
  readonly #opts: LogServiceOptions;
  readonly #createdAt: string;
  readonly #logIdHex: string;

  private constructor(log: TransparencyLog, verifier: SignatureVerifier, ctx: EntryContext, opts: LogServiceOptions, createdAt: string) {
    this.log = log;
    this.verifier = verifier;
    this.ctx = ctx;
    this.#opts = opts;
    this.#createdAt = createdAt;
    this.treeId = treeIdOf(log.identity);
    this.v1LogId = v1LogId(log.signer.publicKeySpki);
    this.v2LogId = log.ids.keyId;
    this.#logIdHex = toHex(this.v1LogId);
  }

  static async create(opts: LogServiceOptions): Promise<LogService> {
    const trustedCas = (opts.trustedCas ?? []).flatMap((c) => (typeof c === 'string' ? parseTrustedCas([c]) : [c]));
    const policy: EntryPolicy = { ...DEFAULT_POLICY, ...opts.policy, trustedCas, allowPublicKeys: opts.allowPublicKeys ?? true };
    const storage = opts.storage ?? new SqliteFileStorage(opts.dataDir);
    const origin = opts.hostname ?? opts.origin;
    if (!origin) throw new WaxsealError('ERR_CONFIG', 'the log needs a hostname (its checkpoint origin)');
    const log = await TransparencyLog.open({
      storage,
      signer: opts.signer,
      origin,
      ...rekorLogOptions(opts.signer, opts.treeId),
      ...(opts.batchSize === undefined ? {} : { batchSize: opts.batchSize }),
      ...(opts.batchMaxDelayMs === undefined ? {} : { batchMaxDelayMs: opts.batchMaxDelayMs }),
      ...(opts.checkpointIntervalMs === undefined ? {} : { checkpointIntervalMs: opts.checkpointIntervalMs }),
      ...(opts.maxPending === undefined ? {} : { maxPending: opts.maxPending }),
    });
    try {
      treeIdOf(log.identity);
    } catch (e) {
      await log.close();
      throw e;
    }
    const verifier = new SignatureVerifier({ workers: opts.verifyWorkers ?? 0 });
    return new LogService(log, verifier, { verifier, policy }, opts, log.identity.createdAt || new Date().toISOString());
  }

  get hostname(): string {
    return this.log.origin;
  }

  /** 16 hex digits of the tree ID: the entry-ID prefix. */
  get treeIdHex(): string {
    return BigInt(this.treeId).toString(16).padStart(16, '0');
  }

  /** Rekor v1 log ID: hex SHA-256 of the log key's SPKI. */
  get logIdHex(): string {
    return this.#logIdHex;
  }

  /** The log's public key as PEM. */
  get publicKeyPem(): string {
    return encodePem('PUBLIC KEY', this.log.signer.publicKeySpki);
  }

  /**
   * TrustedRoot `tlogs[]` entries for this log: one for clients of the v1 API (log ID =
   * SHA-256(SPKI)) and one for the v2 API (log ID = C2SP key ID; equal to the v1 ID for ECDSA
   * keys). The v2 baseUrl's host name must be this log's `hostname`.
   */
  trustedRootTlogs(
    urls: { v1BaseUrl: string; v2BaseUrl?: string },
    validFrom?: Date,
  ): { v1: TransparencyLogInstance; v2: TransparencyLogInstance } {
    const spki = this.log.signer.publicKeySpki;
    const start = (validFrom ?? new Date(this.#createdAt)).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const publicKey = { rawBytes: toBase64(spki), keyDetails: keyDetails(this.log.ids.key), validFor: { start } };
    const v2BaseUrl = urls.v2BaseUrl ?? urls.v1BaseUrl;
    const host = new URL(v2BaseUrl).hostname;
    if (host !== this.log.origin)
      throw new WaxsealError('ERR_CONFIG', `the v2 base URL host ${host} must equal the log hostname ${this.log.origin}`);
    return {
      v1: { baseUrl: urls.v1BaseUrl, hashAlgorithm: 'SHA2_256', publicKey, logId: { keyId: toBase64(this.v1LogId) } },
      v2: {
        baseUrl: v2BaseUrl,
        hashAlgorithm: 'SHA2_256',
        publicKey,
        logId: { keyId: toBase64(this.v2LogId) },
        checkpointKeyId: { keyId: toBase64(this.v2LogId) },
      },
    };
  }

  #checkWritable(): void {
    if (this.#opts.frozen) throw new WaxsealError('ERR_LOG_FROZEN', 'This log has been frozen, please switch to the latest log.');
  }

  mount(router: Router, prefix = ''): void {
    const v1 = { errorFormatter: v1ErrorFormatter };
    const v2 = { errorFormatter: v2ErrorFormatter };
    router.post(`${prefix}/api/v2/log/entries`, (req) => this.#createV2(req), v2);
    router.post(`${prefix}/api/v1/log/entries`, (req) => this.#createV1(req, prefix), v1);
    router.get(`${prefix}/api/v1/log/entries`, (req) => this.#getByIndex(req), v1);
    router.post(`${prefix}/api/v1/log/entries/retrieve`, (req) => this.#retrieve(req), v1);
    router.get(`${prefix}/api/v1/log/entries/:id`, (req) => this.#getById(req.params.id ?? ''), v1);
    router.get(`${prefix}/api/v1/log`, (req) => this.#logInfo(req), v1);
    router.get(`${prefix}/api/v1/log/publicKey`, (req) => this.#publicKey(req), v1);
    router.get(`${prefix}/api/v1/log/proof`, (req) => this.#proof(req), v1);
    router.post(`${prefix}/api/v1/index/retrieve`, (req) => this.#search(req), v1);
    mountTileReadApi(router, this.log, `${prefix}${this.#opts.tilesPath ?? ''}`);
  }

  // ------------------------------------------------------------------ v2

  #createV2(req: Request): Promise<Response> {
    this.#checkWritable();
    return handleCreateV2(req, {
      ctx: this.ctx,
      maxBytes: this.#opts.maxV2RequestBytes ?? 256 * 1024,
      v2LogId: this.v2LogId,
      add: async (entry) => {
        const r = await this.log.add({ body: entry.body, indexKeys: entry.indexKeys.map(utf8) });
        return { ...r, proof: r.duplicate ? [] : await this.log.inclusionProof(r.index, r.checkpoint.size) };
      },
    });
  }

  /** The protojson TransparencyLogEntry (EmitUnpopulated) Rekor v2 answers with. */
  async transparencyLogEntry(
    index: number,
    entry: Pick<CanonicalEntry, 'kind' | 'apiVersion' | 'body'>,
    cp: PublishedCheckpoint,
  ): Promise<Record<string, unknown>> {
    return transparencyLogEntryJson(this.v2LogId, index, entry, cp, await this.log.inclusionProof(index, cp.size));
  }

  // ------------------------------------------------------------------ v1

  async #createV1(req: Request, prefix: string): Promise<Response> {
    this.#checkWritable();
    requireJson(req);
    const body = await req.json(this.#opts.maxRequestBytes ?? 10 << 20);
    const entry = await canonicalizeProposedEntry(body, this.ctx);
    const r = await this.log.add({ body: entry.body, indexKeys: entry.indexKeys.map(utf8) });
    const entryId = this.treeIdHex + toHex(r.leafHash);
    const location = `${prefix}/api/v1/log/entries/${entryId}`;
    if (r.duplicate) {
      return {
        status: 409,
        headers: { 'content-type': 'application/json', location, etag: entryId },
        body: JSON.stringify({ code: 409, message: `An equivalent entry already exists in the transparency log with UUID ${entryId}` }),
      };
    }
    const logEntry = await this.v1LogEntry(r.index, entry.body, integratedTimeOf(r.metadata), r.checkpoint);
    return { status: 201, headers: { 'content-type': 'application/json', etag: entryId, location }, body: JSON.stringify(logEntry) };
  }

  /** A Rekor v1 LogEntry {<entryID>: {body, integratedTime, logID, logIndex, verification}}. */
  async v1LogEntry(
    index: number,
    body: Uint8Array,
    integratedTime: number,
    cp: PublishedCheckpoint = this.log.checkpoint,
  ): Promise<Record<string, unknown>> {
    const proof = await this.log.inclusionProof(index, cp.size);
    const b64Body = toBase64(body);
    const logID = this.logIdHex;
    const set = await this.log.signer.sign(canonicalBytes({ body: b64Body, integratedTime, logID, logIndex: index }));
    const entryId = this.treeIdHex + toHex(sha256(new Uint8Array([0, ...body])));
    return {
      [entryId]: {
        body: b64Body,
        integratedTime,
        logID,
        logIndex: index,
        verification: {
          signedEntryTimestamp: toBase64(set),
          inclusionProof: {
            logIndex: index,
            treeSize: cp.size,
            rootHash: toHex(cp.rootHash),
            hashes: proof.map(toHex),
            checkpoint: v1NoteOf(cp),
          },
        },
      },
    };
  }

  async #entryAt(index: number): Promise<Record<string, unknown> | undefined> {
    const e = await this.log.entry(index);
    return e ? this.v1LogEntry(e.index, e.body, integratedTimeOf(e.metadata)) : undefined;
  }

  /** Index of a published entry named by a 64-hex UUID or 80-hex entry ID. */
  async #indexOfId(id: string): Promise<number | undefined> {
    const lower = id.toLowerCase();
    let uuid: string;
    if (/^[0-9a-f]{64}$/.test(lower)) uuid = lower;
    else if (/^[0-9a-f]{80}$/.test(lower)) {
      if (lower.slice(0, 16) !== this.treeIdHex) return undefined;
      uuid = lower.slice(16);
    } else throw new WaxsealError('ERR_INVALID_INPUT', 'entry UUID must be 64 or 80 hexadecimal characters');
    return this.log.indexOfLeaf(fromHex(uuid));
  }

  async #getById(id: string): Promise<Response> {
    const index = await this.#indexOfId(id);
    const e = index === undefined ? undefined : await this.#entryAt(index);
    if (!e) throw new WaxsealError('ERR_NOT_FOUND', 'entry not found');
    return json(200, e);
  }

  async #getByIndex(req: Request): Promise<Response> {
    const index = intParam(req.query.get('logIndex'), 'logIndex');
    if (index === undefined) throw new WaxsealError('ERR_INVALID_INPUT', 'logIndex is required');
    const e = await this.#entryAt(index);
    if (!e) throw new WaxsealError('ERR_NOT_FOUND', `no entry at index ${index}`);
    return json(200, e);
  }

  async #retrieve(req: Request): Promise<Response> {
    requireJson(req);
    const q = (await req.json(this.#opts.maxRequestBytes ?? 10 << 20)) as Record<string, unknown> | null;
    if (typeof q !== 'object' || q === null || Array.isArray(q))
      throw new WaxsealError('ERR_INVALID_INPUT', 'search log query must be an object');
    const lists = { entryUUIDs: q.entryUUIDs, logIndexes: q.logIndexes, entries: q.entries };
    const given = Object.entries(lists).filter(([, v]) => v !== undefined && v !== null);
    if (given.length === 0) throw new WaxsealError('ERR_INVALID_INPUT', 'one of entryUUIDs, logIndexes or entries is required');
    const out: Record<string, unknown>[] = [];
    for (const [name, v] of given) {
      if (!Array.isArray(v) || v.length === 0 || v.length > 10)
        throw new WaxsealError('ERR_INVALID_INPUT', `${name} must hold 1 to 10 items`);
      for (const item of v) {
        let index: number | undefined;
        if (name === 'entryUUIDs') {
          if (typeof item !== 'string') throw new WaxsealError('ERR_INVALID_INPUT', 'entryUUIDs must be strings');
          index = await this.#indexOfId(item);
        } else if (name === 'logIndexes') {
          if (!Number.isSafeInteger(item) || (item as number) < 0)
            throw new WaxsealError('ERR_INVALID_INPUT', 'logIndexes must be non-negative integers');
          index = item as number;
        } else {
          const c = await canonicalizeProposedEntry(item, this.ctx);
          index = await this.log.indexOfLeaf(sha256(new Uint8Array([0, ...c.body])));
        }
        const e = index === undefined ? undefined : await this.#entryAt(index);
        if (e) out.push(e);
      }
    }
    return json(200, out);
  }

  #checkTreeId(req: Request): void {
    const t = req.query.get('treeID');
    if (t !== null && t !== this.treeId) throw new WaxsealError('ERR_NOT_FOUND', `unknown tree ID ${t.slice(0, 24)}`);
  }

  #logInfo(req: Request): Response {
    this.#checkTreeId(req);
    const cp = this.log.checkpoint;
    return json(200, { rootHash: toHex(cp.rootHash), treeSize: cp.size, signedTreeHead: v1NoteOf(cp), treeID: this.treeId });
  }

  #publicKey(req: Request): Response {
    this.#checkTreeId(req);
    return { status: 200, headers: { 'content-type': 'application/x-pem-file' }, body: this.publicKeyPem };
  }

  async #proof(req: Request): Promise<Response> {
    this.#checkTreeId(req);
    const size = this.log.checkpoint.size;
    const first = intParam(req.query.get('firstSize'), 'firstSize') ?? 1;
    const last = intParam(req.query.get('lastSize'), 'lastSize');
    if (last === undefined) throw new WaxsealError('ERR_INVALID_INPUT', 'lastSize is required');
    if (first < 1 || first > last) throw new WaxsealError('ERR_INVALID_INPUT', 'firstSize must be between 1 and lastSize');
    if (last > size) throw new WaxsealError('ERR_INVALID_INPUT', `lastSize ${last} is beyond the tree size ${size}`);
    const [root, hashes] = await Promise.all([this.log.rootAt(last), this.log.consistencyProof(first, last)]);
    return json(200, { rootHash: toHex(root), hashes: hashes.map(toHex) });
  }

  async #search(req: Request): Promise<Response> {
    requireJson(req);
    const q = (await req.json(1 << 20)) as Record<string, unknown> | null;
    if (typeof q !== 'object' || q === null || Array.isArray(q))
      throw new WaxsealError('ERR_INVALID_INPUT', 'search index query must be an object');
    const operator = q.operator ?? 'or';
    if (operator !== 'and' && operator !== 'or') throw new WaxsealError('ERR_INVALID_INPUT', 'operator must be "and" or "or"');
    const keys: string[] = [];
    if (q.hash !== undefined) {
      if (typeof q.hash !== 'string') throw new WaxsealError('ERR_INVALID_INPUT', 'hash must be a string');
      const m = /^(?:(sha1|sha256|sha384|sha512):)?([0-9a-fA-F]+)$/.exec(q.hash);
      const alg = m?.[1] ?? (m ? SHA_LENGTHS[m[2]!.length] : undefined);
      if (!m || !alg || SHA_LENGTHS[m[2]!.length] !== alg)
        throw new WaxsealError('ERR_INVALID_INPUT', 'hash must be a sha1, sha256, sha384 or sha512 hex digest');
      keys.push(`${alg}:${m[2]!.toLowerCase()}`);
    }
    if (q.email !== undefined) {
      if (typeof q.email !== 'string' || !/^[^\s@]+@[^\s@]+$/.test(q.email))
        throw new WaxsealError('ERR_INVALID_INPUT', 'email is not a valid address');
      keys.push(q.email.toLowerCase());
    }
    if (q.subject !== undefined) {
      if (typeof q.subject !== 'string' || q.subject === '')
        throw new WaxsealError('ERR_INVALID_INPUT', 'subject must be a non-empty string');
      keys.push(q.subject.toLowerCase());
    }
    if (q.publicKey !== undefined) keys.push(publicKeySearchKey(q.publicKey));
    if (keys.length === 0) throw new WaxsealError('ERR_INVALID_INPUT', 'give at least one of hash, email, subject or publicKey');
    const published = this.log.checkpoint.size;
    const sets = await Promise.all(
      keys.map(async (k) => new Set((await this.log.storage.searchIndex(utf8(k), 10000)).filter((i) => i < published))),
    );
    let result = sets[0]!;
    for (const s of sets.slice(1)) result = operator === 'and' ? new Set([...result].filter((i) => s.has(i))) : new Set([...result, ...s]);
    const indexes = [...result].sort((a, b) => a - b).slice(0, 10000);
    const uuids: string[] = [];
    for (const i of indexes) {
      const [e] = await this.log.storage.readEntries(i, i + 1);
      if (e) uuids.push(toHex(e.leafHash));
    }
    return json(200, uuids);
  }

  async close(): Promise<void> {
    await this.log.close();
    await this.verifier.close();
  }
}

/** The protojson TransparencyLogEntry (EmitUnpopulated) of a v2 entry, from its proof. */
export function transparencyLogEntryJson(
  v2LogId: Uint8Array,
  index: number,
  entry: Pick<CanonicalEntry, 'kind' | 'apiVersion' | 'body'>,
  cp: { size: number; rootHash: Uint8Array; note: string },
  proof: readonly Uint8Array[],
): Record<string, unknown> {
  return {
    logIndex: String(index),
    logId: { keyId: toBase64(v2LogId) },
    kindVersion: { kind: entry.kind, version: entry.apiVersion },
    integratedTime: '0',
    inclusionPromise: null,
    inclusionProof: {
      logIndex: String(index),
      rootHash: toBase64(cp.rootHash),
      treeSize: String(cp.size),
      hashes: proof.map(toBase64),
      checkpoint: { envelope: cp.note },
    },
    canonicalizedBody: toBase64(entry.body),
  };
}

export interface V2AddResult {
  index: number;
  duplicate: boolean;
  checkpoint: { size: number; rootHash: Uint8Array; note: string };
  proof: readonly Uint8Array[];
}

/**
 * POST /api/v2/log/entries: validate, canonicalize, append (through `add`, which resolves once
 * a checkpoint covering the entry is published), answer 201 with the TransparencyLogEntry or
 * 409 with x-log-index. Shared by the in-process service and the front-end worker threads.
 */
export async function handleCreateV2(
  req: Request,
  deps: { ctx: EntryContext; maxBytes: number; v2LogId: Uint8Array; add: (e: CanonicalEntry) => Promise<V2AddResult> },
): Promise<Response> {
  requireJson(req);
  const body = await req.json(deps.maxBytes);
  const entry = await canonicalizeCreateEntryRequest(body, deps.ctx);
  const r = await deps.add(entry);
  if (r.duplicate) {
    return {
      status: 409,
      headers: { 'content-type': 'application/json', 'x-log-index': String(r.index) },
      body: JSON.stringify({ code: 6, message: `an equivalent entry already exists in the log at index ${r.index}`, details: [] }),
    };
  }
  return json(201, transparencyLogEntryJson(deps.v2LogId, r.index, entry, r.checkpoint, r.proof));
}

function publicKeySearchKey(v: unknown): string {
  const pk = v as { format?: unknown; content?: unknown } | null;
  if (typeof pk !== 'object' || pk === null || typeof pk.format !== 'string' || typeof pk.content !== 'string') {
    throw new WaxsealError('ERR_INVALID_INPUT', 'publicKey must be {format, content}');
  }
  let content: Uint8Array;
  try {
    content = new Uint8Array(Buffer.from(pk.content, 'base64'));
  } catch {
    throw new WaxsealError('ERR_INVALID_INPUT', 'publicKey.content is not base64');
  }
  let canonical: string;
  switch (pk.format) {
    case 'x509':
      canonical = parseX509Pem(content).canonicalPem;
      break;
    case 'pgp':
      canonical = parseKeyRing(content).canonical;
      break;
    case 'minisign':
      canonical = parseMinisignKey(content).canonical;
      break;
    case 'ssh':
      canonical = parseSshPublicKey(content).canonical;
      break;
    default:
      throw new WaxsealError('ERR_INVALID_INPUT', `unsupported public key format ${JSON.stringify(pk.format.slice(0, 16))}`);
  }
  return toHex(sha256(utf8(canonical)));
}

/**
 * Starts a standalone log server (all three APIs at the root). With `httpWorkers` > 0 the v2
 * write path runs on that many front-end threads sharing the port (see frontend.ts).
 */
export async function startLogServer(
  opts: LogServiceOptions & { httpWorkers?: number },
  port = 0,
  host = '127.0.0.1',
): Promise<RunningServer & { service: LogService }> {
  const service = await LogService.create(opts);
  const router = new Router();
  service.mount(router);
  if ((opts.httpWorkers ?? 0) > 0) {
    const { startFrontends } = await import('./frontend.ts');
    const fe = await startFrontends(service, router, opts, opts.httpWorkers!, port, host);
    return {
      server: fe.server,
      url: `http://${host.includes(':') ? `[${host}]` : host}:${fe.port}`,
      port: fe.port,
      service,
      async close() {
        await fe.close();
        await service.close();
      },
    };
  }
  return withService(await listen(requestListener({ router, maxBodyBytes: opts.maxRequestBytes ?? 10 << 20 }), port, host), service);
}
