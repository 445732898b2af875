// The embedded OIDC identity provider of the all-in-one dev mode (oidc-provider, panva).
//
// It exists so a new user can sign within a minute of cloning, with real, signed ID tokens
// flowing through the real CA. It is constructed only by `waxseal dev` (src/dev/), requires an
// explicit `devMode: true`, and refuses to start under NODE_ENV=production; no configuration
// file can turn it on for a production instance.
//
// Identities: the login page (ours, interactions.ts) takes any e-mail address as the login, and no
// password; the account's ID token carries {sub, email, email_verified: true}. For scripts and
// tests, a dev-only grant type mints an ID token in one POST /token (see DEV_TOKEN_GRANT).
// Everything oidc-provider would otherwise warn about on start (its development adapter, pages
// and keys) is configured with Waxseal's own: memory-adapter.ts, login-pages.ts, the key below.
import { readFileSync, mkdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import * as jose from 'jose';
import Provider from 'oidc-provider';
import { WaxsealError, parseJsonBounded } from '@waxseal/core';
import type { Router, Service } from '@waxseal/server';
import { writeSecretFile } from '@waxseal/keys';
import { interactionRoutes } from './interactions.ts';
import { checkLoginEmail, deviceCodePage, deviceConfirmPage, messagePage } from './login-pages.ts';
import { memoryAdapter } from './memory-adapter.ts';
import { SafeHtml, pageHeaders } from './page.ts';

/** The grant type `waxseal dev token` uses. Registered only on the dev IdP. */
export const DEV_TOKEN_GRANT = 'urn:waxseal:params:oauth:grant-type:dev-token';

/** Client id Fulcio-compatible CAs expect in `aud`. */
export const SIGSTORE_CLIENT_ID = 'sigstore';

export interface DevIdpOptions {
  /** Must be literally true: the dev IdP is never started by accident. */
  devMode: true;
  /** Issuer URL, e.g. http://127.0.0.1:7117/oidc (its path is the mount prefix). */
  issuer: string;
  /** Folder for the signing key and cookie secrets (kept across restarts). */
  dataDir: string;
  /** ID token lifetime in seconds (default 600). */
  idTokenTtlSeconds?: number;
  /**
   * Simulated CI provider: the dev-token grant takes a `claims` JSON object (with `sub`) and
   * puts it in the token, so CI identities (e.g. GitHub Actions claims) can be tried locally.
   */
  customClaims?: boolean;
  /** Shown next to Waxseal's name on the login pages (default "dev instance at <host>"). */
  instanceName?: string;
}

interface IdpSecrets {
  jwk: jose.JWK;
  cookieKeys: string[];
}

async function loadSecrets(dir: string): Promise<IdpSecrets> {
  const file = join(dir, 'idp-secrets.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as IdpSecrets;
  mkdirSync(dir, { recursive: true });
  const { privateKey } = await jose.generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await jose.exportJWK(privateKey)), alg: 'ES256', use: 'sig' };
  jwk.kid = await jose.calculateJwkThumbprint(jwk);
  const secrets = { jwk, cookieKeys: [randomBytes(32).toString('base64url')] };
  // Exclusive create, 0600, never through a symlink (a dangling link at the path is refused).
  writeSecretFile(file, JSON.stringify(secrets, null, 2));
  return secrets;
}

function accountFor(email: string) {
  return {
    accountId: email,
    async claims() {
      return { sub: email, email, email_verified: true };
    },
  };
}

export class DevIdentityProvider implements Service {
  readonly name = 'idp';
  readonly issuer: string;
  readonly #provider: Provider;

  private constructor(issuer: string, provider: Provider) {
    this.issuer = issuer;
    this.#provider = provider;
  }

