// The engine against a storage that fails: every LogStorage method, with a fault that persists
// then fails and one that fails without persisting, then random faults and crashes. Whatever
// happens, an acknowledged append is never lost, nothing is appended twice, every checkpoint a
// submitter is shown is already backed by durable entries and tiles, and after a fault the log
// either goes on (the fault touched one batch or one read) or stops, and a restart (the normal
// open path) recovers it. MemoryStorage records any breach of the storage contract.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rejectsWithCode } from '@waxseal/testkit';
import { WaxsealError } from '../../core/src/errors.ts';
import { utf8 } from '../../core/src/bytes.ts';
import { leafHash } from '../../core/src/merkle.ts';
import { generateSigner } from '../../keys/src/memory.ts';
import { TransparencyLog, type PublishedCheckpoint } from './log.ts';
import { MemoryStorage, type Fault, type StorageMethod } from './memory-storage.ts';
import { readTileResource } from './read-api.ts';

const signer = generateSigner('ed25519');
const dec = new TextDecoder();
const FAULTS: Fault[] = ['persist-then-fail', 'fail-without-persisting'];
const METHODS: StorageMethod[] = [
  'open',
  'committedSize',
  'commit',
  'findByLeafHash',
  'readEntries',
  'searchIndex',
  'readTile',
  'readEntryBundle',
  'writeTiles',
  'putCheckpoint',
  'latestCheckpoint',
  'close',
];

interface Run {
  log: TransparencyLog;
  stopped: () => boolean;
}

async function start(storage: MemoryStorage): Promise<Run> {
  let stopped = false;
  const log = await TransparencyLog.open({
    storage,
    signer,
    origin: 'faults.example.test',
    params: { instance: 'f' },
    entryMetadata: (ms) => utf8(String(ms)),
    checkpointExtra: async (tree) => utf8(`extra ${tree.size}`),
    batchSize: 16,
    batchMaxDelayMs: 0,
    onFatal: () => {
      stopped = true;
    },
  });
  return { log, stopped: () => stopped };
}

/** A restart after a crash, retried (after another crash) while opening fails. */
async function restart(storage: MemoryStorage, attempts = 1): Promise<{ storage: MemoryStorage; run: Run }> {
  for (let i = 0; ; i++) {
    storage = storage.crash();
    try {
      return { storage, run: await start(storage) };
    } catch (e) {
      assert.ok(e instanceof WaxsealError, String(e));
      if (i >= attempts) throw e;
    }
  }
}

/** What the submitters were told: an index per acknowledged body, and every checkpoint shown. */
class Submitters {
  readonly acked = new Map<string, number>();
  readonly seen: PublishedCheckpoint[] = [];
  readonly bodies = new Set<string>();

  async submit(log: TransparencyLog, storage: MemoryStorage, text: string): Promise<boolean> {
    this.bodies.add(text);
    let r;
    try {
      r = await log.add({ body: utf8(text), indexKeys: [utf8('all')] });
    } catch (e) {
      assert.ok(e instanceof WaxsealError, String(e));
      return false;
    }
    // What a submitter is shown must already be durable (checked before anything else runs).
    assert.deepEqual(await storage.checkPublished(r.checkpoint), []);
    assert.ok(r.checkpoint.size > r.index);
    const before = this.acked.get(text);
    if (before !== undefined) assert.equal(r.index, before, `${text} moved`);
    this.acked.set(text, r.index);
    this.seen.push(r.checkpoint);
    return true;
  }

  many(log: TransparencyLog, storage: MemoryStorage, prefix: string, n: number): Promise<boolean[]> {
    return Promise.all(Array.from({ length: n }, (_, i) => this.submit(log, storage, `${prefix}${i}`)));
  }

  /** The final state: every acknowledged body in place, each body once, every checkpoint seen consistent. */
  async verify(run: Run, storage: MemoryStorage): Promise<void> {
    for (const [text, index] of this.acked) assert.equal(dec.decode(storage.bodyAt(index)), text, `acknowledged ${text} lost`);
    // Resubmitting everything appends only what never made it, once.
    const again = await Promise.all([...this.bodies].map((text) => this.submit(run.log, storage, text)));
    assert.ok(again.every(Boolean), 'a resubmission was refused');
    assert.equal(storage.size, this.bodies.size);
    const stored = (await run.log.storage.readEntries(0, storage.size)).map((e) => dec.decode(e.body));
    assert.equal(new Set(stored).size, stored.length, 'an entry was appended twice');
    for (const cp of this.seen) assert.deepEqual(await run.log.rootAt(cp.size), cp.rootHash, `checkpoint ${cp.size} was not kept`);
    assert.deepEqual(storage.violations, []);
  }
}

/** Faults after which the serving log must stop (its state is unknown or ahead of storage). */
const STOPS = new Set([
  'commit/persist-then-fail',
  'writeTiles/persist-then-fail',
  'writeTiles/fail-without-persisting',
  'putCheckpoint/persist-then-fail',
  'putCheckpoint/fail-without-persisting',
]);

