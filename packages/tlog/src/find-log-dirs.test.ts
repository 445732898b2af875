// `waxseal log fsck --data <dir>` takes a log's folder, a folder of logs (serve's <data>/log, one
// log per key) or an instance's data folder; findLogDirs says which logs that means.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { useTempDir } from '@waxseal/testkit';
import { findLogDirs } from './fsck.ts';

const tmp = useTempDir('wx-find-logs-');

const logAt = (...p: string[]) => {
  mkdirSync(join(tmp.dir, ...p), { recursive: true });
  writeFileSync(join(tmp.dir, ...p, 'log.db'), '');
};

test('a log folder, a folder of per-key logs, an instance data folder, or nothing', () => {
  logAt('dev', 'log');
  mkdirSync(join(tmp.dir, 'dev', 'log', 'not-a-log'), { recursive: true });
  logAt('serve', 'log', 'b2');
  logAt('serve', 'log', 'a1');
  mkdirSync(join(tmp.dir, 'serve', 'log', 'empty'), { recursive: true });
  mkdirSync(join(tmp.dir, 'none', 'log'), { recursive: true });

  // The folder itself holds a log: only it, not what is below.
  assert.deepEqual(findLogDirs(join(tmp.dir, 'dev', 'log')), [join(tmp.dir, 'dev', 'log')]);
  // serve's <data>/log: every per-key log, in name order; folders without log.db are skipped.
  const shards = [join(tmp.dir, 'serve', 'log', 'a1'), join(tmp.dir, 'serve', 'log', 'b2')];
  assert.deepEqual(findLogDirs(join(tmp.dir, 'serve', 'log')), shards);
  // An instance's data folder: its log folder, or the logs in it.
  assert.deepEqual(findLogDirs(join(tmp.dir, 'dev')), [join(tmp.dir, 'dev', 'log')]);
  assert.deepEqual(findLogDirs(join(tmp.dir, 'serve')), shards);
  assert.deepEqual(findLogDirs(join(tmp.dir, 'none')), []);
  assert.deepEqual(findLogDirs(join(tmp.dir, 'missing')), []);
});
