// PKCS#11 backend against a real SoftHSM 2 token created for this test: keys generated on the
// token (by us and by opensc's pkcs11-tool), opened through openSigner(), signatures checked with
// node:crypto, certificates issued by the HSM key checked with `openssl verify`.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { publicKeyFromSpki } from '../../core/src/crypto.ts';
import { rejectsWithCode } from '@waxseal/testkit';
import { utf8 } from '../../core/src/bytes.ts';
import { OID } from '../../core/src/oids.ts';
import { selfSignedRoot } from '../../keys/src/certify.ts';
import { openSigner } from '../../keys/src/open.ts';
import { generatePkcs11Key, openPkcs11Signer } from '../src/pkcs11.ts';
import type { Signer } from '../../keys/src/signer.ts';
import { assertSigns, assertSignsChain, fileRoot, hasCommand, inOneYear, tempDir } from '../../keys/test/helpers.ts';

const MODULE = ['/usr/lib/softhsm/libsofthsm2.so', '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so'].find((p) => existsSync(p));
const skip = !MODULE || !hasCommand('softhsm2-util') ? 'SoftHSM 2 is not installed (apt-get install softhsm2 opensc)' : false;

const PIN_ENV = 'WAXSEAL_TEST_HSM_PIN';
const uri = (path: string, query = `pin-source=env:${PIN_ENV}`) => `pkcs11:${path}?module-path=${MODULE}&${query}`;

