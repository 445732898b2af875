// Where the CLI finds the instance: flags first, then environment (as `waxseal env` prints it, and
// cosign's TUF_MIRROR / TUF_ROOT_JSON / TUF_ROOT), then the trust material installed by `waxseal trust init`.
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { WaxsealError } from '@waxseal/core';
import { configDir } from '@waxseal/sign';
import { explicitTrustedRootPath } from './trusted-root-source.ts';
import {
  CLIENT_TRUST_CONFIG_MEDIA_TYPE_V01,
  DEFAULT_SUPPORTED_API_VERSIONS,
  parseClientTrustConfig,
  parseSigningConfig,
  parseSigningConfigJson,
  selectService,
  selectServicesByConfig,
  type Service,
  type SigningConfig,
} from '@waxseal/bundle';

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
  const p = explicitTrustedRootPath(flag, env);
  if (p) return p;
  const installed = join(trustDir(env), 'trusted_root.json');
  if (existsSync(installed)) return installed;
  throw new WaxsealError(
    'ERR_CONFIG',
    'no trusted root: pass --trusted-root, set WAXSEAL_TRUSTED_ROOT (see `waxseal env`), or run `waxseal trust init`',
  );
}

function signingConfigPath(flag: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  const p = explicitSigningConfigPath(flag, env);
  if (p) return p;
  const installed = join(trustDir(env), 'signing_config.json');
  return existsSync(installed) ? installed : undefined;
}

/**
 * Reads a SigningConfig v0.2, or the signing config inside a ClientTrustConfig, through the
 * strict codecs of @waxseal/bundle. A malformed document fails here, naming the file and field.
 */
export function readSigningConfig(path: string): SigningConfig {
  const value = readJsonFile(path, 'signing config');
  try {
    const mediaType = typeof value === 'object' && value !== null ? (value as { mediaType?: unknown }).mediaType : undefined;
    return mediaType === CLIENT_TRUST_CONFIG_MEDIA_TYPE_V01 ? parseClientTrustConfig(value).signingConfig : parseSigningConfig(value);
  } catch (e) {
    if (e instanceof WaxsealError)
      throw new WaxsealError(e.code, `${path}: ${e.message}`, { cause: e, ...(e.detail ? { detail: e.detail } : {}) });
    throw e;
  }
}

/**
 * Trust documents through TUF as cosign finds them: TUF_MIRROR names the repository, TUF_ROOT_JSON
 * the root.json to trust first (else the root cached by an earlier run), TUF_ROOT the cache folder
 * (default <config>/trust/tuf-cache, where `waxseal trust init` keeps it). Undefined without TUF_MIRROR.
 */
export async function trustFromTufEnv(
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ trustedRoot: Uint8Array; signingConfig?: Uint8Array } | undefined> {
  const mirror = env.TUF_MIRROR;
  if (!mirror) return undefined;
  const cacheDir = env.TUF_ROOT || join(trustDir(env), 'tuf-cache');
  let initialRoot: Uint8Array | undefined;
  const rootFile = env.TUF_ROOT_JSON || cachedTufRoot(cacheDir, mirror);
  if (rootFile) {
    try {
      initialRoot = readFileSync(rootFile);
    } catch (e) {
      throw new WaxsealError('ERR_IO', `cannot read TUF root ${rootFile}: ${(e as NodeJS.ErrnoException).code ?? e}`);
    }
  }
  if (!initialRoot)
    throw new WaxsealError(
      'ERR_CONFIG',
      `TUF_MIRROR is set but no TUF root is known for it: set TUF_ROOT_JSON to the root.json to trust first`,
    );
  const { loadTrustFromTuf } = await import('@waxseal/trust');
  return loadTrustFromTuf({ mirrorUrl: mirror, initialRoot, cacheDir });
}

/** The root.json the TUF client cached for `mirror` (its layout: one folder per mirror host and path). */
function cachedTufRoot(cacheDir: string, mirror: string): string | undefined {
  if (!URL.canParse(mirror)) return undefined;
  const u = new URL(mirror);
  const p = join(cacheDir, encodeURIComponent(u.host + u.pathname.replace(/\/+$/, '')), 'root.json');
  return existsSync(p) ? p : undefined;
}

