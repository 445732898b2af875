// The TUF repository as real TUF clients see it: @sigstore/tuf (what sigstore-js and npm use)
// and our loadTrustFromTuf (tuf-js), both over HTTP against TufService.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, readFile, readdir, symlink } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initTUF, getTrustedRoot } from '@sigstore/tuf';
import { Timestamp } from '@tufjs/models';
import { rejectsWithCode } from '@waxseal/testkit';
import { generateSigner } from '../../keys/src/memory.ts';
import { serveServices } from '../../server/src/service.ts';
import type { RunningServer } from '../../server/src/http.ts';
import { TufRepository, TufService, loadTrustFromTuf, parseMetadata, signMetadata, encodeMetadata } from '../src/tuf/index.ts';

const enc = new TextEncoder();
const trustedRoot = (tag: string) =>
  enc.encode(
    JSON.stringify({
      mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
      tlogs: [],
      certificateAuthorities: [],
      ctlogs: [],
      timestampAuthorities: [],
      // A recognisable marker: the TrustedRoot message ignores unknown fields.
      waxsealTestTag: tag,
    }),
  );
const signingConfig = enc.encode(
  JSON.stringify({
    mediaType: 'application/vnd.dev.sigstore.signingconfig.v0.2+json',
    caUrls: [],
    oidcUrls: [],
    rekorTlogUrls: [],
    tsaUrls: [],
    rekorTlogConfig: { selector: 'ANY' },
    tsaConfig: { selector: 'ANY' },
  }),
);

let work: string;
let server: RunningServer;
const repos: Record<string, string> = {};
const tagOf = (text: string) => (JSON.parse(text) as { waxsealTestTag: string }).waxsealTestTag;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'waxseal-tuf-'));
  for (const name of ['main', 'expired', 'tamper', 'meta']) repos[name] = join(work, name);
  // One server, one TufService per repository, each under its own prefix.
  server = await serveServices(Object.entries(repos).map(([name, directory]) => new TufService({ directory, prefix: `/${name}` })));
});

after(async () => {
  await server?.close();
  await rm(work, { recursive: true, force: true });
});

function keys() {
  return {
    rootSigners: [generateSigner('ed25519')],
    targetsSigner: generateSigner('ecdsa-p256'),
    snapshotSigner: generateSigner('ed25519'),
    timestampSigner: generateSigner('ecdsa-p256'),
  };
}

async function sigstoreClient(mirror: string, rootPath: string, cachePath: string) {
  return initTUF({ mirrorURL: mirror, rootPath, cachePath, retry: false, timeout: 5000 });
}

