// A tlog-tiles reader over HTTP: fetches the checkpoint and the tiles a tree size needs, and
// builds roots and proofs from them (what a monitor or a witness does, Tessera's ProofBuilder).
// Tiles are never trusted on their own: roots computed from them are compared with a verified
// checkpoint by the caller.
import { WaxsealError } from '@waxseal/core';
import { TileHashTree } from './tree.ts';
import { ENTRIES_LEVEL, HASH_SIZE, decodeEntryBundle, tilePath, tileWidthAt } from './tiles.ts';

export type Fetcher = (url: string) => Promise<{ status: number; body: Uint8Array }>;

export const defaultFetcher: Fetcher = async (url) => {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  } catch (e) {
    throw new WaxsealError('ERR_UNAVAILABLE', `cannot fetch ${url}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  return { status: res.status, body: new Uint8Array(await res.arrayBuffer()) };
};

export class TileClient {
  readonly baseUrl: string;
  readonly #fetch: Fetcher;

  constructor(baseUrl: string, fetcher: Fetcher = defaultFetcher) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.#fetch = fetcher;
  }

  async #get(path: string): Promise<Uint8Array> {
    const r = await this.#fetch(`${this.baseUrl}/${path}`);
    if (r.status !== 200) throw new WaxsealError('ERR_UNAVAILABLE', `GET ${path}: HTTP ${r.status}`);
    return r.body;
  }

  async checkpoint(): Promise<string> {
    return Buffer.from(await this.#get('checkpoint')).toString('utf8');
  }

  /** A tree positioned at `size`, reading tiles of exactly the widths that size implies. */
  async tree(size: number): Promise<TileHashTree> {
    const tree = new TileHashTree(
      async (level, index) => {
        const width = tileWidthAt(level, index, size);
        if (width === 0) return undefined;
        const data = await this.#get(tilePath({ level, index, width }));
        if (data.length !== width * HASH_SIZE)
          throw new WaxsealError('ERR_LOG_INCONSISTENT', `tile ${level}/${index} has ${data.length} bytes, expected ${width * HASH_SIZE}`);
        return data;
      },
      { cacheTiles: 256 },
    );
    await tree.load(size);
    return tree;
  }

  /** Entries of bundle `index` in a tree of `size` leaves. */
  async entryBundle(index: number, size: number): Promise<Uint8Array[]> {
    const width = tileWidthAt(0, index, size);
    const entries = decodeEntryBundle(await this.#get(tilePath({ level: ENTRIES_LEVEL, index, width })));
    if (entries.length !== width)
      throw new WaxsealError('ERR_LOG_INCONSISTENT', `entry bundle ${index} has ${entries.length} entries, expected ${width}`);
    return entries;
  }
}
