// An in-memory LogStorage for tests. It keeps only what the contract (storage.ts) promises to
// keep, records every breach of the contract's invariants by its caller as a violation (an
// entry appended over another, tile bytes rewritten, a checkpoint the stored data does not
// back, a rollback or a fork), and injects faults into any method:
//
//   'persist-then-fail'        the call takes effect, then fails (a lost reply, a timeout)
//   'fail-without-persisting'  the call fails and nothing happens
//
// crash() is a power cut: whatever the contract lets a crash lose (checkpoints put since the
// last commit) is lost, and calls through the dead process's handle fail from then on; it
// returns the handle of the restarted process, on which a test opens a new TransparencyLog.
import { WaxsealError, bytesEqual, leafHash, nodeHash, EMPTY_ROOT, toHex } from '@waxseal/core';
import { HASH_SIZE, TILE_WIDTH, decodeEntryBundle, tileWidthAt, tilesForSize } from './tiles.ts';
import { TileHashTree, type TileWrite } from './tree.ts';
import type { BundleWrite, CommitResult, LogIdentity, LogStorage, NewEntry, StoredCheckpoint, StoredEntry } from './storage.ts';

export type StorageMethod = keyof LogStorage;
export type Fault = 'persist-then-fail' | 'fail-without-persisting';
/** Decides, for each call (numbered per method from 1), whether to inject a fault. */
export type FaultPlan = (method: StorageMethod, call: number) => Fault | undefined;

interface Row {
  leafHash: Uint8Array;
  body: Uint8Array;
  metadata: Uint8Array;
  keys: Uint8Array[];
}

const hex = (b: Uint8Array) => toHex(b);

/** RFC 6962 root of leaf hashes, computed independently of the tile tree. */
function rootOf(leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return EMPTY_ROOT;
  if (leaves.length === 1) return leaves[0]!;
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return nodeHash(rootOf(leaves.slice(0, k)), rootOf(leaves.slice(k)));
}

function prefixAgrees(a: Uint8Array, b: Uint8Array): boolean {
  const n = Math.min(a.length, b.length);
  return bytesEqual(a.subarray(0, n), b.subarray(0, n));
}

/** What survives a crash, shared by the handles of successive "processes". */
class Disk {
  readonly violations: string[] = [];
  readonly injected: { method: StorageMethod; fault: Fault; call: number }[] = [];
  readonly calls = new Map<StorageMethod, number>();
  faults: FaultPlan | undefined;
  readonly armed: { method: StorageMethod; fault: Fault }[] = [];
  identity: LogIdentity | undefined;
  readonly rows: Row[] = [];
  readonly byLeaf = new Map<string, number>();
  readonly tiles = new Map<string, Uint8Array>();
  /** Durable checkpoints (ascending), and those put since the last commit (a crash loses them). */
  readonly checkpoints: StoredCheckpoint[] = [];
  volatile: StoredCheckpoint[] = [];
  /** The handle holding the single-writer claim. */
  writer: MemoryStorage | undefined;
  /** Checkpoints checkPublished found backed by stored data ("size:root"). */
  readonly backed = new Set<string>();
}

export class MemoryStorage implements LogStorage {
  #disk = new Disk();
  /** Set by crash(): this handle belongs to a dead process. */
  #dead = false;

  /** Contract breaches by the caller, in order (all handles of this storage). A test asserts it stays empty. */
  get violations(): readonly string[] {
    return this.#disk.violations;
  }

  /** Faults injected so far. */
  get injected(): readonly { method: StorageMethod; fault: Fault; call: number }[] {
    return this.#disk.injected;
  }

  /** Calls per method (a fault plan sees the number of the current call). */
  get calls(): ReadonlyMap<StorageMethod, number> {
    return this.#disk.calls;
  }

  /** Consulted on every call; see also failNext(). */
  get faults(): FaultPlan | undefined {
    return this.#disk.faults;
  }

  set faults(plan: FaultPlan | undefined) {
    this.#disk.faults = plan;
  }

