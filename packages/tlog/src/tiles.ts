// C2SP tlog-tiles codecs and tile arithmetic (https://c2sp.org/tlog-tiles). Pure functions.
//
//   tile/<L>/<N>[.p/<W>]        Merkle tile: W (1..256) 32-byte hashes at tree height 8*L
//   tile/entries/<N>[.p/<W>]    entry bundle: W entries, each a big-endian uint16 length + bytes
//
// <N> is written in 3-digit groups, every group but the last prefixed with "x":
// 1234067 -> x001/x234/067.
import { WaxsealError } from '@waxseal/core';

export const TILE_HEIGHT = 8;
export const TILE_WIDTH = 256;
export const HASH_SIZE = 32;
/** Largest entry an entry bundle can carry (uint16 length prefix). */
export const MAX_ENTRY_SIZE = 0xffff;
/** Deepest tile level a tree of < 2^63 leaves can need. */
export const MAX_TILE_LEVEL = 63;

export interface TileCoord {
  /** Tile level (0 = leaf hashes), or -1 for an entry bundle. */
  level: number;
  index: number;
  /** Number of hashes/entries; 256 for a full tile. */
  width: number;
}

export const ENTRIES_LEVEL = -1;

/** The "x001/x234/067" form of a tile index. */
export function encodeTileIndex(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new TypeError(`bad tile index ${n}`);
  let s = String(n % 1000).padStart(3, '0');
  n = Math.floor(n / 1000);
  while (n > 0) {
    s = `x${String(n % 1000).padStart(3, '0')}/${s}`;
    n = Math.floor(n / 1000);
  }
  return s;
}

/** Path of a tile relative to the log's base URL (no leading slash). */
export function tilePath(t: TileCoord): string {
  const lvl = t.level === ENTRIES_LEVEL ? 'entries' : String(t.level);
  const base = `tile/${lvl}/${encodeTileIndex(t.index)}`;
  return t.width === TILE_WIDTH ? base : `${base}.p/${t.width}`;
}

function bad(message: string): never {
  throw new WaxsealError('ERR_NOT_FOUND', `tile path: ${message}`);
}

/**
 * Parses the part of a tile URL after "tile/" (e.g. "0/x001/234.p/5", "entries/000").
 * Strict: no leading zeros beyond the 3-digit groups, no empty groups, groups 000-999 only.
 * Throws ERR_NOT_FOUND for anything that is not a well-formed tile path.
 */
export function parseTilePath(rest: string): TileCoord {
  if (typeof rest !== 'string' || rest.length > 200) bad('too long');
  const parts = rest.split('/');
  const lvlStr = parts.shift();
  let level: number;
  if (lvlStr === 'entries') level = ENTRIES_LEVEL;
  else if (lvlStr !== undefined && /^(0|[1-9]\d?)$/.test(lvlStr) && Number(lvlStr) <= MAX_TILE_LEVEL) level = Number(lvlStr);
  else bad('bad level');
  let width = TILE_WIDTH;
  // A partial tile ends in "<last group>.p/<W>".
  if (parts.length >= 2 && parts[parts.length - 2]!.endsWith('.p')) {
    const w = parts.pop()!;
    if (!/^[1-9]\d{0,2}$/.test(w) || Number(w) >= TILE_WIDTH) bad('bad partial width');
    width = Number(w);
    parts[parts.length - 1] = parts[parts.length - 1]!.slice(0, -2);
  }
  if (parts.length === 0 || parts.length > 7) bad('bad index');
  let index = 0;
  parts.forEach((p, i) => {
    const last = i === parts.length - 1;
    const m = last ? /^(\d{3})$/.exec(p) : /^x(\d{3})$/.exec(p);
    if (!m) bad('bad index group');
    index = index * 1000 + Number(m[1]);
  });
  if (!Number.isSafeInteger(index)) bad('index too large');
  // Reject non-canonical encodings such as "x000/001" (the canonical form is "001").
  if (parts.length > 1 && parts[0] === 'x000') bad('non-canonical index');
  return { level, index, width };
}

/** Encodes entries as a C2SP entry bundle (uint16 big-endian length prefixes). */
export function encodeEntryBundle(entries: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const e of entries) {
    if (e.length > MAX_ENTRY_SIZE)
      throw new WaxsealError('ERR_INVALID_INPUT', `entry of ${e.length} bytes is too large for an entry bundle`);
    n += 2 + e.length;
  }
  const out = new Uint8Array(n);
  let o = 0;
  for (const e of entries) {
    out[o] = e.length >> 8;
    out[o + 1] = e.length & 0xff;
    out.set(e, o + 2);
    o += 2 + e.length;
  }
  return out;
}

/** Splits an entry bundle; throws ERR_INVALID_INPUT on truncation. */
export function decodeEntryBundle(data: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let o = 0;
  while (o < data.length) {
    if (o + 2 > data.length) throw new WaxsealError('ERR_INVALID_INPUT', 'entry bundle: truncated length');
    const len = (data[o]! << 8) | data[o + 1]!;
    o += 2;
    if (o + len > data.length) throw new WaxsealError('ERR_INVALID_INPUT', 'entry bundle: truncated entry');
    out.push(data.subarray(o, o + len));
    o += len;
    if (out.length > TILE_WIDTH) throw new WaxsealError('ERR_INVALID_INPUT', 'entry bundle: more than 256 entries');
  }
  return out;
}

/** Number of hashes tile (level, index) holds in a tree of `size` leaves (0 when it does not exist). */
export function tileWidthAt(level: number, index: number, size: number): number {
  const nodesAtLevel = Math.floor(size / 2 ** (TILE_HEIGHT * level));
  const w = nodesAtLevel - index * TILE_WIDTH;
  return w <= 0 ? 0 : Math.min(w, TILE_WIDTH);
}

/** Width of entry bundle `index` in a tree of `size` leaves. */
export function bundleWidthAt(index: number, size: number): number {
  return tileWidthAt(0, index, size);
}

/** Every tile (the newest version of each) that a tree of `size` leaves consists of. */
export function* tilesForSize(size: number): Generator<TileCoord> {
  for (let level = 0; ; level++) {
    const nodes = Math.floor(size / 2 ** (TILE_HEIGHT * level));
    if (nodes === 0) return;
    const count = Math.ceil(nodes / TILE_WIDTH);
    for (let index = 0; index < count; index++) yield { level, index, width: tileWidthAt(level, index, size) };
  }
}
