// `waxseal policy test` (policy-controller's policy-tester) and `waxseal policy trustroot`, in a
// child process, against a real registry and the dev instance: the seed policy admits what alice
// signed (exit 0), denies the unsigned image (exit 1, policy-tester's JSON), refuses an invalid
// policy (exit 3), and applies `match` from --resource.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  pushImage,
  registryToolsMissing,
  runCli,
  seedPolicy,
  signImage,
  startRegistry,
  useDevStack,
  type TestRegistry,
} from '../../../admission/test/fixture.ts';
import { fetchDevToken } from '../../../dev-idp/src/dev-idp.ts';

const skip = registryToolsMissing();
const dev = useDevStack('wx-policy-test-');

describe('waxseal policy test', { skip, timeout: 240_000 }, () => {
  let reg: TestRegistry;
  let dir: string;
  let seedFile: string;
  let signed: string;
  before(async () => {
    reg = await startRegistry();
    dir = mkdtempSync(join(tmpdir(), 'wx-policy-test-'));
    seedFile = join(dir, 'seed.yaml');
    writeFileSync(seedFile, await seedPolicy(dev, `${reg.host}/**`, 'alice@example.com'));
    signed = await pushImage(reg, 'acme/app:v1', 'policy-test-app');
    await signImage(dev, `${reg.host}/acme/app:v1`, 'alice@example.com');
    await pushImage(reg, 'acme/unsigned:v1', 'policy-test-unsigned');
  });
  after(async () => {
    await reg?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('admitted: exit 0 with result, digest and policies', async () => {
    const r = await runCli(['policy', 'test', '--policy', seedFile, '--image', `${reg.host}/acme/app:v1`, '--json']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const out = JSON.parse(r.stdout);
    assert.equal(out.result, 'allowed');
    assert.equal(out.digest, signed);
    assert.deepEqual(out.policies, ['ClusterImagePolicy enforce-signed-keyless']);
    assert.equal(out.errors, undefined);
    const text = await runCli(['policy', 'test', '--policy', seedFile, '--image', `${reg.host}/acme/app:v1`]);
    assert.equal(text.code, 0);
    assert.match(text.stdout, /^admitted: /);
  });

  test("denied: exit 1 with policy-tester's errors", async () => {
    const r = await runCli(['policy', 'test', '--policy', seedFile, '--image', `${reg.host}/acme/unsigned:v1`, '--json']);
    assert.equal(r.code, 1, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.result, 'denied');
    assert.match(out.errors[0], /failed policy: ClusterImagePolicy enforce-signed-keyless: authority authority-0: .*no signatures found/);
    // Images no policy covers: no-match-policy deny.
    const other = await runCli(['policy', 'test', '--policy', seedFile, '--image', `other.example/app@sha256:${'0'.repeat(64)}`, '--json']);
    assert.equal(other.code, 1);
    assert.match(JSON.parse(other.stdout).errors[0], /no matching policies/);
  });

  test('invalid policies: exit 3 naming file, policy and field', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      `apiVersion: policy.sigstore.dev/v1beta1\nkind: ClusterImagePolicy\nmetadata: {name: cue}\nspec:\n  images: [{glob: "**"}]\n  authorities: [{static: {action: pass}}]\n  policy: {type: cue, data: "x: 1"}\n`,
    );
    const r = await runCli(['policy', 'test', '--policy', bad, '--image', `${reg.host}/acme/app:v1`]);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /bad\.yaml: ClusterImagePolicy cue: spec\.policy\.type: cue policies cannot be evaluated by Waxseal/);
    const usage = await runCli(['policy', 'test', '--policy', seedFile]);
    assert.equal(usage.code, 2);
  });

  test('--resource: kind and labels drive `match`, spec feeds includeSpec', async () => {
    const p = join(dir, 'match.yaml');
    writeFileSync(
      p,
      `apiVersion: policy.sigstore.dev/v1beta1
kind: ClusterImagePolicy
metadata: {name: prod-only}
spec:
  images: [{glob: "${reg.host}/**"}]
  match:
  - {group: apps, version: v1, resource: deployments, selector: {matchLabels: {tier: prod}}}
  authorities: [{static: {action: pass}}]
  policy:
    type: cel
    includeSpec: true
    data: spec.replicas >= 2.0
`,
    );
    const deploy = (tier: string, replicas: number) => {
      const f = join(dir, `deploy-${tier}-${replicas}.yaml`);
      writeFileSync(
        f,
        `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app, labels: {tier: ${tier}}}\nspec: {replicas: ${replicas}}\n`,
      );
      return f;
    };
    const run = (f: string) =>
      runCli(['policy', 'test', '--policy', p, '--image', `${reg.host}/acme/unsigned:v1`, '--resource', f, '--json']);
    assert.equal((await run(deploy('prod', 3))).code, 0);
    const few = await run(deploy('prod', 1));
    assert.equal(few.code, 1);
    assert.match(JSON.parse(few.stdout).errors[0], /policy: spec\.policy: CEL expression evaluated to false/);
    // Not matched by the policy: no-match deny.
    assert.match(JSON.parse((await run(deploy('dev', 3))).stdout).errors[0], /no matching policies/);
  });
});

describe('waxseal policy test --trusted-root (authorities without trustRootRef)', { skip, timeout: 240_000 }, () => {
  let reg: TestRegistry;
  let dir: string;
  before(async () => {
    reg = await startRegistry();
    dir = mkdtempSync(join(tmpdir(), 'wx-policy-default-root-'));
  });
  after(async () => {
    await reg?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('denied with a clear reason without it; admitted with the instance trusted root', async () => {
    await pushImage(reg, 'acme/logged:v1', 'policy-test-logged');
    // Signed with the dev instance's log (a keyless authority without trustRootRef requires one, as policy-controller does).
    const token = await fetchDevToken(dev.stack.issuer, 'alice@example.com');
    const signed = await runCli([
      'sign',
      `${reg.host}/acme/logged:v1`,
      '--signing-config',
      dev.stack.signingConfigPath,
      '--identity-token',
      token,
    ]);
    assert.equal(signed.code, 0, signed.stderr);
    const p = join(dir, 'default-root.yaml');
    writeFileSync(
      p,
      `apiVersion: policy.sigstore.dev/v1beta1
kind: ClusterImagePolicy
metadata: {name: default-root}
spec:
  images: [{glob: "${reg.host}/**"}]
  authorities:
  - keyless:
      identities: [{issuer: "${dev.stack.issuer}", subject: alice@example.com}]
      insecureIgnoreSCT: true
`,
    );
    const args = ['policy', 'test', '--policy', p, '--image', `${reg.host}/acme/logged:v1`, '--json'];
    const without = await runCli(args);
    assert.equal(without.code, 1, without.stderr);
    assert.match(
      JSON.parse(without.stdout).errors[0],
      /authority authority-0: a keyless authority without trustRootRef uses the default trusted root, and none is configured/,
    );
    const withRoot = await runCli([...args, '--trusted-root', dev.stack.trustedRootPath]);
    assert.equal(withRoot.code, 0, withRoot.stdout + withRoot.stderr);
    assert.equal(JSON.parse(withRoot.stdout).result, 'allowed');
  });
});

describe('waxseal policy trustroot', () => {
  test('usage errors', async () => {
    const r = await runCli(['policy', 'trustroot', '--trusted-root', '/nonexistent/trusted_root.json']);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /cannot read trusted root/);
    const u = await runCli(['policy', 'trustroot', '--trusted-root', 'x', '--instance', 'https://x']);
    assert.equal(u.code, 2);
  });
});
