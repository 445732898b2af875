// `waxseal admission serve` as a process: flags, the start-up line, reviews answered by the real
// engine (static authorities: no registry needed), one JSON log line per review, usage errors and
// a clean stop on SIGTERM.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { runCli } from '../../cli/test/helpers/cli.ts';
import { admissionReview, httpsCall, podObject, postReview, writeTls } from './webhook-fixture.ts';

const MAIN = new URL('../../cli/src/main.ts', import.meta.url).pathname;
const D = `sha256:${'d'.repeat(64)}`;

const policies = `apiVersion: policy.sigstore.dev/v1beta1
kind: ClusterImagePolicy
metadata:
  name: allow-example
spec:
  images: [{glob: "registry.example/**"}]
  authorities: [{static: {action: pass}}]
---
apiVersion: policy.sigstore.dev/v1beta1
kind: ClusterImagePolicy
metadata:
  name: frozen
spec:
  images: [{glob: "registry.example/frozen/**"}]
  authorities: [{static: {action: fail, message: "frozen until the audit"}}]
`;

describe('waxseal admission serve', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wx-admission-cli-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('serves reviews with the real engine, logs each, stops on SIGTERM', async () => {
    const tls = writeTls(dir);
    const policyDir = join(dir, 'policies');
    mkdirSync(policyDir);
    writeFileSync(join(policyDir, 'cips.yaml'), policies);
    const child = spawn(
      process.execPath,
      [
        MAIN,
        'admission',
        'serve',
        '--policy-dir',
        policyDir,
        '--tls-cert',
        tls.certFile,
        '--tls-key',
        tls.keyFile,
        '--port',
        '0',
        '--host',
        '127.0.0.1',
        '--deadline',
        '2s',
        '--json',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', r));
    try {
      const until = Date.now() + 30_000;
      while (!stdout.includes('\n') && Date.now() < until && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
      const started = JSON.parse(stdout.split('\n')[0]!) as { url: string; ready: boolean; noMatch: string };
      assert.equal(started.ready, true, stderr);
      assert.equal(started.noMatch, 'deny');
      const ok = await postReview(`${started.url}/validate`, tls.ca, admissionReview(podObject('ok', [`registry.example/app@${D}`])));
      assert.equal(ok.json.response.allowed, true);
      const no = await postReview(
        `${started.url}/validations`,
        tls.ca,
        admissionReview(podObject('no', [`registry.example/frozen/app@${D}`])),
      );
      assert.equal(no.json.response.allowed, false);
      assert.match(no.json.response.status.message, /spec\.containers\[0\]\.image: .*ClusterImagePolicy frozen.*frozen until the audit/);
      const other = await postReview(`${started.url}/validate`, tls.ca, admissionReview(podObject('x', [`elsewhere.example/app@${D}`])));
      assert.match(other.json.response.status.message, /no matching polic/i);
      assert.equal((await httpsCall(`${started.url}/readyz`, { ca: tls.ca })).status, 200);
      const reviews = stderr
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
        .filter((l) => l.msg === 'review');
      assert.deepEqual(
        reviews.map((r) => [r.name, r.allowed, r.level]),
        [
          ['ok', true, 'info'],
          ['no', false, 'warn'],
          ['x', false, 'warn'],
        ],
      );
      assert.ok(reviews.every((r) => typeof r.ms === 'number' && r.uid && r.kind === 'Pod' && r.namespace === 'team-a'));
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0);
  });

  test('usage and configuration errors: one line, exit 2 or 3', async () => {
    const base = ['admission', 'serve', '--tls-cert', join(dir, 'c.pem'), '--tls-key', join(dir, 'k.pem')];
    const cases: [string[], number, RegExp][] = [
      [['admission', 'serve'], 2, /exactly one of --policy-dir <dir> or --kube/],
      [['admission', 'run', '--kube'], 2, /unknown subcommand "run"/],
      [[...base, '--policy-dir', dir, '--kube'], 2, /exactly one of/],
      [[...base, '--policy-dir', dir, '--no-match', 'maybe'], 2, /--no-match takes deny, allow or warn/],
      [[...base, '--policy-dir', dir, '--deadline', '8'], 2, /--deadline takes a duration such as 8s/],
      [[...base, '--policy-dir', dir, '--deadline', '10m'], 2, /between 100ms and 5m/],
      [[...base, '--policy-dir', dir, '--require-namespace-label'], 2, /needs --kube/],
      [[...base, '--kube', '--require-namespace-label', '--include-label', 'bad key'], 2, /invalid label key/],
      [[...base, '--policy-dir', dir], 3, /ERR_CONFIG: cannot read the TLS certificate or key/],
      [['admission', 'serve', '--policy-dir', join(dir, 'nope'), '--tls-cert', 'x', '--tls-key', 'y'], 3, /ERR_CONFIG/],
    ];
    for (const [args, code, re] of cases) {
      const r = await runCli(args);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
    const help = await runCli(['admission', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--require-namespace-label/);
  });
});
