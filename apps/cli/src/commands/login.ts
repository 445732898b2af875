// waxseal login: OIDC authorization code + PKCE with a loopback redirect (RFC 8252), or the
// device flow where no browser is available; the ID token is cached for its lifetime.
import { createServer } from 'node:http';
import { spawn } from 'node:child_process';
import * as oidc from 'openid-client';
import { WaxsealError } from '@waxseal/core';
import { writeCachedToken } from '@waxseal/sign';
import { resolveSigning } from '../config.ts';
import { parse, helpText, UsageError, type Ui } from '../ui.ts';

export const loginSpec = {
  usage: 'waxseal login [--issuer <url>] [--client-id <id>] [--device] [--no-browser]',
  summary: "Log in with the instance's OIDC provider and cache the ID token for signing.",
  options: {
    issuer: { type: 'string' },
    'client-id': { type: 'string' },
    device: { type: 'boolean' },
    'no-browser': { type: 'boolean' },
    'signing-config': { type: 'string' },
    timeout: { type: 'string' },
  },
  help: `Options:
  --issuer <url>          OIDC issuer (else the signing config's oidcUrls, WAXSEAL_OIDC_ISSUER)
  --client-id <id>        OAuth client id (default: sigstore)
  --device                use the device authorization flow (no local browser needed)
  --no-browser            print the login URL instead of opening a browser
  --timeout <seconds>     give up after this long (default 300)

The token is cached (mode 0600) in $WAXSEAL_CONFIG_DIR or ~/.config/waxseal until it expires.`,
} as const;

const isLoopback = (u: URL) => ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname);

function openBrowser(url: string): void {
  try {
    const child = spawn('xdg-open', [url], { stdio: 'ignore', detached: true });
    child.on('error', () => {});
    child.unref();
  } catch {
    // no browser opener: the URL is printed anyway
  }
}

export async function login(argv: string[], ui: Ui): Promise<number> {
  const { values, helpWanted } = parse(argv, loginSpec);
  if (helpWanted) return (ui.result({ help: helpText(loginSpec) }, helpText(loginSpec)), 0);
  let issuer = values.issuer ?? process.env.WAXSEAL_OIDC_ISSUER ?? process.env.SIGSTORE_OIDC_ISSUER;
  if (!issuer) {
    try {
      issuer = resolveSigning({ signingConfig: values['signing-config'] }).oidcUrl;
    } catch {
      // fall through to the error below
    }
  }
  if (!issuer) throw new UsageError('no OIDC issuer: pass --issuer or set WAXSEAL_OIDC_ISSUER (see `waxseal env`)');
  const timeoutMs = Number(values.timeout ?? 300) * 1000;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new UsageError('--timeout must be a positive number of seconds');
  const issuerUrl = new URL(issuer);
  const clientId = values['client-id'] ?? 'sigstore';
  let config: oidc.Configuration;
  try {
    config = await oidc.discovery(
      issuerUrl,
      clientId,
      undefined,
      oidc.None(),
      isLoopback(issuerUrl) ? { execute: [oidc.allowInsecureRequests] } : {},
    );
  } catch (e) {
    throw new WaxsealError('ERR_ISSUER_DISCOVERY', `OIDC discovery failed for ${issuer}: ${(e as Error).message}`);
  }
  const idToken = values.device ? await deviceFlow(config, ui, timeoutMs) : await browserFlow(config, !values['no-browser'], timeoutMs);
  const where = writeCachedToken(idToken);
  const claims = JSON.parse(Buffer.from(idToken.split('.')[1]!, 'base64url').toString()) as { email?: string; sub?: string; exp?: number };
  ui.result(
    { ok: true, identity: claims.email ?? claims.sub, expiresAt: claims.exp, cache: where },
    `Logged in as ${claims.email ?? claims.sub}; token cached until ${new Date((claims.exp ?? 0) * 1000).toISOString()}`,
  );
  return 0;
}

async function browserFlow(config: oidc.Configuration, open: boolean, timeoutMs: number): Promise<string> {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  let resolveCallback!: (u: URL) => void;
  const callback = new Promise<URL>((r) => (resolveCallback = r));
  const server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (u.pathname !== '/callback') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>waxseal</title><p>Login complete. You can close this window and return to the terminal.</p>');
    resolveCallback(u);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const redirectUri = `http://127.0.0.1:${port}/callback`;
  try {
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: 'openid email',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    process.stderr.write(`Open this URL to log in:\n  ${url.href}\n`);
    if (open) openBrowser(url.href);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, rej) => {
      timer = setTimeout(() => rej(new WaxsealError('ERR_TOKEN_INVALID', 'login timed out waiting for the browser')), timeoutMs);
    });
    const current = await Promise.race([callback, timeout]).finally(() => clearTimeout(timer));
    if (current.searchParams.get('error')) {
      throw new WaxsealError(
        'ERR_TOKEN_INVALID',
        `login refused: ${current.searchParams.get('error_description') ?? current.searchParams.get('error')}`,
      );
    }
    const callbackUrl = new URL(`${redirectUri}${current.search}`);
    const tokens = await oidc.authorizationCodeGrant(config, callbackUrl, {
      pkceCodeVerifier: verifier,
      expectedState: state,
      expectedNonce: nonce,
      idTokenExpected: true,
    });
    if (!tokens.id_token) throw new WaxsealError('ERR_TOKEN_INVALID', 'the provider returned no ID token');
    return tokens.id_token;
  } catch (e) {
    if (e instanceof WaxsealError) throw e;
    throw new WaxsealError('ERR_TOKEN_INVALID', `login failed: ${(e as Error).message}`);
  } finally {
    server.close();
    server.closeAllConnections();
  }
}

async function deviceFlow(config: oidc.Configuration, ui: Ui, timeoutMs: number): Promise<string> {
  try {
    const start = await oidc.initiateDeviceAuthorization(config, { scope: 'openid email' });
    process.stderr.write(
      `To log in, open ${start.verification_uri_complete ?? start.verification_uri}\nand enter the code ${start.user_code}\n`,
    );
    ui.info('Waiting for you to approve the login...');
    const tokens = await oidc.pollDeviceAuthorizationGrant(config, start, undefined, { signal: AbortSignal.timeout(timeoutMs) });
    if (!tokens.id_token) throw new WaxsealError('ERR_TOKEN_INVALID', 'the provider returned no ID token');
    return tokens.id_token;
  } catch (e) {
    if (e instanceof WaxsealError) throw e;
    throw new WaxsealError('ERR_TOKEN_INVALID', `device login failed: ${(e as Error).message}`);
  }
}
