// The audit log of a dev instance through the `waxseal audit` commands a user runs: timestamps
// recorded, an archive exported (signed with the instance's TSA key), the log pruned with it, and
// `audit verify` passing from the signed anchor against the instance's trusted_root.json, then
// failing once that anchor is removed or altered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { encodeTimeStampReq } from '../../../packages/tsa/src/timestamp.ts';
import { sha256 } from '@waxseal/core';
import { startDevStack } from '../src/dev/devstack.ts';

const CLI = new URL('../../cli/src/main.ts', import.meta.url).pathname;

function waxseal(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

test('export, prune and verify a dev instance audit log from its signed anchor', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wx-instance-audit-'));
  const data = join(dir, 'instance');
  try {
    const stack = await startDevStack({ dataDir: data, port: 0, log: false });
    try {
      for (let i = 0; i < 5; i++) {
        const res = await fetch(stack.tsaUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/timestamp-query' },
          body: encodeTimeStampReq({ hash: 'sha256', hashedMessage: sha256(randomBytes(32)), certReq: true }),
        });
        assert.equal(res.status, 200);
        await res.arrayBuffer();
      }
    } finally {
      await stack.close();
    }
    const cut = new Date(Date.now() + 1000).toISOString();
    const archive = join(dir, 'archive.jsonl');
    const exported = await waxseal(['audit', 'export', '--data', data, '--before', cut, '--out', archive, '--json']);
    assert.equal(exported.code, 0, exported.stderr);
    const ex = JSON.parse(exported.stdout) as { records: number; signed?: { event: string } };
    assert.ok(ex.records >= 5);
    assert.equal(ex.signed?.event, 'export', 'the archive carries a signed anchor (the dev TSA key)');

    const pruned = await waxseal(['audit', 'prune', '--data', data, '--before', cut, '--archive', archive, '--json']);
    assert.equal(pruned.code, 0, pruned.stderr);
    assert.equal((JSON.parse(pruned.stdout) as { pruned: number }).pruned, ex.records);

    const verified = await waxseal(['audit', 'verify', '--data', data, '--json']);
    assert.equal(verified.code, 0, verified.stderr);
    const v = JSON.parse(verified.stdout) as { base: { seq: number }; signed: { signedBy: string; archiveSha256: string } };
    assert.equal(v.base.seq, ex.records);
    assert.match(v.signed.signedBy, /\/api\/v1\/timestamp$/, "signed by the TSA of the instance's trusted root");

    const alone = await waxseal(['audit', 'verify', '--data', data, '--file', archive, '--json']);
    assert.equal(alone.code, 0, alone.stderr);
    const a = JSON.parse(alone.stdout) as {
      head: { seq: number };
      signed: { signedBy: string; through: { seq: number } };
      archiveSha256: string;
    };
    assert.equal(a.signed.through.seq, v.base.seq, 'the archive ends where the pruned log starts');
    assert.equal(a.archiveSha256, v.signed.archiveSha256, "it is the archive the log's signed anchor names");

    // The signed anchor removed, then altered: audit verify exits 1 (tampered).
    for (const [name, edit] of [
      ['missing', 'DELETE FROM audit_anchor'],
      ['altered', `UPDATE audit_anchor SET anchor = json_set(anchor, '$.statement.time', '2020-01-01T00:00:00.000Z')`],
    ] as const) {
      const db = join(dir, `${name}.db`);
      copyFileSync(join(data, 'audit.db'), db);
      const sql = new DatabaseSync(db);
      sql.exec(edit);
      sql.close();
      const bad = await waxseal([
        'audit',
        'verify',
        '--db',
        db,
        '--anchor',
        `${join(data, 'audit.db')}.anchor.json`,
        '--trusted-root',
        join(data, 'trusted_root.json'),
      ]);
      assert.equal(bad.code, 1, `${name}: ${bad.stdout}${bad.stderr}`);
      assert.match(bad.stderr, /ERR_AUDIT_TAMPERED/);
    }
    // Without the trusted root a pruned log is not passed.
    const noRoot = await waxseal(['audit', 'verify', '--db', join(data, 'audit.db')]);
    assert.equal(noRoot.code, 3, noRoot.stderr);
    assert.match(noRoot.stderr, /trusted root/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
