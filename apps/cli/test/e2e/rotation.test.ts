// Rotation without breaking earlier signatures: the CA intermediate and the TSA certificate are
// rotated (`waxseal ca rotate`, `waxseal tsa rotate`); the old chains stay in trusted_root.json with
// an end to their validity, published through TUF; bundles signed before and after both verify.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunningServer } from '../../../../packages/server/src/http.ts';
import { loadInstanceConfig } from '../../../instance/src/config.ts';
import { startInstance, type RunningInstance } from '../../../instance/src/instance.ts';
import { failedWithCode, runCli, signBlobAs } from '../helpers/cli.ts';
import { startIdp } from '../helpers/idp.ts';
import { generateSigner } from '../../../../packages/keys/src/memory.ts';
import { encodePem } from '../../../../packages/core/src/pem.ts';

let dir: string;
let idpServer: RunningServer;
let issuer: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wx-rotate-'));
  ({ server: idpServer, issuer } = await startIdp(dir));
});

after(async () => {
  await idpServer?.close();
  rmSync(dir, { recursive: true, force: true });
});

function writeConfig(
  ca: { key: string; retired?: string },
  tsa: { key: string; retired?: string },
  log: { key: string; retired?: string },
): string {
  const path = join(dir, 'waxseal.yaml');
  writeFileSync(
    path,
    [
      'listen: { port: 0 }',
      'data: ./data',
      'ca:',
      `  key: "${ca.key}"`,
      '  chain: ./ca/chain.pem',
      '  issuers: ./issuers.yaml',
      ...(ca.retired ? ['  retired:', `    - ${ca.retired}`] : []),
      'tsa:',
      `  key: "${tsa.key}"`,
      '  chain: ./tsa/chain.pem',
      ...(tsa.retired ? ['  retired:', `    - ${tsa.retired}`] : []),
      'log:',
      `  key: "${log.key}"`,
      ...(log.retired ? ['  retired:', `    - ${log.retired}`] : []),
      'tuf: { keys: ./tuf-keys }',
      '',
    ].join('\n'),
  );
  return path;
}

async function signWith(inst: RunningInstance, name: string): Promise<{ artifact: string; bundle: string }> {
  const artifact = join(dir, `${name}.txt`);
  writeFileSync(artifact, `artifact ${name}\n`);
  const bundle = join(dir, `${name}.sigstore.json`);
  await signBlobAs({ issuer, signingConfigPath: inst.signingConfigPath }, 'release@acme.test', artifact, bundle);
  return { artifact, bundle };
}

function logKey(name: string): { key: string; pub: string } {
  const s = generateSigner('ed25519');
  writeFileSync(join(dir, `${name}.key`), s.exportPkcs8Pem(), { mode: 0o600 });
  writeFileSync(join(dir, `${name}.pub`), encodePem('PUBLIC KEY', s.publicKeySpki));
  return { key: join(dir, `${name}.key`), pub: join(dir, `${name}.pub`) };
}

test('bundles signed before and after rotating the CA intermediate, the TSA certificate and the log key all verify', async () => {
  assert.equal((await runCli(['ca', 'init', '--out', join(dir, 'ca'), '--org', 'Acme'])).code, 0);
  assert.equal((await runCli(['tsa', 'init', '--out', join(dir, 'tsa'), '--org', 'Acme'])).code, 0);
  const log1 = logKey('log1');
  let inst = await startInstance(
    loadInstanceConfig(writeConfig({ key: join(dir, 'ca', 'intermediate.key') }, { key: join(dir, 'tsa', 'tsa.key') }, { key: log1.key })),
  );
  const tufRoot = inst.tufRootPath!;
  const log1Start = inst.trustedRoot.tlogs[0]!.publicKey.validFor!.start!.toISOString();
  const before = await signWith(inst, 'before');
  assert.equal(JSON.parse(readFileSync(before.bundle, 'utf8')).verificationMaterial.tlogEntries.length, 1);
  await inst.close();
  const rotatedAt = new Date().toISOString();
  const log2 = logKey('log2');

  const caRot = await runCli(['ca', 'rotate', '--dir', join(dir, 'ca'), '--root-key', join(dir, 'ca', 'root.key'), '--json']);
  assert.equal(caRot.code, 0, caRot.stderr);
  const tsaRot = await runCli(['tsa', 'rotate', '--dir', join(dir, 'tsa'), '--root-key', join(dir, 'tsa', 'root.key'), '--json']);
  assert.equal(tsaRot.code, 0, tsaRot.stderr);
  const c = JSON.parse(caRot.stdout);
  const t = JSON.parse(tsaRot.stdout);
  inst = await startInstance(
    loadInstanceConfig(
      writeConfig(
        { key: c.key, retired: `{ chain: "${c.retired.chain}", end: "${c.retired.end}" }` },
        { key: t.key, retired: `{ chain: "${t.retired.chain}", end: "${t.retired.end}" }` },
        { key: log2.key, retired: `{ public-key: "${log1.pub}", start: "${log1Start}", end: "${rotatedAt}" }` },
      ),
    ),
  );
  try {
    const after = await signWith(inst, 'after');
    assert.equal(inst.trustedRoot.certificateAuthorities.length, 2);
    assert.equal(inst.trustedRoot.certificateAuthorities[0]!.validFor.end?.toISOString(), c.retired.end);
    assert.equal(inst.trustedRoot.timestampAuthorities.length, 2);
    assert.equal(inst.trustedRoot.tlogs.length, 4, 'old and new log keys, v1 and v2 views');

    // A client pinned to the first TUF root picks up the rotated trust documents.
    const configDir = join(dir, 'client');
    const init = await runCli(['trust', 'init', '--mirror', inst.tufUrl!, '--root', tufRoot], { env: { WAXSEAL_CONFIG_DIR: configDir } });
    assert.equal(init.code, 0, init.stderr);
    const installed = JSON.parse(readFileSync(join(configDir, 'trust', 'trusted_root.json'), 'utf8'));
    assert.equal(installed.certificateAuthorities.length, 2);
    for (const b of [before, after]) {
      const r = await runCli(
        [
          'verify-blob',
          b.artifact,
          '--bundle',
          b.bundle,
          '--certificate-identity',
          'release@acme.test',
          '--certificate-oidc-issuer',
          issuer,
        ],
        { env: { WAXSEAL_CONFIG_DIR: configDir, WAXSEAL_TRUSTED_ROOT: undefined } },
      );
      assert.equal(r.code, 0, `${b.bundle}: ${r.stderr}`);
    }
    // The bundle from before the rotation does not verify against a root that lacks the retired chain.
    const onlyNew = { ...installed, certificateAuthorities: installed.certificateAuthorities.slice(1) };
    writeFileSync(join(dir, 'only-new.json'), JSON.stringify(onlyNew));
    const r = await runCli([
      'verify-blob',
      before.artifact,
      '--bundle',
      before.bundle,
      '--trusted-root',
      join(dir, 'only-new.json'),
      '--certificate-identity',
      'release@acme.test',
      '--certificate-oidc-issuer',
      issuer,
    ]);
    failedWithCode(r, 'ERR_VERIFY_CERT_CHAIN');
  } finally {
    await inst.close();
  }
});
