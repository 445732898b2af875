// `waxseal log fsck <dataDir>`: recompute the whole tree from the stored entries and check every
// tile, entry bundle and stored checkpoint against it. Read-only; safe to run on a copy or on a
// live log (it reads one database snapshot and only the tiles the published tree covers).
import { existsSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { leafHash, bytesEqual, fromBase64, toHex, publicKeyFromSpki, WaxsealError, type PublicKeyInfo } from '@waxseal/core';
import { SqliteFileStorage } from './sqlite.ts';
import { TileHashTree, type TileWrite } from './tree.ts';
import { HASH_SIZE, TILE_WIDTH, decodeEntryBundle, tileWidthAt } from './tiles.ts';
import { verifyCheckpointNote } from './checkpoint.ts';
import type { LogIdentity, StoredCheckpoint } from './storage.ts';

export interface FsckOptions {
  /**
   * Verifies a checkpoint's extra bytes (the personality's, e.g. Rekor's v1 note) and returns
   * the tree they sign; throwing reports an error. Without it the extra bytes are not checked.
   */
  verifyExtra?: (cp: StoredCheckpoint, identity: LogIdentity, key: PublicKeyInfo) => { size: number; rootHash: Uint8Array };
}

export interface FsckReport {
  ok: boolean;
  dataDir: string;
  origin: string;
  /** The personality's parameters recorded with the log. */
  params: Record<string, string>;
  /** Committed entries. */
  entries: number;
  /** Size of the newest stored checkpoint. */
  publishedSize: number;
  checkpointsChecked: number;
  tilesChecked: number;
  bundlesChecked: number;
  errors: string[];
  /** Not corruption: states that the next start repairs (e.g. committed but unpublished entries). */
  warnings: string[];
}

const CHUNK = 4096;

const holdsLog = (dir: string): boolean => existsSync(join(dir, 'log.db'));

function logsBelow(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort();
  } catch {
    return [];
  }
  return names.map((n) => join(dir, n)).filter(holdsLog);
}

/**
 * The log folders `dir` names: itself when it holds a log (log.db), else the logs one level
 * below it (an instance keeps one log per log key in <data>/log/<key id>), else those of its
 * `log` folder (an instance's data folder). Empty when there is none.
 */
export function findLogDirs(dir: string): string[] {
  if (holdsLog(dir)) return [dir];
  const below = logsBelow(dir);
  if (below.length > 0) return below;
  const inLog = join(dir, 'log');
  return holdsLog(inLog) ? [inLog] : logsBelow(inLog);
}
const MAX_ERRORS = 100;

