// The RFC 6962 Merkle tree of a log, stored as C2SP tiles. Only complete subtree hashes are ever
// stored (they never change); roots and proofs for any size are folded from them on demand.
//
// A node (h, k) is the root of the complete subtree over leaves [k*2^h, (k+1)*2^h). Tile level
// L stores the nodes of height 8L; the nodes of heights 8L+1 .. 8L+7 are recomputed inside a
// tile ("expansion") and cached. The rightmost tile of each level (the "edge") is kept in
// memory: appends only ever touch edge tiles.
import { WaxsealError, EMPTY_ROOT, nodeHash } from '@waxseal/core';
import { HASH_SIZE, TILE_HEIGHT, TILE_WIDTH, type TileCoord } from './tiles.ts';

/** Reads the newest stored version of a hash tile, or undefined when absent. */
export type TileReader = (level: number, index: number) => Promise<Uint8Array | undefined>;

export interface TileWrite {
  level: number;
  index: number;
  /** The tile's hashes (width = data.length / 32). */
  data: Uint8Array;
}

export const hashChildren = nodeHash;

/** Largest power of two strictly less than n (n >= 2). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function isPow2(n: number): boolean {
  return n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}

/** Sub-levels 0..8 of a tile: level j holds floor(w / 2^j) node hashes. */
function expandTile(data: Uint8Array): Uint8Array[] {
  const levels = [data];
  let cur = data;
  for (let j = 1; j <= TILE_HEIGHT; j++) {
    const n = Math.floor(cur.length / HASH_SIZE / 2);
    const next = new Uint8Array(n * HASH_SIZE);
    for (let i = 0; i < n; i++) {
      next.set(
        hashChildren(
          cur.subarray(2 * i * HASH_SIZE, (2 * i + 1) * HASH_SIZE),
          cur.subarray((2 * i + 1) * HASH_SIZE, (2 * i + 2) * HASH_SIZE),
        ),
        i * HASH_SIZE,
      );
    }
    levels.push(next);
    cur = next;
  }
  return levels;
}

/** Thrown internally when a needed tile is not in memory; callers load it and retry. */
class MissingTile {
  readonly level: number;
  readonly index: number;
  constructor(level: number, index: number) {
    this.level = level;
    this.index = index;
  }
}

export class TileHashTree {
  #size = 0;
  /** Edge tile data per level, at its current width (may be empty). */
  #edge: Uint8Array[] = [];
  /** Full tiles, LRU by insertion order; value is the expansion (sub-levels 0..8). */
  readonly #full = new Map<string, Uint8Array[]>();
  /** Hashes of ragged leaf ranges [lo, hi) already computed (see #range). */
  readonly #ranges = new Map<string, Uint8Array>();
  /** Expansion of each edge tile, recomputed when the edge grows. */
  #edgeExp: (Uint8Array[] | undefined)[] = [];
  readonly #reader: TileReader;
  readonly #cacheTiles: number;

  constructor(reader: TileReader, opts: { cacheTiles?: number } = {}) {
    this.#reader = reader;
    this.#cacheTiles = opts.cacheTiles ?? 2048;
  }

  get size(): number {
    return this.#size;
  }

  /**
   * Positions the tree at `size` using stored tiles: each level's edge tile is read and cut to
   * the width that size implies (stored tiles may be newer, i.e. wider). Used at start-up.
   */
  async load(size: number): Promise<void> {
    this.#size = size;
    this.#edge = [];
    this.#edgeExp = [];
    this.#full.clear();
    for (let level = 0; ; level++) {
      const nodes = Math.floor(size / 2 ** (TILE_HEIGHT * level));
      if (nodes === 0) break;
      const index = Math.floor(nodes / TILE_WIDTH);
      const width = nodes % TILE_WIDTH;
      if (width === 0) {
        this.#edge[level] = new Uint8Array(0);
        continue;
      }
      const data = await this.#reader(level, index);
      if (!data || data.length < width * HASH_SIZE || data.length % HASH_SIZE !== 0) {
        throw new WaxsealError('ERR_LOG_INCONSISTENT', `tile ${level}/${index} is missing or shorter than ${width} hashes`);
      }
      this.#edge[level] = data.slice(0, width * HASH_SIZE);
    }
  }

