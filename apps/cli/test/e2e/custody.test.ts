// Key custody end to end: an instance (`waxseal serve` configuration) whose CA key lives in
// SoftHSM and whose TSA key lives in AWS KMS (moto), under a root chain made by an "external" CA
// (openssl, with a path-length constraint) through the CSR flow. sigstore-js signs against it;
// @sigstore/verify, waxseal verify-blob and openssl all accept the results.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FulcioSigner, TSAWitness, MessageSignatureBundleBuilder } from '@sigstore/sign';
import { Verifier, toSignedEntity, toTrustMaterial } from '@sigstore/verify';
import { bundleToJSON } from '@sigstore/bundle';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { generatePkcs11Key } from '../../../../packages/keys-pkcs11/src/pkcs11.ts';
import { createAwsKmsKey } from '../../../../packages/keys-awskms/src/awskms.ts';
import { generateSigner } from '../../../../packages/keys/src/memory.ts';
import { selfSignedRoot, tsaLeaf } from '../../../../packages/keys/src/certify.ts';
import { encodePem } from '../../../../packages/core/src/pem.ts';
import { fromBase64 } from '../../../../packages/core/src/bytes.ts';
import { fetchDevToken } from '../../../dev-idp/src/dev-idp.ts';
import type { RunningServer } from '../../../../packages/server/src/http.ts';
import { loadInstanceConfig } from '../../../instance/src/config.ts';
import { startInstance, type RunningInstance } from '../../../instance/src/instance.ts';
import { serializeTrustedRoot } from '../../../../packages/bundle/src/index.ts';
import { rejectsWithCode } from '@waxseal/testkit';
import { runCli } from '../helpers/cli.ts';
import { startIdp } from '../helpers/idp.ts';
import { opensslVerifyLeaf, opensslVerifyTimestamp } from '../helpers/openssl.ts';
import { startMoto, hasCommand, type Moto } from '../../../../packages/keys/test/helpers.ts';

const MODULE = ['/usr/lib/softhsm/libsofthsm2.so', '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so'].find((p) => existsSync(p));
const skip =
  !MODULE || !hasCommand('softhsm2-util')
    ? 'SoftHSM 2 is not installed'
    : !hasCommand('moto_server')
      ? 'moto_server is not installed'
      : false;

let dir: string;
let moto: Moto | undefined;
let idpServer: RunningServer | undefined;
let instance: RunningInstance | undefined;
let issuer: string;

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'wx-custody-'));
  // SoftHSM token for the CA key.
  const tokens = join(dir, 'tokens');
  mkdirSync(tokens);
  writeFileSync(join(dir, 'softhsm2.conf'), `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  process.env.SOFTHSM2_CONF = join(dir, 'softhsm2.conf');
  process.env.WAXSEAL_TEST_PIN = '1234';
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'waxseal', '--so-pin', '5678', '--pin', '1234'], { stdio: 'pipe' });
  const caKey = `pkcs11:token=waxseal;object=ca-key?module-path=${MODULE}&pin-source=env:WAXSEAL_TEST_PIN`;
  await (await generatePkcs11Key(caKey, 'ecdsa-p256')).close?.();

  // The CSR flow: waxseal writes a CSR for the HSM key; the "external" CA (openssl, a root with
  // pathlen:1) issues the intermediate with pathlen:0; waxseal checks and installs the chain.
  const ext = join(dir, 'external-ca');
  mkdirSync(ext);
  assert.equal(
    (
      await runCli(['ca', 'csr', '--key', caKey, '--out', join(ext, 'int.csr'), '--org', 'Acme'], {
        env: { SOFTHSM2_CONF: process.env.SOFTHSM2_CONF, WAXSEAL_TEST_PIN: '1234' },
      })
    ).code,
    0,
  );
  const ossl = (...a: string[]) => execFileSync('openssl', a, { cwd: ext, stdio: 'pipe' });
  ossl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-384',
    '-nodes',
    '-keyout',
    'root.key',
    '-out',
    'root.pem',
    '-days',
    '3650',
    '-subj',
    '/O=Acme/CN=Acme External Root',
    '-addext',
    'basicConstraints=critical,CA:TRUE,pathlen:1',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  );
  writeFileSync(
    join(ext, 'int.ext'),
    'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nextendedKeyUsage=codeSigning\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n',
  );
  ossl(
    'x509',
    '-req',
    '-in',
    'int.csr',
    '-CA',
    'root.pem',
    '-CAkey',
    'root.key',
    '-CAcreateserial',
    '-days',
    '365',
    '-extfile',
    'int.ext',
    '-out',
    'int.pem',
  );
  writeFileSync(join(ext, 'chain.pem'), readFileSync(join(ext, 'int.pem'), 'utf8') + readFileSync(join(ext, 'root.pem'), 'utf8'));
  const imported = await runCli(['ca', 'import-chain', '--key', caKey, '--chain', join(ext, 'chain.pem'), '--out', join(dir, 'ca')], {
    env: { SOFTHSM2_CONF: process.env.SOFTHSM2_CONF, WAXSEAL_TEST_PIN: '1234' },
  });
  assert.equal(imported.code, 0, imported.stderr);

  // TSA key in AWS KMS (moto), its certificate from a TSA root held in a file.
  moto = await startMoto();
  process.env.AWS_ACCESS_KEY_ID = 'test';
  process.env.AWS_SECRET_ACCESS_KEY = 'test';
  process.env.AWS_REGION = 'us-east-1';
  const tsaKey = `awskms://${moto.hostPort}/alias/waxseal-tsa?message-type=raw`;
  const tsaSigner = await createAwsKmsKey(tsaKey, 'ECC_NIST_P256');
  const tsaRootSigner = generateSigner('ecdsa-p256');
  const tsaRoot = await selfSignedRoot(tsaRootSigner, {
    organization: 'Acme',
    commonName: 'Acme TSA Root',
    notAfter: new Date(Date.now() + 3650 * 86_400_000),
  });
  const leaf = await tsaLeaf(tsaSigner.publicKeySpki, tsaRootSigner, tsaRoot, {
    organization: 'Acme',
    commonName: 'Acme TSA',
    notAfter: new Date(Date.now() + 365 * 86_400_000),
  });
  writeFileSync(join(dir, 'tsa-chain.pem'), encodePem('CERTIFICATE', leaf.der) + encodePem('CERTIFICATE', tsaRoot.der));

  // A real OIDC provider for identities (oidc-provider, on its own port).
  ({ server: idpServer, issuer } = await startIdp(dir));

  writeFileSync(
    join(dir, 'waxseal.yaml'),
    [
      'listen: { host: 127.0.0.1, port: 0 }',
      'operator: acme.test',
      'data: ./data',
      'ca:',
      `  key: "${caKey}"`,
      '  chain: ./ca/chain.pem',
      '  issuers: ./issuers.yaml',
      'tsa:',
      `  key: "${tsaKey}"`,
      '  chain: ./tsa-chain.pem',
      'tuf: { keys: ./tuf-keys }',
      '',
    ].join('\n'),
  );
  instance = await startInstance(loadInstanceConfig(join(dir, 'waxseal.yaml')));
});