test('@sigstore/tuf loads trusted_root.json through updates and a root rotation', async () => {
  const k = keys();
  const repo = new TufRepository(repos['main']!);
  const st = await repo.init({
    ...k,
    targets: { 'trusted_root.json': trustedRoot('v1'), 'signing_config.v0.2.json': signingConfig, 'signing_config.json': signingConfig },
  });
  assert.deepEqual([st.rootVersion, st.targetsVersion, st.snapshotVersion, st.timestampVersion], [1, 1, 1, 1]);
  const files = await readdir(repos['main']!);
  for (const f of ['1.root.json', 'root.json', '1.targets.json', '1.snapshot.json', 'timestamp.json']) assert.ok(files.includes(f), f);
  const targetFiles = await readdir(join(repos['main']!, 'targets'));
  assert.ok(targetFiles.some((f) => /^[0-9a-f]{64}\.trusted_root\.json$/.test(f)));

  const rootPath = join(work, 'main-root-v1.json');
  await writeFile(rootPath, await repo.rootBytes(1));
  const mirror = `${server.url}/main`;
  const cache = join(work, 'cache-main');

  let tuf = await sigstoreClient(mirror, rootPath, cache);
  assert.equal(tagOf(await tuf.getTarget('trusted_root.json')), 'v1');
  assert.match(await tuf.getTarget('signing_config.v0.2.json'), /signingconfig\.v0\.2/);
  const parsed = await getTrustedRoot({ mirrorURL: mirror, rootPath, cachePath: cache, retry: false });
  assert.equal(parsed.mediaType, 'application/vnd.dev.sigstore.trustedroot+json;version=0.1');

  // Targets update: the same cache sees the new file.
  const st2 = await repo.addTargets({ 'trusted_root.json': trustedRoot('v2') });
  assert.deepEqual([st2.targetsVersion, st2.snapshotVersion, st2.timestampVersion], [2, 2, 2]);
  tuf = await sigstoreClient(mirror, rootPath, cache);
  assert.equal(tagOf(await tuf.getTarget('trusted_root.json')), 'v2');

  // Root rotation to entirely new root, targets and timestamp keys.
  const newRoot = [generateSigner('ecdsa-p256'), generateSigner('ed25519'), generateSigner('ecdsa-p256')];
  const newTimestamp = generateSigner('ed25519');
  const newTargets = generateSigner('ed25519');
  const st3 = await repo.rotateRoot({
    currentRootSigners: k.rootSigners,
    newRootSigners: newRoot,
    timestampSigner: newTimestamp,
    targetsSigner: newTargets,
  });
  assert.equal(st3.rootVersion, 2);
  assert.equal(st3.keyids.root.length, 3);
  await repo.addTargets({ 'trusted_root.json': trustedRoot('v3') });

  // A client with a warm cache (root v1) and a fresh client bootstrapped from root v1 both follow the rotation.
  tuf = await sigstoreClient(mirror, rootPath, cache);
  assert.equal(tagOf(await tuf.getTarget('trusted_root.json')), 'v3');
  const fresh = await sigstoreClient(mirror, rootPath, join(work, 'cache-main-fresh'));
  assert.equal(tagOf(await fresh.getTarget('trusted_root.json')), 'v3');

  // Second rotation with a 2-of-3 root threshold: two of the three v2 root keys suffice.
  await rejectsWithCode(repo.rotateRoot({ currentRootSigners: [newRoot[0]!] }), 'ERR_CONFIG', /needs 2 current root signer/);
  const st4 = await repo.rotateRoot({
    currentRootSigners: [newRoot[0]!, newRoot[2]!],
    newRootSigners: [newRoot[0]!, newRoot[2]!],
    thresholds: { root: 2 },
  });
  assert.equal(st4.rootVersion, 3);

  const trust = await loadTrustFromTuf({
    mirrorUrl: mirror,
    initialRoot: await repo.rootBytes(1),
    cacheDir: join(work, 'cache-ours'),
    retries: 0,
  });
  assert.equal(trust.rootVersion, 3);
  assert.equal(tagOf(new TextDecoder().decode(trust.trustedRoot)), 'v3');
  assert.equal(trust.signingConfigTarget, 'signing_config.v0.2.json');
  assert.deepEqual(trust.signingConfig, signingConfig);

  // Reopening the directory with the current online signers continues the version sequence.
  const reopened = new TufRepository(repos['main']!, {
    targetsSigner: newTargets,
    snapshotSigner: k.snapshotSigner,
    timestampSigner: newTimestamp,
  });
  const st5 = await reopened.refreshTimestamp();
  assert.equal(st5.timestampVersion, st4.timestampVersion + 1);
  // An online signer whose key is not in the root is refused before anything is written.
  const wrong = new TufRepository(repos['main']!, {
    targetsSigner: generateSigner('ed25519'),
    snapshotSigner: k.snapshotSigner,
    timestampSigner: newTimestamp,
  });
  await rejectsWithCode(wrong.addTargets({ x: enc.encode('x') }), 'ERR_CONFIG', /not a targets key/);
  await rejectsWithCode(repo.init(keys()), 'ERR_CONFLICT');
});

test('an expired timestamp is rejected by the TUF clients', async () => {
  const k = keys();
  // Metadata signed "ten days ago" with a one-day timestamp lifetime is expired now.
  const past = new Date(Date.now() - 10 * 86_400_000);
  const repo = new TufRepository(repos['expired']!, { now: () => past, expiries: { timestamp: 86_400 } });
  await repo.init({ ...k, targets: { 'trusted_root.json': trustedRoot('old') } });
  const rootPath = join(work, 'expired-root.json');
  await writeFile(rootPath, await repo.rootBytes());
  const mirror = `${server.url}/expired`;
  await assert.rejects(sigstoreClient(mirror, rootPath, join(work, 'cache-expired')), (e: Error) =>
    /timestamp\.json is expired/.test(`${e.message} ${(e.cause as Error | undefined)?.message ?? ''}`),
  );
  await rejectsWithCode(
    loadTrustFromTuf({ mirrorUrl: mirror, initialRoot: await repo.rootBytes(), cacheDir: join(work, 'cache-expired-ours'), retries: 0 }),
    'ERR_TUF',
    /timestamp\.json is expired/,
  );
  // Refreshing with a correct clock fixes it.
  const fixed = new TufRepository(repos['expired']!, {
    targetsSigner: k.targetsSigner,
    snapshotSigner: k.snapshotSigner,
    timestampSigner: k.timestampSigner,
  });
  const st = await fixed.refreshTimestamp();
  assert.ok(Date.parse(st.expires.timestamp) > Date.now());
  // The snapshot and targets (signed ten days ago, still valid) were kept; only timestamp moved.
  assert.deepEqual([st.targetsVersion, st.snapshotVersion, st.timestampVersion], [1, 1, 2]);
  const trust = await loadTrustFromTuf({
    mirrorUrl: mirror,
    initialRoot: await repo.rootBytes(),
    cacheDir: join(work, 'cache-expired-ours'),
    retries: 0,
  });
  assert.equal(tagOf(new TextDecoder().decode(trust.trustedRoot)), 'old');
});

