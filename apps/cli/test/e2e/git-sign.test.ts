// Real git with waxseal-git as its x509 signing program, against the dev instance in TSA-only
// mode (no transparency log): git commit -S, git tag -s, git verify-commit, git verify-tag,
// git log --show-signature; openssl cms accepts the signature over the object; a rebase of 20
// commits signs with one token, and with the agent, with one certificate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCommit, parseTag, parseCmsSignature, dearmorSignature, signerCertificate, verifyGitSignature } from '@waxseal/git';
import { Verifier } from '@waxseal/verify';
import { encodePem, toHex } from '@waxseal/core';
import { splitPemChain } from '../helpers/openssl.ts';
import { run, useGitInstance } from './git-fixture.ts';

const fx = useGitInstance('wx-git-sign-');

test('git commit -S and git tag -s sign; verify-commit, verify-tag and log --show-signature report good signatures', async () => {
  assert.equal(fx.stack.trustedRoot.tlogs.length, 0, 'the instance runs without a log');
  const repo = await fx.repo('basic');
  writeFileSync(join(repo, 'a.txt'), 'hello\n');
  assert.equal((await fx.git(repo, ['add', 'a.txt'])).code, 0);
  const c = await fx.git(repo, ['commit', '-S', '-q', '-m', 'signed commit']);
  assert.equal(c.code, 0, c.stderr);
  const t = await fx.git(repo, ['tag', '-s', '-m', 'release 1', 'v1']);
  assert.equal(t.code, 0, t.stderr);

  const raw = (await fx.git(repo, ['cat-file', 'commit', 'HEAD'])).stdout;
  const commit = parseCommit(Buffer.from(raw, 'latin1'));
  assert.equal(commit.format, 'x509');
  const cms = parseCmsSignature(dearmorSignature(commit.signature!));
  assert.equal(cms.signer.timestampTokens.length, 1, 'an RFC 3161 timestamp is embedded');
  assert.equal(cms.signer.tlogEntries.length, 0, 'no log entry without a log');

  const vc = await fx.git(repo, ['verify-commit', 'HEAD']);
  assert.equal(vc.code, 0, vc.stderr);
  assert.match(vc.stderr, /Good signature from alice@example\.com/);
  const vt = await fx.git(repo, ['verify-tag', 'v1']);
  assert.equal(vt.code, 0, vt.stderr);
  assert.match(vt.stderr, /Good signature from alice@example\.com/);
  const log = await fx.git(repo, ['log', '--show-signature', '-1']);
  assert.equal(log.code, 0, log.stderr);
  assert.match(log.stdout, /Good signature from alice@example\.com/);
  // %G? = G (good), %GK = the certificate fingerprint, %GT = the trust level from TRUST_FULLY.
  const fmt = await fx.git(repo, ['log', '-1', '--format=%G?|%GK|%GT|%GS']);
  const fpr = toHex(new Uint8Array(await crypto.subtle.digest('SHA-1', signerCertificate(cms).der))).toUpperCase();
  assert.equal(fmt.stdout.trim(), `G|${fpr}|fully|alice@example.com`);
  // The unsigned root commit is reported as such.
  assert.equal((await fx.git(repo, ['log', '-1', '--format=%G?', 'HEAD~1'])).stdout.trim(), 'N');

  // A changed commit (same signature, other content) is a bad signature for git too.
  const forged = raw.replace('signed commit', 'signed commiT');
  const w = await fx.git(repo, ['hash-object', '-t', 'commit', '-w', '--stdin'], {}, { input: forged });
  const bad = await fx.git(repo, ['verify-commit', w.stdout.trim()]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /git\.content-binding/);
});

