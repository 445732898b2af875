// A TrustRoot's `spec.repository.mirrorFS`: a gzipped tar of a TUF repository (policy-controller
// writes it with Go's archive/tar under `repository/`). Read in memory, bounded: the compressed
// and uncompressed sizes, the number of entries and every file are capped; a name that climbs out
// of the archive (`..`) refuses the whole archive, as policy-controller's sanitizeArchivePath
// does. Formats: ustar (with its name prefix), PAX extended headers (path, size) and GNU long
// names, which is what Go's and GNU tar write. Links, devices and FIFOs are skipped (only regular
// files are TUF metadata or targets).
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { WaxsealError } from '@waxseal/core';

const gunzipAsync = promisify(gunzip);

export interface TarLimits {
  /** Largest gzipped archive (default 8 MiB: a TrustRoot is a Kubernetes object). */
  maxCompressedBytes?: number;
  /** Largest uncompressed tar stream (default 64 MiB). */
  maxBytes?: number;
  /** Most entries (default 10 000). */
  maxEntries?: number;
}

const BLOCK = 512;

function bad(msg: string): never {
  throw new WaxsealError('ERR_INVALID_INPUT', `mirrorFS: ${msg}`, { check: 'trustroot.repository' });
}

function cString(b: Uint8Array, start: number, len: number): string {
  const field = b.subarray(start, start + len);
  const nul = field.indexOf(0);
  return new TextDecoder('utf-8', { fatal: false }).decode(nul < 0 ? field : field.subarray(0, nul));
}

/** A numeric header field: octal text, or GNU's base-256 (high bit of the first byte set). */
function numeric(b: Uint8Array, start: number, len: number, what: string): number {
  const field = b.subarray(start, start + len);
  if (field[0]! & 0x80) {
    let n = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) {
      n = n * 256 + field[i]!;
      if (n > Number.MAX_SAFE_INTEGER) bad(`${what} is too large`);
    }
    return n;
  }
  const s = cString(b, start, len).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) bad(`${what} ${JSON.stringify(s)} is not an octal number`);
  return Number.parseInt(s, 8);
}

function checksumOk(h: Uint8Array): boolean {
  const want = numeric(h, 148, 8, 'header checksum');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  return sum === want;
}

/** PAX records: "<len> <key>=<value>\n". */
function paxRecords(data: Uint8Array): Map<string, string> {
  const out = new Map<string, string>();
  const text = new TextDecoder().decode(data);
  let i = 0;
  while (i < text.length) {
    const sp = text.indexOf(' ', i);
    if (sp < 0) break;
    const len = Number(text.slice(i, sp));
    if (!Number.isInteger(len) || len <= sp - i || i + len > text.length) bad('malformed PAX header');
    const rec = text.slice(sp + 1, i + len - 1);
    const eq = rec.indexOf('=');
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    i += len;
  }
  return out;
}

/** `a/./b/` -> `a/b`; null when the name climbs out (`..`). Leading `/` and `./` are dropped. */
export function cleanArchivePath(name: string): string | null {
  const parts: string[] = [];
  for (const p of name.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..' || p.includes('\\') || p.includes('\0')) return null;
    parts.push(p);
  }
  return parts.join('/');
}

/**
 * The regular files of a tar stream (not compressed), by cleaned path. Throws ERR_INVALID_INPUT
 * (check 'trustroot.repository') on a malformed header, a bad checksum, a truncated entry or a
 * path that climbs out of the archive.
 */
export function readTar(tar: Uint8Array, maxEntries = 10_000): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  let off = 0;
  let entries = 0;
  let longName: string | undefined;
  let pax = new Map<string, string>();
  while (off + BLOCK <= tar.length) {
    const h = tar.subarray(off, off + BLOCK);
    if (h.every((x) => x === 0)) break; // end of archive
    if (++entries > maxEntries) bad(`more than ${maxEntries} entries`);
    if (!checksumOk(h)) bad(`bad header checksum at offset ${off} (not a tar archive, or corrupted)`);
    const type = String.fromCharCode(h[156]!);
    const size = numeric(h, 124, 12, 'entry size');
    const paxSize = pax.get('size');
    const dataSize = type !== 'x' && type !== 'g' && paxSize !== undefined && /^\d+$/.test(paxSize) ? Number(paxSize) : size;
    const start = off + BLOCK;
    if (start + dataSize > tar.length) bad(`entry at offset ${off} is truncated`);
    const data = tar.subarray(start, start + dataSize);
    off = start + Math.ceil(dataSize / BLOCK) * BLOCK;
    if (type === 'x') {
      pax = paxRecords(data);
      continue;
    }
    if (type === 'g') continue;
    if (type === 'L') {
      longName = cString(data, 0, data.length);
      continue;
    }
    if (type === 'K') continue;
    const magic = cString(h, 257, 6);
    const prefix = magic === 'ustar' && h[262] === 0 ? cString(h, 345, 155) : '';
    let name = cString(h, 0, 100);
    if (prefix) name = `${prefix}/${name}`;
    name = pax.get('path') ?? longName ?? name;
    pax = new Map();
    longName = undefined;
    const clean = cleanArchivePath(name);
    if (clean === null) bad(`entry ${JSON.stringify(name)} is outside the archive (path traversal)`);
    if (type === '0' || type === '\0' || type === '7') {
      if (clean === '') bad('a file entry has no name');
      files.set(clean, data.slice());
    }
    // Directories, links, devices, FIFOs: nothing to keep.
  }
  return files;
}

/**
 * Gunzips and reads `mirrorFS`; returns its regular files with `stripPrefix` (policy-controller's
 * `repository/`) removed from their paths when present.
 */
export async function readMirrorFs(gz: Uint8Array, stripPrefix = 'repository/', limits: TarLimits = {}): Promise<Map<string, Uint8Array>> {
  const maxCompressed = limits.maxCompressedBytes ?? 8 << 20;
  const maxBytes = limits.maxBytes ?? 64 << 20;
  if (gz.length > maxCompressed) bad(`larger than ${maxCompressed} bytes`);
  if (gz.length < 2 || gz[0] !== 0x1f || gz[1] !== 0x8b) bad('not gzip data (expected a base64 tar.gz of the TUF repository)');
  let tar: Uint8Array;
  try {
    tar = new Uint8Array(await gunzipAsync(gz, { maxOutputLength: maxBytes }));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ERR_BUFFER_TOO_LARGE' || e instanceof RangeError) bad(`uncompresses to more than ${maxBytes} bytes`);
    bad(`cannot gunzip: ${(e as Error).message}`);
  }
  const files = readTar(tar, limits.maxEntries);
  const out = new Map<string, Uint8Array>();
  const prefix = stripPrefix.replace(/^\/+|\/+$/g, '');
  const underPrefix = prefix !== '' && [...files.keys()].some((k) => k.startsWith(`${prefix}/`));
  for (const [k, v] of files) {
    if (underPrefix) {
      if (k.startsWith(`${prefix}/`)) out.set(k.slice(prefix.length + 1), v);
    } else out.set(k, v);
  }
  return out;
}
