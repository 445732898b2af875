// The dev IdP's login interaction, in place of oidc-provider's development pages:
//   GET  <issuer>/interaction/<uid>         the login page (or, for consent, an automatic grant)
//   POST <issuer>/interaction/<uid>/login   email=<address>: checked here, refused on the page if not an address
//   POST <issuer>/interaction/<uid>/abort   Cancel: the client gets error=access_denied
// Consent is given automatically: the only client is Waxseal's own CLI asking for openid and email.
import type { IncomingMessage } from 'node:http';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { checkLoginEmail, loginPage, messagePage } from './login-pages.ts';
import { pageHeaders } from './page.ts';

type Next = () => Promise<unknown>;

const ROUTE = /^\/interaction\/([A-Za-z0-9_-]{1,64})(?:\/(login|abort))?$/;
const MAX_FORM_BYTES = 8 << 10;

/**
 * Where a login form may go, redirects included (browsers apply form-action to them): this
 * provider and the native client's loopback redirect on any port (RFC 8252 7.3).
 */
export const LOGIN_FORM_ACTION = ["'self'", 'http://127.0.0.1:*', 'http://localhost:*'];

async function readForm(req: IncomingMessage): Promise<URLSearchParams | undefined> {
  if (!/^application\/x-www-form-urlencoded\b/i.test(req.headers['content-type'] ?? '')) return undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) return undefined;
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function send(ctx: KoaContextWithOIDC, status: number, page: string): void {
  ctx.status = status;
  ctx.set(pageHeaders(LOGIN_FORM_ACTION));
  ctx.body = page;
}

/** Koa middleware for the provider: the interaction routes above, everything else passed on. */
export function interactionRoutes(provider: Provider, o: { prefix: string; instance: string }) {
  return async (ctx: KoaContextWithOIDC, next: Next): Promise<unknown> => {
    const m = ROUTE.exec(ctx.path);
    if (!m) return next();
    const [, uid, action] = m;
    const expired = () => {
      // A program (no Accept: text/html) gets JSON, as from every other endpoint.
      if (!/\btext\/html\b/.test(ctx.get('accept'))) {
        ctx.status = 400;
        ctx.body = { error: 'invalid_request', error_description: 'no such login interaction (expired or already used)' };
        return;
      }
      send(
        ctx,
        400,
        messagePage({
          instance: o.instance,
          title: 'This login has expired',
          message: 'This login page was already used or is too old. Start the login again from your terminal.',
          bad: true,
        }),
      );
    };
    let details: Awaited<ReturnType<Provider['interactionDetails']>>;
    try {
      details = await provider.interactionDetails(ctx.req, ctx.res);
    } catch {
      return expired();
    }
    if (details.uid !== uid) return expired();
    const base = `${o.prefix}/interaction/${uid}`;

    if (action === undefined && ctx.method === 'GET') {
      if (details.prompt.name === 'consent') return autoConsent(provider, ctx, details);
      if (details.prompt.name !== 'login') return expired();
      return send(
        ctx,
        200,
        loginPage({
          instance: o.instance,
          submitUrl: `${base}/login`,
          abortUrl: `${base}/abort`,
          client: String(details.params.client_id ?? ''),
        }),
      );
    }
    if (ctx.method !== 'POST') {
      ctx.status = 405;
      ctx.set('allow', action === undefined ? 'GET' : 'POST');
      ctx.body = { error: 'invalid_request', error_description: 'method not allowed' };
      return;
    }
    if (action === 'abort') {
      return provider.interactionFinished(
        ctx.req,
        ctx.res,
        { error: 'access_denied', error_description: 'the login was cancelled' },
        { mergeWithLastSubmission: false },
      );
    }
    if (action === 'login' && details.prompt.name === 'login') {
      const form = await readForm(ctx.req);
      const typed = form?.get('email') ?? '';
      const checked = checkLoginEmail(typed);
      if ('problem' in checked) {
        return send(
          ctx,
          400,
          loginPage({
            instance: o.instance,
            submitUrl: `${base}/login`,
            abortUrl: `${base}/abort`,
            client: String(details.params.client_id ?? ''),
            email: typed.slice(0, 300),
            problem: checked.problem,
          }),
        );
      }
      return provider.interactionFinished(ctx.req, ctx.res, { login: { accountId: checked.email } }, { mergeWithLastSubmission: false });
    }
    return expired();
  };
}

/** Grants what the client asked for (openid, email) and resumes the authorization. */
async function autoConsent(
  provider: Provider,
  ctx: KoaContextWithOIDC,
  details: Awaited<ReturnType<Provider['interactionDetails']>>,
): Promise<void> {
  const { grantId, session, params } = details;
  const prompt = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[] };
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session?.accountId ?? '', clientId: String(params.client_id) });
  if (!grant) throw new Error('the interaction names a grant that does not exist');
  if (prompt.missingOIDCScope) grant.addOIDCScope(prompt.missingOIDCScope.join(' '));
  if (prompt.missingOIDCClaims) grant.addOIDCClaims(prompt.missingOIDCClaims);
  const saved = await grant.save();
  await provider.interactionFinished(ctx.req, ctx.res, { consent: { grantId: saved } }, { mergeWithLastSubmission: true });
}