test('openssl cms -verify accepts the signature over the object without its signature (DER and PEM)', async () => {
  const repo = await fx.repo('openssl');
  assert.equal((await fx.git(repo, ['commit', '-S', '-q', '--allow-empty', '-m', 'for openssl'])).code, 0);
  assert.equal((await fx.git(repo, ['tag', '-s', '-m', 'tag for openssl', 'v2'])).code, 0);
  // openssl 3.0's cms has no -untrusted (-certfile only finds signer certificates), so the CA
  // file holds the instance's whole CA chain (intermediate and root), as the trusted root does.
  const chain = join(fx.stack.dataDir, 'ca', 'chain.pem');
  assert.equal(splitPemChain(readFileSync(chain, 'utf8')).length, 2);
  for (const [kind, parse] of [
    ['commit', parseCommit],
    ['tag', parseTag],
  ] as const) {
    const obj = parse(Buffer.from((await fx.git(repo, ['cat-file', kind, kind === 'commit' ? 'HEAD' : 'v2'])).stdout, 'latin1'));
    const der = dearmorSignature(obj.signature!);
    writeFileSync(join(fx.dir, `${kind}.payload`), obj.payload);
    writeFileSync(join(fx.dir, `${kind}.sig.der`), der);
    writeFileSync(join(fx.dir, `${kind}.sig.pem`), encodePem('PKCS7', der));
    for (const [inform, file] of [
      ['DER', `${kind}.sig.der`],
      ['PEM', `${kind}.sig.pem`],
    ]) {
      const args = [
        'cms',
        '-verify',
        '-binary',
        '-inform',
        inform,
        '-in',
        join(fx.dir, file!),
        '-content',
        join(fx.dir, `${kind}.payload`),
      ];
      const tail = ['-CAfile', chain, '-purpose', 'any', '-no_check_time', '-out', '/dev/null'];
      const ok = await run('openssl', [...args, ...tail]);
      assert.equal(ok.code, 0, `${kind} ${inform}: ${ok.stderr}`);
      assert.match(ok.stderr, /Verification successful/);
    }
    // openssl refuses other content: the binding is real.
    writeFileSync(join(fx.dir, `${kind}.other`), Buffer.concat([obj.payload, Buffer.from('x')]));
    const no = await run('openssl', [
      'cms',
      '-verify',
      '-binary',
      '-inform',
      'DER',
      '-in',
      join(fx.dir, `${kind}.sig.der`),
      '-content',
      join(fx.dir, `${kind}.other`),
      '-CAfile',
      chain,
      '-purpose',
      'any',
      '-no_check_time',
      '-out',
      '/dev/null',
    ]);
    assert.notEqual(no.code, 0);
  }
});

const verifier = () =>
  new Verifier(fx.stack.trustedRoot, { tlogThreshold: 0, ctlogThreshold: 0, skipSctUnsafe: true, timestampThreshold: 1 });

async function makeCommits(repo: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    writeFileSync(join(repo, 'n.txt'), `${i}\n`);
    await fx.git(repo, ['add', 'n.txt']);
    const r = await fx.git(repo, ['commit', '-q', '-m', `change ${i}`]);
    assert.equal(r.code, 0, r.stderr);
  }
}

async function certificatesOf(repo: string, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const raw = (await fx.git(repo, ['cat-file', 'commit', `HEAD~${i}`])).stdout;
    const c = parseCommit(Buffer.from(raw, 'latin1'));
    assert.equal(c.format, 'x509', `HEAD~${i} is signed`);
    // The library verifier (what waxseal-git runs), in-process: 20 git spawns would only add time.
    const v = verifyGitSignature(c.payload, c.signature!, verifier(), {
      identities: [{ subjectAlternativeName: 'alice@example.com', issuer: fx.stack.issuer }],
    });
    out.push(toHex(v.certificate.der));
  }
  const head = await fx.git(repo, ['verify-commit', 'HEAD']);
  assert.equal(head.code, 0, head.stderr);
  return out;
}