describe('PKCS#11 signer on SoftHSM', { skip }, () => {
  let dir = '';
  let serial = '';
  const opened: Signer[] = [];
  const track = <T extends Signer>(s: T): T => (opened.push(s), s);

  before(() => {
    dir = tempDir('softhsm');
    const conf = join(dir, 'softhsm2.conf');
    mkdirSync(join(dir, 'tokens'));
    writeFileSync(conf, `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
    // SoftHSM reads SOFTHSM2_CONF when the module is initialised, i.e. on the first open below.
    process.env['SOFTHSM2_CONF'] = conf;
    process.env[PIN_ENV] = '1234';
    execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'waxseal', '--so-pin', '5678', '--pin', '1234'], { stdio: 'pipe' });
    const slots = execFileSync('softhsm2-util', ['--show-slots'], { encoding: 'utf8' });
    serial = /Serial number:\s+(\S+)[\s\S]*?Label:\s+waxseal/.exec(slots)?.[1] ?? '';
    // A key made by another tool (opensc) before our process touches the token.
    if (hasCommand('pkcs11-tool')) {
      execFileSync(
        'pkcs11-tool',
        [
          '--module',
          MODULE!,
          '--token-label',
          'waxseal',
          '--login',
          '--pin',
          '1234',
          '--keypairgen',
          '--key-type',
          'EC:secp384r1',
          '--label',
          'opensc-key',
          '--id',
          '0a0b',
        ],
        { stdio: 'pipe' },
      );
    }
  });

  after(async () => {
    for (const s of opened) await s.close?.();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a generated P-256 key signs through openSigner; signatures verify with node:crypto', async () => {
    const gen = track(await generatePkcs11Key(uri('token=waxseal;object=ca-p256'), 'ecdsa-p256'));
    assert.equal(gen.kind, 'ecdsa-p256');
    const signer = track(await openSigner(uri('token=waxseal;object=ca-p256')));
    assert.equal(signer.kind, 'ecdsa-p256');
    assert.equal(signer.hash, 'sha256');
    assert.deepEqual(signer.publicKeySpki, gen.publicKeySpki);
    assert.ok(!signer.keyRef.includes('1234'));
    const data = utf8('hello from the HSM');
    assertSigns(signer, data, await signer.sign(data));
    // Large messages are hashed in Node, so size does not matter to the token.
    const big = new Uint8Array(100_000).fill(7);
    assertSigns(signer, big, await signer.sign(big));
  });

  test('P-384 and RSA-2048 keys sign (CKM_ECDSA with SHA-384; RSA PKCS#1 v1.5 with SHA-256)', async () => {
    const p384 = track(await generatePkcs11Key(uri('token=waxseal;object=tsa-p384'), 'ecdsa-p384'));
    assert.equal(p384.kind, 'ecdsa-p384');
    assert.equal(p384.hash, 'sha384');
    const data = utf8('timestamp me');
    assertSigns(p384, data, await p384.sign(data));

    track(await generatePkcs11Key(uri('token=waxseal;object=rsa-key'), 'rsa-2048'));
    const rsa = track(await openSigner(uri(`serial=${serial};object=rsa-key`)));
    assert.equal(rsa.kind, 'rsa');
    assert.equal(publicKeyFromSpki(rsa.publicKeySpki).rsaBits, 2048);
    const sig = await rsa.sign(data);
    assert.equal(sig.length, 256);
    assertSigns(rsa, data, sig);
    // The other RSA path: the token hashes (CKM_SHA256_RSA_PKCS). PKCS#1 v1.5 is deterministic.
    const onToken = track(await openPkcs11Signer(uri('token=waxseal;object=rsa-key'), { rsaMechanism: 'hash-and-sign' }));
    assert.deepEqual(await onToken.sign(data), sig);
  });

  test('a key made by pkcs11-tool is found by CKA_ID and PIN file', {
    skip: hasCommand('pkcs11-tool') ? false : 'pkcs11-tool (opensc) not installed',
  }, async () => {
    const pinFile = join(dir, 'pin');
    writeFileSync(pinFile, '1234\n', { mode: 0o600 });
    const signer = track(await openSigner(uri('token=waxseal;id=%0A%0b', `pin-source=file:${pinFile}`)));
    assert.equal(signer.kind, 'ecdsa-p384');
    const data = utf8('opensc made this key');
    assertSigns(signer, data, await signer.sign(data));
  });

  test('concurrent signatures share the session pool and all verify', async () => {
    const signer = track(await openSigner(uri('token=waxseal;object=ca-p256')));
    const msgs = Array.from({ length: 24 }, (_, i) => utf8(`message ${i}`));
    const sigs = await Promise.all(msgs.map((m) => signer.sign(m)));
    sigs.forEach((s, i) => assertSigns(signer, msgs[i]!, s));
  });

  test('chain: file-key root -> HSM intermediate -> TSA leaf signed by the HSM; openssl verify accepts it', async () => {
    const root = await fileRoot(dir);
    const hsm = track(await openSigner(uri('token=waxseal;object=ca-p256')));
    await assertSignsChain(dir, root, hsm, { intermediate: 'HSM intermediate', signatureAlgorithm: OID.ecdsaWithSha256 });
  });

  test('an RSA HSM root and a P-384 HSM intermediate verify with openssl', async () => {
    const rsa = track(await openSigner(uri('token=waxseal;object=rsa-key')));
    const root = await selfSignedRoot(rsa, { commonName: 'HSM RSA root', notAfter: inOneYear(), pathLen: 1 });
    assert.equal(root.signatureAlgorithm, OID.sha256WithRsa);
    const p384 = track(await openSigner(uri('token=waxseal;object=tsa-p384')));
    await assertSignsChain(dir, { signer: rsa, cert: root }, p384, {
      intermediate: 'HSM P-384 intermediate',
      leaf: 'TSA 384',
      signatureAlgorithm: OID.ecdsaWithSha384,
    });
  });

  test('bad configuration gives clear WaxsealErrors', async () => {
    await rejectsWithCode(
      openSigner(uri('token=waxseal;object=ca-p256', 'pin-value=0000')),
      'ERR_CONFIG',
      /wrong PIN for PKCS#11 token waxseal/,
    );
    await rejectsWithCode(
      openSigner(uri('token=nope;object=ca-p256')),
      'ERR_CONFIG',
      /no initialised PKCS#11 token matches token=nope.*tokens present: waxseal/,
    );
    await rejectsWithCode(
      openSigner(uri('token=waxseal;object=no-such-key')),
      'ERR_CONFIG',
      /no private key with label "no-such-key" on PKCS#11 token waxseal/,
    );
    await rejectsWithCode(
      openSigner(uri('token=waxseal;object=ca-p256', 'pin-source=env:WAXSEAL_TEST_UNSET_PIN')),
      'ERR_CONFIG',
      /WAXSEAL_TEST_UNSET_PIN is not set/,
    );
    await rejectsWithCode(
      openSigner(uri('token=waxseal;object=ca-p256', `pin-source=file:${join(dir, 'missing-pin')}`)),
      'ERR_CONFIG',
      /cannot read PIN file/,
    );
    await rejectsWithCode(
      openSigner('pkcs11:token=waxseal;object=ca-p256?module-path=/nonexistent/libp11.so&pin-value=1234'),
      'ERR_CONFIG',
      /does not exist/,
    );
    await rejectsWithCode(openSigner(uri('token=waxseal;object=ca-p256', '')), 'ERR_CONFIG', /no PIN/);
    await rejectsWithCode(openSigner(uri('token=waxseal;object=ca-p256;type=cert')), 'ERR_CONFIG', /type=cert cannot sign/);
    await rejectsWithCode(
      generatePkcs11Key(uri('token=waxseal;object=ca-p256'), 'ecdsa-p256'),
      'ERR_CONFLICT',
      /already holds a private key with label "ca-p256"/,
    );
    // After all those failures the token still works.
    const s = track(await openSigner(uri('token=waxseal;object=ca-p256')));
    assertSigns(s, utf8('still fine'), await s.sign(utf8('still fine')));
  });

  test('close() ends the signer; the module can be opened again afterwards', async () => {
    for (const s of opened.splice(0)) await s.close?.();
    const s = await openSigner(uri('token=waxseal;object=ca-p256'));
    await s.close?.();
    await rejectsWithCode(s.sign(utf8('x')), 'ERR_SIGNER', /closed/);
    await s.close?.(); // idempotent
    // With no signer logged in, a wrong PIN is refused by the token itself.
    await rejectsWithCode(openSigner(uri('token=waxseal;object=ca-p256', 'pin-value=9999')), 'ERR_CONFIG', /wrong PIN/);
    const again = track(await openSigner(uri('token=waxseal;object=ca-p256')));
    assertSigns(again, utf8('reopened'), await again.sign(utf8('reopened')));
  });
});