after(async () => {
  await instance?.close();
  await idpServer?.close();
  await moto?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('certificates from the HSM-held CA key and timestamps from the KMS-held TSA key verify with sigstore-js, waxseal and openssl', {
  skip,
}, async () => {
  const inst = instance!;
  const artifact = join(dir, 'artifact.bin');
  writeFileSync(artifact, 'signed with keys in custody\n');
  const token = await fetchDevToken(issuer, 'ops@acme.test');
  const signer = new FulcioSigner({ fulcioBaseURL: inst.url, identityProvider: { getToken: async () => token } });
  const bundle = await new MessageSignatureBundleBuilder({ signer, witnesses: [new TSAWitness({ tsaBaseURL: inst.url })] }).create({
    data: readFileSync(artifact),
  });
  const json = bundleToJSON(bundle) as any;
  const bundlePath = join(dir, 'artifact.sigstore.json');
  writeFileSync(bundlePath, JSON.stringify(json));

  const verifier = new Verifier(toTrustMaterial(TrustedRoot.fromJSON(serializeTrustedRoot(inst.trustedRoot))), {
    tlogThreshold: 0,
    ctlogThreshold: 0,
    timestampThreshold: 1,
  });
  verifier.verify(toSignedEntity(bundle, readFileSync(artifact)), { subjectAlternativeName: 'ops@acme.test', extensions: { issuer } });

  const ok = await runCli([
    'verify-blob',
    artifact,
    '--bundle',
    bundlePath,
    '--trusted-root',
    inst.trustedRootPath,
    '--certificate-identity',
    'ops@acme.test',
    '--certificate-oidc-issuer',
    issuer,
  ]);
  assert.equal(ok.code, 0, ok.stderr);

  // openssl: the leaf chains through the HSM-keyed intermediate to the external root (pathlen 1).
  const leafDer = fromBase64(
    json.verificationMaterial.certificate?.rawBytes ?? json.verificationMaterial.x509CertificateChain.certificates[0].rawBytes,
  );
  const v = opensslVerifyLeaf(dir, leafDer, join(dir, 'external-ca', 'root.pem'), join(dir, 'external-ca', 'int.pem'));
  assert.match(v, /OK/);
  const ts = opensslVerifyTimestamp(dir, json, readFileSync(join(dir, 'tsa-chain.pem'), 'utf8'));
  assert.match(ts, /Verification: OK/);
});

test('an instance refuses to start when a chain does not belong to its key', { skip }, async () => {
  const cfg = loadInstanceConfig(join(dir, 'waxseal.yaml'));
  await rejectsWithCode(startInstance({ ...cfg, tsa: { ...cfg.tsa, chain: join(dir, 'ca', 'chain.pem') } }), 'ERR_CHAIN_INVALID');
  await rejectsWithCode(
    startInstance({
      ...cfg,
      ca: { ...cfg.ca, key: `pkcs11:token=waxseal;object=no-such-key?module-path=${MODULE}&pin-source=env:WAXSEAL_TEST_PIN` },
    }),
    'ERR_CONFIG',
  );
});
