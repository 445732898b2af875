// The audit database names every signer: its files are the owner's alone, whatever the umask and
// whatever mode an earlier version left them with.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { fileMode, useTempDir } from '@waxseal/testkit';
import { AuditLog } from './log.ts';

const tmp = useTempDir('wx-audit-mode-', { umask: 0o000 });

const event = {
  actor: '127.0.0.1',
  identity: { issuer: 'https://issuer.example', san: 'dev@example.com' },
  action: 'ca.issue',
  keyRef: 'file:///ca.key',
  result: 'ok',
} as const;

test('a new audit database, its WAL and shared-memory files and its anchor are 0600 under umask 000', async () => {
  const db = join(tmp.dir, 'new', 'audit.db');
  const log = AuditLog.open(db);
  try {
    await log.record(event);
    for (const p of [db, `${db}-wal`, `${db}-shm`]) {
      assert.ok(existsSync(p), `${p} exists while the log is open`);
      assert.equal(fileMode(p), 0o600, p);
    }
  } finally {
    await log.close();
  }
  // The writer thread anchors right after acknowledging a batch; close() waits for it.
  assert.equal(fileMode(`${db}.anchor.json`), 0o600);
});

test('an audit database left 0644 (with its WAL files) is narrowed to 0600 when opened for writing', async () => {
  const db = join(tmp.dir, 'old.db');
  // What an earlier version left: SQLite's default 0644, a connection still holding the WAL open.
  const old = new DatabaseSync(db);
  old.exec('PRAGMA journal_mode = WAL');
  old.exec('CREATE TABLE audit (seq INTEGER PRIMARY KEY, record TEXT NOT NULL) STRICT');
  for (const p of [db, `${db}-wal`, `${db}-shm`]) assert.equal(fileMode(p), 0o644, `${p} before`);
  const log = AuditLog.open(db);
  try {
    await log.record(event);
    for (const p of [db, `${db}-wal`, `${db}-shm`]) assert.equal(fileMode(p), 0o600, p);
  } finally {
    await log.close();
    old.close();
  }
});

test('a read-only open (waxseal audit list|verify, maybe by another user) leaves the modes alone', async () => {
  const db = join(tmp.dir, 'ro.db');
  const old = new DatabaseSync(db);
  old.exec('CREATE TABLE audit (seq INTEGER PRIMARY KEY, record TEXT NOT NULL) STRICT');
  old.close();
  assert.equal(fileMode(db), 0o644);
  const ro = AuditLog.open(db, { readOnly: true, anchorPath: false });
  try {
    assert.equal(await ro.store.head(), undefined);
    assert.equal(fileMode(db), 0o644);
  } finally {
    await ro.close();
  }
});
