// Against a dev instance that runs the transparency log: waxseal-git embeds the log entry in the
// signature as gitsign's offline mode does (unsigned attribute 1.3.6.1.4.1.57264.3.1), and
// verification, which then requires a verified log entry, checks it offline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dearmorSignature, decodeTransparencyLogEntry, parseCmsSignature, parseCommit } from '@waxseal/git';
import { useGitInstance } from './git-fixture.ts';

const fx = useGitInstance('wx-git-log-', { log: true });

test('with a log, the entry is embedded and verified offline', async () => {
  assert.ok(fx.stack.trustedRoot.tlogs.length > 0, 'the instance runs a log');
  const repo = await fx.repo('logged');
  const c = await fx.git(repo, ['commit', '-S', '-q', '--allow-empty', '-m', 'logged commit']);
  assert.equal(c.code, 0, c.stderr);
  const raw = (await fx.git(repo, ['cat-file', 'commit', 'HEAD'])).stdout;
  const cms = parseCmsSignature(dearmorSignature(parseCommit(Buffer.from(raw, 'latin1')).signature!));
  assert.equal(cms.signer.timestampTokens.length, 1);
  assert.equal(cms.signer.tlogEntries.length, 1, 'the log entry is embedded');
  const entry = decodeTransparencyLogEntry(cms.signer.tlogEntries[0]!);
  assert.ok(entry.inclusionProof, 'with its inclusion proof');
  if (entry.kindVersion.version === '0.0.1') assert.equal(entry.canonicalizedBody.length, 0, 'a v0.0.1 body is left to be rebuilt');

  const v = await fx.waxseal([
    'verify-commit',
    '--repo',
    repo,
    '--certificate-identity',
    'alice@example.com',
    '--certificate-oidc-issuer',
    fx.stack.issuer,
    '--json',
  ]);
  assert.equal(v.code, 0, v.stderr);
  const doc = JSON.parse(v.stdout);
  assert.equal(doc.tlogEntries.length, 1);
  assert.equal(doc.tlogEntries[0].inclusionProof, true);
  const g = await fx.git(repo, ['verify-commit', 'HEAD']);
  assert.equal(g.code, 0, g.stderr);
  assert.match(g.stderr, /logged .*in http/);
});
