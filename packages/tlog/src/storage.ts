// The storage contract of the log engine. The embedded driver (./sqlite.ts) keeps the sequenced
// entries and checkpoints in SQLite and the tiles in files; ./memory-storage.ts is an in-memory
// driver for tests that checks the contract and injects faults. A PostgreSQL or object-store
// driver implements the same interface.
//
// Every method states what is durable when it returns, and what a failure may leave behind: a
// failure is ambiguous unless stated otherwise (a timeout can hide a write that happened), so
// the engine never assumes that a failed write did not persist.
//
// The engine stores bytes it does not interpret: entry bodies, per-entry metadata, search keys,
// personality parameters and per-checkpoint extra bytes belong to the personality (Rekor).
import type { TileWrite } from './tree.ts';

/** An entry ready to be sequenced. */
export interface NewEntry {
  /** RFC 6962 leaf hash of `body`: the deduplication key. */
  leafHash: Uint8Array;
  /** The leaf preimage. At most 65535 bytes (entry bundle limit). */
  body: Uint8Array;
  /** The personality's per-entry metadata (opaque; may be empty). */
  metadata: Uint8Array;
  /** Search-index keys (opaque bytes, at most 65535 each); searchIndex(key) finds the entry. */
  indexKeys?: readonly Uint8Array[];
}

export interface CommitResult {
  /** Per submitted entry: the index of an identical committed entry (not appended), or undefined. */
  duplicates: (number | undefined)[];
}

export interface StoredEntry {
  index: number;
  leafHash: Uint8Array;
  body: Uint8Array;
  metadata: Uint8Array;
}

/** The fixed identity of a log, recorded at creation and compared by the engine on every open. */
export interface LogIdentity {
  /** C2SP checkpoint origin. */
  origin: string;
  /** DER SPKI of the log key, base64. */
  publicKey: string;
  /** Creation time, RFC 3339. */
  createdAt: string;
  /** The personality's parameters (e.g. Rekor's tree ID): recorded and compared, never interpreted. */
  params: Readonly<Record<string, string>>;
}

export interface StoredCheckpoint {
  size: number;
  rootHash: Uint8Array;
  /** The C2SP signed note. */
  note: string;
  /** Bytes the personality signed for this size (Rekor: its v1 note); empty when none. */
  extra: Uint8Array;
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
   * Opens the storage. When it holds no log yet, records `identity` (durably, before returning)
   * and returns it; otherwise returns the recorded identity unchanged (never overwriting it: the
   * engine compares the two). At most one open instance may write a log: a second one must fail.
   * A failure may have recorded the identity.
   */
  open(identity: LogIdentity): Promise<LogIdentity>;

  /**
   * Number of committed entries, from the durable record. After a failed commit this tells the
   * engine whether that commit persisted.
   */
  committedSize(): Promise<number>;

  /**
   * Appends, in one atomic and durable step (the "commit" of the durability order), every entry
   * whose leaf hash is not already in the log (nor earlier in the same batch): the appended ones
   * get indexes first, first+1, ... in order; for the others the existing index is reported.
   * Fails, writing nothing, unless `first` equals the committed size (a compare-and-swap: entries
   * are never rewritten, and two writers cannot split a log). When it returns, the appended
   * entries survive a crash or power loss. When it fails, either all or none of them persisted.
   */
  commit(first: number, entries: readonly NewEntry[]): Promise<CommitResult>;

  /** Indexes of committed entries with these leaf hashes (undefined when absent). Exact: sees every commit that returned. */
  findByLeafHash(hashes: readonly Uint8Array[]): Promise<(number | undefined)[]>;

  /** Committed entries [start, end) in order; fewer when end is beyond the committed size. */
  readEntries(start: number, end: number): Promise<StoredEntry[]>;

  /** Indexes of committed entries recorded under a search key (ascending, at most `limit`). */
  searchIndex(key: Uint8Array, limit: number): Promise<number[]>;

  /** The newest stored version of a hash tile (it may be wider than a given tree needs). */
  readTile(level: number, index: number): Promise<Uint8Array | undefined>;

  /** The newest stored version of an entry bundle. */
  readEntryBundle(index: number): Promise<Uint8Array | undefined>;

  /**
   * Stores new versions of tiles and entry bundles (the "integrate" step); durable when it
   * returns. Tile bytes are immutable: a new version agrees with the stored one on their common
   * prefix (it usually extends it; recovery may write a shorter version of the same bytes, or
   * the same version again). A failure may leave any subset of the writes persisted.
   */
  writeTiles(tiles: readonly TileWrite[], bundles: readonly BundleWrite[]): Promise<void>;

  /**
   * Records a published checkpoint (the "publish" step) and makes it the served one. Need not
   * be durable on return: it must become durable no later than the next commit returns, and a
   * crash before that may lose it (recovery re-derives it from the durable entries and tiles).
   * Checkpoints are put in increasing size order; the same size may be put again (recovery).
   */
  putCheckpoint(cp: StoredCheckpoint): Promise<void>;

  /** The checkpoint of the largest size stored (possibly one a crash would still lose). */
  latestCheckpoint(): Promise<StoredCheckpoint | undefined>;

  /** Releases the storage (and the single-writer claim). Nothing it holds is lost by closing. */
  close(): Promise<void>;
}
