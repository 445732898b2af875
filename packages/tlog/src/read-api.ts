// The C2SP tlog-tiles read API over a TransparencyLog: checkpoint, hash tiles and entry bundles,
// served with the caching rules the spec suggests (full tiles are immutable forever).
import { WaxsealError } from '@waxseal/core';
import type { Router, Response } from '@waxseal/server';
import { ENTRIES_LEVEL, HASH_SIZE, TILE_WIDTH, parseTilePath, tileWidthAt } from './tiles.ts';
import type { TransparencyLog } from './log.ts';

export const CACHE_IMMUTABLE = 'public, max-age=31536000, immutable';
export const CACHE_PARTIAL = 'public, max-age=60';
export const CACHE_CHECKPOINT = 'no-cache';

/** Byte length of the first `width` entries of an entry bundle, or -1 when it has fewer. */
function bundlePrefix(data: Uint8Array, width: number): number {
  let o = 0;
  for (let i = 0; i < width; i++) {
    if (o + 2 > data.length) return -1;
    o += 2 + ((data[o]! << 8) | data[o + 1]!);
    if (o > data.length) return -1;
  }
  return o;
}

export async function readTileResource(log: TransparencyLog, rest: string): Promise<Response> {
  const t = parseTilePath(rest);
  // Only what the published checkpoint covers is served.
  const publishedWidth = tileWidthAt(t.level === ENTRIES_LEVEL ? 0 : t.level, t.index, log.checkpoint.size);
  if (publishedWidth < t.width) {
    throw new WaxsealError('ERR_NOT_FOUND', 'no such tile in the published tree');
  }
  const cache = t.width === TILE_WIDTH ? CACHE_IMMUTABLE : CACHE_PARTIAL;
  let body: Uint8Array | undefined;
  if (t.level === ENTRIES_LEVEL) {
    const data = await log.storage.readEntryBundle(t.index);
    const end = data ? bundlePrefix(data, t.width) : -1;
    if (!data || end < 0) throw new WaxsealError('ERR_NOT_FOUND', 'entry bundle not found');
    body = data.subarray(0, end);
  } else {
    const data = await log.storage.readTile(t.level, t.index);
    if (!data || data.length < t.width * HASH_SIZE) throw new WaxsealError('ERR_NOT_FOUND', 'tile not found');
    body = data.subarray(0, t.width * HASH_SIZE);
  }
  return { status: 200, headers: { 'content-type': 'application/octet-stream', 'cache-control': cache }, body };
}

/** Mounts GET <prefix>/checkpoint and GET <prefix>/tile/... */
export function mountTileReadApi(router: Router, log: TransparencyLog, prefix = ''): void {
  router.get(`${prefix}/checkpoint`, () => ({
    status: 200,
    headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': CACHE_CHECKPOINT },
    body: log.checkpoint.note,
  }));
  router.get(`${prefix}/tile/*`, (req) => readTileResource(log, req.params['*'] ?? ''));
}
