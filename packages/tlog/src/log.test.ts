import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rejectsWithCode } from '@waxseal/testkit';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSigner } from '../../keys/src/memory.ts';
import { leafHash, verifyInclusion, verifyConsistency, rootFromLeafHashes } from '../../core/src/merkle.ts';
import { utf8 } from '../../core/src/bytes.ts';
import { TransparencyLog } from './log.ts';
import { SqliteFileStorage } from './sqlite.ts';
import { verifyCheckpointNote } from './checkpoint.ts';
import { decodeEntryBundle } from './tiles.ts';

const signer = generateSigner('ed25519');

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'wx-tlog-'));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const open = (dir: string, extra: Partial<Parameters<typeof TransparencyLog.open>[0]> = {}) =>
  TransparencyLog.open({
    storage: new SqliteFileStorage(dir),
    signer,
    origin: 'log.example.test',
    // A stand-in personality: the engine stores these bytes without reading them.
    params: { instance: '42' },
    entryMetadata: (ms) => utf8(`t=${ms}`),
    checkpointExtra: async (tree, identity) => utf8(`${identity.params.instance}:${tree.size}`),
    batchSize: 64,
    batchMaxDelayMs: 5,
    onFatal: () => {},
    ...extra,
  });

test('appends are sequenced, deduplicated, proven and recovered', async () => {
  await withDir(async (dir) => {
    const log = await open(dir);
    assert.equal(log.checkpoint.size, 0);
    const bodies = Array.from({ length: 600 }, (_, i) => utf8(`entry-${i}`));
    const results = await Promise.all(bodies.map((body) => log.add({ body, indexKeys: [utf8(`k${i(body)}`)] })));
    function i(b: Uint8Array): string {
      return new TextDecoder().decode(b).slice(6);
    }
    const indexes = results.map((r) => r.index).sort((a, b) => a - b);
    assert.deepEqual(indexes, [...Array(600).keys()]);
    for (const r of results.slice(0, 50)) {
      const cp = r.checkpoint;
      assert.ok(cp.size > r.index);
      const parsed = verifyCheckpointNote(cp.note, 'log.example.test', log.ids.key);
      assert.equal(parsed.size, cp.size);
      assert.equal(new TextDecoder().decode(cp.extra), `42:${cp.size}`);
      assert.match(new TextDecoder().decode(r.metadata), /^t=\d+$/);
      assert.ok(verifyInclusion(r.index, cp.size, r.leafHash, await log.inclusionProof(r.index, cp.size), cp.rootHash));
    }
    // Duplicates resolve to the existing index, both while in flight and afterwards.
    const again = await Promise.all([log.add({ body: bodies[3]! }), log.add({ body: utf8('fresh') }), log.add({ body: utf8('fresh') })]);
    assert.equal(again[0].duplicate, true);
    assert.equal(again[0].index, results[3]!.index);
    assert.equal(again[1].index, again[2].index);
    assert.notEqual(again[1].duplicate, again[2].duplicate);
    assert.deepEqual(await log.storage.searchIndex(utf8('k7'), 10), [results[7]!.index]);
    assert.deepEqual((await log.entry(results[7]!.index))!.metadata, results[7]!.metadata);
    const size = log.checkpoint.size;
    assert.equal(size, 601);
    const root = log.checkpoint.rootHash;
    // Entry bundles hold the bodies in index order.
    const bundle0 = decodeEntryBundle((await log.storage.readEntryBundle(0))!);
    assert.equal(bundle0.length, 256);
    const byIndex = new Map(results.map((r, k) => [r.index, bodies[k]!]));
    assert.deepEqual(bundle0[5], byIndex.get(5));
    await log.close();
    assert.equal(
      readFileSync(join(dir, 'checkpoint'), 'utf8'),
      await (async () => {
        const s = new SqliteFileStorage(dir, { readOnly: true });
        await s.open({ origin: '', publicKey: '', createdAt: '', params: {} });
        const c = (await s.latestCheckpoint())!.note;
        await s.close();
        return c;
      })(),
    );

    // Reopen: same tree, consistent growth.
    const log2 = await open(dir);
    assert.equal(log2.checkpoint.size, size);
    assert.deepEqual(log2.checkpoint.rootHash, root);
    const more = await log2.add({ body: utf8('after restart') });
    assert.equal(more.index, size);
    assert.ok(verifyConsistency(size, more.checkpoint.size, root, more.checkpoint.rootHash, await log2.consistencyProof(size)));
    await log2.close();
  });
});

test('committed but unintegrated entries are integrated and published on open', async () => {
  await withDir(async (dir) => {
    const log = await open(dir);
    await log.add({ body: utf8('a') });
    await log.close();
    // Simulate a crash right after a commit: entries in the database, no tiles, no checkpoint.
    const st = new SqliteFileStorage(dir);
    const id = await st.open({
      origin: 'log.example.test',
      publicKey: Buffer.from(signer.publicKeySpki).toString('base64'),
      createdAt: '',
      params: {},
    });
    assert.equal(id.params.instance, '42');
    const bodies = Array.from({ length: 300 }, (_, i) => utf8(`late-${i}`));
    await st.commit(
      1,
      bodies.map((b) => ({ leafHash: leafHash(b), body: b, metadata: utf8('late') })),
    );
    await rejectsWithCode(
      st.commit(1, [{ leafHash: leafHash(utf8('x')), body: utf8('x'), metadata: utf8('') }]),
      'ERR_LOG_INCONSISTENT',
      /commit at 1/,
    );
    await st.close();
    const log2 = await open(dir);
    assert.equal(log2.checkpoint.size, 301);
    assert.deepEqual(log2.checkpoint.rootHash, rootFromLeafHashes([leafHash(utf8('a')), ...bodies.map(leafHash)]));
    await log2.close();
  });
});

test('a data directory refuses a second writer and a different key', async () => {
  await withDir(async (dir) => {
    const log = await open(dir);
    await rejectsWithCode(open(dir), 'ERR_CONFIG', /in use by another process/);
    await log.close();
    await rejectsWithCode(open(dir, { signer: generateSigner('ecdsa-p256') }), 'ERR_CONFIG', {
      message: /created with publicKey /,
      detail: { identity: 'publicKey' },
    });
    await rejectsWithCode(open(dir, { params: { instance: '43' } }), 'ERR_CONFIG', {
      message: /created with instance "42", not "43"/,
      detail: { identity: 'instance', given: '43' },
    });
  });
});

test('checkpoint interval coalesces batches into fewer checkpoints', async () => {
  await withDir(async (dir) => {
    // An interval no test run outlasts, counted from the checkpoint published at open: the ten
    // batches of 4 all wait for it, and close() publishes them as one. No clock decides the count.
    const log = await open(dir, { checkpointIntervalMs: 3_600_000, batchSize: 4, batchMaxDelayMs: 1 });
    const adds = Array.from({ length: 40 }, (_, i) => log.add({ body: utf8(`c${i}`) }));
    await log.close();
    const sizes = new Set((await Promise.all(adds)).map((r) => r.checkpoint.size));
    assert.deepEqual([...sizes], [40]);
  });
});