test('git rebase --exec over 20 commits signs all of them with one token, and with the agent with one certificate', async () => {
  const repo = await fx.repo('rebase');
  await makeCommits(repo, 20);
  // One identity token for the whole rebase (SIGSTORE_ID_TOKEN, as a CI job or a cached login has it).
  const r1 = await fx.git(repo, ['rebase', '-q', '-f', '--gpg-sign', '--exec', 'true', 'HEAD~20'], {}, { timeoutMs: 600_000 });
  assert.equal(r1.code, 0, r1.stderr);
  const certs1 = await certificatesOf(repo, 20);
  assert.equal(new Set(certs1).size, 20, 'without the agent each commit has its own ephemeral key');

  // With the agent: one key and one certificate for all 20.
  const socket = join(fx.dir, 'agent', 'git-agent.sock');
  const agent = spawn(fx.program, ['agent', '--socket', socket], { env: fx.env(), stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    const started = await new Promise<string>((resolve, reject) => {
      let err = '';
      const t = setTimeout(() => reject(new Error(`agent did not start: ${err}`)), 20_000);
      agent.stderr.on('data', (d: Buffer) => {
        err += d.toString();
        if (/listening/.test(err)) clearTimeout(t), resolve(err);
      });
      agent.on('exit', (code) => reject(new Error(`agent exited ${code}: ${err}`)));
    });
    assert.match(started, /listening on/);
    assert.equal(statSync(socket).mode & 0o777, 0o600, 'the socket is owner-only');
    assert.equal(statSync(join(fx.dir, 'agent')).mode & 0o777, 0o700, 'its folder is owner-only');
    const r2 = await fx.git(
      repo,
      ['rebase', '-q', '-f', '--gpg-sign', '--exec', 'true', 'HEAD~20'],
      { WAXSEAL_GIT_AGENT_SOCKET: socket },
      { timeoutMs: 600_000 },
    );
    assert.equal(r2.code, 0, r2.stderr);
    const certs2 = await certificatesOf(repo, 20);
    assert.equal(new Set(certs2).size, 1, 'one certificate for the whole rebase');
    // The agent asks for a token only when it holds no certificate: now none is needed.
    const r3 = await fx.git(repo, ['commit', '-S', '-q', '--allow-empty', '-m', 'no token'], {
      WAXSEAL_GIT_AGENT_SOCKET: socket,
      SIGSTORE_ID_TOKEN: undefined,
    });
    assert.equal(r3.code, 0, r3.stderr);
    assert.deepEqual(await certificatesOf(repo, 1), [certs2[0]]);
  } finally {
    agent.kill('SIGTERM');
    await new Promise((r) => (agent.exitCode === null ? agent.once('exit', r) : r(null)));
  }
  assert.equal(existsSync(socket), false, 'the agent removes its socket on exit');
});

test('without a token, signing fails; the one-line reason goes to the terminal or the log file, never into git', async () => {
  const repo = await fx.repo('notoken');
  const logFile = join(fx.dir, 'waxseal-git.log');
  const r = await fx.git(repo, ['commit', '-S', '-q', '--allow-empty', '-m', 'x'], { SIGSTORE_ID_TOKEN: undefined, GITSIGN_LOG: logFile });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /gpg failed to sign the data/);
  assert.match(readFileSync(logFile, 'utf8'), /waxseal-git: ERR_TOKEN_INVALID: .*no identity token/);
});

test('the first signature starts the agent (owner-only socket); later ones and git verify-commit go through it; agent --stop ends it', async () => {
  const repo = await fx.repo('autostart');
  const socket = join(fx.dir, 'auto', 'git-agent.sock');
  const on = { WAXSEAL_GIT_AGENT: undefined, WAXSEAL_GIT_AGENT_SOCKET: socket };
  try {
    const c1 = await fx.git(repo, ['commit', '-S', '-q', '--allow-empty', '-m', 'first'], on);
    assert.equal(c1.code, 0, c1.stderr);
    assert.equal(c1.stderr, '', 'nothing but the protocol on git’s pipes');
    assert.ok(statSync(socket).isSocket(), 'an agent listens');
    assert.equal(statSync(socket).mode & 0o777, 0o600, 'the socket is owner-only');
    assert.equal(statSync(join(fx.dir, 'auto')).mode & 0o777, 0o700, 'its folder is owner-only');
    // The agent holds the certificate: no token needed now, and the same certificate is used.
    const c2 = await fx.git(repo, ['commit', '-S', '-q', '--allow-empty', '-m', 'second'], { ...on, SIGSTORE_ID_TOKEN: undefined });
    assert.equal(c2.code, 0, c2.stderr);
    assert.equal(new Set(await certificatesOf(repo, 2)).size, 1, 'one certificate for both');
    // Verification through the agent: the same status lines as in-process.
    const fmt = await fx.git(repo, ['log', '-2', '--format=%G?|%GT|%GS'], on);
    assert.equal(fmt.stdout.trim(), 'G|fully|alice@example.com\nG|fully|alice@example.com');
    const forged = (await fx.git(repo, ['cat-file', 'commit', 'HEAD'])).stdout.replace('second', 'secont');
    const w = await fx.git(repo, ['hash-object', '-t', 'commit', '-w', '--stdin'], {}, { input: forged });
    const bad = await fx.git(repo, ['verify-commit', w.stdout.trim()], on);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /git\.content-binding/);
  } finally {
    const stop = await run(fx.program, ['agent', '--stop', '--socket', socket], { env: fx.env() });
    assert.equal(stop.code, 0, stop.stderr);
  }
  assert.equal(existsSync(socket), false, 'the agent removes its socket on exit');
  // With no agent and none to be started, signing still works in-process.
  const c3 = await fx.git(repo, ['commit', '-S', '-q', '--allow-empty', '-m', 'third'], { WAXSEAL_GIT_AGENT_SOCKET: socket });
  assert.equal(c3.code, 0, c3.stderr);
  assert.equal(existsSync(socket), false, 'WAXSEAL_GIT_AGENT=off starts none');
});