  /**
   * Appends leaf hashes; returns the tiles that changed (the new version of each, full or
   * partial). Pure in-memory work: the caller persists the writes.
   */
  append(leafHashes: readonly Uint8Array[]): TileWrite[] {
    const writes: TileWrite[] = [];
    let carry: readonly Uint8Array[] = leafHashes;
    for (let level = 0; carry.length > 0; level++) {
      const nodesBefore = Math.floor(this.#size / 2 ** (TILE_HEIGHT * level));
      let index = Math.floor(nodesBefore / TILE_WIDTH);
      const old = this.#edge[level] ?? new Uint8Array(0);
      // Work buffer: the edge plus everything appended at this level, cut into tiles.
      const buf = new Uint8Array(old.length + carry.length * HASH_SIZE);
      buf.set(old, 0);
      let o = old.length;
      for (const h of carry) {
        if (h.length !== HASH_SIZE) throw new TypeError('hash must be 32 bytes');
        buf.set(h, o);
        o += HASH_SIZE;
      }
      const next: Uint8Array[] = [];
      const tileBytes = TILE_WIDTH * HASH_SIZE;
      let start = 0;
      while (buf.length - start >= tileBytes) {
        const full = buf.slice(start, start + tileBytes);
        const exp = expandTile(full);
        this.#remember(level, index, exp);
        writes.push({ level, index, data: full });
        next.push(exp[TILE_HEIGHT]!);
        index++;
        start += tileBytes;
      }
      const edge = buf.slice(start);
      this.#edge[level] = edge;
      this.#edgeExp[level] = undefined;
      if (edge.length > 0) writes.push({ level, index, data: edge.slice() });
      carry = next;
    }
    this.#size += leafHashes.length;
    return writes;
  }

  #remember(level: number, index: number, exp: Uint8Array[]): void {
    const key = `${level}/${index}`;
    this.#full.delete(key);
    this.#full.set(key, exp);
    while (this.#full.size > this.#cacheTiles) this.#full.delete(this.#full.keys().next().value!);
  }

  /** Hash of the complete node (h, k). Throws MissingTile when its tile is not in memory. */
  #node(h: number, k: number): Uint8Array {
    const level = Math.floor(h / TILE_HEIGHT);
    const sub = h % TILE_HEIGHT;
    const first = k * 2 ** sub; // index of the first height-8L node under (h, k)
    const index = Math.floor(first / TILE_WIDTH);
    const pos = (first % TILE_WIDTH) / 2 ** sub;
    let exp: Uint8Array[] | undefined;
    const nodesAtLevel = Math.floor(this.#size / 2 ** (TILE_HEIGHT * level));
    if (index === Math.floor(nodesAtLevel / TILE_WIDTH)) {
      const e = this.#edge[level];
      if (!e) throw new WaxsealError('ERR_INTERNAL', `node ${h}/${k} is beyond the tree`);
      exp = this.#edgeExp[level] ??= expandTile(e);
    } else {
      const key = `${level}/${index}`;
      exp = this.#full.get(key);
      if (!exp) throw new MissingTile(level, index);
    }
    const row = exp[sub]!;
    if ((pos + 1) * HASH_SIZE > row.length) throw new WaxsealError('ERR_INTERNAL', `node ${h}/${k} is not complete`);
    return row.subarray(pos * HASH_SIZE, (pos + 1) * HASH_SIZE);
  }

  /** MTH of leaves [lo, hi) where lo is aligned to the largest power of two below hi - lo. */
  #range(lo: number, hi: number): Uint8Array {
    const n = hi - lo;
    if (isPow2(n) && lo % n === 0) return this.#node(Math.round(Math.log2(n)), lo / n);
    // Ragged ranges are the right edge of a tree of size hi; every proof against the same
    // checkpoint needs the same ones. The tree is append-only, so a range's hash never changes.
    const key = `${lo}:${hi}`;
    const cached = this.#ranges.get(key);
    if (cached) return cached;
    const k = splitPoint(n);
    const h = hashChildren(this.#range(lo, lo + k), this.#range(lo + k, hi));
    if (this.#ranges.size >= 4096) this.#ranges.clear();
    this.#ranges.set(key, h);
    return h;
  }

  #checkSize(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0 || n > this.#size)
      throw new WaxsealError('ERR_INVALID_INPUT', `tree size ${n} is beyond the log size ${this.#size}`);
  }

  /** Runs a computation over nodes, loading whichever full tiles it turns out to need. */
  async #withTiles<T>(fn: () => T): Promise<T> {
    for (let attempt = 0; attempt < 64; attempt++) {
      try {
        return fn();
      } catch (e) {
        if (!(e instanceof MissingTile)) throw e;
        const data = await this.#reader(e.level, e.index);
        if (!data || data.length !== TILE_WIDTH * HASH_SIZE) {
          throw new WaxsealError('ERR_LOG_INCONSISTENT', `full tile ${e.level}/${e.index} is missing or truncated`);
        }
        this.#remember(e.level, e.index, expandTile(data));
      }
    }
    throw new WaxsealError('ERR_INTERNAL', 'tile cache too small for this computation');
  }

