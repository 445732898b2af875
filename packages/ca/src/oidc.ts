// OIDC identity token verification for the CA, as Fulcio does it with go-oidc: read `iss` from
// the unverified token, find the configured issuer (exact, then meta-issuer pattern), run OIDC
// discovery against that `iss`, and verify signature, issuer, audience and validity window with
// jose against the issuer's JWKS. Verified tokens are cached by the SHA-256 of their bytes until
// they expire: the same bytes always verify the same way, and CI jobs reuse one token for many
// signatures.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createHash } from 'node:crypto';
import { jwtVerify, createLocalJWKSet, type JSONWebKeySet, type JWTPayload, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose';
import { WaxsealError, fromBase64Url, fromUtf8, parseJsonBounded } from '@waxseal/core';
import { lookupIssuer, type IssuerConfig, type OidcIssuer } from './issuers.ts';

/** Signature algorithms an identity token may use. Never `none`, never HMAC. */
export const ALLOWED_TOKEN_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

export const MAX_TOKEN_BYTES = 16 * 1024;

/** The subset of the WHATWG fetch Response the verifier reads. */
export interface FetchResponseLike {
  status: number;
  headers: { get(name: string): string | null };
  text(): Promise<string>;
}

/** An injectable fetch (tests, proxies). It must not follow redirects itself. */
export type FetchLike = (
  url: string,
  init: { signal: AbortSignal; redirect: 'manual'; headers: Record<string, string> },
) => Promise<FetchResponseLike>;

export interface OidcVerifierOptions {
  issuers: IssuerConfig;
  /** Replaces the built-in HTTP client for discovery and JWKS (no per-issuer CA then). */
  fetch?: FetchLike;
  /** Current time in milliseconds since the epoch. */
  now?: () => number;
  /** Allowed clock skew on exp/nbf, in seconds (default 60). */
  clockSkewSeconds?: number;
  /** Discovery and JWKS request timeout (default 10 s). */
  httpTimeoutMs?: number;
  /** Minimum time between JWKS refetches triggered by an unknown key id (default 30 s). */
  jwksRefreshCooldownMs?: number;
  /** JWKS older than this are refreshed before use, falling back to the old keys on failure (default 24 h). */
  jwksMaxAgeMs?: number;
  /** Verified-token cache size (default 10,000). */
  tokenCacheSize?: number;
  /** How many meta-issuer providers are kept (default 100, as Fulcio). */
  metaProviderCacheSize?: number;
}

export interface VerifiedToken {
  /** The configured issuer, with `issuerUrl` the token's `iss`. */
  readonly issuer: OidcIssuer;
  readonly claims: Readonly<JWTPayload & Record<string, unknown>>;
  readonly algorithm: string;
  readonly keyId: string | undefined;
  /** `exp`, seconds since the epoch. */
  readonly expiresAt: number;
}

interface Provider {
  readonly issuerUrl: string;
  readonly jwksUri: string;
  /** id_token_signing_alg_values_supported intersected with our allow-list, if advertised. */
  readonly algorithms: readonly string[];
  keys: JWTVerifyGetKey;
  fetchedAt: number;
  refreshing: Promise<void> | undefined;
}

const MAX_DOCUMENT_BYTES = 1 << 20;
const MAX_REDIRECTS = 5;

function tokenError(message: string, cause?: unknown): WaxsealError {
  return new WaxsealError('ERR_TOKEN_INVALID', message, cause === undefined ? {} : { cause });
}

function discoveryError(issuer: string, message: string, cause?: unknown): WaxsealError {
  return new WaxsealError('ERR_ISSUER_DISCOVERY', `OIDC discovery for ${issuer} failed: ${message}`, cause === undefined ? {} : { cause });
}

/** Splits a compact JWS without verifying it; bounded and strict. */
export function decodeUnverified(token: string): { header: Record<string, unknown>; payload: Record<string, unknown>; signature: string } {
  if (typeof token !== 'string' || token.length === 0) throw tokenError('identity token is empty');
  if (token.length > MAX_TOKEN_BYTES) throw tokenError(`identity token is larger than ${MAX_TOKEN_BYTES} bytes`);
  const parts = token.split('.');
  if (parts.length !== 3) throw tokenError(`identity token is not a compact JWS (expected 3 parts, found ${parts.length})`);
  const decode = (part: string, what: string): Record<string, unknown> => {
    let value: unknown;
    try {
      value = parseJsonBounded(fromUtf8(fromBase64Url(part, `JWT ${what}`), `JWT ${what}`), { maxBytes: MAX_TOKEN_BYTES });
    } catch (e) {
      throw tokenError(`identity token ${what} is not base64url-encoded JSON`, e);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      throw tokenError(`identity token ${what} is not a JSON object`);
    return value as Record<string, unknown>;
  };
  const header = decode(parts[0]!, 'header');
  const payload = decode(parts[1]!, 'payload');
  // The signature must be canonical too (jose alone would accept other spellings of it).
  try {
    fromBase64Url(parts[2]!, 'JWT signature');
  } catch (e) {
    throw tokenError('identity token signature is not canonical base64url', e);
  }
  return { header, payload, signature: parts[2]! };
}

// The built-in HTTP client: bounded size, no redirects, an optional extra CA per issuer.
function nodeGet(
  url: string,
  signal: AbortSignal,
  ca: string | undefined,
): Promise<{ status: number; location: string | null; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const requester = u.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = requester(
      u,
      { method: 'GET', signal, headers: { accept: 'application/json' }, ...(ca && u.protocol === 'https:' ? { ca } : {}) },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_DOCUMENT_BYTES) {
            req.destroy(new Error(`response larger than ${MAX_DOCUMENT_BYTES} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, location: res.headers.location ?? null, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

export class OidcVerifier {
  readonly #issuers: IssuerConfig;
  readonly #fetch: FetchLike | undefined;
  readonly #now: () => number;
  readonly #skew: number;
  readonly #timeoutMs: number;
  readonly #cooldownMs: number;
  readonly #maxAgeMs: number;
  readonly #tokenCacheSize: number;
  readonly #metaCacheSize: number;
  readonly #fixedProviders = new Map<string, Promise<Provider>>();
  readonly #metaProviders = new Map<string, Promise<Provider>>();
  readonly #tokens = new Map<string, VerifiedToken>();

  constructor(opts: OidcVerifierOptions) {
    this.#issuers = opts.issuers;
    this.#fetch = opts.fetch;
    this.#now = opts.now ?? Date.now;
    this.#skew = opts.clockSkewSeconds ?? 60;
    this.#timeoutMs = opts.httpTimeoutMs ?? 10_000;
    this.#cooldownMs = opts.jwksRefreshCooldownMs ?? 30_000;
    this.#maxAgeMs = opts.jwksMaxAgeMs ?? 86_400_000;
    this.#tokenCacheSize = opts.tokenCacheSize ?? 10_000;
    this.#metaCacheSize = opts.metaProviderCacheSize ?? 100;
  }

  get issuers(): IssuerConfig {
    return this.#issuers;
  }

  /** Verifies `token`; throws a WaxsealError (ERR_TOKEN_*, ERR_ISSUER_*) on any failure. */
  async verify(token: string): Promise<VerifiedToken> {
    if (typeof token !== 'string' || token.length === 0) throw tokenError('no identity token');
    if (token.length > MAX_TOKEN_BYTES) throw tokenError(`identity token is larger than ${MAX_TOKEN_BYTES} bytes`);
    const cacheKey = createHash('sha256').update(token).digest('base64');
    const cached = this.#tokens.get(cacheKey);
    const nowSec = this.#now() / 1000;
    if (cached) {
      if (cached.expiresAt > nowSec - this.#skew) return cached;
      this.#tokens.delete(cacheKey);
      throw new WaxsealError('ERR_TOKEN_EXPIRED', `identity token expired at ${new Date(cached.expiresAt * 1000).toISOString()}`);
    }

    const { header, payload, signature } = decodeUnverified(token);
    const alg = header.alg;
    if (typeof alg !== 'string') throw tokenError('identity token header has no alg');
    if (!(ALLOWED_TOKEN_ALGORITHMS as readonly string[]).includes(alg)) {
      throw new WaxsealError(
        'ERR_TOKEN_ALGORITHM',
        `identity token algorithm ${JSON.stringify(alg)} is not allowed (allowed: ${ALLOWED_TOKEN_ALGORITHMS.join(', ')})`,
      );
    }
    if (signature.length === 0) throw tokenError('identity token has no signature');
    const iss = payload.iss;
    if (typeof iss !== 'string' || iss.length === 0) throw tokenError('identity token has no iss claim');
    const issuer = lookupIssuer(this.#issuers, iss);
    if (!issuer)
      throw new WaxsealError('ERR_ISSUER_UNKNOWN', `identity token issuer ${JSON.stringify(iss.slice(0, 200))} is not configured`);

    const provider = await this.#provider(issuer);
    if (!provider.algorithms.includes(alg)) {
      throw new WaxsealError(
        'ERR_TOKEN_ALGORITHM',
        `identity token algorithm ${alg} is not one the issuer advertises (${provider.algorithms.join(', ')})`,
      );
    }
    if (this.#now() - provider.fetchedAt > this.#maxAgeMs) await this.#refresh(provider, issuer, true);

    const options: JWTVerifyOptions = {
      algorithms: [...provider.algorithms],
      issuer: iss,
      audience: issuer.clientId,
      clockTolerance: this.#skew,
      currentDate: new Date(this.#now()),
      requiredClaims: ['exp'],
    };
    const kid = typeof header.kid === 'string' ? header.kid : undefined;
    let verified: { payload: JWTPayload };
    try {
      verified = await this.#verifyWithKeys(token, provider, issuer, kid, options);
    } catch (e) {
      throw mapJoseError(e, issuer, payload);
    }
    const claims = verified.payload as JWTPayload & Record<string, unknown>;
    const result: VerifiedToken = Object.freeze({
      issuer,
      claims: Object.freeze(claims),
      algorithm: alg,
      keyId: kid,
      expiresAt: claims.exp!,
    });
    this.#remember(cacheKey, result, nowSec);
    return result;
  }

  /** Drops cached tokens and providers (for tests and key-rotation drills). */
  clearCaches(): void {
    this.#tokens.clear();
    this.#fixedProviders.clear();
    this.#metaProviders.clear();
  }

  async #verifyWithKeys(
    token: string,
    provider: Provider,
    issuer: OidcIssuer,
    kid: string | undefined,
    options: JWTVerifyOptions,
  ): Promise<{ payload: JWTPayload }> {
    const getKey: JWTVerifyGetKey = async (protectedHeader, t) => {
      try {
        return await provider.keys(protectedHeader, t);
      } catch (e) {
        if ((e as { code?: string }).code !== 'ERR_JWKS_NO_MATCHING_KEY') throw e;
      }
      // An unknown key id: the issuer may have rotated its keys. Refetch once (rate-limited).
      if (this.#now() - provider.fetchedAt >= this.#cooldownMs) {
        await this.#refresh(provider, issuer, false);
        try {
          return await provider.keys(protectedHeader, t);
        } catch (e) {
          if ((e as { code?: string }).code !== 'ERR_JWKS_NO_MATCHING_KEY') throw e;
        }
      }
      throw tokenError(
        `unknown key id ${kid === undefined ? '(none)' : JSON.stringify(kid)}: no key in the JWKS of ${issuer.issuerUrl} matches the token`,
      );
    };
    try {
      return await jwtVerify(token, getKey, options);
    } catch (e) {
      // Several keys match (no kid): try each, as go-oidc does.
      if ((e as { code?: string }).code !== 'ERR_JWKS_MULTIPLE_MATCHING_KEYS') throw e;
      let last: unknown = e;
      for await (const key of e as AsyncIterable<Parameters<typeof jwtVerify>[1] & object>) {
        try {
          return await jwtVerify(token, key, options);
        } catch (inner) {
          last = inner;
          if ((inner as { code?: string }).code !== 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') throw inner;
        }
      }
      throw last;
    }
  }

  #remember(key: string, value: VerifiedToken, nowSec: number): void {
    if (this.#tokens.size >= this.#tokenCacheSize) {
      for (const [k, v] of this.#tokens) if (v.expiresAt <= nowSec - this.#skew) this.#tokens.delete(k);
      // Still full: drop the oldest entries (Map keeps insertion order).
      for (const k of this.#tokens.keys()) {
        if (this.#tokens.size < this.#tokenCacheSize) break;
        this.#tokens.delete(k);
      }
    }
    this.#tokens.set(key, value);
  }

  #provider(issuer: OidcIssuer): Promise<Provider> {
    const url = issuer.issuerUrl;
    const isMeta = issuer.wildcardIssuerUrl !== undefined;
    const cache = isMeta ? this.#metaProviders : this.#fixedProviders;
    let p = cache.get(url);
    if (p) {
      if (isMeta) {
        cache.delete(url);
        cache.set(url, p);
      }
      return p;
    }
    p = this.#discover(issuer);
    cache.set(url, p);
    if (isMeta && cache.size > this.#metaCacheSize) cache.delete(cache.keys().next().value!);
    // A failed discovery is not remembered: the next token retries.
    p.catch(() => {
      if (cache.get(url) === p) cache.delete(url);
    });
    return p;
  }

  async #discover(issuer: OidcIssuer): Promise<Provider> {
    const iss = issuer.issuerUrl;
    const doc = await this.#getJson(`${iss.replace(/\/$/, '')}/.well-known/openid-configuration`, issuer, 'discovery document');
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw discoveryError(iss, 'discovery document is not a JSON object');
    const d = doc as Record<string, unknown>;
    if (d.issuer !== iss)
      throw discoveryError(
        iss,
        `issuer did not match the issuer returned by provider: expected ${JSON.stringify(iss)} got ${JSON.stringify(d.issuer)}`,
      );
    if (typeof d.jwks_uri !== 'string') throw discoveryError(iss, 'discovery document has no jwks_uri');
    let jwksUri: URL;
    try {
      jwksUri = new URL(d.jwks_uri);
    } catch {
      throw discoveryError(iss, `jwks_uri ${JSON.stringify(d.jwks_uri)} is not a URL`);
    }
    if (jwksUri.protocol !== 'https:' && jwksUri.protocol !== 'http:') throw discoveryError(iss, 'jwks_uri must be http(s)');
    let algorithms: string[] = [...ALLOWED_TOKEN_ALGORITHMS];
    const advertised = d.id_token_signing_alg_values_supported;
    if (Array.isArray(advertised) && advertised.length > 0) {
      algorithms = algorithms.filter((a) => advertised.includes(a));
      if (algorithms.length === 0)
        throw discoveryError(iss, `the issuer advertises no allowed signing algorithm (${advertised.join(', ')})`);
    }
    const provider: Provider = {
      issuerUrl: iss,
      jwksUri: jwksUri.href,
      algorithms,
      keys: async () => {
        throw new Error('unreachable');
      },
      fetchedAt: 0,
      refreshing: undefined,
    };
    await this.#loadJwks(provider, issuer);
    return provider;
  }

  async #loadJwks(provider: Provider, issuer: OidcIssuer): Promise<void> {
    const jwks = await this.#getJson(provider.jwksUri, issuer, 'JWKS');
    let keys: JWTVerifyGetKey;
    try {
      keys = createLocalJWKSet(jwks as JSONWebKeySet);
    } catch (e) {
      throw discoveryError(provider.issuerUrl, 'the JWKS is malformed', e);
    }
    provider.keys = keys;
    provider.fetchedAt = this.#now();
  }

  #refresh(provider: Provider, issuer: OidcIssuer, keepOldOnFailure: boolean): Promise<void> {
    provider.refreshing ??= this.#loadJwks(provider, issuer).finally(() => {
      provider.refreshing = undefined;
    });
    return keepOldOnFailure ? provider.refreshing.catch(() => undefined) : provider.refreshing;
  }

  async #getJson(url: string, issuer: OidcIssuer, what: string): Promise<unknown> {
    const signal = AbortSignal.timeout(this.#timeoutMs);
    let current = new URL(url);
    const host = current.host;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      let status: number;
      let location: string | null;
      let body: string;
      try {
        if (this.#fetch) {
          const r = await this.#fetch(current.href, { signal, redirect: 'manual', headers: { accept: 'application/json' } });
          status = r.status;
          location = r.headers.get('location');
          body = status === 200 ? await r.text() : '';
        } else {
          ({ status, location, body } = await nodeGet(current.href, signal, issuer.caCert));
        }
      } catch (e) {
        const why = signal.aborted ? `timed out after ${this.#timeoutMs} ms` : e instanceof Error ? e.message : String(e);
        throw discoveryError(issuer.issuerUrl, `fetching the ${what} from ${current.href}: ${why}`, e);
      }
      if ([301, 302, 303, 307, 308].includes(status)) {
        if (!location) throw discoveryError(issuer.issuerUrl, `${what}: redirect without a location`);
        const next = new URL(location, current);
        if (next.host !== host || (next.protocol !== 'https:' && next.protocol !== 'http:')) {
          throw discoveryError(issuer.issuerUrl, `${what}: redirect to a different host ${next.host} blocked`);
        }
        current = next;
        continue;
      }
      if (status !== 200) throw discoveryError(issuer.issuerUrl, `${what} at ${current.href} answered HTTP ${status}`);
      if (body.length > MAX_DOCUMENT_BYTES) throw discoveryError(issuer.issuerUrl, `${what} is larger than ${MAX_DOCUMENT_BYTES} bytes`);
      try {
        return parseJsonBounded(body, { maxBytes: MAX_DOCUMENT_BYTES });
      } catch (e) {
        throw discoveryError(issuer.issuerUrl, `${what} is not JSON`, e);
      }
    }
    throw discoveryError(issuer.issuerUrl, `${what}: too many redirects`);
  }
}

function mapJoseError(e: unknown, issuer: OidcIssuer, payload: Record<string, unknown>): WaxsealError {
  if (e instanceof WaxsealError) return e;
  const err = e as { code?: string; claim?: string; message?: string };
  switch (err.code) {
    case 'ERR_JWT_EXPIRED':
      return new WaxsealError(
        'ERR_TOKEN_EXPIRED',
        `identity token expired${typeof payload.exp === 'number' ? ` at ${new Date(payload.exp * 1000).toISOString()}` : ''}`,
        { cause: e },
      );
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (err.claim === 'nbf')
        return new WaxsealError('ERR_TOKEN_EXPIRED', 'identity token is not valid yet (nbf is in the future)', { cause: e });
      if (err.claim === 'aud') {
        return new WaxsealError(
          'ERR_TOKEN_AUDIENCE',
          `identity token audience ${JSON.stringify(payload.aud)} does not include the client id ${JSON.stringify(issuer.clientId)}`,
          { cause: e },
        );
      }
      return tokenError(`identity token claim ${err.claim ?? '?'} is invalid: ${err.message ?? ''}`, e);
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return new WaxsealError('ERR_TOKEN_ALGORITHM', `identity token algorithm is not allowed`, { cause: e });
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return tokenError('identity token signature does not verify', e);
    default:
      return tokenError(`identity token is invalid: ${err.message ?? String(e)}`, e);
  }
}