export async function fsckLog(dataDir: string, opts: FsckOptions = {}): Promise<FsckReport> {
  const storage = new SqliteFileStorage(dataDir, { readOnly: true });
  const identity = await storage.open({ origin: '', publicKey: '', createdAt: '', params: {} });
  const report: FsckReport = {
    ok: false,
    dataDir,
    origin: identity.origin,
    params: { ...identity.params },
    entries: 0,
    publishedSize: 0,
    checkpointsChecked: 0,
    tilesChecked: 0,
    bundlesChecked: 0,
    errors: [],
    warnings: [],
  };
  const error = (m: string) => {
    if (report.errors.length < MAX_ERRORS) report.errors.push(m);
  };
  try {
    const key = publicKeyFromSpki(fromBase64(identity.publicKey, 'log public key'));
    const committed = await storage.committedSize();
    report.entries = committed;
    const checkpoints = await storage.listCheckpoints();
    const published = checkpoints.at(-1)?.size ?? 0;
    report.publishedSize = published;
    if (published > committed) error(`newest checkpoint (size ${published}) is beyond the ${committed} committed entries`);
    if (committed > published)
      report.warnings.push(
        `${committed - published} committed entries are not covered by a checkpoint yet; the log integrates them when it next starts`,
      );

    // Tiles are compared only where the published tree defines them.
    const checkTile = async (w: TileWrite): Promise<void> => {
      const width = tileWidthAt(w.level, w.index, published);
      if (width === 0) return;
      report.tilesChecked++;
      const disk = await storage.readTile(w.level, w.index);
      if (!disk || disk.length < width * HASH_SIZE) return error(`tile ${w.level}/${w.index}: missing or shorter than ${width} hashes`);
      if (!bytesEqual(disk.subarray(0, width * HASH_SIZE), w.data.subarray(0, width * HASH_SIZE)))
        error(`tile ${w.level}/${w.index}: hashes differ from the recomputed tree`);
    };
    const checkBundle = async (index: number, bodies: Uint8Array[]): Promise<void> => {
      const width = tileWidthAt(0, index, published);
      if (width === 0) return;
      report.bundlesChecked++;
      const disk = await storage.readEntryBundle(index);
      let entries: Uint8Array[];
      try {
        entries = disk ? decodeEntryBundle(disk) : [];
      } catch {
        return error(`entry bundle ${index}: malformed`);
      }
      if (entries.length < width) return error(`entry bundle ${index}: holds ${entries.length} entries, the published tree needs ${width}`);
      for (let i = 0; i < width; i++)
        if (!bytesEqual(entries[i]!, bodies[i]!))
          return error(`entry bundle ${index}: entry ${index * TILE_WIDTH + i} differs from the database`);
    };

    const tree = new TileHashTree(async () => undefined, { cacheTiles: 64 });
    let cpIdx = 0;
    const checkCheckpointsAt = async (size: number) => {
      while (cpIdx < checkpoints.length && checkpoints[cpIdx]!.size === size) {
        const cp = checkpoints[cpIdx++]!;
        report.checkpointsChecked++;
        const root = await tree.root(size);
        if (!bytesEqual(root, cp.rootHash))
          error(
            `checkpoint ${size}: stored root ${toHex(cp.rootHash).slice(0, 16)}… differs from the recomputed ${toHex(root).slice(0, 16)}…`,
          );
        try {
          const signed: { size: number; rootHash: Uint8Array }[] = [verifyCheckpointNote(cp.note, identity.origin, key)];
          if (opts.verifyExtra) signed.push(opts.verifyExtra(cp, identity, key));
          for (const c of signed)
            if (c.size !== size || !bytesEqual(c.rootHash, root)) error(`checkpoint ${size}: signed note does not match the tree`);
        } catch (e) {
          error(`checkpoint ${size}: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
      while (cpIdx < checkpoints.length && checkpoints[cpIdx]!.size < size)
        error(`checkpoint size ${checkpoints[cpIdx++]!.size} was skipped`);
    };
    await checkCheckpointsAt(0);
    let bundle: Uint8Array[] = [];
    let pos = 0;
    while (pos < committed) {
      // Chunks end at checkpoint sizes so each stored root is checked at its exact size.
      const nextCp = checkpoints.find((c) => c.size > pos)?.size ?? Infinity;
      const end = Math.min(pos + CHUNK, committed, nextCp);
      const rows = await storage.readEntries(pos, end);
      if (rows.length !== end - pos) {
        error(`entries ${pos}..${end - 1}: ${end - pos - rows.length} missing`);
        break;
      }
      const hashes: Uint8Array[] = [];
      for (const r of rows) {
        if (r.index !== pos + hashes.length) error(`entry ${pos + hashes.length}: index gap`);
        if (!bytesEqual(leafHash(r.body), r.leafHash)) error(`entry ${r.index}: body does not match its leaf hash`);
        hashes.push(leafHash(r.body));
        bundle.push(r.body);
        if (bundle.length === TILE_WIDTH) {
          await checkBundle(Math.floor(r.index / TILE_WIDTH), bundle);
          bundle = [];
        }
      }
      for (const w of tree.append(hashes)) if (w.data.length === TILE_WIDTH * HASH_SIZE) await checkTile(w);
      pos = end;
      await checkCheckpointsAt(pos);
    }
    // The partial edge tiles and bundle of the final tree.
    for (let level = 0; ; level++) {
      const nodes = Math.floor(committed / 2 ** (8 * level));
      if (nodes === 0) break;
      const index = Math.floor(nodes / TILE_WIDTH);
      const data = tree.tileAt({ level, index, width: nodes % TILE_WIDTH });
      if (data && data.length > 0) await checkTile({ level, index, data });
    }
    if (bundle.length > 0) await checkBundle(Math.floor(committed / TILE_WIDTH), bundle);
    if (cpIdx < checkpoints.length) error(`${checkpoints.length - cpIdx} checkpoints are beyond the committed entries`);

    // The served checkpoint file should be the newest stored checkpoint.
    const latest = checkpoints.at(-1);
    if (latest) {
      let file: string | undefined;
      try {
        file = await readFile(join(dataDir, 'checkpoint'), 'utf8');
      } catch {
        file = undefined;
      }
      if (file !== latest.note) report.warnings.push('the checkpoint file is missing or stale; the log rewrites it when it next starts');
    }
  } catch (e) {
    if (!(e instanceof WaxsealError)) throw e;
    error(e.message);
  } finally {
    await storage.close();
  }
  report.ok = report.errors.length === 0;
  return report;
}
