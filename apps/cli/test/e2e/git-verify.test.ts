// waxseal verify-commit, verify-tag and verify-commits on a real repository signed through
// waxseal-git against the dev instance (TSA only): identities, the source policy with a keyless
// and an OpenPGP authority (a key made with gpg here), table / JSON / GitHub Actions output and
// exit codes; and bad input refused with one line naming the commit and the check.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { serializeTrustedRoot, parseTrustedRootJson } from '@waxseal/bundle';
import { armorSignature, assembleCmsSignature, dearmorSignature, parseCmsSignature, parseCommit, signerCertificate } from '@waxseal/git';
import { fetchDevToken } from '../../../dev-idp/src/dev-idp.ts';
import { VECTORS_DIR } from '../../../../packages/verify/test/vectors/load.ts';
import { failedWithCode } from '../helpers/cli.ts';
import { run, useGitInstance, type Run } from './git-fixture.ts';

const fx = useGitInstance('wx-git-verify-', { ready: () => prepare() });
let repo: string;
let gnupg: string;
const ids: Record<string, string> = {};

async function commit(name: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  writeFileSync(join(repo, 'f.txt'), `${name}\n`);
  await fx.git(repo, ['add', 'f.txt']);
  const r = await fx.git(repo, ['commit', '-q', '-m', name, ...args], env);
  assert.equal(r.code, 0, `${name}: ${r.stderr}`);
  ids[name] = (await fx.git(repo, ['rev-parse', 'HEAD'])).stdout.trim();
  return ids[name]!;
}

/** Writes a commit object whose gpgsig is `armored` over the payload of `of`, returns its id. */
async function commitWithSignature(of: string, armored: string): Promise<string> {
  const raw = (await fx.git(repo, ['cat-file', 'commit', of])).stdout;
  const payload = Buffer.from(parseCommit(Buffer.from(raw, 'latin1')).payload).toString('latin1');
  const cut = payload.indexOf('\n\n');
  const text = `${payload.slice(0, cut + 1)}gpgsig ${armored.trimEnd().split('\n').join('\n ')}\n${payload.slice(cut + 1)}`;
  const w = await fx.git(repo, ['hash-object', '-t', 'commit', '-w', '--stdin'], {}, { input: text });
  assert.equal(w.code, 0, w.stderr);
  return w.stdout.trim();
}

async function prepare(): Promise<void> {
  repo = await fx.repo('range');
  gnupg = join(fx.dir, 'gnupg');
  mkdirSync(gnupg, { mode: 0o700 });
  const gen = await run(
    'gpg',
    ['--batch', '--passphrase', '', '--quick-gen-key', 'Web Flow <noreply@example.com>', 'ed25519', 'sign', 'never'],
    {
      env: { ...fx.env(), GNUPGHOME: gnupg },
    },
  );
  assert.equal(gen.code, 0, gen.stderr);
  const key = await run('gpg', ['--batch', '--armor', '--export', 'noreply@example.com'], { env: { ...fx.env(), GNUPGHOME: gnupg } });
  writeFileSync(join(fx.dir, 'web-flow.asc'), key.stdout);
  const bob = await fetchDevToken(fx.stack.issuer, 'bob@example.com');
  ids.base = (await fx.git(repo, ['rev-parse', 'HEAD'])).stdout.trim();
  await commit('good one', ['-S']);
  await commit('unsigned', []);
  await commit('by bob', ['-S'], { SIGSTORE_ID_TOKEN: bob });
  // An OpenPGP-signed commit, as GitHub's web UI makes them (here with a key made above).
  await commit('in the web UI', ['-S'], {
    GNUPGHOME: gnupg,
    GIT_CONFIG_COUNT: '2',
    GIT_CONFIG_KEY_0: 'gpg.format',
    GIT_CONFIG_VALUE_0: 'openpgp',
    GIT_CONFIG_KEY_1: 'user.signingkey',
    GIT_CONFIG_VALUE_1: 'noreply@example.com',
  });
  await commit('good two', ['-S']);
  assert.equal((await fx.git(repo, ['tag', '-s', '-m', 'release', 'v1'])).code, 0);
  writeFileSync(
    join(fx.dir, 'source.yaml'),
    `spec:
  authorities:
  - name: people
    keyless:
      identities:
      - issuer: ${fx.stack.issuer}
        subjectRegExp: '^alice@example\\.com$'
  - name: web-flow
    key:
      file: web-flow.asc
`,
  );
}

after(async () => {
  if (gnupg) await run('gpgconf', ['--kill', 'gpg-agent'], { env: { ...fx.env(), GNUPGHOME: gnupg } });
});

