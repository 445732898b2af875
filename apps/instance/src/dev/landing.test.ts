import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderLanding } from './landing.ts';
import type { DevInstance } from './devstack.ts';

const facts = (over: Partial<DevInstance> = {}): DevInstance => ({
  url: 'http://127.0.0.1:7117',
  issuer: 'http://127.0.0.1:7117/oidc',
  ciIssuer: 'http://127.0.0.1:7117/ci',
  auditDb: '/data/audit.db',
  tufUrl: 'http://127.0.0.1:7117/tuf',
  tufRootPath: '/data/tuf/1.root.json',
  caUrl: 'http://127.0.0.1:7117',
  tsaUrl: 'http://127.0.0.1:7117/api/v1/timestamp',
  logUrl: 'http://127.0.0.1:7117',
  dataDir: '/data',
  trustedRootPath: '/data/trusted_root.json',
  signingConfigPath: '/data/signing_config.json',
  pid: 1,
  startedAt: '2026-01-01T00:00:00.000Z',
  ...over,
});

test('the landing page names every service, the commands and the trust documents', () => {
  const page = renderLanding(facts());
  for (const s of [
    '<a href="http://127.0.0.1:7117/oidc">',
    '<a href="http://127.0.0.1:7117/api/v1/timestamp">',
    '<a href="http://127.0.0.1:7117/trusted_root.json">trusted_root.json</a>',
    '<a href="http://127.0.0.1:7117/signing_config.json">signing_config.json</a>',
    '<a href="http://127.0.0.1:7117/tuf/1.root.json">TUF root</a>',
    'eval "$(npx waxseal env --data /data)"',
    '--certificate-oidc-issuer http://127.0.0.1:7117/oidc',
    'dev instance at 127.0.0.1:7117',
  ])
    assert.ok(page.includes(s), `has ${s}`);
  assert.match(renderLanding(facts({ logUrl: undefined })), /Transparency log<\/th><td><span class="muted">not running/);
});

test('the landing page escapes what it shows and quotes a data folder for the shell', () => {
  const page = renderLanding(facts({ dataDir: `/tmp/it's <b>here</b>` }));
  assert.ok(!page.includes('<b>here'), 'escaped');
  assert.ok(page.includes('--data &#39;/tmp/it&#39;\\&#39;&#39;s &lt;b&gt;here&lt;/b&gt;&#39;'), 'shell-quoted, then escaped');
});