/** Whether a signing config was named (flag or variable), which then wins over TUF and the installed one. */
export function explicitSigningConfigPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return flag || env.WAXSEAL_SIGNING_CONFIG || env.SIGSTORE_SIGNING_CONFIG || undefined;
}

/** The signing config from TUF (TUF_MIRROR) when none is named explicitly. */
export async function signingConfigFromTuf(
  flag: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<SigningConfig | undefined> {
  if (explicitSigningConfigPath(flag, env)) return undefined;
  const t = await trustFromTufEnv(env);
  if (!t) return undefined;
  if (!t.signingConfig) throw new WaxsealError('ERR_TUF', `the TUF repository ${env.TUF_MIRROR} publishes no signing config`);
  return parseSigningConfigJson(t.signingConfig);
}

export interface ResolvedSigning {
  caUrl: string;
  tsaUrl: string;
  oidcUrl: string | undefined;
  rekor: { url: string; majorApiVersion: number } | undefined;
}

/**
 * Where to sign: flags, then environment, then the signing config's services chosen by the
 * protobuf-specs rules (valid now, highest supported API version, newest first; logs and TSAs
 * by the config's selector). The signing client writes to one log and asks one TSA: with
 * selector ALL or EXACT it takes the first of those chosen.
 */
export function resolveSigning(
  flags: {
    signingConfig?: string | undefined;
    fulcioUrl?: string | undefined;
    timestampServerUrl?: string | undefined;
    rekorUrl?: string | undefined;
    tlogUpload?: boolean | undefined;
    /** A signing config already loaded (from TUF): used instead of a file. */
    signingConfigDoc?: SigningConfig | undefined;
  },
  env: NodeJS.ProcessEnv = process.env,
  now: Date = new Date(),
): ResolvedSigning {
  const path = flags.signingConfigDoc ? undefined : signingConfigPath(flags.signingConfig, env);
  const sc = flags.signingConfigDoc ?? (path ? readSigningConfig(path) : undefined);
  const supported = DEFAULT_SUPPORTED_API_VERSIONS;
  const one = (list: Service[], config: SigningConfig['tsaConfig'], versions: readonly number[], what: string): Service | undefined =>
    list.length === 0 ? undefined : selectServicesByConfig(list, config, versions, now, undefined, what)[0];

  const caUrl =
    flags.fulcioUrl ??
    env.COSIGN_FULCIO_URL ??
    env.SIGSTORE_FULCIO_URL ??
    (sc && sc.caUrls.length > 0 ? selectService(sc.caUrls, supported.ca, now, 'CA').url : undefined);
  const tsaUrl =
    flags.timestampServerUrl ??
    env.COSIGN_TIMESTAMP_SERVER_URL ??
    env.SIGSTORE_TIMESTAMP_SERVER_URL ??
    (sc ? one(sc.tsaUrls, sc.tsaConfig, supported.tsa, 'timestamp authority')?.url : undefined);
  if (!caUrl) throw new WaxsealError('ERR_CONFIG', 'no CA URL: pass --signing-config or --fulcio-url (see `waxseal env`)');
  if (!tsaUrl) throw new WaxsealError('ERR_CONFIG', 'no timestamp authority URL: pass --signing-config or --timestamp-server-url');
  let rekor: ResolvedSigning['rekor'];
  if (flags.tlogUpload !== false) {
    if (flags.rekorUrl) rekor = { url: flags.rekorUrl, majorApiVersion: 1 };
    else if (sc) {
      const s = one(sc.rekorTlogUrls, sc.rekorTlogConfig, supported.tlog, 'transparency log');
      if (s) rekor = { url: s.url, majorApiVersion: s.majorApiVersion };
    }
  }
  let oidcUrl: string | undefined;
  if (sc && sc.oidcUrls.length > 0) {
    try {
      oidcUrl = selectService(sc.oidcUrls, supported.oidc, now, 'OIDC').url;
    } catch {
      // no provider valid now: fall back to the environment
    }
  }
  return { caUrl, tsaUrl, oidcUrl: oidcUrl ?? env.WAXSEAL_OIDC_ISSUER ?? env.SIGSTORE_OIDC_ISSUER, rekor };
}
