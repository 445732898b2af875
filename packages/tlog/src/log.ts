// The log engine: a batching sequencer over a LogStorage and a tile tree.
//
// Durability order, per batch (the same path runs at start-up to finish an interrupted batch):
//
//   1. stage      The entry is validated by the caller, hashed and placed in the in-memory pool
//                 (deduplicated against the pool). Nothing is durable and nothing is
//                 acknowledged: a crash loses staged entries, and their submitters see the
//                 connection drop.
//   2. commit     Up to `batchSize` staged entries (or whatever arrived within
//                 `batchMaxDelayMs`) go to storage in ONE transaction (SQLite WAL,
//                 synchronous=FULL: one fsync); entries already in the log are not appended and
//                 their submitters get the existing index. The appended entries get
//                 consecutive indexes and are part of the log forever.
//   3. integrate  The leaf hashes are added to the tile tree; the changed hash tiles and entry
//                 bundles are written and fdatasync'd. Tiles are derived data: if a crash lands
//                 between 2 and 3, recovery recomputes them from the committed entries.
//   4. publish    A checkpoint for the new size is signed (the C2SP note, plus whatever the
//                 personality signs beside it), stored and served. Only now are the submitters
//                 answered, each with an inclusion proof against this checkpoint.
//
// Recovery (TransparencyLog.open): position the tree at the last stored checkpoint, check its
// root, then integrate and publish every committed entry beyond it, through the same code as
// steps 3-4. An acknowledged entry is always committed, so it is never lost; a published
// checkpoint always describes durable entries and tiles, so it can always be re-derived and
// every later checkpoint is consistent with it.
//
// Failures: a failed commit that did not persist (the storage's committed size says so) fails
// its batch only; anything else (a commit that persisted anyway, a tile or checkpoint write)
// stops the log, and the next start recovers through the path above.
//
// The engine knows entries as bytes with an index and a leaf hash. What a personality (Rekor)
// needs beside them is opaque here: parameters recorded with the log's identity, per-entry
// metadata made at commit time, search keys, and extra bytes signed with each checkpoint.
import { WaxsealError, leafHash, bytesEqual, toHex, toBase64 } from '@waxseal/core';
import type { Signer } from '@waxseal/keys';
import { TileHashTree } from './tree.ts';
import { encodeEntryBundle, MAX_ENTRY_SIZE, TILE_WIDTH } from './tiles.ts';
import { checkOrigin, logKeyIds, signCheckpoint, type LogKeyIds } from './checkpoint.ts';
import type { BundleWrite, LogIdentity, LogStorage, NewEntry, StoredCheckpoint, StoredEntry } from './storage.ts';

export interface TransparencyLogOptions {
  storage: LogStorage;
  signer: Signer;
  /** Checkpoint origin: a bare host name (Rekor v2 clients compare it with the base URL's host). */
  origin: string;
  /** Personality parameters the recorded ones must equal (a mismatch refuses to open). */
  params?: Readonly<Record<string, string>>;
  /** Parameters recorded for a new log only, under `params` (e.g. a random ID). */
  newLogParams?: () => Record<string, string>;
  /**
   * The personality's per-entry metadata, made once per commit from the commit's clock (Unix
   * ms); every entry of the batch stores the returned bytes. Default: empty.
   */
  entryMetadata?: (commitTimeMs: number) => Uint8Array;
  /**
   * Extra bytes signed for each published size beside the C2SP note (Rekor: its v1 note),
   * stored and returned with the checkpoint. Runs concurrently with the C2SP signature.
   */
  checkpointExtra?: (tree: { size: number; rootHash: Uint8Array }, identity: LogIdentity) => Promise<Uint8Array>;
  /** Most entries committed per batch. Default 256. */
  batchSize?: number;
  /** Longest time the first staged entry waits for its batch to fill. Default 50 ms. */
  batchMaxDelayMs?: number;
  /** Minimum time between two checkpoints; 0 publishes after every batch. Default 0. */
  checkpointIntervalMs?: number;
  /** Staged + unpublished entries beyond which new submissions get 503. Default 16384. */
  maxPending?: number;
  /** Milliseconds clock (tests). */
  now?: () => number;
  /** Reports errors that stop the sequencer (the log then refuses writes until restarted). */
  onFatal?: (e: unknown) => void;
}