test('a tampered target file is rejected', async () => {
  const repo = new TufRepository(repos['tamper']!);
  await repo.init({ ...keys(), targets: { 'trusted_root.json': trustedRoot('good') } });
  const dir = join(repos['tamper']!, 'targets');
  const [file] = (await readdir(dir)).filter((f) => f.endsWith('.trusted_root.json'));
  const original = await readFile(join(dir, file!));
  const evil = Buffer.from(original.toString('utf8').replace('good', 'evil'));
  await writeFile(join(dir, file!), evil);
  const rootPath = join(work, 'tamper-root.json');
  await writeFile(rootPath, await repo.rootBytes());
  const mirror = `${server.url}/tamper`;
  const tuf = await sigstoreClient(mirror, rootPath, join(work, 'cache-tamper'));
  await assert.rejects(
    tuf.getTarget('trusted_root.json'),
    (e: Error & { code?: string; cause?: Error }) => e.code === 'TUF_DOWNLOAD_TARGET_ERROR' && /Expected hash/.test(e.cause?.message ?? ''),
  );
  await rejectsWithCode(
    loadTrustFromTuf({ mirrorUrl: mirror, initialRoot: await repo.rootBytes(), cacheDir: join(work, 'cache-tamper-ours'), retries: 0 }),
    'ERR_TUF',
    /Expected hash/,
  );
  await rejectsWithCode(repo.readTarget('trusted_root.json'), 'ERR_TUF', /does not match its published hash/);
});

test('tampered targets metadata and a timestamp signed by a stranger are rejected', async () => {
  const repo = new TufRepository(repos['meta']!);
  await repo.init({ ...keys(), targets: { 'trusted_root.json': trustedRoot('good') } });
  const rootBytes = await repo.rootBytes();
  const mirror = `${server.url}/meta`;
  const path = join(repos['meta']!, '1.targets.json');
  const original = await readFile(path);

  // Changing a byte of the signed part: snapshot's hash and the signature both no longer match.
  const md = JSON.parse(original.toString('utf8')) as { signed: { targets: Record<string, { length: number }> } };
  md.signed.targets['trusted_root.json']!.length += 1;
  await writeFile(path, JSON.stringify(md));
  await rejectsWithCode(
    loadTrustFromTuf({ mirrorUrl: mirror, initialRoot: rootBytes, cacheDir: join(work, 'cache-meta-1'), retries: 0 }),
    'ERR_TUF',
    /targets/i,
  );
  await writeFile(path, original);
  const ok = await loadTrustFromTuf({ mirrorUrl: mirror, initialRoot: rootBytes, cacheDir: join(work, 'cache-meta-2'), retries: 0 });
  assert.equal(tagOf(new TextDecoder().decode(ok.trustedRoot)), 'good');

  // A well-formed timestamp with a higher version, signed by a key the root does not name.
  const tsPath = join(repos['meta']!, 'timestamp.json');
  const ts = parseMetadata(new Uint8Array(await readFile(tsPath)), 'timestamp');
  const { specVersion, expires, version, snapshotMeta } = ts.signed;
  const forged = await signMetadata(new Timestamp({ specVersion, expires, version: version + 5, snapshotMeta }), [
    generateSigner('ecdsa-p256'),
  ]);
  await writeFile(tsPath, encodeMetadata(forged));
  await rejectsWithCode(
    loadTrustFromTuf({ mirrorUrl: mirror, initialRoot: rootBytes, cacheDir: join(work, 'cache-meta-3'), retries: 0 }),
    'ERR_TUF',
    /timestamp was signed by 0\/1 keys/,
  );
  await writeFile(join(work, 'meta-root.json'), rootBytes);
  await assert.rejects(
    sigstoreClient(mirror, join(work, 'meta-root.json'), join(work, 'cache-meta-4')),
    /timestamp was signed by 0\/1 keys/,
  );
});

