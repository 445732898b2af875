// The dev instance's landing page at `/`: what runs where, how to sign and verify, and links to
// the trust documents. renderLanding is a pure function of the instance's facts (the same facts
// `instance.json` holds); landingService serves it once the instance has started.
import { pageHeaders, renderPage, html, type SafeHtml } from '@waxseal/dev-idp/page';
import { json, type Router, type Service } from '@waxseal/server';
import type { DevInstance } from './devstack.ts';

const link = (href: string, text: string = href) => html`<a href="${href}">${text}</a>`;

/** A shell word as a user would paste it: quoted only when it needs to be. */
const shellWord = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`);

export function renderLanding(f: DevInstance): string {
  const host = new URL(f.url).host;
  const data = shellWord(f.dataDir);
  const rows: [string, SafeHtml, string][] = [
    ['Identity provider', link(f.issuer), 'OIDC for people: its login page takes any e-mail address, no password'],
    ['CI identity provider', link(f.ciIssuer), 'OIDC tokens with GitHub Actions claims, from waxseal dev token --claims'],
    ['Certificate authority', link(f.caUrl), 'Fulcio API v2: POST /api/v2/signingCert'],
    ['Timestamp authority', link(f.tsaUrl), 'RFC 3161 timestamps; its chain at /api/v1/timestamp/certchain'],
    [
      'Transparency log',
      f.logUrl ? link(f.logUrl) : html`<span class="muted">not running</span>`,
      f.logUrl ? 'Rekor v1 and v2 APIs, C2SP tiles, checkpoint at /checkpoint' : 'started with --no-log',
    ],
    ['TUF repository', link(f.tufUrl), 'the trust documents as TUF targets, for clients that pin a root'],
    ['Audit log', html`<code>${f.auditDb}</code>`, 'every use of a key, hash-chained: waxseal audit verify'],
  ];
  const verify = [
    'npx waxseal verify-blob README.md --bundle README.md.sigstore.json',
    '    --certificate-identity you@example.com',
    `    --certificate-oidc-issuer ${f.issuer}`,
  ].join(' \\\n');
  const body = html`<div class="card">
<h1>Waxseal dev instance</h1>
<p>A private Sigstore running on this machine for trying keyless signing: sign with an identity from the dev identity provider, get a short-lived certificate and a timestamp, and verify offline. Its keys are files in <code>${f.dataDir}</code>.</p>
<p class="muted">For development only: its identity provider trusts any e-mail address.</p>
</div>
<div class="card">
<h2>What runs here</h2>
<table>
<tbody>
${rows.map(([what, where, about]) => html`<tr><th scope="row">${what}</th><td>${where}<br><span class="muted">${about}</span></td></tr>`)}
</tbody>
</table>
</div>
<div class="card">
<h2>Sign and verify</h2>
<p>In a terminal, in the repository:</p>
<pre>eval "$(npx waxseal env --data ${data})"
npx waxseal login
npx waxseal sign-blob README.md --bundle README.md.sigstore.json
${verify}</pre>
<p class="muted"><code>waxseal login</code> opens this instance's login page; for scripts, <code>--identity-token "$(npx waxseal dev token --email you@example.com --data ${data})"</code> on sign-blob signs without a browser.</p>
</div>
<div class="card">
<h2>Trust documents</h2>
<ul>
<li>${link(`${f.url}/trusted_root.json`, 'trusted_root.json')}: the CA, TSA and log keys verifiers trust (<code>${f.trustedRootPath}</code>)</li>
<li>${link(`${f.url}/signing_config.json`, 'signing_config.json')}: where clients sign (<code>${f.signingConfigPath}</code>)</li>
<li>${link(`${f.tufUrl}/1.root.json`, 'TUF root')}: pin it to fetch the two documents above through TUF (<code>${f.tufRootPath}</code>)</li>
<li>${link(`${f.issuer}/.well-known/openid-configuration`, 'OIDC discovery')} of the identity provider</li>
</ul>
</div>`;
  return renderPage({ title: `Waxseal dev instance at ${host}`, instance: `dev instance at ${host}`, body, wide: true });
}

/** Serves the landing page at `/` from the facts `facts()` gives once the instance runs. */
export function landingService(facts: () => DevInstance | undefined): Service {
  return {
    name: 'landing',
    mount(router: Router) {
      router.get('/', () => {
        const f = facts();
        if (!f) return json(503, { code: 'ERR_UNAVAILABLE', message: 'the dev instance is still starting' });
        return { status: 200, headers: pageHeaders(), body: renderLanding(f) };
      });
    },
    async close() {},
  };
}