/** A checkpoint the log has published (and stored, or is storing). */
export type PublishedCheckpoint = StoredCheckpoint;

export interface AppendResult {
  index: number;
  leafHash: Uint8Array;
  /** The entry's metadata, made when it was committed (see TransparencyLogOptions.entryMetadata). */
  metadata: Uint8Array;
  /** True when an identical entry was already in the log; index is the existing one. */
  duplicate: boolean;
  /** A published checkpoint whose tree contains the entry. */
  checkpoint: PublishedCheckpoint;
}

export interface AppendRequest {
  body: Uint8Array;
  /** Opaque search keys (at most 65535 bytes each): storage.searchIndex(key) finds the entry. */
  indexKeys?: readonly Uint8Array[];
}

interface Staged {
  leafHash: Uint8Array;
  key: string;
  body: Uint8Array;
  indexKeys: readonly Uint8Array[] | undefined;
  index?: number;
  metadata?: Uint8Array;
  waiters: { resolve: (r: AppendResult) => void; reject: (e: unknown) => void; duplicate: boolean }[];
}

/** Committed batches allowed to wait for integration before commits pause. */
const MAX_INTEGRATING = 4;

const EMPTY = new Uint8Array(0);
const PARAM_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

function checkParams(params: Readonly<Record<string, string>>): void {
  for (const [k, v] of Object.entries(params))
    if (!PARAM_NAME.test(k) || typeof v !== 'string')
      throw new WaxsealError('ERR_CONFIG', `log parameter ${JSON.stringify(k)} must be a short name with a string value`);
}

/** Refuses a storage that holds another log: a data directory never silently changes keys. */
function checkIdentity(recorded: LogIdentity, given: LogIdentity, required: Readonly<Record<string, string>>): void {
  // detail.identity names what differs, so that a caller can name its own setting for it.
  const differs = (what: string, value: string | undefined, wanted: string) =>
    new WaxsealError(
      'ERR_CONFIG',
      `the log storage holds a log created with ${what} ${JSON.stringify(value).slice(0, 80)}, not ${JSON.stringify(wanted).slice(0, 80)}`,
      { detail: { identity: what, recorded: value, given: wanted } },
    );
  if (recorded.origin !== given.origin) throw differs('origin', recorded.origin, given.origin);
  if (recorded.publicKey !== given.publicKey) throw differs('publicKey', recorded.publicKey, given.publicKey);
  for (const [k, v] of Object.entries(required)) if (recorded.params[k] !== v) throw differs(k, recorded.params[k], v);
}

export class TransparencyLog {
  readonly storage: LogStorage;
  readonly signer: Signer;
  readonly origin: string;
  /** The identity recorded when the log was created (origin, key, creation time, parameters). */
  readonly identity: LogIdentity;
  readonly ids: LogKeyIds;
  readonly tree: TileHashTree;
  readonly batchSize: number;
  readonly batchMaxDelayMs: number;
  readonly checkpointIntervalMs: number;
  readonly maxPending: number;
  readonly #now: () => number;
  readonly #onFatal: (e: unknown) => void;
  readonly #entryMetadata: ((commitTimeMs: number) => Uint8Array) | undefined;
  readonly #checkpointExtra: TransparencyLogOptions['checkpointExtra'];

  #committed = 0;
  #published: PublishedCheckpoint | undefined;
  /** Entries of the rightmost (partial) entry bundle, in order. */
  #edgeBundle: Uint8Array[] = [];
  readonly #pool: Staged[] = [];
  readonly #byLeaf = new Map<string, Staged>();
  /** Committed entries waiting for a checkpoint that covers them. */
  #unpublished: Staged[] = [];
  #pendingCount = 0;
  #committing = false;
  /** When the oldest entry now in the pool was staged (Infinity when the pool is empty). */
  #oldestStagedMs = Infinity;
  /** Committed batches queued for integration. */
  #integrating = 0;
  #integrateChain: Promise<void> = Promise.resolve();
  /** Checkpoint rows and the served file, written in publication order off the answer path. */
  #checkpointWrites: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #publishTimer: NodeJS.Timeout | undefined;
  #lastPublishMs = 0;
  #fatal: WaxsealError | undefined;
  #closed = false;
  /** Resolvers waiting for the published size to reach a value (duplicates of unpublished entries). */
  #sizeWaiters: { size: number; resolve: (cp: PublishedCheckpoint) => void; reject: (e: unknown) => void }[] = [];

