// The storage contract of the log engine. The embedded driver (./sqlite.ts) keeps the sequenced
// entries and checkpoints in SQLite and the tiles in files; a PostgreSQL or object-store driver
// implements the same interface. Every method states what must be durable when it returns.
import type { TileWrite } from './tree.ts';

/** An entry ready to be sequenced. */
export interface NewEntry {
  /** RFC 6962 leaf hash of `body`: the deduplication key. */
  leafHash: Uint8Array;
  /** The leaf preimage (canonicalized body). At most 65535 bytes (entry bundle limit). */
  body: Uint8Array;
  /** Unix seconds at sequencing (Rekor v1 integratedTime). */
  integratedTime: number;
  /** Search-index keys (Rekor v1 /index/retrieve): lower-case strings. */
  indexKeys?: readonly string[];
}

export interface CommitResult {
  /** Per submitted entry: the index of an identical committed entry (not appended), or undefined. */
  duplicates: (number | undefined)[];
}

export interface StoredEntry {
  index: number;
  leafHash: Uint8Array;
  body: Uint8Array;
  integratedTime: number;
}

/** The fixed identity of a log, recorded at creation and checked on every open. */
export interface LogIdentity {
  /** C2SP checkpoint origin (a bare host name for Rekor v2 clients). */
  origin: string;
  /** Rekor v1 tree ID (decimal int64). */
  treeId: string;
  /** DER SPKI of the log key, base64. */
  publicKey: string;
  /** Creation time, RFC 3339. */
  createdAt: string;
}

export interface StoredCheckpoint {
  size: number;
  rootHash: Uint8Array;
  /** The C2SP (v2) signed note. */
  note: string;
  /** The Rekor v1 signed note ("<origin> - <treeID>"). */
  noteV1: string;
  /** Unix milliseconds. */
  publishedAt: number;
}

/** Where the bytes of one entry bundle go: the whole bundle at its current width. */
export interface BundleWrite {
  index: number;
  data: Uint8Array;
  /** True when the bundle holds 256 entries (it never changes again). */
  full: boolean;
}

export interface LogStorage {
  /**
   * Opens the storage, creating an empty log bound to `identity` on first use. When the storage
   * already holds a log, its recorded identity must match (same key, origin and tree ID) or this
   * fails: a data directory never silently changes keys. Returns the recorded identity.
   */
  open(identity: LogIdentity): Promise<LogIdentity>;

  /** Number of sequenced (committed) entries. */
  committedSize(): Promise<number>;

  /**
   * Appends, in one atomic and durable step (the "commit" of the durability order), every entry
   * whose leaf hash is not already in the log (nor earlier in the same batch): the appended ones
   * get indexes first, first+1, ... in order; for the others the existing index is reported.
   * Must fail, writing nothing, unless `first` equals the committed size (a compare-and-swap that
   * keeps two writers from splitting a log). When it returns, the appended entries survive a
   * crash or power loss.
   */
  commit(first: number, entries: readonly NewEntry[]): Promise<CommitResult>;

  /** Indexes of committed entries with these leaf hashes (undefined when absent). Exact. */
  findByLeafHash(hashes: readonly Uint8Array[]): Promise<(number | undefined)[]>;

  /** Entries [start, end) in order; fewer when end is beyond the committed size. */
  readEntries(start: number, end: number): Promise<StoredEntry[]>;

  /** Entry indexes recorded under a search-index key (ascending, capped at `limit`). */
  searchIndex(key: string, limit: number): Promise<number[]>;

  /** The newest stored version of a hash tile (it may be wider than a given tree needs). */
  readTile(level: number, index: number): Promise<Uint8Array | undefined>;

  /** The newest stored version of an entry bundle. */
  readEntryBundle(index: number): Promise<Uint8Array | undefined>;

  /**
   * Stores new versions of tiles and entry bundles (the "integrate" step). Tiles only grow: a
   * new version extends the previous one. Durable when it returns.
   */
  writeTiles(tiles: readonly TileWrite[], bundles: readonly BundleWrite[]): Promise<void>;

  /**
   * Records a published checkpoint (the "publish" step). Need not be durable on return: the
   * tree it describes is already durable, so a lost checkpoint is re-derived on recovery.
   * It must become durable no later than the next commit.
   */
  putCheckpoint(cp: StoredCheckpoint): Promise<void>;

  latestCheckpoint(): Promise<StoredCheckpoint | undefined>;

  /** Every stored checkpoint, ascending by size. */
  listCheckpoints(): Promise<StoredCheckpoint[]>;

  close(): Promise<void>;
}
