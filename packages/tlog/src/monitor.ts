// A log monitor: follows the checkpoint of a tlog-tiles log, verifies each new checkpoint's
// signature and its consistency with the last verified one (from tiles), keeps the last verified
// checkpoint in a state file, and reports new entries that match watched identities or digests.
// A fork, a rollback or tiles that disagree with the signed checkpoint end it with ok=false.
import { readFileSync, writeFileSync, renameSync, existsSync } from 'node:fs';
import {
  WaxsealError,
  bytesEqual,
  fromBase64,
  toBase64,
  toHex,
  publicKeyFromSpki,
  decodePem,
  leafHash,
  verifyConsistency,
  parseCheckpoint,
  parseSignedNote,
  type PublicKeyInfo,
} from '@waxseal/core';
import { verifyCheckpointNote } from './checkpoint.ts';
import { TileClient, defaultFetcher, type Fetcher } from './client.ts';
import { TILE_WIDTH } from './tiles.ts';

export interface DescribedEntry {
  kind: string;
  apiVersion: string;
  digests: string[];
  identities: string[];
}

export interface MonitorOptions {
  /** Base URL of the log's tlog-tiles API (where /checkpoint and /tile/ are served). */
  url: string;
  /** The log key: PEM text or DER SPKI. Falls back to the state file, then to `keyUrl` (trust on first use). */
  publicKey?: string | Uint8Array;
  /** Where to fetch the key (PEM) on first use (the Rekor personality: `<url>/api/v1/log/publicKey`). */
  keyUrl?: string;
  /** Expected checkpoint origin. Falls back to the state file, then to the first checkpoint seen. */
  origin?: string;
  /** JSON file holding the last verified checkpoint (created when missing). */
  stateFile?: string;
  /** Regular expressions matched against certificate SANs and e-mails of new entries. */
  watchIdentities?: readonly (string | RegExp)[];
  /** Artifact digests to report: "<alg>:<hex>" or bare hex (SHA-256/384/512 by length). */
  watchDigests?: readonly string[];
  /** One pass and return (otherwise poll until an inconsistency or `signal`). */
  once?: boolean;
  intervalMs?: number;
  signal?: AbortSignal;
  fetcher?: Fetcher;
  /** Turns an entry body into digests and identities (the personality's describer; none: no matching). */
  describe?: (body: Uint8Array) => DescribedEntry;
  /** Called after every pass. */
  onPass?: (pass: MonitorPass) => void;
}

export interface MonitorMatch {
  index: number;
  kind: string;
  apiVersion: string;
  digests: string[];
  identities: string[];
  /** What matched: "identity:<value>" or "digest:<value>". */
  reasons: string[];
}

export interface MonitorPass {
  ok: boolean;
  /** True when the log contradicted a checkpoint it signed earlier (fork/rollback) or its own tiles. */
  inconsistent: boolean;
  size: number;
  previousSize: number;
  rootHash: string;
  newEntries: number;
  matches: MonitorMatch[];
  warnings: string[];
  error?: string;
}

export interface MonitorState {
  origin: string;
  publicKey: string;
  size: number;
  rootHash: string;
  checkpoint: string;
  updatedAt: string;
}

export interface MonitorResult extends MonitorPass {
  passes: number;
  /** Matches of every pass. */
  allMatches: MonitorMatch[];
}

