// Who may sign, and the audit log, on the dev instance: a CI identity from an allowed issuer but
// a disallowed workflow ref is refused with 403 and audited; the allowed one signs; tampering with
// the audit database is detected by `waxseal audit verify`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { useDevStack } from '../../../instance/test/helpers.ts';
import { failedWithCode, runCli, signBlob } from '../helpers/cli.ts';

const RULES = `
allow:
  - name: acme-release
    issuer: { glob: "http://127.0.0.1:*/ci" }
    claims:
      repository: acme/app
      ref: { glob: "refs/tags/*" }
      job_workflow_ref: { glob: "acme/app/.github/workflows/release.yml@refs/tags/**" }
  - name: people
    issuer: { glob: "http://127.0.0.1:*/oidc" }
    san: { glob: "*@example.com" }
`;

function githubClaims(ref: string): Record<string, unknown> {
  return {
    sub: `repo:acme/app:ref:${ref}`,
    repository: 'acme/app',
    repository_id: '1001',
    repository_owner: 'acme',
    repository_owner_id: '2002',
    repository_visibility: 'private',
    ref,
    sha: 'a'.repeat(40),
    workflow: 'release',
    workflow_ref: `acme/app/.github/workflows/release.yml@${ref}`,
    workflow_sha: 'a'.repeat(40),
    job_workflow_ref: `acme/app/.github/workflows/release.yml@${ref}`,
    job_workflow_sha: 'a'.repeat(40),
    event_name: 'push',
    run_id: '42',
    run_attempt: '1',
    runner_environment: 'github-hosted',
  };
}

let artifact: string;
const dev = useDevStack('wx-gov-', {
  prepare: (data) => writeFileSync(join(data, 'signing-rules.yaml'), RULES),
  ready: ({ dir }) => {
    artifact = join(dir, 'release.tar');
    writeFileSync(artifact, 'release bits');
  },
});

async function devToken(args: string[]): Promise<string> {
  const r = await runCli(['dev', 'token', '--data', dev.stack.dataDir, ...args]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

test('a disallowed workflow ref is refused with 403 and audited; the release workflow signs', async () => {
  const { dir, stack } = dev;
  const bad = await devToken(['--claims', JSON.stringify(githubClaims('refs/heads/main'))]);
  const refused = await signBlob(artifact, join(dir, 'bad.json'), stack.signingConfigPath, bad);
  failedWithCode(refused, 'ERR_POLICY_DENIED', /^the CA refused the request \(HTTP 403\): .*is not allowed to sign/);

  // The refusal was audited with the identity and the reason.
  const list = await runCli(['audit', 'list', '--db', stack.auditDb, '--json']);
  assert.equal(list.code, 0, list.stderr);
  const records = JSON.parse(list.stdout) as { action: string; result: string; errorCode?: string; identity?: { san?: string } }[];
  const refusal = records.find((r) => r.action === 'ca.refuse');
  assert.ok(refusal, 'a ca.refuse record exists');
  assert.equal(refusal.result, 'denied');
  assert.equal(refusal.errorCode, 'ERR_POLICY_DENIED');
  assert.equal(refusal.identity?.san, 'https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main');

  const good = await devToken(['--claims', JSON.stringify(githubClaims('refs/tags/v1.0.0'))]);
  const bundle = join(dir, 'good.json');
  const signed = await signBlob(artifact, bundle, stack.signingConfigPath, good);
  assert.equal(signed.code, 0, signed.stderr);
  // verify-blob of the release bundle against the dev trusted root, a CI identity and `policy`.
  const verifyRelease = (...policy: string[]) =>
    runCli([
      'verify-blob',
      artifact,
      '--bundle',
      bundle,
      '--trusted-root',
      stack.trustedRootPath,
      '--certificate-oidc-issuer',
      stack.ciIssuer,
      ...policy,
    ]);
  const verified = await verifyRelease(
    '--certificate-identity',
    'https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.0.0',
    '--certificate-github-workflow-repository',
    'acme/app',
    '--certificate-extension',
    'sourceRepositoryRef=refs/tags/v1.0.0',
    '--certificate-extension',
    'runInvocationURI=https://github.com/acme/app/actions/runs/42/attempts/1',
    '--json',
  );
  assert.equal(verified.code, 0, verified.stderr);
  assert.equal(JSON.parse(verified.stdout).signer.extensions.sourceRepositoryURI, 'https://github.com/acme/app');
  const wrongRepo = await verifyRelease(
    '--certificate-identity-regexp',
    '^https://github.com/acme/',
    '--certificate-extension',
    'sourceRepositoryURI=https://github.com/acme/other',
  );
  failedWithCode(wrongRepo, 'ERR_VERIFY_IDENTITY');

  // People: an @example.com address is allowed, another domain is not.
  const person = await devToken(['--email', 'pat@example.com']);
  assert.equal((await signBlob(artifact, join(dir, 'p.json'), stack.signingConfigPath, person)).code, 0);
  const outsider = await devToken(['--email', 'eve@evil.test']);
  assert.equal((await signBlob(artifact, join(dir, 'e.json'), stack.signingConfigPath, outsider)).code, 4);
});

test('waxseal audit verify passes on the live log and detects an edited record', async () => {
  const { dir, stack } = dev;
  // Every key use is there: certificates, timestamps and the log key's checkpoint signatures.
  const all = JSON.parse((await runCli(['audit', 'list', '--db', stack.auditDb, '--limit', '1000', '--json'])).stdout) as {
    action: string;
    keyRef?: string;
    digest?: string;
  }[];
  for (const action of ['ca.issue', 'ca.refuse', 'tsa.timestamp', 'log.sign'])
    assert.ok(
      all.some((r) => r.action === action),
      `an ${action} record exists`,
    );
  assert.ok(
    all.filter((r) => r.action === 'tsa.timestamp').every((r) => r.keyRef?.includes('tsa.key') && /^[0-9a-f]{64}$/.test(r.digest ?? '')),
  );
  const ok = await runCli(['audit', 'verify', '--db', stack.auditDb]);
  assert.equal(ok.code, 0, ok.stderr);
  const exported = join(dir, 'audit.jsonl');
  assert.equal((await runCli(['audit', 'export', '--db', stack.auditDb, '--out', exported])).code, 0);
  assert.equal((await runCli(['audit', 'verify', '--file', exported])).code, 0);

  const db = new DatabaseSync(stack.auditDb);
  const row = db.prepare(`SELECT seq, record FROM audit WHERE record LIKE '%"denied"%' ORDER BY seq LIMIT 1`).get() as {
    seq: number;
    record: string;
  };
  db.prepare('UPDATE audit SET record = ? WHERE seq = ?').run(row.record.replace('"denied"', '"ok"'), row.seq);
  db.close();
  const bad = await runCli(['audit', 'verify', '--db', stack.auditDb]);
  failedWithCode(bad, 'ERR_AUDIT_TAMPERED');
});
