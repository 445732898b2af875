// What TufRepository writes, checked by TUF's own code rather than ours: every file on disk is
// parsed and verified with @tufjs/models (Metadata.fromJSON, verifyDelegate, isExpired,
// MetaFile/TargetFile.verify), and tampered roles are refused by the tuf-js Updater.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata, MetadataKind, type Root, type Snapshot, type Targets, type Timestamp } from '@tufjs/models';
import { Updater } from 'tuf-js';
import { throwsWithCode } from '@waxseal/testkit';
import { generateSigner } from '../../keys/src/memory.ts';
import { serveServices } from '../../server/src/service.ts';
import type { RunningServer } from '../../server/src/http.ts';
import { TufRepository, TufService, formatExpires, parseMetadata, verifyThreshold, type TufExpiries } from '../src/tuf/index.ts';

const DAY = 86_400;
const LIFETIMES: TufExpiries = { root: 100 * DAY, targets: 50 * DAY, snapshot: 20 * DAY, timestamp: 2 * DAY };
// Whole seconds, so expiries computed from it are exact.
const NOW = new Date(Math.floor(Date.now() / 1000) * 1000);

let dir: string;
let server: RunningServer;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'waxseal-tuf-models-'));
  server = await serveServices([new TufService({ directory: join(dir, 'repo'), prefix: '/repo' })]);
});