test('a file where the socket should be is neither used nor replaced', async () => {
  const repo = await fx.repo('notsocket');
  const socket = join(fx.dir, 'notsocket.sock');
  writeFileSync(socket, 'not a socket');
  const c = await fx.git(repo, ['commit', '-S', '-q', '--allow-empty', '-m', 'x'], {
    WAXSEAL_GIT_AGENT: undefined,
    WAXSEAL_GIT_AGENT_SOCKET: socket,
  });
  assert.equal(c.code, 0, c.stderr);
  assert.equal(readFileSync(socket, 'utf8'), 'not a socket');
});

// The native client (packages/git-client-native), when it has been compiled: the same protocol
// without a Node.js start; no agent -> the Node.js program (which starts one); a gitsign.* change
// in the repository or on git's command line reaches the agent (its memory of git config is
// checked against the files).
const NATIVE = new URL('../../../../packages/git-client-native/build/waxseal-git-native', import.meta.url).pathname;
const CLIENT_SOURCE = new URL('../../src/git-client.ts', import.meta.url).pathname;

test('the native client signs and verifies through the agent, and the agent sees git config changes', {
  skip: !existsSync(NATIVE) && 'not compiled',
}, async () => {
  const repo = await fx.repo('native');
  const program = join(fx.dir, 'waxseal-git-native.sh');
  writeFileSync(program, `#!/bin/sh\nexec '${NATIVE}' '${CLIENT_SOURCE}' "$@"\n`);
  chmodSync(program, 0o755);
  const socket = join(fx.dir, 'native', 'git-agent.sock');
  const on = { WAXSEAL_GIT_AGENT: undefined, WAXSEAL_GIT_AGENT_SOCKET: socket, NODE_OPTIONS: '--conditions=waxseal-source' };
  const git = (args: string[], extra: NodeJS.ProcessEnv = {}) =>
    fx.git(repo, ['-c', `gpg.x509.program=${program}`, ...args], { ...on, ...extra });
  try {
    const c1 = await git(['commit', '-S', '-q', '--allow-empty', '-m', 'first']);
    assert.equal(c1.code, 0, c1.stderr);
    assert.ok(statSync(socket).isSocket(), 'the Node.js program started the agent');
    const c2 = await git(['commit', '-S', '-q', '--allow-empty', '-m', 'second'], { SIGSTORE_ID_TOKEN: undefined });
    assert.equal(c2.code, 0, c2.stderr);
    assert.equal(c2.stderr, '');
    assert.equal(new Set(await certificatesOf(repo, 2)).size, 1, 'one certificate: the agent signed both');
    const fmt = await git(['log', '-2', '--format=%G?|%GT|%GS']);
    assert.equal(fmt.stdout.trim(), 'G|fully|alice@example.com\nG|fully|alice@example.com');
    // A gitsign.* key added to the repository's config applies to the next signature.
    const logFile = join(fx.dir, 'native.log');
    assert.equal((await fx.git(repo, ['config', 'gitsign.logPath', logFile])).code, 0);
    const c3 = await git(['commit', '-S', '-q', '--allow-empty', '-m', 'third']);
    assert.equal(c3.code, 0, c3.stderr);
    assert.match(readFileSync(logFile, 'utf8'), /signed \d+ bytes/);
    // So does one on git's command line (GIT_CONFIG_PARAMETERS): a TSA nobody listens on fails.
    const bad = await git([
      '-c',
      'gitsign.timestampServerURL=http://127.0.0.1:9/api/v1/timestamp',
      'commit',
      '-S',
      '-q',
      '--allow-empty',
      '-m',
      'x',
    ]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /gpg failed to sign the data/);
    // (git before 2.43 keeps the program's stderr to itself: the log file has the reason.)
    assert.match(readFileSync(logFile, 'utf8'), /waxseal-git: ERR_\w+: .*127\.0\.0\.1:9/);
  } finally {
    const stop = await run(fx.program, ['agent', '--stop', '--socket', socket], { env: fx.env() });
    assert.equal(stop.code, 0, stop.stderr);
  }
});