  private constructor(opts: TransparencyLogOptions, identity: LogIdentity) {
    this.storage = opts.storage;
    this.signer = opts.signer;
    this.origin = opts.origin;
    this.identity = identity;
    this.ids = logKeyIds(opts.origin, opts.signer.publicKeySpki);
    this.tree = new TileHashTree((l, i) => this.storage.readTile(l, i));
    this.batchSize = Math.max(1, Math.floor(opts.batchSize ?? 256));
    this.batchMaxDelayMs = Math.max(0, opts.batchMaxDelayMs ?? 50);
    this.checkpointIntervalMs = Math.max(0, opts.checkpointIntervalMs ?? 0);
    this.maxPending = Math.max(1, opts.maxPending ?? 16384);
    this.#now = opts.now ?? Date.now;
    this.#onFatal = opts.onFatal ?? ((e) => console.error('transparency log stopped:', e));
    this.#entryMetadata = opts.entryMetadata;
    this.#checkpointExtra = opts.checkpointExtra;
  }

  /** Opens (or creates) a log, recovering any batch a crash interrupted. */
  static async open(opts: TransparencyLogOptions): Promise<TransparencyLog> {
    checkOrigin(opts.origin);
    const required = opts.params ?? {};
    const given: LogIdentity = {
      origin: opts.origin,
      publicKey: toBase64(opts.signer.publicKeySpki),
      createdAt: new Date((opts.now ?? Date.now)()).toISOString(),
      params: { ...opts.newLogParams?.(), ...required },
    };
    checkParams(given.params);
    let log: TransparencyLog;
    try {
      const identity = await opts.storage.open(given);
      checkIdentity(identity, given, required);
      log = new TransparencyLog(opts, identity);
      await log.#recover();
    } catch (e) {
      await opts.storage.close().catch(() => undefined);
      throw e;
    }
    return log;
  }

