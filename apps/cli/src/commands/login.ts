// waxseal login: OIDC authorization code + PKCE with a loopback redirect (RFC 8252), or the
// device flow where no browser is available; the ID token is cached for its lifetime.
//
// interactiveLogin() is the flow itself, also started by the sign commands when a terminal is
// attached and no token is at hand. It ends in exactly one of: a token whose e-mail identity the
// CA can certify (cached), ERR_UNAVAILABLE (the IdP could not be reached: exit 5), or an identity
// error (cancelled, refused, no usable e-mail: exit 4). The browser is told the same outcome.
import { createServer, type ServerResponse } from 'node:http';
import { spawn } from 'node:child_process';
import * as oidc from 'openid-client';
import { WaxsealError, fromBase64Url, fromUtf8 } from '@waxseal/core';
import { html, pageHeaders, renderPage, type SafeHtml } from '@waxseal/dev-idp/page';
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
  --signing-config <file> signing_config.json naming the issuer (default: as for sign-blob)
  --timeout <seconds>     give up after this long (default 300)

The token is cached (mode 0600) in $WAXSEAL_CONFIG_DIR or ~/.config/waxseal until it expires.
Exit codes: 0 logged in; 4 cancelled, refused, or the token has no verified e-mail address;
5 the identity provider could not be reached.`,
} as const;

export interface InteractiveLoginOptions {
  /** OIDC issuer; else WAXSEAL_OIDC_ISSUER, SIGSTORE_OIDC_ISSUER, then the signing config's oidcUrls. */
  issuer?: string | undefined;
  /** OAuth client id (default: sigstore). */
  clientId?: string | undefined;
  /** signing_config.json to read the issuer from (default: as for sign-blob). */
  signingConfig?: string | undefined;
  ui: Ui;
  /** Give up after this long (default 300 s). */
  timeoutMs?: number | undefined;
  /** Print the login URL without opening a browser. */
  noBrowser?: boolean | undefined;
  /** Use the device authorization flow instead of the loopback redirect. */
  device?: boolean | undefined;
}

export const DEFAULT_LOGIN_TIMEOUT_MS = 300_000;

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
  const timeoutMs = Number(values.timeout ?? DEFAULT_LOGIN_TIMEOUT_MS / 1000) * 1000;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new UsageError('--timeout must be a positive number of seconds');
  const idToken = await interactiveLogin({
    issuer: values.issuer,
    clientId: values['client-id'],
    signingConfig: values['signing-config'],
    ui,
    timeoutMs,
    noBrowser: values['no-browser'],
    device: values.device,
  });
  const claims = tokenClaims(idToken);
  const exp = typeof claims.exp === 'number' ? claims.exp : 0;
  ui.result(
    { ok: true, identity: claims.email, issuer: claims.iss, expiresAt: exp },
    `Logged in as ${String(claims.email)}; token cached until ${new Date(exp * 1000).toISOString()}`,
  );
  return 0;
}

/** Logs in interactively (browser or device flow), checks the identity, caches the ID token and returns it. */
export async function interactiveLogin(opts: InteractiveLoginOptions): Promise<string> {
  const issuer = loginIssuer(opts);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_LOGIN_TIMEOUT_MS;
  const config = await discover(issuer, opts.clientId ?? 'sigstore');
  const idToken = opts.device ? await deviceFlow(config, opts.ui, timeoutMs) : await browserFlow(config, !opts.noBrowser, timeoutMs);
  writeCachedToken(idToken);
  return idToken;
}

function loginIssuer(opts: InteractiveLoginOptions): string {
  const fromEnv = opts.issuer ?? process.env.WAXSEAL_OIDC_ISSUER ?? process.env.SIGSTORE_OIDC_ISSUER;
  if (fromEnv) return fromEnv;
  try {
    const fromConfig = resolveSigning({ signingConfig: opts.signingConfig }).oidcUrl;
    if (fromConfig) return fromConfig;
  } catch {
    // no readable signing config: the error below says what to do
  }
  throw new UsageError('no OIDC issuer: pass --issuer or set WAXSEAL_OIDC_ISSUER (see `waxseal env`)');
}

async function discover(issuer: string, clientId: string): Promise<oidc.Configuration> {
  let issuerUrl: URL;
  try {
    issuerUrl = new URL(issuer);
  } catch {
    throw new UsageError(`the OIDC issuer ${JSON.stringify(issuer)} is not a URL`);
  }
  try {
    return await oidc.discovery(
      issuerUrl,
      clientId,
      undefined,
      oidc.None(),
      // Plain HTTP only to a provider on this machine (the dev instance).
      isLoopback(issuerUrl) ? { execute: [oidc.allowInsecureRequests], timeout: 30 } : { timeout: 30 },
    );
  } catch (e) {
    if (isUnreachable(e)) throw unavailable(issuer, e);
    throw new WaxsealError('ERR_ISSUER_DISCOVERY', `OIDC discovery failed for ${issuer}: ${describe(e)}`);
  }
}

const NETWORK_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EPIPE',
]);

/** Whether an openid-client failure means the provider was down or unreachable (not that it said no). */
export function isUnreachable(e: unknown): boolean {
  for (let c: unknown = e, depth = 0; c && depth < 8; c = (c as { cause?: unknown }).cause, depth++) {
    if (c instanceof Response) return c.status >= 500;
    if (typeof c !== 'object') return false;
    const { code, name, message } = c as { code?: unknown; name?: unknown; message?: unknown };
    if (typeof code === 'string' && (NETWORK_ERRORS.has(code) || code.startsWith('UND_ERR_'))) return true;
    if (name === 'TimeoutError' || (name === 'TypeError' && message === 'fetch failed')) return true;
  }
  return false;
}

function describe(e: unknown): string {
  const parts: string[] = [];
  for (let c: unknown = e, depth = 0; c instanceof Error && depth < 4; c = c.cause, depth++) parts.push(c.message);
  if (parts.length === 0 && e instanceof Response) parts.push(`HTTP ${e.status}`);
  return parts.join(': ') || String(e);
}

const unavailable = (issuer: string, e: unknown) =>
  new WaxsealError('ERR_UNAVAILABLE', `the identity provider ${issuer} could not be reached: ${describe(e)}`);

function tokenClaims(idToken: string): Record<string, unknown> {
  try {
    const claims = JSON.parse(fromUtf8(fromBase64Url(idToken.split('.')[1] ?? ''))) as unknown;
    if (claims && typeof claims === 'object' && !Array.isArray(claims)) return claims as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new WaxsealError('ERR_TOKEN_INVALID', 'the provider returned an ID token whose payload is not a JSON object');
}

const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/**
 * The e-mail identity a login token certifies, or the identity error the CA would give later:
 * a person's login is an e-mail address, verified by the provider (Fulcio's email issuers).
 */
export function loginIdentity(claims: Record<string, unknown>): string {
  const { email, email_verified: verified } = claims;
  if (typeof email !== 'string' || !EMAIL_RE.test(email)) {
    const who = typeof email === 'string' ? `"${email}"` : typeof claims.sub === 'string' ? `subject "${claims.sub}"` : 'the token';
    throw new WaxsealError('ERR_IDENTITY_CLAIMS', `login refused: ${who} is not an e-mail address, which a login must be`);
  }
  if (verified !== true && verified !== 'true' && verified !== 'True') {
    throw new WaxsealError('ERR_IDENTITY_CLAIMS', `login refused: the provider has not verified the e-mail address ${email}`);
  }
  return email;
}

interface Outcome {
  /** Shown in the browser. */
  page: { title: string; body: SafeHtml; status: number };
  result: { token: string } | { error: WaxsealError };
}

/** Sends a result page; `provider` (the issuer's host) is shown beside Waxseal's name. */
function sendPage(res: ServerResponse, page: Outcome['page'], provider: string): void {
  res.writeHead(page.status, pageHeaders());
  res.end(renderPage({ title: `${page.title} - Waxseal`, instance: `login with ${provider}`, body: page.body }));
}

const closeTab = html`<p class="muted">You can close this tab and return to the terminal.</p>`;

/** A failed login: what happened in words for the page, and the error the CLI reports (shown too). */
function failurePage(title: string, error: WaxsealError, said = 'You are not logged in.'): Outcome {
  return {
    page: {
      title,
      status: 200,
      body: html`<div class="card"><h1 class="bad">${title}</h1><p>${said}</p><p class="muted">The terminal reports: <code>${error.message}</code></p>${closeTab}</div>`,
    },
    result: { error },
  };
}

/** Turns the provider's redirect into the login's outcome (code exchange and identity check included). */
async function completeLogin(
  config: oidc.Configuration,
  callbackUrl: URL,
  checks: { pkceCodeVerifier: string; expectedState: string; expectedNonce: string },
): Promise<Outcome> {
  const error = callbackUrl.searchParams.get('error');
  if (error === 'access_denied') {
    const e = new WaxsealError('ERR_TOKEN_INVALID', 'login cancelled in the browser');
    return failurePage('Login cancelled', e, 'You cancelled the login, so you are not logged in. Run waxseal login again to log in.');
  }
  if (error) {
    const why = callbackUrl.searchParams.get('error_description') ?? error;
    return failurePage('Login failed', new WaxsealError('ERR_TOKEN_INVALID', `login refused by the provider: ${why}`));
  }
  let idToken: string;
  try {
    const tokens = await oidc.authorizationCodeGrant(config, callbackUrl, { ...checks, idTokenExpected: true });
    if (!tokens.id_token) throw new WaxsealError('ERR_TOKEN_INVALID', 'the provider returned no ID token');
    idToken = tokens.id_token;
  } catch (e) {
    if (e instanceof WaxsealError) return failurePage('Login failed', e);
    if (isUnreachable(e)) return failurePage('Login failed', unavailable(config.serverMetadata().issuer, e));
    return failurePage('Login failed', new WaxsealError('ERR_TOKEN_INVALID', `login failed: ${describe(e)}`));
  }
  let email: string;
  try {
    email = loginIdentity(tokenClaims(idToken));
  } catch (e) {
    return failurePage(
      'Login refused',
      e as WaxsealError,
      'The identity provider did not give an identity Waxseal can certify: a verified e-mail address.',
    );
  }
  return {
    page: {
      title: 'Logged in',
      status: 200,
      body: html`<div class="card"><h1 class="good">Logged in</h1><p>You are logged in to Waxseal as <b>${email}</b>.</p><p class="muted">Identity provider: <code>${config.serverMetadata().issuer}</code></p>${closeTab}</div>`,
    },
    result: { token: idToken },
  };
}

async function browserFlow(config: oidc.Configuration, open: boolean, timeoutMs: number): Promise<string> {
  const checks = {
    pkceCodeVerifier: oidc.randomPKCECodeVerifier(),
    expectedState: oidc.randomState(),
    expectedNonce: oidc.randomNonce(),
  };
  let settle!: (o: Outcome['result']) => void;
  const settled = new Promise<Outcome['result']>((r) => (settle = r));
  let handled = false;
  const provider = new URL(config.serverMetadata().issuer).host;
  const server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (u.pathname !== '/callback' || req.method !== 'GET') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    // Only the redirect of this login counts; anything else (a stale tab, another page) is turned away.
    if (handled || u.searchParams.get('state') !== checks.expectedState) {
      sendPage(
        res,
        {
          title: 'Not this login',
          status: 400,
          body: html`<div class="card"><h1 class="bad">Not this login</h1><p>This is not the login the terminal is waiting for. Use the link it printed.</p></div>`,
        },
        provider,
      );
      return;
    }
    handled = true;
    void completeLogin(config, new URL(`${redirectUri}${u.search}`), checks).then(
      (outcome) => {
        sendPage(res, outcome.page, provider);
        settle(outcome.result);
      },
      (e: unknown) => {
        const error = new WaxsealError('ERR_INTERNAL', `login failed: ${describe(e)}`);
        sendPage(res, failurePage('Login failed', error).page, provider);
        settle({ error });
      },
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const redirectUri = `http://127.0.0.1:${port}/callback`;
  let timer: NodeJS.Timeout | undefined;
  try {
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: 'openid email',
      code_challenge: await oidc.calculatePKCECodeChallenge(checks.pkceCodeVerifier),
      code_challenge_method: 'S256',
      state: checks.expectedState,
      nonce: checks.expectedNonce,
    });
    process.stderr.write(`Open this URL to log in:\n  ${url.href}\n`);
    if (open) openBrowser(url.href);
    const timeout = new Promise<never>((_, rej) => {
      timer = setTimeout(() => rej(new WaxsealError('ERR_TOKEN_INVALID', 'login timed out waiting for the browser')), timeoutMs);
    });
    const result = await Promise.race([settled, timeout]);
    if ('error' in result) throw result.error;
    return result.token;
  } finally {
    clearTimeout(timer);
    // Let the result page reach the browser before the listener goes.
    server.close();
    setTimeout(() => server.closeAllConnections(), 1000).unref();
  }
}

