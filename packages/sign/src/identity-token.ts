// Where the signer's OIDC identity token comes from, in the order cosign and gitsign look: an
// explicit --identity-token (the token itself or a file holding it), SIGSTORE_ID_TOKEN (GitLab CI's
// id_tokens, or set by hand), the ambient GitHub Actions token, the Buildkite agent's token, a
// Kubernetes projected service-account token at cosign's path, the token cached by `waxseal login`
// while it is still valid, and last an interactive login when the caller offers one.
import { readFileSync, existsSync } from 'node:fs';
import { execFile } from 'node:child_process';
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

/** Where cosign's filesystem provider reads a token (a Kubernetes projected service-account token). */
export const KUBERNETES_TOKEN_PATH = '/var/run/sigstore/cosign/oidc-token';

/** Runs a command and resolves with its stdout (Buildkite's agent prints the token there). */
export type RunCommand = (file: string, args: string[], env: NodeJS.ProcessEnv) => Promise<string>;

const runCommand: RunCommand = (file, args, env) =>
  new Promise((resolve, reject) => {
    execFile(file, args, { env, timeout: 30_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) reject(Object.assign(err, { stderr: String(stderr) }));
      else resolve(String(stdout));
    });
  });

export interface TokenSources {
  explicit?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Audience to ask CI token services for (default "sigstore"). */
  audience?: string;
  fetch?: typeof fetch;
  /** The projected service-account token file (default cosign's KUBERNETES_TOKEN_PATH). */
  tokenFilePath?: string;
  /** How `buildkite-agent` is run (tests replace it). */
  run?: RunCommand;
  /** The last resort when no token is at hand: an interactive login (a browser on a terminal). */
  interactive?: () => Promise<string>;
  /** Leave out the ambient CI and file sources (cosign's --oidc-disable-ambient-providers). */
  noAmbient?: boolean;
}

function jwtOrThrow(value: string, what: string): string {
  const t = value.trim();
  if (!JWT_RE.test(t)) throw new WaxsealError('ERR_TOKEN_INVALID', `${what} is not a JWT`);
  return t;
}

export async function resolveIdentityToken(src: TokenSources = {}): Promise<{ token: string; source: string }> {
  const env = src.env ?? process.env;
  const audience = src.audience ?? 'sigstore';
  if (src.explicit) {
    const v = src.explicit.trim();
    if (JWT_RE.test(v)) return { token: v, source: 'flag' };
    if (existsSync(v)) return { token: jwtOrThrow(readFileSync(v, 'utf8'), `the token file ${v}`), source: `file ${v}` };
    throw new WaxsealError('ERR_TOKEN_INVALID', '--identity-token is neither a JWT nor a readable file');
  }
  // GitLab CI hands its token over this way (`id_tokens: SIGSTORE_ID_TOKEN: aud: sigstore`).
  if (env.SIGSTORE_ID_TOKEN) return { token: jwtOrThrow(env.SIGSTORE_ID_TOKEN, 'SIGSTORE_ID_TOKEN'), source: 'SIGSTORE_ID_TOKEN' };
  if (!src.noAmbient) {
    if (env.ACTIONS_ID_TOKEN_REQUEST_URL && env.ACTIONS_ID_TOKEN_REQUEST_TOKEN) {
      const u = new URL(env.ACTIONS_ID_TOKEN_REQUEST_URL);
      u.searchParams.set('audience', audience);
      let res: Response;
      try {
        res = await (src.fetch ?? fetch)(u, { headers: { authorization: `bearer ${env.ACTIONS_ID_TOKEN_REQUEST_TOKEN}` } });
      } catch (e) {
        throw new WaxsealError('ERR_UNAVAILABLE', `GitHub Actions token service unreachable: ${(e as Error).message}`, { cause: e });
      }
      if (!res.ok) throw new WaxsealError('ERR_TOKEN_INVALID', `GitHub Actions token request failed with HTTP ${res.status}`);
      const body = (await res.json().catch(() => ({}))) as { value?: string };
      if (!body.value || !JWT_RE.test(body.value)) throw new WaxsealError('ERR_TOKEN_INVALID', 'GitHub Actions token response has no JWT');
      return { token: body.value, source: 'GitHub Actions' };
    }
    // Buildkite: enabled by the agent's access token, as in cosign; the agent itself asks for the token.
    if (env.BUILDKITE_AGENT_ACCESS_TOKEN) {
      let out: string;
      try {
        out = await (src.run ?? runCommand)('buildkite-agent', ['oidc', 'request-token', '--audience', audience], env);
      } catch (e) {
        const why = (e as { stderr?: string }).stderr?.trim().split('\n')[0] || (e as Error).message;
        throw new WaxsealError('ERR_UNAVAILABLE', `buildkite-agent oidc request-token failed: ${why}`, { cause: e });
      }
      return { token: jwtOrThrow(out, 'the token buildkite-agent printed'), source: 'Buildkite' };
    }
    const tokenFile = src.tokenFilePath ?? KUBERNETES_TOKEN_PATH;
    if (existsSync(tokenFile)) {
      let text: string;
      try {
        text = readFileSync(tokenFile, 'utf8');
      } catch (e) {
        throw new WaxsealError('ERR_IO', `cannot read the token file ${tokenFile}: ${(e as NodeJS.ErrnoException).code ?? e}`);
      }
      return { token: jwtOrThrow(text, `the token file ${tokenFile}`), source: `file ${tokenFile}` };
    }
  }
  const cached = readCachedToken(env);
  if (cached) return { token: cached, source: 'login cache' };
  if (src.interactive) return { token: jwtOrThrow(await src.interactive(), 'the login token'), source: 'interactive login' };
  throw new WaxsealError('ERR_TOKEN_INVALID', 'no identity token: run `waxseal login`, pass --identity-token, or set SIGSTORE_ID_TOKEN');
}