  static async create(opts: DevIdpOptions): Promise<DevIdentityProvider> {
    if (opts.devMode !== true) throw new WaxsealError('ERR_CONFIG', 'the embedded identity provider runs only in dev mode');
    if (process.env.NODE_ENV === 'production') {
      throw new WaxsealError('ERR_CONFIG', 'refusing to start the dev identity provider with NODE_ENV=production');
    }
    const secrets = await loadSecrets(opts.dataDir);
    const ttl = opts.idTokenTtlSeconds ?? 600;
    const prefix = new URL(opts.issuer).pathname.replace(/\/$/, '');
    const instance = opts.instanceName ?? `dev instance at ${new URL(opts.issuer).host}`;
    // A page for the user's browser, or JSON for a program (which sends no Accept: text/html).
    // biome-ignore lint/suspicious/noExplicitAny: oidc-provider types its Koa contexts loosely
    const page = (ctx: any, status: number, html: string, formAction: string[] = ["'self'"]) => {
      ctx.status = status;
      ctx.set(pageHeaders(formAction));
      ctx.body = html;
    };
    const provider = new Provider(opts.issuer, {
      clients: [
        {
          client_id: SIGSTORE_CLIENT_ID,
          token_endpoint_auth_method: 'none',
          application_type: 'native',
          // Native clients may use any loopback port (RFC 8252 7.3).
          redirect_uris: ['http://127.0.0.1/callback', 'http://localhost/callback'],
          grant_types: ['authorization_code', 'urn:ietf:params:oauth:grant-type:device_code', DEV_TOKEN_GRANT],
          response_types: ['code'],
          id_token_signed_response_alg: 'ES256',
        },
      ],
      jwks: { keys: [secrets.jwk as never] },
      cookies: { keys: secrets.cookieKeys },
      adapter: memoryAdapter(),
      interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `${prefix}/interaction/${interaction.uid}` },
      // The only client is a native CLI; no browser script needs tokens across origins.
      clientBasedCORS: () => false,
      conformIdTokenClaims: false,
      claims: { openid: ['sub'], email: ['email', 'email_verified'] },
      scopes: ['openid', 'email'],
      pkce: { required: () => true },
      features: {
        devInteractions: { enabled: false },
        deviceFlow: {
          enabled: true,
          // biome-ignore lint/suspicious/noExplicitAny: oidc-provider types its Koa contexts loosely
          userCodeInputSource: (ctx: any, form: string, _out: unknown, err?: { name?: string; userCode?: unknown }) => {
            const problem = !err
              ? undefined
              : err.userCode || err.name === 'NoCodeError'
                ? 'That code is not right. Check the code in your terminal and try again.'
                : err.name === 'AbortedError'
                  ? 'The login was cancelled. Start it again from your terminal.'
                  : 'Something went wrong with this code. Start the login again from your terminal.';
            page(ctx, err ? 400 : 200, deviceCodePage({ instance, form: new SafeHtml(form), problem }));
          },
          // biome-ignore lint/suspicious/noExplicitAny: oidc-provider types its Koa contexts loosely
          userCodeConfirmSource: (ctx: any, form: string, client: { clientId: string }, _info: unknown, userCode: string) =>
            page(ctx, 200, deviceConfirmPage({ instance, form: new SafeHtml(form), client: client.clientId, userCode })),
          // biome-ignore lint/suspicious/noExplicitAny: oidc-provider types its Koa contexts loosely
          successSource: (ctx: any) =>
            page(
              ctx,
              200,
              messagePage({
                instance,
                title: 'Logged in',
                message: 'Your terminal is logged in. You can close this tab and return to it.',
              }),
            ),
        },
        revocation: { enabled: false },
        // Nothing signs out of the dev IdP; without this its stock logout pages would be served.
        rpInitiatedLogout: { enabled: false },
      },
      findAccount: async (_ctx: unknown, id: string) => accountFor(id),
      ttl: { IdToken: ttl, AccessToken: ttl, AuthorizationCode: 60, DeviceCode: 600, Interaction: 600, Session: 3600, Grant: 3600 },
      enabledJWA: { idTokenSigningAlgValues: ['ES256'] },
      // biome-ignore lint/suspicious/noExplicitAny: oidc-provider types its Koa contexts loosely
      renderError: async (ctx: any, out: { error?: string; error_description?: string }) => {
        if (!/\btext\/html\b/.test(String(ctx.get('accept')))) {
          ctx.type = 'json';
          ctx.body = out;
          return;
        }
        const message = `${out.error_description ?? out.error ?? 'The request could not be completed'}. Start the login again from your terminal.`;
        page(ctx, Math.max(ctx.status, 400), messagePage({ instance, title: 'Login failed', message, bad: true }));
      },
    } as never);
    provider.proxy = false;
    // Unknown paths answer a JSON 404 like every other Waxseal endpoint (Koa's default is text).
    provider.use(async (ctx, next) => {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        ctx.body = { error: 'not_found', error_description: 'no such endpoint' };
        ctx.status = 404;
      }
    });
    provider.use(interactionRoutes(provider, { prefix, instance }) as never);

    // The dev-token grant: POST /token grant_type=DEV_TOKEN_GRANT&email=<addr>&client_id=sigstore
    provider.registerGrantType(
      DEV_TOKEN_GRANT,
      // biome-ignore lint/suspicious/noExplicitAny: oidc-provider types custom grant contexts loosely
      async (ctx: any) => {
        const refuse = (why: string) => {
          ctx.status = 400;
          ctx.body = { error: 'invalid_request', error_description: why };
        };
        let claims: Record<string, unknown>;
        if (opts.customClaims) {
          try {
            claims = parseJsonBounded(String(ctx.oidc.params.claims ?? ''), { maxBytes: 64 << 10 }) as Record<string, unknown>;
          } catch {
            return refuse('claims must be a JSON object');
          }
          if (typeof claims !== 'object' || claims === null || Array.isArray(claims) || typeof claims.sub !== 'string' || !claims.sub) {
            return refuse('claims must be a JSON object with a string sub');
          }
          for (const reserved of ['iss', 'aud', 'exp', 'iat', 'nbf']) delete claims[reserved];
        } else {
          const checked = checkLoginEmail(ctx.oidc.params.email);
          if ('problem' in checked) return refuse(`email must be an e-mail address: ${checked.problem}`);
          claims = await accountFor(checked.email).claims();
        }
        // Claims outside the standard scopes are masked by oidc-provider, so CI claims go in as extras.
        const token = new ctx.oidc.provider.IdToken(opts.customClaims ? { sub: claims.sub } : claims, { ctx });
        token.scope = 'openid email';
        if (opts.customClaims) for (const [k, v] of Object.entries(claims)) if (k !== 'sub') token.set(k, v);
        const idToken = await token.issue({ use: 'idtoken' });
        ctx.body = { id_token: idToken, token_type: 'Bearer', expires_in: ttl };
      },
      ['email', 'claims'],
    );
    return new DevIdentityProvider(opts.issuer, provider);
  }

  mount(router: Router): void {
    const prefix = new URL(this.issuer).pathname.replace(/\/$/, '');
    router.mountRaw(prefix, this.#provider.callback() as never);
  }

  async close(): Promise<void> {}
}

/** Asks a running dev IdP for an ID token for `email` (what `waxseal dev token` does). */
export async function fetchDevToken(issuer: string, email: string): Promise<string> {
  return requestDevToken(issuer, { email });
}

/** Asks the dev CI provider for a token carrying `claims` (what `waxseal dev token --claims` does). */
export async function fetchDevCiToken(issuer: string, claims: Record<string, unknown>): Promise<string> {
  return requestDevToken(issuer, { claims: JSON.stringify(claims) });
}

async function requestDevToken(issuer: string, params: Record<string, string>): Promise<string> {
  const disc = (await (await fetch(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`)).json()) as { token_endpoint: string };
  const res = await fetch(disc.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: DEV_TOKEN_GRANT, ...params, client_id: SIGSTORE_CLIENT_ID }),
  });
  const body = (await res.json()) as { id_token?: string; error?: string; error_description?: string };
  if (!res.ok || !body.id_token) {
    throw new WaxsealError('ERR_TOKEN_INVALID', `dev IdP refused: ${body.error_description ?? body.error ?? res.status}`);
  }
  return body.id_token;
}
