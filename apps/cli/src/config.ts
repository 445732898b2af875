// Where the CLI finds the instance: flags first, then environment (as `waxseal env` prints it),
// then the trust material installed by `waxseal trust init`.
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { WaxsealError } from '@waxseal/core';
import { configDir } from '@waxseal/sign';
import type { SigningConfigJson, ServiceJson } from '@waxseal/trust';

export function readJsonFile<T = unknown>(path: string, what: string): T {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new WaxsealError('ERR_IO', `cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new WaxsealError('ERR_JSON_PARSE', `${what} ${path} is not valid JSON`);
  }
}

export function trustDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(configDir(env), 'trust');
}

/** Path of the trusted root to use: --trusted-root, WAXSEAL_TRUSTED_ROOT / SIGSTORE_TRUSTED_ROOT, or the installed one. */
export function trustedRootPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const p = flag ?? env.WAXSEAL_TRUSTED_ROOT ?? env.SIGSTORE_TRUSTED_ROOT;
  if (p) return p;
  const installed = join(trustDir(env), 'trusted_root.json');
  if (existsSync(installed)) return installed;
  throw new WaxsealError(
    'ERR_CONFIG',
    'no trusted root: pass --trusted-root, set WAXSEAL_TRUSTED_ROOT (see `waxseal env`), or run `waxseal trust init`',
  );
}

function signingConfigPath(flag: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  const p = flag ?? env.WAXSEAL_SIGNING_CONFIG ?? env.SIGSTORE_SIGNING_CONFIG;
  if (p) return p;
  const installed = join(trustDir(env), 'signing_config.json');
  return existsSync(installed) ? installed : undefined;
}

const inWindow = (s: ServiceJson, now: Date) =>
  new Date(s.validFor?.start ?? 0) <= now && (!s.validFor?.end || now <= new Date(s.validFor.end));

/** SigningConfig service selection (protocols.md 5.3): valid now, highest supported API version, newest first. */
export function selectService(list: ServiceJson[] | undefined, versions: number[], now = new Date()): ServiceJson | undefined {
  for (const v of versions) {
    const c = (list ?? [])
      .filter((s) => s.majorApiVersion === v && inWindow(s, now))
      .sort((a, b) => b.validFor.start.localeCompare(a.validFor.start));
    if (c[0]) return c[0];
  }
  return undefined;
}

export interface ResolvedSigning {
  caUrl: string;
  tsaUrl: string;
  oidcUrl: string | undefined;
  rekor: { url: string; majorApiVersion: number } | undefined;
}

export function resolveSigning(
  flags: {
    signingConfig?: string | undefined;
    fulcioUrl?: string | undefined;
    timestampServerUrl?: string | undefined;
    rekorUrl?: string | undefined;
    tlogUpload?: boolean | undefined;
  },
  env: NodeJS.ProcessEnv = process.env,
): ResolvedSigning {
  const path = signingConfigPath(flags.signingConfig, env);
  const sc = path ? readJsonFile<SigningConfigJson>(path, 'signing config') : undefined;
  if (sc && sc.mediaType !== 'application/vnd.dev.sigstore.signingconfig.v0.2+json') {
    throw new WaxsealError('ERR_SIGNING_CONFIG_INVALID', `${path} is not a SigningConfig v0.2 (mediaType ${JSON.stringify(sc.mediaType)})`);
  }
  const caUrl = flags.fulcioUrl ?? env.COSIGN_FULCIO_URL ?? env.SIGSTORE_FULCIO_URL ?? selectService(sc?.caUrls, [1])?.url;
  const tsaUrl =
    flags.timestampServerUrl ??
    env.COSIGN_TIMESTAMP_SERVER_URL ??
    env.SIGSTORE_TIMESTAMP_SERVER_URL ??
    selectService(sc?.tsaUrls, [1])?.url;
  if (!caUrl) throw new WaxsealError('ERR_CONFIG', 'no CA URL: pass --signing-config or --fulcio-url (see `waxseal env`)');
  if (!tsaUrl) throw new WaxsealError('ERR_CONFIG', 'no timestamp authority URL: pass --signing-config or --timestamp-server-url');
  let rekor: ResolvedSigning['rekor'];
  if (flags.tlogUpload !== false) {
    if (flags.rekorUrl) rekor = { url: flags.rekorUrl, majorApiVersion: 1 };
    else {
      const s = selectService(sc?.rekorTlogUrls, [2, 1]);
      if (s) rekor = { url: s.url, majorApiVersion: s.majorApiVersion };
    }
  }
  return { caUrl, tsaUrl, oidcUrl: selectService(sc?.oidcUrls, [1])?.url ?? env.WAXSEAL_OIDC_ISSUER ?? env.SIGSTORE_OIDC_ISSUER, rekor };
}