  async #recover(): Promise<void> {
    const latest = await this.storage.latestCheckpoint();
    const base = latest?.size ?? 0;
    await this.tree.load(base);
    if (latest) {
      const root = await this.tree.root();
      if (!bytesEqual(root, latest.rootHash)) {
        throw new WaxsealError(
          'ERR_LOG_INCONSISTENT',
          `stored tiles give a different root for the last checkpoint (size ${base}); run \`waxseal log fsck\``,
        );
      }
    }
    const bundleStart = Math.floor(base / TILE_WIDTH) * TILE_WIDTH;
    this.#edgeBundle = (await this.storage.readEntries(bundleStart, base)).map((e) => e.body);
    if (this.#edgeBundle.length !== base - bundleStart)
      throw new WaxsealError('ERR_LOG_INCONSISTENT', `entries below the last checkpoint (size ${base}) are missing`);
    this.#committed = await this.storage.committedSize();
    if (this.#committed < base)
      throw new WaxsealError(
        'ERR_LOG_INCONSISTENT',
        `the last checkpoint (size ${base}) is beyond the committed entries (${this.#committed})`,
      );
    // Finish interrupted batches through the normal integrate path.
    for (let start = base; start < this.#committed; start += 4096) {
      const end = Math.min(start + 4096, this.#committed);
      const rows = await this.storage.readEntries(start, end);
      if (rows.length !== end - start) throw new WaxsealError('ERR_LOG_INCONSISTENT', `committed entries ${start}..${end - 1} are missing`);
      for (const r of rows)
        if (!bytesEqual(leafHash(r.body), r.leafHash))
          throw new WaxsealError('ERR_LOG_INCONSISTENT', `entry ${r.index} does not match its leaf hash`);
      await this.#integrate(
        rows.map((r) => r.leafHash),
        rows.map((r) => r.body),
      );
    }
    if (latest && latest.size === this.#committed) {
      this.#published = latest;
      await this.storage.putCheckpoint(latest); // rewrites the served checkpoint file
    } else {
      await this.#publish();
    }
  }

  /** The newest published checkpoint. */
  get checkpoint(): PublishedCheckpoint {
    if (!this.#published) throw new WaxsealError('ERR_UNAVAILABLE', 'the log has no checkpoint yet');
    return this.#published;
  }

  get committedSize(): number {
    return this.#committed;
  }

  /**
   * Adds an entry; resolves once a checkpoint covering it is published. A duplicate (same leaf
   * hash) resolves with duplicate=true and the existing index. Rejects with ERR_UNAVAILABLE
   * when too many entries are pending.
   */
  async add(req: AppendRequest): Promise<AppendResult> {
    if (this.#fatal) throw this.#fatal;
    if (this.#closed) throw new WaxsealError('ERR_UNAVAILABLE', 'the log is shutting down');
    if (req.body.length > MAX_ENTRY_SIZE)
      throw new WaxsealError('ERR_LOG_ENTRY_INVALID', `canonical entry is ${req.body.length} bytes; the limit is ${MAX_ENTRY_SIZE}`);
    if (req.indexKeys)
      for (const k of req.indexKeys)
        if (k.length > MAX_ENTRY_SIZE)
          throw new WaxsealError('ERR_LOG_ENTRY_INVALID', `a search key is longer than ${MAX_ENTRY_SIZE} bytes`);
    const lh = leafHash(req.body);
    const key = toHex(lh);
    const inFlight = this.#byLeaf.get(key);
    if (inFlight) return new Promise((resolve, reject) => inFlight.waiters.push({ resolve, reject, duplicate: true }));
    // Duplicates of committed entries are found by the commit itself (one lookup per batch).
    if (this.#pendingCount >= this.maxPending) throw new WaxsealError('ERR_UNAVAILABLE', 'the log is overloaded; retry later');
    return new Promise((resolve, reject) => {
      const s: Staged = { leafHash: lh, key, body: req.body, indexKeys: req.indexKeys, waiters: [{ resolve, reject, duplicate: false }] };
      this.#byLeaf.set(key, s);
      if (this.#pool.length === 0) this.#oldestStagedMs = this.#now();
      this.#pool.push(s);
      this.#pendingCount++;
      this.#schedule();
    });
  }

  /** Answers the submitters of an entry that turned out to be in the log already. */
  async #resolveDuplicate(s: Staged, index: number): Promise<void> {
    try {
      const cp = await this.#waitPublished(index + 1);
      const [row] = await this.storage.readEntries(index, index + 1);
      for (const w of s.waiters)
        w.resolve({ index, leafHash: s.leafHash, metadata: row?.metadata ?? EMPTY, duplicate: true, checkpoint: cp });
    } catch (e) {
      for (const w of s.waiters) w.reject(e);
    }
  }

  #waitPublished(size: number): Promise<PublishedCheckpoint> {
    if (this.#published && this.#published.size >= size) return Promise.resolve(this.#published);
    if (this.#fatal) return Promise.reject(this.#fatal);
    return new Promise((resolve, reject) => this.#sizeWaiters.push({ size, resolve, reject }));
  }

  /** Starts a commit when a batch is full, or when the oldest staged entry has waited long enough. */
  #schedule(): void {
    if (this.#committing || this.#fatal || this.#pool.length === 0) return;
    const waited = this.#now() - this.#oldestStagedMs;
    if (this.#pool.length >= this.batchSize || waited >= this.batchMaxDelayMs || this.#closed) {
      if (this.#timer) clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#startCommit();
    } else if (!this.#timer) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#schedule();
      }, this.batchMaxDelayMs - waited);
    }
  }

  /**
   * The pipeline: commits run one at a time in index order; each committed batch is queued for
   * integration and publication, which also run one at a time in order. The next batch can be
   * committing while the previous one is being integrated.
   */
  #startCommit(): void {
    this.#committing = true;
    const batch = this.#pool.splice(0, this.batchSize);
    this.#oldestStagedMs = this.#pool.length > 0 ? this.#now() : Infinity;
    void this.#commit(batch)
      .catch((e) => this.#fail(e))
      .finally(() => {
        this.#committing = false;
        this.#schedule();
      });
  }

  async #commit(batch: Staged[]): Promise<void> {
    if (batch.length === 0) return;
    // Bounded pipeline: wait while too many committed batches are not yet integrated.
    while (this.#integrating >= MAX_INTEGRATING) await this.#integrateChain;
    // 2. commit
    const first = this.#committed;
    const metadata = this.#entryMetadata?.(this.#now()) ?? EMPTY;
    const rows: NewEntry[] = batch.map((s) => ({ leafHash: s.leafHash, body: s.body, metadata, indexKeys: s.indexKeys }));
    let result;
    try {
      result = await this.storage.commit(first, rows);
    } catch (e) {
      const err = e instanceof WaxsealError ? e : new WaxsealError('ERR_IO', 'log commit failed', { cause: e });
      for (const s of batch) {
        this.#byLeaf.delete(s.key);
        this.#pendingCount--;
        for (const w of s.waiters) w.reject(err);
      }
      // A failed commit may have persisted all the same (a lost reply); only the durable size
      // tells. If it did not, this batch alone failed. If it did, or the size is unknown, stop:
      // the next start integrates the batch, and its submitters (answered with an error) find
      // their entries there as duplicates.
      const size = await this.storage.committedSize().catch(() => undefined);
      if (size !== first)
        throw new WaxsealError('ERR_LOG_INCONSISTENT', `a failed commit at ${first} left the log at size ${size ?? 'unknown'}`, {
          cause: e,
        });
      return;
    }
    const appended: Staged[] = [];
    batch.forEach((s, i) => {
      const existing = result.duplicates[i];
      if (existing !== undefined) {
        this.#byLeaf.delete(s.key);
        this.#pendingCount--;
        void this.#resolveDuplicate(s, existing);
        return;
      }
      s.index = first + appended.length;
      s.metadata = metadata;
      appended.push(s);
    });
    this.#committed += appended.length;
    this.#unpublished.push(...appended);
    if (appended.length === 0) return;
    // 3.-4. (a failure from here on is fatal: committed entries must be integrated)
    this.#integrating++;
    this.#integrateChain = this.#integrateChain
      .then(async () => {
        await this.#integrate(
          appended.map((s) => s.leafHash),
          appended.map((s) => s.body),
        );
        this.#integrating--;
        // Publish now unless another batch is right behind (it will publish for both).
        if (this.#integrating === 0 || this.#closed) await this.#maybePublish();
      })
      .catch((e) => this.#fail(e));
  }

  /** 4. publish, unless the checkpoint interval says to wait (then a timer publishes). */
  async #maybePublish(): Promise<void> {
    const wait = this.#lastPublishMs + this.checkpointIntervalMs - this.#now();
    if (wait <= 0) return this.#publish();
    if (!this.#publishTimer) {
      this.#publishTimer = setTimeout(() => {
        this.#publishTimer = undefined;
        this.#integrateChain = this.#integrateChain.then(() => this.#publish()).catch((e) => this.#fail(e));
      }, wait);
    }
  }

  async #integrate(leafHashes: Uint8Array[], bodies: Uint8Array[]): Promise<void> {
    const start = this.tree.size;
    const tiles = this.tree.append(leafHashes);
    const bundles: BundleWrite[] = [];
    let bundleIndex = Math.floor(start / TILE_WIDTH);
    for (const body of bodies) {
      this.#edgeBundle.push(body);
      if (this.#edgeBundle.length === TILE_WIDTH) {
        bundles.push({ index: bundleIndex, data: encodeEntryBundle(this.#edgeBundle), full: true });
        this.#edgeBundle = [];
        bundleIndex++;
      }
    }
    if (this.#edgeBundle.length > 0) bundles.push({ index: bundleIndex, data: encodeEntryBundle(this.#edgeBundle), full: false });
    await this.storage.writeTiles(tiles, bundles);
  }

  async #publish(): Promise<void> {
    if (this.#fatal) return;
    const size = this.tree.size;
    if (this.#published && this.#published.size === size) return;
    const root = await this.tree.root(size);
    const [note, extra] = await Promise.all([
      signCheckpoint(this.signer, this.ids, this.origin, size, root),
      this.#checkpointExtra ? this.#checkpointExtra({ size, rootHash: root }, this.identity) : EMPTY,
    ]);
    const cp: PublishedCheckpoint = { size, rootHash: root, note, extra, publishedAt: this.#now() };
    // Storing the checkpoint is not awaited: its row is not fsync'd by itself anyway (it rides on
    // the next commit), and a storage thread busy with the index follower must not hold back
    // the answers. Writes stay in order; a failure stops the log like any storage failure.
    const write = this.#checkpointWrites.then(() => this.storage.putCheckpoint(cp));
    this.#checkpointWrites = write.catch((e) => this.#fail(e));
    this.#published = cp;
    this.#lastPublishMs = cp.publishedAt;
    const done = this.#unpublished.filter((s) => s.index! < size);
    this.#unpublished = this.#unpublished.filter((s) => s.index! >= size);
    for (const s of done) {
      this.#byLeaf.delete(s.key);
      this.#pendingCount--;
      for (const w of s.waiters)
        w.resolve({ index: s.index!, leafHash: s.leafHash, metadata: s.metadata!, duplicate: w.duplicate, checkpoint: cp });
    }
    const ready = this.#sizeWaiters.filter((w) => w.size <= size);
    this.#sizeWaiters = this.#sizeWaiters.filter((w) => w.size > size);
    for (const w of ready) w.resolve(cp);
  }

  #fail(e: unknown): void {
    if (this.#fatal) return;
    this.#fatal = new WaxsealError('ERR_UNAVAILABLE', 'the log stopped after a storage failure; restart it to recover', { cause: e });
    this.#onFatal(e);
    const all = [...this.#pool.splice(0), ...this.#unpublished.splice(0)];
    for (const s of all) for (const w of s.waiters) w.reject(this.#fatal);
    for (const w of this.#sizeWaiters.splice(0)) w.reject(this.#fatal);
    this.#byLeaf.clear();
    this.#pendingCount = 0;
  }

  /** Inclusion proof for `index` in the tree of `size` entries (default: the published size). */
  async inclusionProof(index: number, size = this.checkpoint.size): Promise<Uint8Array[]> {
    if (size > this.checkpoint.size)
      throw new WaxsealError('ERR_INVALID_INPUT', `tree size ${size} is beyond the published size ${this.checkpoint.size}`);
    return this.tree.tryInclusionProofSync(index, size) ?? this.tree.inclusionProof(index, size);
  }

  async consistencyProof(first: number, second = this.checkpoint.size): Promise<Uint8Array[]> {
    if (second > this.checkpoint.size)
      throw new WaxsealError('ERR_INVALID_INPUT', `tree size ${second} is beyond the published size ${this.checkpoint.size}`);
    return this.tree.consistencyProof(first, second);
  }

  async rootAt(size: number): Promise<Uint8Array> {
    if (size > this.checkpoint.size)
      throw new WaxsealError('ERR_INVALID_INPUT', `tree size ${size} is beyond the published size ${this.checkpoint.size}`);
    return this.tree.root(size);
  }

  /** A published entry, or undefined. */
  async entry(index: number): Promise<StoredEntry | undefined> {
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.checkpoint.size) return undefined;
    const [row] = await this.storage.readEntries(index, index + 1);
    return row;
  }

  /** Index of a published entry with this leaf hash. */
  async indexOfLeaf(lh: Uint8Array): Promise<number | undefined> {
    const [i] = await this.storage.findByLeafHash([lh]);
    return i !== undefined && i < this.checkpoint.size ? i : undefined;
  }

  /** Stops accepting entries, finishes the batches in flight, and closes the storage. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#schedule();
    while ((this.#committing || this.#pool.length > 0) && !this.#fatal) await new Promise((r) => setTimeout(r, 1));
    await this.#integrateChain;
    if (this.#publishTimer) {
      clearTimeout(this.#publishTimer);
      this.#publishTimer = undefined;
    }
    if (!this.#fatal && this.#published?.size !== this.tree.size) await this.#publish().catch((e) => this.#fail(e));
    for (const w of this.#sizeWaiters.splice(0)) w.reject(new WaxsealError('ERR_UNAVAILABLE', 'the log is shutting down'));
    await this.#checkpointWrites;
    await this.storage.close();
  }
}