  /** Arms a one-shot fault on the next call of `method`. */
  failNext(method: StorageMethod, fault: Fault): void {
    this.#disk.armed.push({ method, fault });
  }

  /** Number of committed entries (everything committed here is durable). */
  get size(): number {
    return this.#disk.rows.length;
  }

  /** The body of committed entry `index` (tests). */
  bodyAt(index: number): Uint8Array | undefined {
    return this.#disk.rows[index]?.body;
  }

  /** Whether this handle holds the writer claim. */
  get isOpen(): boolean {
    return this.#disk.writer === this;
  }

  /**
   * A power cut: loses what the contract allows (checkpoints put since the last commit), kills
   * this handle (its process is gone: every later call fails) and returns the handle a
   * restarted process opens.
   */
  crash(): MemoryStorage {
    this.#dead = true;
    const disk = this.#disk;
    disk.volatile = [];
    if (disk.writer === this) disk.writer = undefined;
    const next = new MemoryStorage();
    next.#disk = disk;
    return next;
  }

  #violation(message: string): void {
    this.#disk.violations.push(message);
  }

  /** Counts the call, checks the handle, and returns the fault to inject, if any. */
  #enter(method: StorageMethod): Fault | undefined {
    const disk = this.#disk;
    const n = (disk.calls.get(method) ?? 0) + 1;
    disk.calls.set(method, n);
    if (this.#dead) throw new WaxsealError('ERR_IO', `memory storage: ${method} from a crashed process`);
    if (method !== 'open' && disk.writer !== this) throw new WaxsealError('ERR_IO', `memory storage: ${method} on a closed storage`);
    const armed = disk.armed.findIndex((a) => a.method === method);
    const fault = armed >= 0 ? disk.armed.splice(armed, 1)[0]!.fault : disk.faults?.(method, n);
    if (fault) disk.injected.push({ method, fault, call: n });
    return fault;
  }

  /** Runs `effect` unless the fault says not to; fails after it when the fault says so. */
  #op<T>(method: StorageMethod, effect: (disk: Disk) => T): Promise<T> {
    try {
      const fault = this.#enter(method);
      const injected = () => new WaxsealError('ERR_IO', `memory storage: injected fault in ${method} (${fault})`);
      if (fault === 'fail-without-persisting') throw injected();
      const r = effect(this.#disk);
      if (fault === 'persist-then-fail') throw injected();
      return Promise.resolve(r);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  open(identity: LogIdentity): Promise<LogIdentity> {
    return this.#op('open', (disk) => {
      if (disk.writer !== undefined) throw new WaxsealError('ERR_CONFIG', 'memory storage is in use by another writer');
      disk.identity ??= { ...identity, params: { ...identity.params } };
      disk.writer = this;
      return { ...disk.identity, params: { ...disk.identity.params } };
    });
  }

  committedSize(): Promise<number> {
    return this.#op('committedSize', (disk) => disk.rows.length);
  }

  commit(first: number, entries: readonly NewEntry[]): Promise<CommitResult> {
    return this.#op('commit', (disk) => {
      if (first !== disk.rows.length) {
        this.#violation(
          first < disk.rows.length
            ? `commit at ${first} would rewrite entries (the log holds ${disk.rows.length})`
            : `commit at ${first} would leave a gap (the log holds ${disk.rows.length})`,
        );
        throw new WaxsealError('ERR_LOG_INCONSISTENT', `commit at ${first} but the log holds ${disk.rows.length} entries`);
      }
      const duplicates: (number | undefined)[] = [];
      const added: Row[] = [];
      const batch = new Map<string, number>();
      for (const e of entries) {
        if (!bytesEqual(leafHash(e.body), e.leafHash)) this.#violation(`commit: entry ${first + added.length} has a wrong leaf hash`);
        const k = hex(e.leafHash);
        const existing = disk.byLeaf.get(k) ?? batch.get(k);
        duplicates.push(existing);
        if (existing !== undefined) continue;
        batch.set(k, first + added.length);
        added.push({
          leafHash: e.leafHash.slice(),
          body: e.body.slice(),
          metadata: e.metadata.slice(),
          keys: (e.indexKeys ?? []).map((x) => x.slice()),
        });
      }
      // All or nothing, and durable: checkpoints put before it become durable with it.
      disk.rows.push(...added);
      for (const [k, i] of batch) disk.byLeaf.set(k, i);
      disk.checkpoints.push(...disk.volatile);
      disk.volatile = [];
      return { duplicates };
    });
  }

  findByLeafHash(hashes: readonly Uint8Array[]): Promise<(number | undefined)[]> {
    return this.#op('findByLeafHash', (disk) => hashes.map((h) => disk.byLeaf.get(hex(h))));
  }

  readEntries(start: number, end: number): Promise<StoredEntry[]> {
    return this.#op('readEntries', (disk) => {
      const out: StoredEntry[] = [];
      for (let i = Math.max(0, start); i < Math.min(end, disk.rows.length); i++) {
        const r = disk.rows[i]!;
        out.push({ index: i, leafHash: r.leafHash.slice(), body: r.body.slice(), metadata: r.metadata.slice() });
      }
      return out;
    });
  }

  searchIndex(key: Uint8Array, limit: number): Promise<number[]> {
    return this.#op('searchIndex', (disk) => {
      const out: number[] = [];
      for (let i = 0; i < disk.rows.length && out.length < limit; i++) if (disk.rows[i]!.keys.some((k) => bytesEqual(k, key))) out.push(i);
      return out;
    });
  }

  readTile(level: number, index: number): Promise<Uint8Array | undefined> {
    return this.#op('readTile', (disk) => disk.tiles.get(`${level}/${index}`)?.slice());
  }

  readEntryBundle(index: number): Promise<Uint8Array | undefined> {
    return this.#op('readEntryBundle', (disk) => disk.tiles.get(`-1/${index}`)?.slice());
  }

  /** The width of tile (level, index) the largest stored checkpoint needs. */
  #publishedWidth(level: number, index: number): number {
    const size = this.#latest()?.size ?? 0;
    return tileWidthAt(Math.max(level, 0), index, size);
  }

  #storeTile(level: number, index: number, data: Uint8Array, width: number): void {
    const name = level < 0 ? `entry bundle ${index}` : `tile ${level}/${index}`;
    const k = `${level}/${index}`;
    const old = this.#disk.tiles.get(k);
    if (old && !prefixAgrees(old, data)) this.#violation(`${name} rewritten with different bytes`);
    if (width < this.#publishedWidth(level, index))
      this.#violation(`${name} shrunk below what a stored checkpoint needs (${width} < ${this.#publishedWidth(level, index)})`);
    this.#disk.tiles.set(k, data.slice());
  }

  writeTiles(tiles: readonly TileWrite[], bundles: readonly BundleWrite[]): Promise<void> {
    return this.#op('writeTiles', (disk) => {
      for (const t of tiles) {
        const width = t.data.length / HASH_SIZE;
        if (!Number.isInteger(width) || width < 1 || width > TILE_WIDTH) this.#violation(`tile ${t.level}/${t.index}: bad width`);
        // Level-0 hashes must be the committed leaves: a tile never runs ahead of the commit.
        if (t.level === 0)
          for (let i = 0; i < width; i++) {
            const row = disk.rows[t.index * TILE_WIDTH + i];
            if (!row || !bytesEqual(row.leafHash, t.data.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE))) {
              this.#violation(`tile 0/${t.index}: hash ${i} is not committed entry ${t.index * TILE_WIDTH + i}`);
              break;
            }
          }
        this.#storeTile(t.level, t.index, t.data, width);
      }
      for (const b of bundles) {
        let bodies: Uint8Array[] = [];
        try {
          bodies = decodeEntryBundle(b.data);
        } catch {
          this.#violation(`entry bundle ${b.index}: malformed`);
        }
        if (b.full !== (bodies.length === TILE_WIDTH)) this.#violation(`entry bundle ${b.index}: wrong "full" flag`);
        bodies.forEach((body, i) => {
          const row = disk.rows[b.index * TILE_WIDTH + i];
          if (!row || !bytesEqual(row.body, body)) this.#violation(`entry bundle ${b.index}: entry ${i} is not the committed one`);
        });
        this.#storeTile(-1, b.index, b.data, bodies.length);
      }
    });
  }

  #latest(): StoredCheckpoint | undefined {
    return this.#disk.volatile.at(-1) ?? this.#disk.checkpoints.at(-1);
  }

  putCheckpoint(cp: StoredCheckpoint): Promise<void> {
    // Checked before the fault: a caller that tries to store a bad checkpoint is wrong either way.
    const latest = this.#latest();
    if (latest && cp.size < latest.size) this.#violation(`checkpoint ${cp.size} put after checkpoint ${latest.size} (rollback)`);
    for (const old of [...this.#disk.checkpoints, ...this.#disk.volatile])
      if (old.size === cp.size && !bytesEqual(old.rootHash, cp.rootHash)) this.#violation(`two roots for size ${cp.size} (fork)`);
    return this.#op('putCheckpoint', (disk) => {
      const copy = { ...cp, rootHash: cp.rootHash.slice(), extra: cp.extra.slice() };
      const i = disk.volatile.findIndex((c) => c.size === cp.size);
      if (i >= 0) disk.volatile[i] = copy;
      else if (!disk.checkpoints.some((c) => c.size === cp.size)) disk.volatile.push(copy);
    });
  }

  latestCheckpoint(): Promise<StoredCheckpoint | undefined> {
    return this.#op('latestCheckpoint', () => {
      const l = this.#latest();
      return l && { ...l, rootHash: l.rootHash.slice(), extra: l.extra.slice() };
    });
  }

  close(): Promise<void> {
    return this.#op('close', (disk) => {
      // A clean close keeps everything (SQLite checkpoints its WAL on close).
      disk.checkpoints.push(...disk.volatile);
      disk.volatile = [];
      disk.writer = undefined;
    });
  }

  /**
   * Checks that a checkpoint a client was given is backed by durable data: its entries are
   * committed, their leaves give its root, and the stored tiles and entry bundles alone
   * reproduce it. Records (and returns) what is wrong. Not a storage call: no fault, no count.
   */
  async checkPublished(cp: { size: number; rootHash: Uint8Array }): Promise<string[]> {
    const disk = this.#disk;
    // Stored data only grows, so a checkpoint found backed stays backed.
    const memo = `${cp.size}:${hex(cp.rootHash)}`;
    if (disk.backed.has(memo)) return [];
    const problems: string[] = [];
    if (cp.size > disk.rows.length) problems.push(`checkpoint ${cp.size} is beyond the ${disk.rows.length} durable entries`);
    else if (!bytesEqual(rootOf(disk.rows.slice(0, cp.size).map((r) => r.leafHash)), cp.rootHash))
      problems.push(`checkpoint ${cp.size}: the durable entries give another root`);
    for (const t of tilesForSize(cp.size)) {
      const stored = disk.tiles.get(`${t.level}/${t.index}`);
      if (!stored || stored.length < t.width * HASH_SIZE) problems.push(`checkpoint ${cp.size}: tile ${t.level}/${t.index} is not stored`);
      if (t.level === 0) {
        const bundle = disk.tiles.get(`-1/${t.index}`);
        let n = 0;
        try {
          n = bundle ? decodeEntryBundle(bundle).length : 0;
        } catch {
          n = 0;
        }
        if (n < t.width) problems.push(`checkpoint ${cp.size}: entry bundle ${t.index} is not stored`);
      }
    }
    if (problems.length === 0 && cp.size > 0) {
      const tree = new TileHashTree(async (l, i) => disk.tiles.get(`${l}/${i}`));
      try {
        await tree.load(cp.size);
        if (!bytesEqual(await tree.root(cp.size), cp.rootHash)) problems.push(`checkpoint ${cp.size}: the stored tiles give another root`);
      } catch (e) {
        problems.push(`checkpoint ${cp.size}: stored tiles: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    for (const p of problems) this.#violation(`published ${p}`);
    if (problems.length === 0) disk.backed.add(memo);
    return problems;
  }
}
