// The page shell and the dev IdP's pages as pure functions: escaping, the CSP that allows exactly
// the one inline style sheet, and the server-side check of the login address.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { SafeHtml, escapeHtml, html, pageCsp, renderPage } from '../src/page.ts';
import { checkLoginEmail, loginPage, messagePage } from '../src/login-pages.ts';

const HOSTILE = `<script>alert(1)</script>"' onmouseover="x" &amp;`;

test('html escapes every interpolated value, but not SafeHtml or the template itself', () => {
  const out = html`<p title="${HOSTILE}">${HOSTILE}${[HOSTILE, html`<b>${HOSTILE}</b>`]}${undefined}${null}${false}${0}</p>`.value;
  assert.ok(!out.includes('<script>'), out);
  assert.ok(!/"\s*onmouseover=/.test(out), out);
  assert.equal(out.split(escapeHtml(HOSTILE)).length - 1, 4, 'each hostile value appears once, escaped');
  assert.ok(out.includes('<b>&lt;script&gt;'), 'nested SafeHtml kept as markup');
  assert.ok(out.endsWith('0</p>'), 'undefined, null and false render as nothing; 0 as 0');
  assert.equal(escapeHtml(`&<>"'`), '&amp;&lt;&gt;&quot;&#39;');
  assert.equal(`${new SafeHtml('<i>')}`, '<i>');
});

test("the CSP allows the page's one inline style sheet by hash, and nothing else", () => {
  const page = renderPage({ title: 't', body: html`<p>x</p>` });
  const css = /<style>([\s\S]*?)<\/style>/.exec(page)![1]!;
  const hash = createHash('sha256').update(css).digest('base64');
  const csp = pageCsp();
  assert.ok(csp.includes(`style-src 'sha256-${hash}'`), csp);
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /form-action 'none'/);
  assert.match(pageCsp(["'self'", 'http://127.0.0.1:*']), /form-action 'self' http:\/\/127\.0\.0\.1:\*/);
  assert.doesNotMatch(page, /<script|https?:\/\//, 'no scripts and no external URLs in the shell');
});

test('checkLoginEmail: an e-mail address, trimmed; anything else a sentence for the page', () => {
  assert.deepEqual(checkLoginEmail('  alice@example.com '), { email: 'alice@example.com' });
  const problem = (v: unknown) => (checkLoginEmail(v) as { problem?: string }).problem;
  assert.match(problem('bob')!, /^"bob" is not an e-mail address/);
  assert.match(problem('')!, /Enter your e-mail address/);
  assert.match(problem(undefined)!, /Enter your e-mail address/);
  assert.match(problem('a b@example.com')!, /not an e-mail address/);
  assert.match(problem('alice@localhost')!, /not an e-mail address/);
  assert.match(problem(`${'a'.repeat(250)}@example.com`)!, /at most 254/);
});

test('the login page: required e-mail field, no password, nothing of the OAuth request, hostile values escaped', () => {
  const page = loginPage({
    instance: HOSTILE,
    submitUrl: '/oidc/interaction/abc/login',
    abortUrl: '/oidc/interaction/abc/abort',
    client: HOSTILE,
    email: HOSTILE,
    problem: HOSTILE,
  });
  assert.ok(!page.includes('<script>'), 'hostile values escaped');
  assert.match(page, /<input id="email" name="email" type="email" required /);
  assert.doesNotMatch(page, /type="password"/);
  assert.match(page, /<form method="post" action="\/oidc\/interaction\/abc\/login">/);
  assert.match(page, /formaction="\/oidc\/interaction\/abc\/abort" formnovalidate>Cancel</);
  assert.match(page, /trusts any e-mail address/);
  assert.match(page, /<b>Waxseal<\/b>/);
  assert.doesNotMatch(messagePage({ instance: 'i', title: HOSTILE, message: HOSTILE }), /<script>/);
});
