// The one composition root: the dev instance is startInstance with the dev profile. The profile
// bootstraps its keys once (as files, named by file:// URI), adds the dev identity providers on the
// same listener, and keeps the log in <data>/log; startInstance's hook mounts any such services.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rejectsWithCode } from '@waxseal/testkit';
import type { Router, Service } from '@waxseal/server';
import { devProfile } from '../src/dev/profile.ts';
import { readDevInstance, startDevStack } from '../src/dev/devstack.ts';
import { startInstance } from '../src/instance.ts';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'wx-instance-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('the dev profile bootstraps its keys once, as files the config names by file:// URI', async () => {
  const data = join(dir, 'profile');
  const p = await devProfile({ dataDir: data, port: 0 });
  const keys = [p.config.ca.key, p.config.tsa.key, p.config.log!.key].map((u) => fileURLToPath(u));
  assert.deepEqual(keys, [join(data, 'ca', 'intermediate.key'), join(data, 'tsa', 'tsa.key'), join(data, 'log', 'log.key')]);
  const before = keys.map((k) => readFileSync(k, 'utf8'));
  const chain = readFileSync(p.config.ca.chain, 'utf8');
  const since = readFileSync(join(data, 'log', 'key-valid-from'), 'utf8');

  const again = await devProfile({ dataDir: data, port: 0 });
  assert.deepEqual(
    keys.map((k) => readFileSync(k, 'utf8')),
    before,
    'keys kept',
  );
  assert.equal(readFileSync(again.config.ca.chain, 'utf8'), chain);
  assert.equal(readFileSync(join(data, 'log', 'key-valid-from'), 'utf8'), since);
  // The log stays directly in <data>/log (dev folders made before keep their tree).
  assert.equal(again.options.log?.dataDir, join(data, 'log'));
  assert.equal(again.config.ca.issuers, undefined, 'no issuers.yaml, nothing to merge');
  assert.equal(again.config.listen.host, '127.0.0.1', 'loopback unless asked');

  const noLog = await devProfile({ dataDir: join(dir, 'profile-nolog'), log: false });
  assert.equal(noLog.config.log, undefined);
  assert.equal(existsSync(join(dir, 'profile-nolog', 'log', 'log.key')), false);
});

test("startInstance mounts a profile's extra services on its listener and closes them with it", async () => {
  const p = await devProfile({ dataDir: join(dir, 'extras'), port: 0, log: false });
  let seenUrl: string | undefined;
  let closed = 0;
  const hello: Service = {
    name: 'hello',
    mount(router: Router) {
      router.get('/hello', () => ({ status: 200, headers: { 'content-type': 'text/plain' }, body: new TextEncoder().encode('hi') }));
    },
    async close() {
      closed++;
    },
  };
  const inst = await startInstance(p.config, {
    async extraServices(url) {
      seenUrl = url;
      return { services: [hello], oidcUrl: `${url}/somewhere` };
    },
  });
  try {
    assert.equal(seenUrl, inst.url);
    const res = await fetch(`${inst.url}/hello`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'hi');
    assert.deepEqual(
      inst.signingConfig.oidcUrls.map((s) => s.url),
      [`${inst.url}/somewhere`],
    );
    assert.equal(inst.logUrl, undefined);
    assert.equal(inst.auditDb, join(dir, 'extras', 'audit.db'));
  } finally {
    await inst.close();
  }
  assert.equal(closed, 1);
});

test('startDevStack: the dev IdPs on the same port, named in instance.json and the signing config', async () => {
  const data = join(dir, 'stack');
  const stack = await startDevStack({ dataDir: data, port: 0 });
  try {
    assert.equal(stack.issuer, `${stack.url}/oidc`);
    assert.equal(stack.ciIssuer, `${stack.url}/ci`);
    assert.equal(stack.logUrl, stack.url);
    assert.equal(stack.tsaUrl, `${stack.url}/api/v1/timestamp`);
    assert.deepEqual(
      stack.signingConfig.oidcUrls.map((s) => s.url),
      [stack.issuer],
    );
    const disc = await fetch(`${stack.issuer}/.well-known/openid-configuration`);
    assert.equal(disc.status, 200);
    const written = readDevInstance(data);
    assert.equal(written.url, stack.url);
    assert.equal(written.ciIssuer, stack.ciIssuer);
    assert.equal(written.tufUrl, `${stack.url}/tuf`);
    assert.ok(statSync(written.tufRootPath).isFile());
    // The log's tree is in <data>/log itself, not in a per-key shard below it.
    assert.ok(existsSync(join(data, 'log', 'key-valid-from')));
    assert.equal(stack.trustedRoot.tlogs.length, 2);
  } finally {
    await stack.close();
  }
});

test('a port already in use is a configuration error', async () => {
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  const port = (blocker.address() as { port: number }).port;
  try {
    await rejectsWithCode(startDevStack({ dataDir: join(dir, 'busy'), port }), 'ERR_CONFIG', /port in use/);
  } finally {
    await new Promise((r) => blocker.close(r));
  }
});