const alice = () => ['--certificate-identity', 'alice@example.com', '--certificate-oidc-issuer', fx.stack.issuer];
const wx = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> => fx.waxseal([...args, '--repo', repo], { env: fx.env(env) });

test('verify-commit and verify-tag check the signature and the signer', async () => {
  const ok = await wx(['verify-commit', ids['good one']!, ...alice()]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /Verified OK: commit [0-9a-f]{12} signed by alice@example\.com/);
  assert.match(ok.stdout, /RFC 3161 timestamp from/);
  const json = JSON.parse((await wx(['verify-tag', 'v1', ...alice(), '--json'])).stdout);
  assert.equal(json.ok, true);
  assert.equal(json.signer.identity, 'alice@example.com');
  assert.equal(json.timestamps[0].source, 'rfc3161');
  const re = await wx([
    'verify-commit',
    ...alice().slice(0, 0),
    '--certificate-identity-regexp',
    '^alice@',
    '--certificate-oidc-issuer',
    fx.stack.issuer,
  ]);
  assert.equal(re.code, 0, re.stderr);
  const committer = await wx([
    'verify-commit',
    ids['by bob']!,
    '--certificate-identity',
    'bob@example.com',
    '--certificate-oidc-issuer',
    fx.stack.issuer,
    '--match-committer',
  ]);
  failedWithCode(
    committer,
    'ERR_VERIFY_IDENTITY',
    /commit [0-9a-f]{12}: git\.committer: .*bob@example\.com is not the committer Alice Example <alice@example\.com>/,
  );
  failedWithCode(await wx(['verify-commit', ids['by bob']!, ...alice()]), 'ERR_VERIFY_IDENTITY', /commit [0-9a-f]{12}: identity\.san/);
  failedWithCode(await wx(['verify-commit', ids.unsigned!, ...alice()]), 'ERR_VERIFY_SIGNATURE', /commit [0-9a-f]{12}: git\.unsigned/);
  failedWithCode(
    await wx(['verify-commit', ids['in the web UI']!, ...alice()]),
    'ERR_VERIFY_SIGNATURE',
    /openpgp signature, not a gitsign/,
  );
  const usage = await wx(['verify-commit', 'HEAD']);
  assert.equal(usage.code, 2);
});

