// Crash safety: the log runs as a child process under concurrent appends and is SIGKILLed at
// random moments, five times: each round kills it as soon as a random number of entries has been
// acknowledged, with other appends still in flight (an event to wait for, not a sleep). After
// each restart every acknowledged entry must still be there, and at the end fsck passes and every
// checkpoint a client saw is consistent with the final one. Throughput is bench/log.bench.ts's job.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { spawnListening } from '@waxseal/testkit';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { leafHash, verifyConsistency } from '../../core/src/merkle.ts';
import { parseCheckpoint, parseSignedNote } from '../../core/src/note.ts';
import { bytesEqual } from '../../core/src/bytes.ts';
import { fsckLog } from '../../tlog/src/fsck.ts';
import { SqliteFileStorage } from '../../tlog/src/sqlite.ts';
import { p256Key, hashedRekordV2, post, get } from './helpers.ts';

const SERVER = new URL('../../../bench/servers/log.ts', import.meta.url).pathname;

function start(dir: string): Promise<{ child: ChildProcess; url: string }> {
  return spawnListening(
    SERVER,
    ['--data-dir', dir, '--hostname', 'log.waxseal.test', '--tree-id', '77', '--batch-size', '32', '--batch-delay-ms', '3'],
    { stderr: 'pipe', timeoutMs: 20_000, name: 'log' },
  );
}

interface Acked {
  index: number;
  leafHash: Uint8Array;
}

test('acknowledged entries survive repeated SIGKILL; fsck passes; all seen checkpoints are consistent', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wx-crash-'));
  const acked: Acked[] = [];
  const seen = new Map<string, { size: number; root: Uint8Array }>();
  let counter = 0;
  const key = p256Key();
  try {
    for (let round = 0; round < 5; round++) {
      const { child, url } = await start(dir);
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      let alive = true;
      // Kill after the target-th acknowledgement of this round (5-60, random), mid-stream.
      const target = 5 + Math.floor(Math.random() * 56);
      let ackedThisRound = 0;
      let reached!: () => void;
      const killNow = new Promise<void>((r) => (reached = r));
      const client = async () => {
        while (alive) {
          const data = `crash entry ${counter++}`;
          let r;
          try {
            r = await post(`${url}/api/v2/log/entries`, hashedRekordV2(key, data));
          } catch {
            return; // connection dropped by the kill: not acknowledged
          }
          if (r.status !== 201) continue;
          const body = Buffer.from(r.json.canonicalizedBody, 'base64');
          acked.push({ index: Number(r.json.logIndex), leafHash: leafHash(body) });
          if (++ackedThisRound === target) reached();
          const note = r.json.inclusionProof.checkpoint.envelope as string;
          const cp = parseCheckpoint(parseSignedNote(note).text);
          seen.set(`${cp.size}`, { size: cp.size, root: cp.rootHash });
        }
      };
      const clients = Array.from({ length: 12 }, client);
      // The log stopping on its own (or every client giving up) ends the wait too, and fails the
      // round; the test's own timeout bounds the wait.
      const why = await Promise.race([
        killNow.then(() => 'acknowledged'),
        exited.then(() => 'the log exited'),
        Promise.all(clients).then(() => 'the clients stopped'),
      ]);
      child.kill('SIGKILL');
      alive = false;
      await exited;
      await Promise.all(clients);
      assert.equal(why, 'acknowledged', `round ${round}: ${ackedThisRound} of ${target} entries acknowledged`);
    }

    // Restart once more: recovery publishes everything committed; proofs from every checkpoint seen.
    const { child, url } = await start(dir);
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const info = (await get(`${url}/api/v1/log`)).json;
    const finalSize = info.treeSize as number;
    const finalRoot = Buffer.from(info.rootHash, 'hex');
    for (const { size, root } of seen.values()) {
      assert.ok(size <= finalSize);
      if (size === 0) continue;
      const p = await get(`${url}/api/v1/log/proof?firstSize=${size}&lastSize=${finalSize}`);
      assert.equal(p.status, 200);
      assert.ok(
        verifyConsistency(
          size,
          finalSize,
          root,
          finalRoot,
          p.json.hashes.map((h: string) => Buffer.from(h, 'hex')),
        ),
        `checkpoint ${size} is consistent with ${finalSize}`,
      );
    }
    child.kill('SIGTERM');
    await exited;

    // Every acknowledged entry is at its index.
    const storage = new SqliteFileStorage(dir, { readOnly: true });
    await storage.open({ origin: '', publicKey: '', createdAt: '', params: {} });
    const rows = await storage.readEntries(0, finalSize);
    await storage.close();
    for (const a of acked)
      assert.ok(rows[a.index] && bytesEqual(rows[a.index]!.leafHash, a.leafHash), `acknowledged entry ${a.index} is present`);
    const report = await fsckLog(dir);
    assert.equal(report.ok, true, report.errors.join('\n'));
    assert.equal(report.publishedSize, finalSize);
    assert.equal(report.entries, finalSize);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
