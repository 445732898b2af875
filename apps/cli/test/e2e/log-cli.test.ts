// The dev instance's transparency log through the CLI: signatures from sign-blob land in the log,
// `waxseal log monitor` follows it and reports a watched identity, `waxseal log fsck` checks it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { useDevStack } from '../../../instance/test/helpers.ts';
import { failedWithCode, runCli, signBlobAs } from '../helpers/cli.ts';

const dev = useDevStack('wx-logcli-');

test('signatures are logged; log monitor reports a watched identity; fsck passes', async () => {
  const { dir, stack } = dev;
  for (const who of ['alice@example.com', 'bob@example.com']) {
    const f = join(dir, `${who}.txt`);
    writeFileSync(f, who);
    await signBlobAs(stack, who, f, `${f}.sigstore.json`);
  }
  const state = join(dir, 'monitor-state.json');
  const m = await runCli(['log', 'monitor', '--url', stack.logUrl!, '--state', state, '--watch-identity', '^alice@', '--once', '--json']);
  assert.equal(m.code, 0, m.stderr);
  const result = JSON.parse(m.stdout);
  assert.equal(result.size, 2);
  assert.equal(result.allMatches.length, 1);
  assert.match(result.allMatches[0].identities.join(' '), /alice@example.com/);
  // A second pass from the saved state: consistent, nothing new.
  const again = await runCli(['log', 'monitor', '--url', stack.logUrl!, '--state', state, '--once', '--json']);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(JSON.parse(again.stdout).newEntries, 0);

  const fsck = await runCli(['log', 'fsck', '--data', join(stack.dataDir, 'log'), '--json']);
  assert.equal(fsck.code, 0, fsck.stderr);
  assert.equal(JSON.parse(fsck.stdout).entries, 2);
  const missing = await runCli(['log', 'fsck', '--data', join(dir, 'nope')]);
  failedWithCode(missing, 'ERR_NOT_FOUND', /no log database in /, 'fsck missing');
});