  /** Synchronous variants succeed when every needed tile is cached (the usual case for fresh entries). */
  tryRootSync(n: number): Uint8Array | undefined {
    try {
      return this.#rootOf(n);
    } catch (e) {
      if (e instanceof MissingTile) return undefined;
      throw e;
    }
  }

  tryInclusionProofSync(index: number, n: number): Uint8Array[] | undefined {
    try {
      return this.#inclusion(index, n);
    } catch (e) {
      if (e instanceof MissingTile) return undefined;
      throw e;
    }
  }

  #rootOf(n: number): Uint8Array {
    this.#checkSize(n);
    return n === 0 ? EMPTY_ROOT : this.#range(0, n);
  }

  #inclusion(index: number, n: number): Uint8Array[] {
    this.#checkSize(n);
    if (!Number.isSafeInteger(index) || index < 0 || index >= n)
      throw new WaxsealError('ERR_INVALID_INPUT', `leaf index ${index} is not below tree size ${n}`);
    const out: Uint8Array[] = [];
    const path = (lo: number, hi: number): void => {
      if (hi - lo <= 1) return;
      const k = splitPoint(hi - lo);
      if (index < lo + k) {
        path(lo, lo + k);
        out.push(this.#range(lo + k, hi));
      } else {
        path(lo + k, hi);
        out.push(this.#range(lo, lo + k));
      }
    };
    path(0, n);
    return out;
  }

  #consistency(m: number, n: number): Uint8Array[] {
    this.#checkSize(n);
    if (!Number.isSafeInteger(m) || m < 0 || m > n)
      throw new WaxsealError('ERR_INVALID_INPUT', `first size ${m} must be between 0 and ${n}`);
    if (m === 0 || m === n) return [];
    const out: Uint8Array[] = [];
    const sub = (mm: number, lo: number, hi: number, complete: boolean): void => {
      const len = hi - lo;
      if (mm === len) {
        if (!complete) out.push(this.#range(lo, hi));
        return;
      }
      const k = splitPoint(len);
      if (mm <= k) {
        sub(mm, lo, lo + k, complete);
        out.push(this.#range(lo + k, hi));
      } else {
        sub(mm - k, lo + k, hi, false);
        out.push(this.#range(lo, lo + k));
      }
    };
    sub(m, 0, n, true);
    return out;
  }

  root(n = this.#size): Promise<Uint8Array> {
    return this.#withTiles(() => this.#rootOf(n));
  }

  inclusionProof(index: number, n = this.#size): Promise<Uint8Array[]> {
    return this.#withTiles(() => this.#inclusion(index, n));
  }

  consistencyProof(m: number, n = this.#size): Promise<Uint8Array[]> {
    return this.#withTiles(() => this.#consistency(m, n));
  }

  /** Leaf hashes [start, end) (end <= size), from tiles. */
  leafHashes(start: number, end: number): Promise<Uint8Array[]> {
    this.#checkSize(end);
    return this.#withTiles(() => {
      const out: Uint8Array[] = [];
      for (let i = start; i < end; i++) out.push(this.#node(0, i));
      return out;
    });
  }

  /** The current tile data of (level, index) cut to the width `size` implies, when cached. */
  tileAt(t: TileCoord): Uint8Array | undefined {
    const nodes = Math.floor(this.#size / 2 ** (TILE_HEIGHT * t.level));
    const edgeIndex = Math.floor(nodes / TILE_WIDTH);
    if (t.index === edgeIndex) {
      const e = this.#edge[t.level];
      return e && e.length >= t.width * HASH_SIZE ? e.subarray(0, t.width * HASH_SIZE) : undefined;
    }
    const exp = this.#full.get(`${t.level}/${t.index}`);
    return exp ? exp[0]!.subarray(0, t.width * HASH_SIZE) : undefined;
  }
}
