// Configuration problems are one ERR_CONFIG line naming the setting, never an internal error;
// key URIs are read as `ca init` prints them; the log's identity settings (hostname, tree ID) are
// honoured, and refused with the fix named when they contradict the log's recorded identity.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rejectsWithCode, throwsWithCode, useTempDir } from '@waxseal/testkit';
import { parseInstanceConfig } from '../src/config.ts';
import { devProfile } from '../src/dev/profile.ts';
import { startInstance } from '../src/instance.ts';
import type { InstanceConfig } from '../src/config.ts';

const tmp = useTempDir('wx-config-');

const BASE = `ca:
  key: file://ca/intermediate.key
  chain: ca/chain.pem
tsa:
  key: file://tsa/tsa.key
  chain: tsa/chain.pem
`;
const parse = (text: string) => parseInstanceConfig(text, '/etc/waxseal/waxseal.yaml');
const refuses = (text: string, message: RegExp) => throwsWithCode(() => parse(text), 'ERR_CONFIG', message);

test('key URIs as `ca init` prints them are relative to the configuration file', () => {
  const cfg = parse(`${BASE}log:\n  key: log.key\n`);
  assert.equal(cfg.ca.key, 'file:///etc/waxseal/ca/intermediate.key');
  assert.equal(cfg.tsa.key, 'file:///etc/waxseal/tsa/tsa.key');
  assert.equal(cfg.log?.key, 'file:///etc/waxseal/log.key');
  assert.equal(parse(BASE.replace('file://ca/intermediate.key', 'file:///srv/ca.key')).ca.key, 'file:///srv/ca.key');
  assert.equal(parse(BASE.replace('file://ca/intermediate.key', '"awskms:///alias/ca"')).ca.key, 'awskms:///alias/ca');
  refuses(BASE.replace('file://ca/intermediate.key', 'file://'), /^ca\.key: key URI file:\/\/ names no file/);
});

test('log.tree-id: quoted or small integers are kept exactly; a 19-digit YAML number is refused with the quoted form', () => {
  assert.equal(parse(`${BASE}log:\n  key: l.key\n  tree-id: "1234567890123456789"\n`).log?.treeId, '1234567890123456789');
  assert.equal(parse(`${BASE}log:\n  key: l.key\n  tree-id: 42\n`).log?.treeId, '42');
  assert.equal(parse(`${BASE}log:\n  key: l.key\n`).log?.treeId, undefined);
  refuses(
    `${BASE}log:\n  key: l.key\n  tree-id: 1234567890123456789\n`,
    /^log\.tree-id 1234567890123456789 is too large for a YAML number .*quote it \(tree-id: "1234567890123456789"\)$/,
  );
  for (const bad of ['abc', '0', '-5', '"9223372036854775808"', '1.5', '[1]'])
    refuses(`${BASE}log:\n  key: l.key\n  tree-id: ${bad}\n`, /^log\.tree-id/);
});

test('log.hostname: explicit, else the url host, else the listener host; a bad one is refused', () => {
  assert.equal(parse(`${BASE}log:\n  key: l.key\n  hostname: log.example.com\n`).log?.hostname, 'log.example.com');
  assert.equal(parse(`${BASE}url: https://sign.example.com\nlog:\n  key: l.key\n`).log?.hostname, 'sign.example.com');
  assert.equal(parse(`${BASE}listen: { host: 10.0.0.5 }\nlog:\n  key: l.key\n`).log?.hostname, '10.0.0.5');
  refuses(`${BASE}log:\n  key: l.key\n  hostname: "log example"\n`, /^log\.hostname "log example" is not a host name/);
});

test('each malformed setting is named', () => {
  refuses('', /is empty/);
  refuses('tsa: {}\n', /^ca is required/);
  refuses(`${BASE}listen: { port: http }\n`, /^listen\.port must be a port number/);
  refuses(`${BASE}listen: { port: 70000 }\n`, /^listen\.port/);
  assert.equal(parse(`${BASE}listen: { port: "9090" }\n`).listen.port, 9090);
  refuses(`${BASE}url: ftp://x\n`, /^url "ftp:\/\/x" is not an http\(s\) URL/);
  refuses(BASE.replace('ca:\n', 'ca:\n  github-actions: yes please\n'), /^ca\.github-actions must be true or false/);
  refuses(`${BASE}log:\n  key: l.key\n  retired: 5\n`, /^log\.retired must be a list/);
  refuses(`${BASE}log:\n  key: l.key\n  retired: [5]\n`, /^log\.retired\[0\] must be a mapping/);
  refuses(`${BASE}audit: { anchr: x }\n`, /^audit: unknown setting "anchr"/);
  refuses(`${BASE}ca: {}\n`, /not valid YAML/); // a duplicate key
});

/** A dev profile's key material, started as a plain configuration (no dev identity providers). */
async function keyMaterial(name: string): Promise<InstanceConfig> {
  return (await devProfile({ dataDir: join(tmp.dir, name), port: 0 })).config;
}