for (const method of METHODS) {
  for (const fault of FAULTS) {
    test(`storage fault in ${method} (${fault}): the log goes on or stops, and a restart recovers it`, async () => {
      let storage = new MemoryStorage();
      const subs = new Submitters();
      let run = await start(storage);
      // 300 entries: a full tile and a partial edge, so a restart reads stored tiles.
      assert.ok((await subs.many(run.log, storage, 'a', 300)).every(Boolean));

      // The fault strikes while the log serves reads and writes.
      storage.failNext(method, fault);
      const reads = await Promise.allSettled([
        run.log.entry(7),
        run.log.indexOfLeaf(leafHash(utf8('a7'))),
        run.log.storage.searchIndex(utf8('all'), 5),
        readTileResource(run.log, 'entries/000'),
        run.log.inclusionProof(3),
      ]);
      for (const r of reads) if (r.status === 'rejected') assert.ok(r.reason instanceof WaxsealError, String(r.reason));
      const written = await subs.many(run.log, storage, 'b', 40);
      assert.equal(run.stopped(), STOPS.has(`${method}/${fault}`));
      if (run.stopped()) await rejectsWithCode(run.log.add({ body: utf8('after the stop') }), 'ERR_UNAVAILABLE');
      // Going on: at most the batch the fault hit failed.
      else assert.ok(written.filter(Boolean).length >= 39, `${written.filter((w) => !w).length} appends failed`);

      // A crash and a restart, retried once if the fault strikes while opening.
      ({ storage, run } = await restart(storage));
      assert.ok((await subs.many(run.log, storage, 'c', 20)).every(Boolean));
      // A clean stop (the fault may strike here), then a last restart.
      await run.log.close().catch((e: unknown) => assert.ok(e instanceof WaxsealError, String(e)));
      ({ storage, run } = await restart(storage, 0));
      assert.deepEqual(
        storage.injected.map((i) => `${i.method}/${i.fault}`),
        [`${method}/${fault}`],
      );
      await subs.verify(run, storage);
      await run.log.close();
    });
  }
}

test('a commit that persisted but failed stops the log; the restart integrates it once', async () => {
  let storage = new MemoryStorage();
  const subs = new Submitters();
  let run = await start(storage);
  assert.ok((await subs.many(run.log, storage, 'a', 10)).every(Boolean));
  storage.failNext('commit', 'persist-then-fail');
  // b0 commits alone (the pool was empty); its answer is an error although it is in storage.
  const b = await subs.many(run.log, storage, 'b', 10);
  assert.deepEqual(b, Array(10).fill(false));
  assert.equal(run.stopped(), true);
  assert.equal(storage.size, 11);
  assert.equal(run.log.checkpoint.size, 10);
  ({ storage, run } = await restart(storage, 0));
  assert.equal(run.log.checkpoint.size, 11);
  const again = await run.log.add({ body: utf8('b0') });
  assert.equal(again.duplicate, true);
  assert.equal(again.index, 10);
  await subs.verify(run, storage);
  assert.equal(storage.size, 20);
  await run.log.close();
});

/** A small deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('random faults and crashes mid-flight: no acknowledged append is lost, none is appended twice', async () => {
  const rand = prng(20240611);
  let storage = new MemoryStorage();
  storage.faults = () => (rand() < 0.05 ? (rand() < 0.5 ? 'persist-then-fail' : 'fail-without-persisting') : undefined);
  const subs = new Submitters();
  let stops = 0;
  let crashesInFlight = 0;
  for (let round = 0; round < 16; round++) {
    let run: Run;
    ({ storage, run } = await restart(storage, 50));
    const pending = [
      ...Array.from({ length: 40 }, (_, i) => subs.submit(run.log, storage, `r${round}-${i}`)),
      // Some resubmissions of earlier bodies (duplicates, or retries of failed ones).
      ...[...subs.bodies].filter(() => rand() < 0.02).map((t) => subs.submit(run.log, storage, t)),
    ];
    if (round % 3 === 2) {
      // Power cut while appends are in flight: the dead process's later storage calls fail.
      await pending[10];
      storage = storage.crash();
      crashesInFlight++;
    }
    await Promise.all(pending);
    if (run.stopped()) stops++;
    else if (round % 3 !== 2) await run.log.close().catch((e: unknown) => assert.ok(e instanceof WaxsealError, String(e)));
  }
  storage.faults = undefined;
  const { storage: last, run } = await restart(storage, 0);
  assert.ok(last.injected.length >= 10, `only ${last.injected.length} faults struck`);
  assert.ok(stops > 0 && crashesInFlight > 0);
  assert.ok(subs.acked.size > 200, `only ${subs.acked.size} acknowledged`);
  await subs.verify(run, last);
  await run.log.close();
});

test('the memory storage records breaches of the contract', async () => {
  const storage = new MemoryStorage();
  await storage.open({ origin: 'o', publicKey: 'k', createdAt: '', params: {} });
  const e = (s: string) => ({ leafHash: leafHash(utf8(s)), body: utf8(s), metadata: new Uint8Array(0) });
  await storage.commit(0, [e('x'), e('y')]);
  // An append over an existing entry is refused and recorded.
  await rejectsWithCode(storage.commit(1, [e('z')]), 'ERR_LOG_INCONSISTENT');
  // Tile bytes are immutable; level-0 hashes must be committed leaves.
  await storage.writeTiles([{ level: 0, index: 0, data: leafHash(utf8('x')) }], []);
  await storage.writeTiles([{ level: 0, index: 0, data: leafHash(utf8('y')) }], []);
  // A checkpoint the stored data does not back.
  assert.ok((await storage.checkPublished({ size: 2, rootHash: new Uint8Array(32) })).length > 0);
  const v = storage.violations.map((m) => m.replace(/:.*/, ''));
  assert.deepEqual(v.slice(0, 3), [
    'commit at 1 would rewrite entries (the log holds 2)',
    'tile 0/0',
    'tile 0/0 rewritten with different bytes',
  ]);
  assert.ok(v.length > 3 && v.slice(3).every((m) => m === 'published checkpoint 2'));
  // A crashed writer's handle is dead; the restarted one sees the durable state and the recorded identity.
  const next = storage.crash();
  await rejectsWithCode(storage.committedSize(), 'ERR_IO');
  assert.equal((await next.open({ origin: 'other', publicKey: 'k2', createdAt: '', params: {} })).origin, 'o');
  assert.equal(await next.committedSize(), 2);
});
