// Where the signer's OIDC identity token comes from, in order: an explicit --identity-token
// (the token itself or a file holding it), SIGSTORE_ID_TOKEN, the ambient GitHub Actions token,
// then the token cached by `waxseal login` while it is still valid.
import { readFileSync, existsSync } from 'node:fs';
import { WaxsealError, fromBase64Url, fromUtf8 } from '@waxseal/core';
import { readCachedToken } from './token-cache.ts';

const JWT_RE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** Claims of a JWT read WITHOUT verification (the CA verifies; the client only needs hints). */
export function unverifiedClaims(token: string): Record<string, unknown> {
  if (!JWT_RE.test(token)) throw new WaxsealError('ERR_TOKEN_INVALID', 'identity token is not a JWT');
  try {
    const payload = JSON.parse(fromUtf8(fromBase64Url(token.split('.')[1]!)));
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw new Error('not an object');
    return payload as Record<string, unknown>;
  } catch {
    throw new WaxsealError('ERR_TOKEN_INVALID', 'identity token payload is not a JSON object');
  }
}

/** The proof-of-possession challenge Fulcio expects: the email claim if present, else sub. */
export function challengeSubject(token: string): string {
  const c = unverifiedClaims(token);
  if (typeof c.email === 'string' && c.email) return c.email;
  if (typeof c.sub === 'string' && c.sub) return c.sub;
  throw new WaxsealError('ERR_TOKEN_INVALID', 'identity token has neither an email nor a sub claim');
}

export interface TokenSources {
  explicit?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Audience to ask the GitHub Actions token service for (default "sigstore"). */
  audience?: string;
  fetch?: typeof fetch;
}

export async function resolveIdentityToken(src: TokenSources = {}): Promise<{ token: string; source: string }> {
  const env = src.env ?? process.env;
  if (src.explicit) {
    const v = src.explicit.trim();
    if (JWT_RE.test(v)) return { token: v, source: 'flag' };
    if (existsSync(v)) {
      const t = readFileSync(v, 'utf8').trim();
      if (!JWT_RE.test(t)) throw new WaxsealError('ERR_TOKEN_INVALID', `${v} does not contain a JWT`);
      return { token: t, source: `file ${v}` };
    }
    throw new WaxsealError('ERR_TOKEN_INVALID', '--identity-token is neither a JWT nor a readable file');
  }
  if (env.SIGSTORE_ID_TOKEN) {
    const t = env.SIGSTORE_ID_TOKEN.trim();
    if (!JWT_RE.test(t)) throw new WaxsealError('ERR_TOKEN_INVALID', 'SIGSTORE_ID_TOKEN is not a JWT');
    return { token: t, source: 'SIGSTORE_ID_TOKEN' };
  }
  if (env.ACTIONS_ID_TOKEN_REQUEST_URL && env.ACTIONS_ID_TOKEN_REQUEST_TOKEN) {
    const u = new URL(env.ACTIONS_ID_TOKEN_REQUEST_URL);
    u.searchParams.set('audience', src.audience ?? 'sigstore');
    const res = await (src.fetch ?? fetch)(u, { headers: { authorization: `bearer ${env.ACTIONS_ID_TOKEN_REQUEST_TOKEN}` } });
    if (!res.ok) throw new WaxsealError('ERR_TOKEN_INVALID', `GitHub Actions token request failed with HTTP ${res.status}`);
    const body = (await res.json()) as { value?: string };
    if (!body.value || !JWT_RE.test(body.value)) throw new WaxsealError('ERR_TOKEN_INVALID', 'GitHub Actions token response has no JWT');
    return { token: body.value, source: 'GitHub Actions' };
  }
  const cached = readCachedToken(env);
  if (cached) return { token: cached, source: 'login cache' };
  throw new WaxsealError('ERR_TOKEN_INVALID', 'no identity token: run `waxseal login`, pass --identity-token, or set SIGSTORE_ID_TOKEN');
}
