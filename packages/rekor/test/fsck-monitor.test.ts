// fsck finds corrupted tiles, bundles and entries; the monitor follows a log, reports watched
// identities and digests, and detects a forked log served under the same key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { fsckLog } from '../../tlog/src/fsck.ts';
import { monitorLog, monitorExitCode } from '../src/monitor.ts';
import { generateSigner } from '../../keys/src/memory.ts';
import { toHex } from '../../core/src/bytes.ts';
import { startTestLog, post, p256Key, hashedRekordV2, hashedRekordV1, sha256, testCa, certPem } from './helpers.ts';

async function fill(url: string, n: number, tag: string): Promise<void> {
  const k = p256Key();
  const rs = await Promise.all(Array.from({ length: n }, (_, i) => post(`${url}/api/v2/log/entries`, hashedRekordV2(k, `${tag} ${i}`))));
  assert.ok(rs.every((r) => r.status === 201));
}

test('fsck passes on a healthy log and reports corrupted tiles, bundles and entries', async () => {
  const log = await startTestLog();
  await fill(log.url, 300, 'fsck');
  const dir = log.dir;
  await log.stop();
  try {
    const ok = await fsckLog(dir);
    assert.equal(ok.ok, true, ok.errors.join('\n'));
    assert.equal(ok.entries, 300);
    assert.equal(ok.publishedSize, 300);
    assert.ok(ok.checkpointsChecked >= 1);
    assert.ok(ok.tilesChecked >= 3);
    assert.equal(ok.bundlesChecked, 2);

    // One flipped bit in a full level-0 tile.
    const tile = join(dir, 'tile', '0', '000');
    const original = readFileSync(tile);
    const bad = Buffer.from(original);
    bad[1000]! ^= 1;
    writeFileSync(tile, bad);
    const r1 = await fsckLog(dir);
    assert.equal(r1.ok, false);
    assert.ok(
      r1.errors.some((e) => e.startsWith('tile 0/0')),
      r1.errors.join('\n'),
    );
    writeFileSync(tile, original);

    // A truncated partial tile and a tampered entry bundle.
    const partial = join(dir, 'tile', '0', '001');
    const p = readFileSync(partial);
    writeFileSync(partial, p.subarray(0, 64));
    const bundle = join(dir, 'tile', 'entries', '000');
    const b = readFileSync(bundle);
    const tampered = Buffer.from(b);
    tampered[tampered.length - 3]! ^= 0x20;
    writeFileSync(bundle, tampered);
    const r2 = await fsckLog(dir);
    assert.ok(
      r2.errors.some((e) => e.startsWith('tile 0/1')),
      r2.errors.join('\n'),
    );
    assert.ok(
      r2.errors.some((e) => e.startsWith('entry bundle 0')),
      r2.errors.join('\n'),
    );
    writeFileSync(partial, p);
    writeFileSync(bundle, b);
    assert.equal((await fsckLog(dir)).ok, true);

    // An entry body changed in the database.
    const db = new DatabaseSync(join(dir, 'log.db'));
    db.prepare('UPDATE entries SET body = ? WHERE idx = 7').run(Buffer.from('{"forged":true}'));
    db.close();
    const r3 = await fsckLog(dir);
    assert.equal(r3.ok, false);
    assert.ok(
      r3.errors.some((e) => e.includes('entry 7')),
      r3.errors.join('\n'),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('monitor follows the log, matches identities and digests, and keeps its state', async () => {
  const ca = await testCa();
  const log = await startTestLog();
  const state = join(mkdtempSync(join(tmpdir(), 'wx-mon-')), 'state.json');
  try {
    await fill(log.url, 20, 'before');
    const first = await monitorLog({ url: log.url, stateFile: state, once: true });
    assert.equal(first.ok, true, first.error);
    assert.equal(first.size, 20);
    assert.ok(first.warnings.some((w) => /first use/.test(w)));
    const k = p256Key();
    const leaf = await ca.leaf(k, 'release-bot@example.com');
    assert.equal(
      (await post(`${log.url}/api/v2/log/entries`, hashedRekordV2(k, 'watched artifact', { x509Certificate: leaf.der }))).status,
      201,
    );
    assert.equal((await post(`${log.url}/api/v1/log/entries`, hashedRekordV1(k, 'v1 watched', certPem(leaf)))).status, 201);
    await fill(log.url, 300, 'after');
    const second = await monitorLog({
      url: log.url,
      stateFile: state,
      once: true,
      watchIdentities: ['^release-bot@'],
      watchDigests: [toHex(sha256('after 7'))],
    });
    assert.equal(second.ok, true, second.error);
    assert.equal(second.previousSize, 20);
    assert.equal(second.size, 322);
    assert.equal(second.newEntries, 302);
    const reasons = second.matches.flatMap((m) => m.reasons).sort();
    assert.deepEqual(reasons, [
      `digest:sha256:${toHex(sha256('after 7'))}`,
      'identity:release-bot@example.com',
      'identity:release-bot@example.com',
    ]);
    assert.equal(JSON.parse(readFileSync(state, 'utf8')).size, 322);
    assert.equal(monitorExitCode(second), 0);
  } finally {
    await log.close();
    rmSync(join(state, '..'), { recursive: true, force: true });
  }
});

test('monitor detects a second log with a different history under the same key and exits non-zero', async () => {
  const signer = generateSigner('ed25519');
  const a = await startTestLog({ signer });
  const b = await startTestLog({ signer });
  const state = join(mkdtempSync(join(tmpdir(), 'wx-mon-')), 'state.json');
  try {
    await fill(a.url, 30, 'history A');
    await fill(b.url, 45, 'history B');
    const onA = await monitorLog({ url: a.url, stateFile: state, once: true });
    assert.equal(onA.ok, true, onA.error);
    // Same key, same origin, a longer but different tree: not consistent with what we verified.
    const onB = await monitorLog({ url: b.url, stateFile: state, once: true });
    assert.equal(onB.ok, false);
    assert.equal(onB.inconsistent, true);
    assert.match(onB.error!, /not consistent|forked/);
    assert.equal(monitorExitCode(onB), 1);
    assert.equal(JSON.parse(readFileSync(state, 'utf8')).size, 30, 'state keeps the last verified checkpoint');
    // Same size, different root.
    await fill(a.url, 15, 'more A');
    const state2 = `${state}.2`;
    assert.equal((await monitorLog({ url: a.url, stateFile: state2, once: true })).size, 45);
    const fork = await monitorLog({ url: b.url, stateFile: state2, once: true });
    assert.equal(fork.inconsistent, true);
    // A checkpoint signed by another key is refused.
    const c = await startTestLog();
    try {
      const other = await monitorLog({ url: c.url, stateFile: state, once: true });
      assert.equal(other.ok, false);
      assert.notEqual(monitorExitCode(other), 0);
    } finally {
      await c.close();
    }
  } finally {
    await a.close();
    await b.close();
    rmSync(join(state, '..'), { recursive: true, force: true });
  }
});