after(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

const repoDir = () => join(dir, 'repo');
const json = async (name: string) => JSON.parse(await readFile(join(repoDir(), name), 'utf8'));
const load = {
  root: async (name: string) => Metadata.fromJSON(MetadataKind.Root, await json(name)),
  targets: async (name: string) => Metadata.fromJSON(MetadataKind.Targets, await json(name)),
  snapshot: async (name: string) => Metadata.fromJSON(MetadataKind.Snapshot, await json(name)),
  timestamp: async (name: string) => Metadata.fromJSON(MetadataKind.Timestamp, await json(name)),
};

function checkExpiry(md: Metadata<Root | Targets | Snapshot | Timestamp>, lifetime: number): void {
  const end = NOW.getTime() + lifetime * 1000;
  assert.equal(md.signed.expires, formatExpires(new Date(end)));
  assert.equal(md.signed.isExpired(NOW), false);
  assert.equal(md.signed.isExpired(new Date(end - 1000)), false);
  assert.equal(md.signed.isExpired(new Date(end)), true);
}

test('every role written by TufRepository verifies with @tufjs/models (threshold, expiry, hashes)', async () => {
  const oldRoot = [generateSigner('ed25519'), generateSigner('ecdsa-p256'), generateSigner('ecdsa-p384')];
  const newRoot = [generateSigner('ecdsa-p256'), generateSigner('ed25519'), generateSigner('ed25519')];
  const online = {
    targetsSigner: generateSigner('ecdsa-p256'),
    snapshotSigner: generateSigner('ed25519'),
    timestampSigner: generateSigner('ed25519'),
  };
  const repo = new TufRepository(repoDir(), { now: () => NOW, expiries: LIFETIMES });
  await repo.init({ rootSigners: oldRoot, ...online, targets: { 'trusted_root.json': new TextEncoder().encode('{"v":1}') } });
  await repo.rotateRoot({ currentRootSigners: oldRoot.slice(0, 2), newRootSigners: newRoot, thresholds: { root: 2 } });
  const custom = { sigstore: { status: 'Active', usage: 'Unknown' } };
  await repo.addTargets({ 'trusted_root.json': new TextEncoder().encode('{"v":2}') }, { custom: { 'trusted_root.json': custom } });

  // Root chain: v1 signs itself (2 of 3 by default), v2 is signed by a threshold of v1's keys and of its own.
  const root1 = await load.root('1.root.json');
  const root2 = await load.root('2.root.json');
  assert.deepEqual([root1.signed.roles['root']!.threshold, root2.signed.roles['root']!.threshold], [2, 2]);
  root1.verifyDelegate('root', root1);
  root1.verifyDelegate('root', root2);
  root2.verifyDelegate('root', root2);
  assert.deepEqual(await readFile(join(repoDir(), 'root.json')), await readFile(join(repoDir(), '2.root.json')));

  // Online roles: the v1 files under root v1, the current ones under root v2.
  root1.verifyDelegate('targets', await load.targets('1.targets.json'));
  root1.verifyDelegate('snapshot', await load.snapshot('1.snapshot.json'));
  const targets = await load.targets('targets.json');
  const snapshot = await load.snapshot('snapshot.json');
  const timestamp = await load.timestamp('timestamp.json');
  assert.deepEqual([targets.signed.version, snapshot.signed.version, timestamp.signed.version], [3, 3, 3]);
  root2.verifyDelegate('targets', targets);
  root2.verifyDelegate('snapshot', snapshot);
  root2.verifyDelegate('timestamp', timestamp);
  // Root v1 no longer vouches for the root role once its keys are gone.
  assert.throws(() => root2.verifyDelegate('root', root1), /root was signed by 0\/2 keys/);

  for (const [md, life] of [
    [root2, LIFETIMES.root],
    [targets, LIFETIMES.targets],
    [snapshot, LIFETIMES.snapshot],
    [timestamp, LIFETIMES.timestamp],
  ] as const) {
    checkExpiry(md, life);
  }

  // The hashes and lengths each role publishes match the bytes on disk.
  timestamp.signed.snapshotMeta.verify(await readFile(join(repoDir(), `${timestamp.signed.snapshotMeta.version}.snapshot.json`)));
  const targetsMeta = snapshot.signed.meta['targets.json']!;
  targetsMeta.verify(await readFile(join(repoDir(), `${targetsMeta.version}.targets.json`)));
  const target = targets.signed.targets['trusted_root.json']!;
  assert.deepEqual(target.custom, custom);
  await target.verify(createReadStream(join(repoDir(), 'targets', `${target.hashes['sha256']}.trusted_root.json`)));

  // Below threshold: root v2 with one of its two signatures left is refused by the models and by us.
  const one = await json('2.root.json');
  const v2RootKeys = root2.signed.roles['root']!.keyIDs;
  one.signatures = one.signatures.filter((sig: { keyid: string }) => v2RootKeys.includes(sig.keyid)).slice(0, 1);
  const weak = Metadata.fromJSON(MetadataKind.Root, one);
  assert.throws(() => root2.verifyDelegate('root', weak), /root was signed by 1\/2 keys/);
  const weakOurs = parseMetadata(new TextEncoder().encode(JSON.stringify(one)), 'root');
  throwsWithCode(() => verifyThreshold(root2, 'root', weakOurs, 'root v2'), 'ERR_TUF', /signed by 1\/2 keys/);
});

/** A fresh tuf-js client bootstrapped from root v1; returns the trusted_root.json it fetched. */
async function tufJsFetch(cache: string): Promise<string> {
  const metadataDir = join(dir, cache);
  await mkdir(join(metadataDir, 'targets'), { recursive: true });
  await writeFile(join(metadataDir, 'root.json'), await readFile(join(repoDir(), '1.root.json')));
  const updater = new Updater({
    metadataBaseUrl: `${server.url}/repo`,
    targetBaseUrl: `${server.url}/repo/targets`,
    metadataDir,
    targetDir: join(metadataDir, 'targets'),
    config: { fetchRetry: 0 },
  });
  await updater.refresh();
  const info = await updater.getTargetInfo('trusted_root.json');
  assert.ok(info);
  return readFile(await updater.downloadTarget(info), 'utf8');
}

/** Rewrites a metadata file's signed part, keeping its (now stale) signatures. */
async function tamper(name: string, edit: (signed: Record<string, unknown>) => void): Promise<() => Promise<void>> {
  const path = join(repoDir(), name);
  const original = await readFile(path);
  const md = JSON.parse(original.toString('utf8'));
  edit(md.signed);
  await writeFile(path, JSON.stringify(md));
  return () => writeFile(path, original);
}

test('tuf-js refuses a tampered timestamp and a tampered root, and reads the untouched repository', async () => {
  // The repository is the one the previous test built (root rotated to v2, targets v3).
  assert.equal(await tufJsFetch('cache-ok'), '{"v":2}');

  const later = formatExpires(new Date(NOW.getTime() + 5 * DAY * 1000));
  let restore = await tamper('timestamp.json', (s) => {
    s['expires'] = later;
  });
  await assert.rejects(
    tufJsFetch('cache-ts'),
    (e: Error) => e.constructor.name === 'UnsignedMetadataError' && /timestamp was signed by 0\/1 keys/.test(e.message),
  );
  await restore();

  restore = await tamper('2.root.json', (s) => {
    s['expires'] = later;
  });
  await assert.rejects(
    tufJsFetch('cache-root'),
    (e: Error) => e.constructor.name === 'UnsignedMetadataError' && /root was signed by 0\/2 keys/.test(e.message),
  );
  await restore();

  assert.equal(await tufJsFetch('cache-again'), '{"v":2}');
});