async function deviceFlow(config: oidc.Configuration, ui: Ui, timeoutMs: number): Promise<string> {
  let idToken: string;
  try {
    const start = await oidc.initiateDeviceAuthorization(config, { scope: 'openid email' });
    process.stderr.write(
      `To log in, open ${start.verification_uri_complete ?? start.verification_uri}\nand enter the code ${start.user_code}\n`,
    );
    ui.info('Waiting for you to approve the login...');
    const tokens = await oidc.pollDeviceAuthorizationGrant(config, start, undefined, { signal: AbortSignal.timeout(timeoutMs) });
    if (!tokens.id_token) throw new WaxsealError('ERR_TOKEN_INVALID', 'the provider returned no ID token');
    idToken = tokens.id_token;
  } catch (e) {
    if (e instanceof WaxsealError) throw e;
    if ((e as { error?: unknown }).error === 'access_denied')
      throw new WaxsealError('ERR_TOKEN_INVALID', 'login cancelled on the device page');
    if ((e as { name?: unknown }).name === 'TimeoutError')
      throw new WaxsealError('ERR_TOKEN_INVALID', 'login timed out waiting for approval');
    if (isUnreachable(e)) throw unavailable(config.serverMetadata().issuer, e);
    throw new WaxsealError('ERR_TOKEN_INVALID', `device login failed: ${describe(e)}`);
  }
  loginIdentity(tokenClaims(idToken));
  return idToken;
}