test('TufService serves only repository files, with content types and JSON 404s', async () => {
  const base = `${server.url}/main`;
  const res = await fetch(`${base}/1.root.json`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/json');
  assert.match(res.headers.get('cache-control') ?? '', /immutable/);
  assert.equal(((await res.json()) as { signed: { _type: string } }).signed._type, 'root');
  const ts = await fetch(`${base}/timestamp.json`);
  assert.equal(ts.status, 200);
  assert.doesNotMatch(ts.headers.get('cache-control') ?? '', /immutable/);
  await ts.arrayBuffer();
  const target = (await readdir(join(repos['main']!, 'targets')))[0]!;
  const t = await fetch(`${base}/targets/${target}`);
  assert.equal(t.status, 200);
  assert.equal(t.headers.get('content-type'), 'application/json');
  await t.arrayBuffer();
  const head = await fetch(`${base}/root.json`, { method: 'HEAD' });
  assert.equal(head.status, 200);

  // A symlink planted in the repository is not followed.
  await symlink('/etc/passwd', join(repos['main']!, '99.root.json'));

  for (const bogus of [
    '/99.root.json',
    '/1000.root.json',
    '/0.root.json',
    '/01.root.json',
    '/foo.json',
    '/targets',
    '/targets/',
    '/targets/trusted_root.json',
    `/targets/${'0'.repeat(64)}.trusted_root.json`,
    `/targets/${target}/x`,
    '/1.root.json/x',
    '/%2e%2e/package.json',
    '/..%2f..%2fetc%2fpasswd',
    '/targets/..%2f1.root.json',
    `/targets/${'a'.repeat(64)}..%2f..%2fpackage.json`,
    '/%00.json',
    '/',
    '',
  ]) {
    const r = await fetch(`${base}${bogus}`);
    assert.equal(r.status, 404, bogus);
    assert.equal(r.headers.get('content-type'), 'application/json', bogus);
    assert.equal(((await r.json()) as { code: string }).code, 'ERR_NOT_FOUND', bogus);
  }
  // Raw (un-normalised) traversal attempts never reach the handler with a dot segment.
  const raw = await import('node:http');
  const status = await new Promise<number>((resolve, reject) => {
    const req = raw.request({ host: '127.0.0.1', port: server.port, path: '/main/../../etc/passwd', method: 'GET' }, (r) => {
      r.resume();
      resolve(r.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(status, 404);
  const post = await fetch(`${base}/root.json`, { method: 'POST', body: '{}' });
  assert.equal(post.status, 405);
  await post.arrayBuffer();
});

test('loadTrustFromTuf reports an unreachable mirror and bad input clearly', async () => {
  const repo = new TufRepository(repos['main']!);
  const root = await repo.rootBytes(1);
  const dead = await serveServices([]);
  const deadUrl = dead.url;
  await dead.close();
  await rejectsWithCode(
    loadTrustFromTuf({ mirrorUrl: deadUrl, initialRoot: root, cacheDir: join(work, 'cache-dead'), retries: 0, timeoutMs: 2000 }),
    'ERR_UNAVAILABLE',
  );
  await rejectsWithCode(loadTrustFromTuf({ mirrorUrl: 'ftp://x', initialRoot: root, cacheDir: work }), 'ERR_CONFIG');
  await rejectsWithCode(loadTrustFromTuf({ mirrorUrl: server.url, initialRoot: enc.encode('{}'), cacheDir: work }), 'ERR_TUF');
  await rejectsWithCode(repo.addTargets({ '../evil': enc.encode('x') }), 'ERR_INVALID_INPUT');
});

test('the sigstore-js CLI reads our trusted root through --tuf-mirror-url/--tuf-root-path', async () => {
  // No signed bundle exists at this layer: an empty one must get past TUF and fail bundle
  // validation, which proves the CLI fetched and verified trusted_root.json from our mirror.
  const repo = new TufRepository(repos['main']!);
  const rootPath = join(work, 'cli-root.json');
  await writeFile(rootPath, await repo.rootBytes(1));
  const bundle = join(work, 'empty-bundle.json');
  await writeFile(bundle, JSON.stringify({ mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json' }));
  const cli = new URL('../../../node_modules/@sigstore/cli/bin/run', import.meta.url).pathname;
  const args = [
    cli,
    'verify',
    bundle,
    '--tuf-mirror-url',
    `${server.url}/main`,
    '--tuf-root-path',
    rootPath,
    '--tuf-cache-path',
    join(work, 'cache-cli'),
  ];
  const err = await promisify(execFile)(process.execPath, args, { timeout: 60_000 }).then(
    () => assert.fail('verification of an empty bundle succeeded'),
    (e: { stderr: string }) => e.stderr,
  );
  assert.match(err, /ValidationError: invalid bundle/);
  assert.doesNotMatch(err, /TUFError/);
  // Against the mirror whose trusted_root.json was tampered with, the same command fails in TUF.
  const args2 = [
    cli,
    'verify',
    bundle,
    '--tuf-mirror-url',
    `${server.url}/tamper`,
    '--tuf-root-path',
    join(work, 'tamper-root.json'),
    '--tuf-cache-path',
    join(work, 'cache-cli-2'),
  ];
  const err2 = await promisify(execFile)(process.execPath, args2, { timeout: 60_000 }).then(
    () => assert.fail('expected a TUF failure'),
    (e: { stderr: string }) => e.stderr,
  );
  assert.match(err2, /TUFError/);
});
