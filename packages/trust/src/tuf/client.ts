// Loads Sigstore trust material (trusted_root.json, signing_config) from a TUF mirror through a
// real TUF client (tuf-js, the one sigstore-js uses): root rotation, rollback, freeze and
// mix-and-match protection all come from the TUF client workflow, not from us.
import { mkdir, readFile, writeFile, access } from 'node:fs/promises';
import { join } from 'node:path';
import { Updater } from 'tuf-js';
import { WaxsealError, parseJsonBounded, type ErrorCode } from '@waxseal/core';
import { parseMetadata } from './metadata.ts';

/** Target names, as public-good Sigstore publishes them. */
export const TRUSTED_ROOT_TARGET = 'trusted_root.json';
export const SIGNING_CONFIG_TARGETS = ['signing_config.v0.2.json', 'signing_config.json'] as const;

export interface LoadTrustFromTufOptions {
  /** Base URL of the TUF repository (metadata at `<mirrorUrl>/N.root.json`, targets under `<mirrorUrl>/targets/`). */
  mirrorUrl: string;
  /** The root.json the client trusts on first use (bytes), distributed out of band. */
  initialRoot: Uint8Array;
  /** Where verified metadata and targets are cached (one subdirectory per mirror). */
  cacheDir: string;
  /** Replace a cached root with `initialRoot` (default false: a cached, newer root is kept). */
  forceInit?: boolean;
  /** Per-request timeout in ms (default 10 000). */
  timeoutMs?: number;
  /** Retries on network errors (default 1). */
  retries?: number;
}

export interface TufTrust {
  /** Verified bytes of trusted_root.json. */
  trustedRoot: Uint8Array;
  /** Verified bytes of the signing config, when the repository publishes one. */
  signingConfig?: Uint8Array;
  /** Which signing config target was used. */
  signingConfigTarget?: string;
  /** Version of the root the client ended up trusting (after any rotations). */
  rootVersion: number;
}

function describe(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const cause = e.cause instanceof Error && !e.message.includes(e.cause.message) ? ` (${e.cause.message})` : '';
  return `${e.name === 'Error' ? '' : `${e.name}: `}${e.message}${cause}`;
}

function isNetworkError(e: unknown): boolean {
  for (let x: unknown = e; x instanceof Error; x = x.cause) {
    if (x.name === 'DownloadHTTPError' || x.name === 'DownloadError' || x.name === 'AbortError' || x.name === 'TimeoutError') return true;
    if (x instanceof TypeError && /fetch failed/.test(x.message)) return true;
  }
  return false;
}

function tufFailure(mirror: string, e: unknown, code: ErrorCode = isNetworkError(e) ? 'ERR_UNAVAILABLE' : 'ERR_TUF'): WaxsealError {
  if (e instanceof WaxsealError) return e;
  return new WaxsealError(code, `TUF update from ${mirror} failed: ${describe(e)}`, { cause: e });
}

function checkMediaType(bytes: Uint8Array, prefix: string, code: ErrorCode, what: string): void {
  let doc: unknown;
  try {
    doc = parseJsonBounded(bytes, { maxBytes: bytes.length });
  } catch {
    throw new WaxsealError(code, `${what} from TUF is not valid JSON`);
  }
  const mt = (doc as { mediaType?: unknown } | null)?.mediaType;
  if (typeof mt !== 'string' || !mt.startsWith(prefix))
    throw new WaxsealError(code, `${what} from TUF has media type ${JSON.stringify(mt)}`);
}

/**
 * Refreshes TUF metadata from `mirrorUrl` starting from the cached (or initial) root and returns
 * the verified trust documents. Verification failures are ERR_TUF; an unreachable mirror is
 * ERR_UNAVAILABLE.
 */
export async function loadTrustFromTuf(opts: LoadTrustFromTufOptions): Promise<TufTrust> {
  let url: URL;
  try {
    url = new URL(opts.mirrorUrl);
  } catch {
    throw new WaxsealError('ERR_CONFIG', `invalid TUF mirror URL ${JSON.stringify(opts.mirrorUrl)}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new WaxsealError('ERR_CONFIG', 'TUF mirror URL must be http(s)');
  const mirror = opts.mirrorUrl.replace(/\/+$/, '');
  // The initial root must at least be root metadata; tuf-js verifies its self-signature.
  parseMetadata(opts.initialRoot, 'root');
  const metadataDir = join(opts.cacheDir, encodeURIComponent(url.host + url.pathname.replace(/\/+$/, '')));
  const targetDir = join(metadataDir, 'targets');
  try {
    await mkdir(targetDir, { recursive: true });
    const rootPath = join(metadataDir, 'root.json');
    const cached = await access(rootPath).then(
      () => true,
      () => false,
    );
    if (!cached || opts.forceInit) await writeFile(rootPath, opts.initialRoot);
  } catch (e) {
    throw new WaxsealError('ERR_IO', `cannot prepare TUF cache in ${opts.cacheDir}`, { cause: e });
  }

  let updater: Updater;
  try {
    updater = new Updater({
      metadataBaseUrl: mirror,
      targetBaseUrl: `${mirror}/targets`,
      metadataDir,
      targetDir,
      config: { fetchTimeout: opts.timeoutMs ?? 10_000, fetchRetry: opts.retries ?? 1, userAgent: 'waxseal' },
    });
    await updater.refresh();
  } catch (e) {
    throw tufFailure(mirror, e);
  }

  const fetchTarget = async (name: string): Promise<Uint8Array | undefined> => {
    try {
      const info = await updater.getTargetInfo(name);
      if (!info) return undefined;
      const path = (await updater.findCachedTarget(info)) ?? (await updater.downloadTarget(info));
      return new Uint8Array(await readFile(path));
    } catch (e) {
      throw tufFailure(mirror, e, isNetworkError(e) && !/LengthOrHashMismatch/.test(describe(e)) ? 'ERR_UNAVAILABLE' : 'ERR_TUF');
    }
  };

  const trustedRoot = await fetchTarget(TRUSTED_ROOT_TARGET);
  if (!trustedRoot) throw new WaxsealError('ERR_TUF', `TUF repository ${mirror} has no ${TRUSTED_ROOT_TARGET} target`);
  checkMediaType(trustedRoot, 'application/vnd.dev.sigstore.trustedroot', 'ERR_TRUSTED_ROOT_INVALID', TRUSTED_ROOT_TARGET);
  // tuf-js persists every root it accepts, so the cached root.json is the one now trusted.
  const rootVersion = parseMetadata(new Uint8Array(await readFile(join(metadataDir, 'root.json'))), 'root').signed.version;
  const out: TufTrust = { trustedRoot, rootVersion };
  for (const name of SIGNING_CONFIG_TARGETS) {
    const sc = await fetchTarget(name);
    if (sc) {
      checkMediaType(sc, 'application/vnd.dev.sigstore.signingconfig', 'ERR_SIGNING_CONFIG_INVALID', name);
      out.signingConfig = sc;
      out.signingConfigTarget = name;
      break;
    }
  }
  return out;
}
