// Trust for TrustRoots with `remote` (a TUF repository to follow): the trusted root is read
// through a real TUF client (@waxseal/trust, tuf-js) from the mirror, starting from the
// TrustRoot's pinned root.json, cached on disk per mirror. `repository` (an air-gapped TUF
// repository as a tar.gz) is refused with a clear message: not implemented yet.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { WaxsealError } from '@waxseal/core';
import { parseTrustedRootJson, type TrustedRoot } from '@waxseal/bundle';
import type { TrustRoot } from '@waxseal/policy';
import { loadTrustFromTuf } from '@waxseal/trust';

export interface TufLoaderOptions {
  /** Where TUF metadata and targets are cached (one folder per TrustRoot). */
  cacheDir: string;
  /** Per-request timeout (default 10 s). */
  timeoutMs?: number;
}

/** An EngineOptions.loadTrustRoot that follows `remote` TrustRoots through TUF. */
export function tufTrustRootLoader(o: TufLoaderOptions): (tr: TrustRoot, signal: AbortSignal) => Promise<TrustedRoot> {
  return async (tr) => {
    const remote = tr.spec.remote;
    if (!remote) {
      throw new WaxsealError(
        'ERR_CONFIG',
        `TrustRoot ${tr.name}: spec.repository (an air-gapped TUF repository) is not supported yet; use sigstoreKeys or remote`,
      );
    }
    if (remote.targets && remote.targets !== 'targets') {
      throw new WaxsealError(
        'ERR_CONFIG',
        `TrustRoot ${tr.name}: spec.remote.targets ${JSON.stringify(remote.targets)} is not supported (only "targets")`,
      );
    }
    if (remote.trustedRootTarget && remote.trustedRootTarget !== 'trusted_root.json') {
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