test('start-up problems name their setting (missing files and folders, unreadable keys, bad rules)', async () => {
  const cfg = await keyMaterial('problems');
  const missing = join(tmp.dir, 'nowhere', 'x');
  const cases: [Partial<InstanceConfig>, RegExp][] = [
    [{ audit: { ...cfg.audit, anchor: join(missing, 'audit.anchor.json') } }, /^audit\.anchor: folder .*nowhere\/x does not exist/],
    [{ audit: { db: join(missing, 'audit.db'), anchor: undefined } }, /^audit\.db: folder .*nowhere\/x does not exist/],
    [{ ca: { ...cfg.ca, key: `file://${missing}.key` } }, /^ca\.key: cannot read key file .*: ENOENT/],
    [{ tsa: { ...cfg.tsa, chain: missing } }, /^tsa\.chain: cannot read .*: ENOENT/],
    [{ ca: { ...cfg.ca, signingRules: missing } }, /^ca\.signing-rules: ENOENT/],
    [{ ca: { ...cfg.ca, issuers: missing } }, /^ca\.issuers: cannot read issuer configuration/],
    [{ ca: { ...cfg.ca, retired: [{ chain: missing, end: new Date().toISOString() }] } }, /^ca\.retired\[0\]\.chain: cannot read/],
    [{ log: { ...cfg.log!, key: `file://${missing}.key` } }, /^log\.key: cannot read key file/],
  ];
  for (const [change, message] of cases)
    await rejectsWithCode(startInstance({ ...cfg, ...change }), 'ERR_CONFIG', message, JSON.stringify(change).slice(0, 80));
  const bad = join(tmp.dir, 'rules.yaml');
  writeFileSync(bad, 'allow: 5\n');
  await rejectsWithCode(startInstance({ ...cfg, ca: { ...cfg.ca, signingRules: bad } }), 'ERR_CONFIG', /^ca\.signing-rules: /);
});

test('log.hostname is the checkpoint origin; a log refuses another hostname or tree ID, naming the setting and the recorded value', async () => {
  const cfg = await keyMaterial('origin');
  const named: InstanceConfig = { ...cfg, log: { ...cfg.log!, hostname: 'log.example.test' } };
  const inst = await startInstance(named);
  let treeId: string;
  let logDataDir: string;
  let validity: unknown[];
  try {
    const checkpoint = await (await fetch(`${inst.url}/checkpoint`)).text();
    assert.equal(checkpoint.split('\n')[0], 'log.example.test');
    // Clients reach the log under its own name (Rekor v2 clients require the URL's host to be the origin).
    const logUrl = `http://log.example.test:${new URL(inst.url).port}`;
    assert.equal(inst.logUrl, logUrl);
    assert.deepEqual(
      inst.trustedRoot.tlogs.map((t) => t.baseUrl),
      [logUrl, logUrl],
    );
    assert.deepEqual(
      inst.signingConfig.rekorTlogUrls.map((s) => s.url),
      [logUrl, logUrl],
    );
    assert.ok(inst.logDataDir?.startsWith(join(cfg.data, 'log')));
    treeId = inst.logTreeId!;
    logDataDir = inst.logDataDir!;
    validity = inst.trustedRoot.tlogs.map((t) => t.publicKey.validFor);
    assert.match(treeId, /^[1-9]\d*$/);
  } finally {
    await inst.close();
  }
  await rejectsWithCode(
    startInstance({ ...named, log: { ...named.log!, hostname: 'other.example.test' } }),
    'ERR_CONFIG',
    /^log\.hostname: .*"log\.example\.test", not "other\.example\.test".*set log\.hostname to "log\.example\.test"/,
  );
  const otherId = treeId === '42' ? '43' : '42';
  await rejectsWithCode(
    startInstance({ ...named, log: { ...named.log!, treeId: otherId } }),
    'ERR_CONFIG',
    new RegExp(`^log\\.tree-id: .*"${treeId}", not "${otherId}"; set it to "${treeId}" or remove the setting`),
  );
  // The recorded tree ID itself is accepted, and read back unchanged; so is the key's validity,
  // even from a key-valid-from a crash left empty (it is derived from the log's creation again).
  writeFileSync(join(logDataDir, 'key-valid-from'), '');
  const again = await startInstance({ ...named, log: { ...named.log!, treeId } });
  try {
    assert.equal(again.logTreeId, treeId);
    assert.deepEqual(
      again.trustedRoot.tlogs.map((t) => t.publicKey.validFor),
      validity,
    );
  } finally {
    await again.close();
  }
  writeFileSync(join(logDataDir, 'key-valid-from'), 'yesterday\n');
  await rejectsWithCode(startInstance(named), 'ERR_CONFIG', /key-valid-from holds no RFC 3339 time/);
});

test('a bad tree ID handed to startInstance (not through the file) is a configuration error too', async () => {
  const cfg = await keyMaterial('treeid');
  await rejectsWithCode(startInstance({ ...cfg, log: { ...cfg.log!, treeId: '0' } }), 'ERR_CONFIG', /tree ID must be a positive/);
});
