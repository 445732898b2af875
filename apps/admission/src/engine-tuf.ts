// Trust for TrustRoots whose trusted root comes through TUF:
//   - `remote` (a TUF repository to follow): read through a real TUF client (@waxseal/trust,
//     tuf-js) from the mirror, starting from the TrustRoot's pinned root.json, cached on disk per
//     mirror;
//   - `repository` (air-gapped: `mirrorFS` is a gzipped tar of the TUF repository): unpacked in
//     memory (engine-tar.ts) and verified by the same TUF client workflow (tuf-js's Updater, with a
//     fetcher that reads the unpacked files instead of the network) from the TrustRoot's root.json,
//     as policy-controller's ClientFromSerializedMirror does: root rotations, signatures,
//     thresholds, versions, expiry and target hashes are all checked; nothing is fetched from the
//     network and nothing is kept between loads (metadata goes to a scratch folder, removed after).
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BaseFetcher, Updater } from 'tuf-js';
import { DownloadHTTPError } from 'tuf-js/dist/error.js';
import { WaxsealError } from '@waxseal/core';
import { parseTrustedRootJson, type TrustedRoot } from '@waxseal/bundle';
import type { TrustRoot } from '@waxseal/policy';
import { loadTrustFromTuf } from '@waxseal/trust';
import { readMirrorFs, type TarLimits } from './engine-tar.ts';

export interface TufLoaderOptions {
  /** Where TUF metadata and targets are cached (one folder per TrustRoot). */
  cacheDir: string;
  /** Per-request timeout (default 10 s). */
  timeoutMs?: number;
  /** Bounds on an air-gapped repository's tarball. */
  mirrorFsLimits?: TarLimits;
}

const TRUSTED_ROOT_TARGET = 'trusted_root.json';
/** policy-controller's DefaultTUFRepoPrefix: the folder the tarball holds the repository under. */
const REPOSITORY_PREFIX = 'repository/';

/** Serves TUF downloads from the unpacked files of a mirrorFS (404 for what is not there). */
class MemoryFetcher extends BaseFetcher {
  readonly #files: Map<string, Uint8Array>;
  readonly #base: string;
  constructor(files: Map<string, Uint8Array>, base: string) {
    super();
    this.#files = files;
    this.#base = base;
  }
  override async fetch(url: string): Promise<ReadableStream<Uint8Array<ArrayBuffer>>> {
    const path = url.startsWith(this.#base) ? decodeURIComponent(url.slice(this.#base.length)) : undefined;
    const data = path === undefined ? undefined : this.#files.get(path);
    // tuf-js takes a 404 on N.root.json as "no newer root" and any other as missing metadata.
    if (!data) throw new DownloadHTTPError(`${path ?? url} is not in the repository`, 404);
    const copy = new Uint8Array(data);
    return new ReadableStream({
      start(c) {
        c.enqueue(copy);
        c.close();
      },
    });
  }
}

function tufError(e: unknown): WaxsealError {
  if (e instanceof WaxsealError) return e;
  const msg = e instanceof Error ? `${e.name === 'Error' ? '' : `${e.name}: `}${e.message}` : String(e);
  return new WaxsealError('ERR_TUF', `the air-gapped TUF repository (mirrorFS) failed verification: ${msg}`, {
    cause: e,
    check: 'trustroot.repository',
  });
}

/**
 * The trusted root of an air-gapped TrustRoot (`spec.repository`): the TUF repository in
 * `mirrorFS`, verified from `root`; metadata at the top of the repository, targets under
 * `targets` (default "targets"), the trusted root in `trustedRootTarget` (default
 * trusted_root.json). `scratchDir` holds tuf-js's metadata files during the load.
 */
export async function loadRepositoryTrustRoot(tr: TrustRoot, scratchDir: string, limits: TarLimits = {}): Promise<TrustedRoot> {
  const repo = tr.spec.repository;
  if (!repo) throw new WaxsealError('ERR_CONFIG', `TrustRoot ${tr.name} has no spec.repository`);
  const files = await readMirrorFs(repo.mirrorFS, REPOSITORY_PREFIX, limits);
  const targets = (repo.targets || 'targets').replace(/^\/+|\/+$/g, '');
  const target = repo.trustedRootTarget || TRUSTED_ROOT_TARGET;
  const base = `mirrorfs://${encodeURIComponent(tr.name)}/`;
  await mkdir(scratchDir, { recursive: true });
  const dir = await mkdtemp(join(scratchDir, 'mirrorfs-'));
  try {
    await writeFile(join(dir, 'root.json'), repo.root);
    await mkdir(join(dir, 'targets'));
    let bytes: Uint8Array;
    try {
      const updater = new Updater({
        metadataBaseUrl: base,
        targetBaseUrl: `${base}${targets}/`,
        metadataDir: dir,
        targetDir: join(dir, 'targets'),
        fetcher: new MemoryFetcher(files, base),
      });
      await updater.refresh();
      const info = await updater.getTargetInfo(target);
      if (!info) throw new WaxsealError('ERR_TUF', `the air-gapped TUF repository (mirrorFS) has no target ${target}`);
      bytes = new Uint8Array(await readFile(await updater.downloadTarget(info)));
    } catch (e) {
      throw tufError(e);
    }
    try {
      return parseTrustedRootJson(bytes);
    } catch (e) {
      throw new WaxsealError('ERR_TRUSTED_ROOT_INVALID', `TrustRoot ${tr.name}: target ${target}: ${(e as Error).message}`, { cause: e });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** An EngineOptions.loadTrustRoot for TrustRoots with `remote` (followed through TUF) or `repository` (air-gapped). */
export function tufTrustRootLoader(o: TufLoaderOptions): (tr: TrustRoot, signal: AbortSignal) => Promise<TrustedRoot> {
  return async (tr) => {
    if (tr.spec.repository) return loadRepositoryTrustRoot(tr, o.cacheDir, o.mirrorFsLimits);
    const remote = tr.spec.remote;
    if (!remote) throw new WaxsealError('ERR_CONFIG', `TrustRoot ${tr.name} has neither remote nor repository`);
    if (remote.targets && remote.targets !== 'targets') {
      throw new WaxsealError(
        'ERR_CONFIG',
        `TrustRoot ${tr.name}: spec.remote.targets ${JSON.stringify(remote.targets)} is not supported (only "targets")`,
      );
    }
    if (remote.trustedRootTarget && remote.trustedRootTarget !== TRUSTED_ROOT_TARGET) {
      throw new WaxsealError('ERR_CONFIG', `TrustRoot ${tr.name}: spec.remote.trustedRootTarget must be trusted_root.json`);
    }
    // One cache per TrustRoot and pinned root: editing the root starts afresh.
    const id = createHash('sha256').update(tr.name).update('\0').update(remote.root).digest('hex').slice(0, 16);
    const t = await loadTrustFromTuf({
      mirrorUrl: remote.mirror,
      initialRoot: remote.root,
      cacheDir: join(o.cacheDir, `${tr.name}-${id}`),
      timeoutMs: o.timeoutMs ?? 10_000,
    });
    return parseTrustedRootJson(t.trustedRoot);
  };
}
