// AWS KMS backend against moto_server (moto 5.2.1) started by this test: keys created through
// createAwsKmsKey(), opened with openSigner(awskms://…), signatures checked with node:crypto and
// certificates issued by the KMS key checked with `openssl verify`. moto mishandles
// MessageType DIGEST, so these URIs use message-type=raw (real AWS takes the default, digest).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CreateKeyCommand, KMSClient, type KeySpec, type KeyUsageType } from '@aws-sdk/client-kms';
import { rejectsWithCode } from '@waxseal/testkit';
import { utf8 } from '../../core/src/bytes.ts';
import { OID } from '../../core/src/oids.ts';
import { createAwsKmsKey } from '../src/awskms.ts';
import { openSigner } from '../../keys/src/open.ts';
import type { Signer } from '../../keys/src/signer.ts';
import { assertSigns, assertSignsChain, fileRoot, freePort, hasCommand, startMoto, tempDir, type Moto } from '../../keys/test/helpers.ts';

const skip = hasCommand('moto_server') ? false : 'moto_server is not installed (pip install "moto[server]")';

const ENV = { AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', AWS_REGION: 'us-east-1', AWS_EC2_METADATA_DISABLED: 'true' };

describe('AWS KMS signer on moto', { skip }, () => {
  let moto: Moto | undefined;
  let dir = '';
  const saved: Record<string, string | undefined> = {};
  const opened: Signer[] = [];
  const track = <T extends Signer>(s: T): T => (opened.push(s), s);
  const uri = (key: string, query = 'message-type=raw') => `awskms://${moto!.hostPort}/${key}${query ? `?${query}` : ''}`;

  before(async () => {
    for (const [k, v] of Object.entries(ENV)) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
    dir = tempDir('awskms');
    moto = await startMoto();
  });

  after(async () => {
    for (const s of opened) await s.close?.();
    await moto?.stop();
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    if (dir) (await import('node:fs')).rmSync(dir, { recursive: true, force: true });
  });

  test('an ECC_NIST_P256 key created under an alias signs through openSigner', async () => {
    const created = track(await createAwsKmsKey(uri('alias/fulcio-ca'), 'ECC_NIST_P256'));
    assert.equal(created.keyRef, uri('alias/fulcio-ca'));
    const signer = track(await openSigner(uri('alias/fulcio-ca')));
    assert.equal(signer.kind, 'ecdsa-p256');
    assert.equal(signer.hash, 'sha256');
    assert.deepEqual(signer.publicKeySpki, created.publicKeySpki);
    const data = utf8('to be signed in KMS');
    assertSigns(signer, data, await signer.sign(data));
  });

  test('P-384 and RSA keys, opened by ARN and by key id', async () => {
    const p384 = track(await createAwsKmsKey(uri(''), 'ECC_NIST_P384'));
    assert.match(p384.keyRef, /\/arn:aws:kms:us-east-1:\d{12}:key\/[0-9a-f-]{36}\?message-type=raw$/);
    assert.equal(p384.hash, 'sha384');
    const data = utf8('three eight four');
    assertSigns(p384, data, await p384.sign(data));
    const keyId = /key\/([0-9a-f-]{36})/.exec(p384.keyRef)![1]!;
    const byId = track(await openSigner(uri(keyId)));
    assert.deepEqual(byId.publicKeySpki, p384.publicKeySpki);

    const rsa = track(await createAwsKmsKey(uri('alias/rsa-ca'), 'RSA_2048'));
    assert.equal(rsa.kind, 'rsa');
    const sig = await rsa.sign(data);
    assert.equal(sig.length, 256);
    assertSigns(rsa, data, sig);
  });

  test('chain: file-key root -> KMS intermediate -> TSA leaf signed in KMS; openssl verify accepts it', async () => {
    const root = await fileRoot(dir);
    const kms = track(await openSigner(uri('alias/fulcio-ca')));
    await assertSignsChain(dir, root, kms, { intermediate: 'KMS intermediate', signatureAlgorithm: OID.ecdsaWithSha256 });
    const rsa = track(await openSigner(uri('alias/rsa-ca')));
    await assertSignsChain(dir, root, rsa, {
      intermediate: 'KMS RSA intermediate',
      leaf: 'TSA RSA',
      leafKind: 'ecdsa-p384',
      signatureAlgorithm: OID.sha256WithRsa,
    });
  });

  test('raw mode refuses messages over 4096 bytes; a backend returning bad signatures is caught', async () => {
    const raw = track(await openSigner(uri('alias/fulcio-ca')));
    await rejectsWithCode(raw.sign(new Uint8Array(4097)), 'ERR_SIGNER', /at most 4096 bytes and this message has 4097/);
    assertSigns(raw, new Uint8Array(4096).fill(1), await raw.sign(new Uint8Array(4096).fill(1)));
    // moto 5.2.1 hashes a DIGEST message again, so its signature is over the wrong value: the
    // self-check after every remote signature turns that into ERR_SIGNER, not a broken certificate.
    const digestMode = track(await openSigner(uri('alias/fulcio-ca', '')));
    await rejectsWithCode(digestMode.sign(utf8('x')), 'ERR_SIGNER', /does not verify against its public key/);
  });

  test('unknown keys, non-signing keys and unsupported specs give ERR_CONFIG', async () => {
    await rejectsWithCode(
      openSigner(uri('alias/no-such-alias')),
      'ERR_CONFIG',
      /AWS KMS key alias\/no-such-alias at http:\/\/127\.0\.0\.1:\d+ \(region us-east-1\) not found/,
    );
    await rejectsWithCode(openSigner(uri('11111111-2222-3333-4444-555555555555')), 'ERR_CONFIG', /not found/);
    const sdk = new KMSClient({ endpoint: moto!.endpoint, region: 'us-east-1' });
    try {
      const make = async (KeySpec: KeySpec, KeyUsage: KeyUsageType) =>
        (await sdk.send(new CreateKeyCommand({ KeySpec, KeyUsage }))).KeyMetadata!.KeyId!;
      await rejectsWithCode(
        openSigner(uri(await make('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT'))),
        'ERR_CONFIG',
        /key usage ENCRYPT_DECRYPT; a signing key needs KeyUsage SIGN_VERIFY/,
      );
      await rejectsWithCode(openSigner(uri(await make('HMAC_256', 'GENERATE_VERIFY_MAC'))), 'ERR_CONFIG', /key usage GENERATE_VERIFY_MAC/);
      await rejectsWithCode(
        openSigner(uri(await make('ECC_SECG_P256K1', 'SIGN_VERIFY'))),
        'ERR_CONFIG',
        /key spec ECC_SECG_P256K1; Waxseal signs with ECC_NIST_P256/,
      );
    } finally {
      sdk.destroy();
    }
    await rejectsWithCode(createAwsKmsKey(uri('alias/fulcio-ca'), 'ECC_NIST_P256'), 'ERR_CONFLICT', /alias\/fulcio-ca exists already/);
    await rejectsWithCode(createAwsKmsKey(uri('11111111-2222-3333-4444-555555555555'), 'ECC_NIST_P256'), 'ERR_CONFIG', /name an alias/);
    await rejectsWithCode(openSigner(uri('not a key id')), 'ERR_CONFIG', /not a key id, alias\/<name> or KMS ARN/);
  });

  test('an unreachable endpoint fails with ERR_SIGNER instead of hanging', async () => {
    const port = await freePort();
    await rejectsWithCode(openSigner(`awskms://127.0.0.1:${port}/alias/x`), 'ERR_SIGNER', /failed/);
  });
});