test('bad input: not CMS, a chain to another CA, a timestamp over other data: one line naming the commit and the check', async () => {
  const raw = (await fx.git(repo, ['cat-file', 'commit', ids['good one']!])).stdout;
  const cms = parseCmsSignature(dearmorSignature(parseCommit(Buffer.from(raw, 'latin1')).signature!));
  const other = parseCmsSignature(
    dearmorSignature(parseCommit(Buffer.from((await fx.git(repo, ['cat-file', 'commit', ids['good two']!])).stdout, 'latin1')).signature!),
  );

  const notCms = await commitWithSignature(ids['good one']!, armorSignature(Uint8Array.from([0x30, 0x03, 0x02, 0x01, 0x01])));
  failedWithCode(
    await wx(['verify-commit', notCms, ...alice()]),
    'ERR_VERIFY_SIGNATURE',
    new RegExp(`commit ${notCms.slice(0, 12)}: cms\\.parse: `),
  );

  // The timestamp of another signature, in an otherwise intact CMS.
  const swapped = assembleCmsSignature({
    certificate: signerCertificate(cms),
    signedAttributes: cms.signer.signedAttributes,
    signature: cms.signer.signature,
    timestamp: other.signer.timestampTokens[0]!,
  });
  const tsOther = await commitWithSignature(ids['good one']!, armorSignature(swapped));
  const ts = await wx(['verify-commit', tsOther, ...alice()]);
  failedWithCode(
    ts,
    'ERR_VERIFY_THRESHOLD',
    /threshold\.rfc3161-timestamp: 0 verified RFC 3161 timestamps, 1 required \(timestamp 0: timestamp\.imprint/,
  );
  assert.match(ts.stderr, new RegExp(`commit ${tsOther.slice(0, 12)}`));

  // A trusted root whose CA is another one (public-good's), with this instance's TSA.
  const mine = fx.stack.trustedRoot;
  const foreign = parseTrustedRootJson(readFileSync(join(VECTORS_DIR, 'trusted-roots', 'public-good.json'), 'utf8'));
  const rootFile = join(fx.dir, 'other-ca.json');
  writeFileSync(rootFile, JSON.stringify(serializeTrustedRoot({ ...mine, certificateAuthorities: foreign.certificateAuthorities })));
  const chain = await wx(['verify-commit', ids['good one']!, ...alice(), '--trusted-root', rootFile]);
  failedWithCode(chain, 'ERR_VERIFY_CERT_CHAIN', /commit [0-9a-f]{12}: cert\.chain: the certificate does not chain to a trusted CA/);
  assert.equal(chain.stderr.trim().split('\n').length, 1, 'one line');
});

test('verify-commits: a range with an unsigned commit, a disallowed identity, a policy key and good ones', async () => {
  const range = `${ids.base}..HEAD`;
  const policy = ['--policy', join(fx.dir, 'source.yaml')];
  const r = await wx(['verify-commits', range, ...policy]);
  assert.equal(r.code, 1, r.stderr);
  const rows = r.stdout.split('\n');
  assert.match(rows[0]!, /^COMMIT\s+AUTHOR\s+RESULT\s+DETAIL$/);
  const row = (name: string) => rows.find((l) => l.startsWith(ids[name]!.slice(0, 12)))!;
  assert.match(row('good one'), /Alice Example <alice@example\.com>\s+ok\s+alice@example\.com \(issuer .*\) via people/);
  assert.match(row('unsigned'), /FAIL\s+git\.unsigned: the commit is not signed/);
  assert.match(row('by bob'), /FAIL\s+identity\.san: .*bob@example\.com/);
  assert.match(row('in the web UI'), /ok\s+Web Flow <noreply@example\.com> \([0-9A-F]{40}\) via web-flow/);
  assert.match(row('good two'), /ok/);
  assert.match(r.stdout, /3 of 5 commits in .* satisfy/);
  assert.match(
    r.stderr,
    new RegExp(
      `waxseal: commit ${ids.unsigned!.slice(0, 12)} by Alice Example <alice@example\\.com>: ERR_VERIFY_SIGNATURE: git\\.unsigned`,
    ),
  );

  const j = await wx(['verify-commits', range, ...policy, '--json']);
  assert.equal(j.code, 1);
  const doc = JSON.parse(j.stdout);
  assert.equal(doc.ok, false);
  assert.equal(doc.checked, 5);
  assert.equal(doc.failed, 2);
  assert.deepEqual(
    doc.commits.map((c: any) => [c.id, c.ok, c.check ?? c.authority]),
    [
      [ids['good one'], true, 'people'],
      [ids.unsigned, false, 'git.unsigned'],
      [ids['by bob'], false, 'identity.san'],
      [ids['in the web UI'], true, 'web-flow'],
      [ids['good two'], true, 'people'],
    ],
  );

  const summary = join(fx.dir, 'step-summary.md');
  const gh = await wx(['verify-commits', range, ...policy], { GITHUB_ACTIONS: 'true', GITHUB_STEP_SUMMARY: summary });
  assert.equal(gh.code, 1);
  const annotations = gh.stdout.split('\n').filter((l) => l.startsWith('::error '));
  assert.equal(annotations.length, 2);
  assert.match(
    annotations[0]!,
    new RegExp(
      `^::error title=Commit ${ids.unsigned!.slice(0, 12)} is not signed as the policy requires::Alice Example <alice@example\\.com>: git\\.unsigned: the commit is not signed`,
    ),
  );
  const md = readFileSync(summary, 'utf8');
  assert.match(md, /^## Commit signatures: 2 commit\(s\) fail/);
  assert.match(md, /\| `[0-9a-f]{12}` \| Alice Example <alice@example\.com> \| ❌ \| git\.unsigned: the commit is not signed \|/);

  // Only good commits: exit 0.
  const good = await wx(['verify-commits', `${ids['in the web UI']}..HEAD`, ...policy]);
  assert.equal(good.code, 0, good.stderr);
  assert.match(good.stdout, /1 of 1 commits/);
});

test('verify-commits refuses a bad policy file with one line naming the field', async () => {
  const bad = join(fx.dir, 'bad.yaml');
  writeFileSync(bad, `spec:\n  authorities:\n  - keyless:\n      identities:\n      - issuer: x\n        subjectRegExp: "a(b"\n`);
  failedWithCode(
    await wx(['verify-commits', `${ids.base}..HEAD`, '--policy', bad]),
    'ERR_CONFIG',
    /bad\.yaml: policy spec\.authorities\[0\]\.keyless\.identities\[0\]\.subjectRegExp: invalid RE2/,
  );
  writeFileSync(bad, `spec:\n  authorities:\n  - keyless:\n      identitys: []\n`);
  failedWithCode(await wx(['verify-commits', `${ids.base}..HEAD`, '--policy', bad]), 'ERR_CONFIG', /keyless\.identitys: unknown field/);
  const usage = await wx(['verify-commits', 'HEAD', '--policy', bad]);
  assert.equal(usage.code, 2);
});