function loadState(file: string | undefined): MonitorState | undefined {
  if (!file || !existsSync(file)) return undefined;
  try {
    const s = JSON.parse(readFileSync(file, 'utf8')) as MonitorState;
    if (typeof s.size !== 'number' || typeof s.rootHash !== 'string' || typeof s.publicKey !== 'string') throw new Error('bad fields');
    return s;
  } catch (e) {
    throw new WaxsealError('ERR_CONFIG', `monitor state file ${file} is unreadable: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function saveState(file: string, s: MonitorState): void {
  writeFileSync(`${file}.tmp`, `${JSON.stringify(s, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
}

function keyFrom(v: string | Uint8Array): PublicKeyInfo {
  if (typeof v === 'string') return publicKeyFromSpki(decodePem(v, ['PUBLIC KEY']).der);
  return publicKeyFromSpki(v);
}

const DIGEST_ALG: Record<number, string> = { 64: 'sha256', 96: 'sha384', 128: 'sha512' };

function normaliseDigest(d: string): string {
  const s = d.trim().toLowerCase();
  if (s.includes(':')) return s;
  const alg = DIGEST_ALG[s.length];
  if (!alg || !/^[0-9a-f]+$/.test(s))
    throw new WaxsealError('ERR_INVALID_INPUT', `watched digest ${JSON.stringify(d)} is not a SHA-256/384/512 hex digest`);
  return `${alg}:${s}`;
}

async function onePass(opts: MonitorOptions, client: TileClient, fetcher: Fetcher): Promise<MonitorPass> {
  const state = loadState(opts.stateFile);
  const warnings: string[] = [];
  const pass: MonitorPass = {
    ok: false,
    inconsistent: false,
    size: 0,
    previousSize: state?.size ?? 0,
    rootHash: '',
    newEntries: 0,
    matches: [],
    warnings,
  };
  // The log key and origin: configuration, then state, then first use.
  let key: PublicKeyInfo;
  if (opts.publicKey !== undefined) key = keyFrom(opts.publicKey);
  else if (state) key = publicKeyFromSpki(fromBase64(state.publicKey));
  else {
    const keyUrl = opts.keyUrl;
    if (!keyUrl) throw new WaxsealError('ERR_CONFIG', 'the monitor needs the log key (publicKey), a state file or a keyUrl');
    const r = await fetcher(keyUrl);
    if (r.status !== 200) throw new WaxsealError('ERR_UNAVAILABLE', `cannot fetch the log key from ${keyUrl}: HTTP ${r.status}`);
    key = keyFrom(Buffer.from(r.body).toString('utf8'));
    warnings.push(`trusting the log key fetched from ${keyUrl} on first use`);
  }
  if (state && state.publicKey !== toBase64(key.spki))
    throw new WaxsealError('ERR_CONFIG', 'the configured log key differs from the one in the monitor state');
  const note = await client.checkpoint();
  const origin = opts.origin ?? state?.origin ?? parseCheckpoint(parseSignedNote(note).text).origin;
  const cp = verifyCheckpointNote(note, origin, key);
  pass.size = cp.size;
  pass.rootHash = toHex(cp.rootHash);
  const prevSize = state?.size ?? 0;
  const prevRoot = state ? fromBase64(state.rootHash) : undefined;
  const inconsistent = (why: string): MonitorPass => ({ ...pass, inconsistent: true, error: why });
  if (cp.size < prevSize)
    return inconsistent(`log shrank from ${prevSize} to ${cp.size} entries: the log is inconsistent with the checkpoint it signed earlier`);
  if (cp.size === prevSize && prevRoot && !bytesEqual(prevRoot, cp.rootHash))
    return inconsistent(`two different signed roots for size ${cp.size}: the log has forked`);
  if (cp.size > 0) {
    const tree = await client.tree(cp.size);
    const root = await tree.root();
    if (!bytesEqual(root, cp.rootHash)) return inconsistent(`tiles served for size ${cp.size} do not match the signed checkpoint root`);
    if (prevRoot && prevSize > 0 && prevSize < cp.size) {
      const proof = await tree.consistencyProof(prevSize, cp.size);
      if (!verifyConsistency(prevSize, cp.size, prevRoot, cp.rootHash, proof)) {
        return inconsistent(
          `checkpoint ${cp.size} is not consistent with the verified checkpoint ${prevSize}: the log has forked or rewritten history`,
        );
      }
    }
    // New entries: authenticated through the level-0 tiles, then described and matched.
    const ids = (opts.watchIdentities ?? []).map((r) => (typeof r === 'string' ? new RegExp(r) : r));
    const digests = new Set((opts.watchDigests ?? []).map(normaliseDigest));
    const watching = ids.length > 0 || digests.size > 0;
    pass.newEntries = cp.size - prevSize;
    if (watching && opts.describe) {
      for (let b = Math.floor(prevSize / TILE_WIDTH); b * TILE_WIDTH < cp.size; b++) {
        const entries = await client.entryBundle(b, cp.size);
        const first = b * TILE_WIDTH;
        const hashes = await tree.leafHashes(first, first + entries.length);
        for (let i = 0; i < entries.length; i++) {
          const index = first + i;
          if (index < prevSize) continue;
          if (!bytesEqual(leafHash(entries[i]!), hashes[i]!))
            return inconsistent(`entry ${index} in the entry bundle does not match the tree`);
          const d = opts.describe(entries[i]!);
          const reasons = [
            ...d.identities.filter((v) => ids.some((r) => r.test(v))).map((v) => `identity:${v}`),
            ...d.digests.filter((v) => digests.has(v)).map((v) => `digest:${v}`),
          ];
          if (reasons.length > 0)
            pass.matches.push({ index, kind: d.kind, apiVersion: d.apiVersion, digests: d.digests, identities: d.identities, reasons });
        }
      }
    }
  }
  if (opts.stateFile) {
    saveState(opts.stateFile, {
      origin,
      publicKey: toBase64(key.spki),
      size: cp.size,
      rootHash: toBase64(cp.rootHash),
      checkpoint: note,
      updatedAt: new Date().toISOString(),
    });
  }
  pass.ok = true;
  return pass;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });
}

/**
 * Runs the monitor. With `once`, one pass; otherwise passes every `intervalMs` (default 10 s)
 * until an inconsistency or `signal`. Network errors end a pass with ok=false but are not
 * inconsistencies; a polling monitor retries them.
 */
export async function runMonitor(opts: MonitorOptions): Promise<MonitorResult> {
  const fetcher = opts.fetcher ?? defaultFetcher;
  const client = new TileClient(opts.url, fetcher);
  const all: MonitorMatch[] = [];
  let passes = 0;
  let last: MonitorPass;
  for (;;) {
    try {
      last = await onePass(opts, client, fetcher);
    } catch (e) {
      const inconsistent = e instanceof WaxsealError && (e.code === 'ERR_VERIFY_TLOG' || e.code === 'ERR_LOG_INCONSISTENT');
      last = {
        ok: false,
        inconsistent,
        size: 0,
        previousSize: 0,
        rootHash: '',
        newEntries: 0,
        matches: [],
        warnings: [],
        error: e instanceof Error ? e.message : String(e),
      };
    }
    passes++;
    all.push(...last.matches);
    opts.onPass?.(last);
    if (opts.once || last.inconsistent || opts.signal?.aborted) break;
    if (!last.ok && last.error && /state file|differs from the one/.test(last.error)) break;
    await sleep(opts.intervalMs ?? 10_000, opts.signal);
    if (opts.signal?.aborted) break;
  }
  return { ...last, passes, allMatches: all };
}
