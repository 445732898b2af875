import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { throwsWithCode } from '@waxseal/testkit';
import { encodePem } from '../../core/src/pem.ts';
import { OID } from '../../core/src/oids.ts';
import { basicConstraints, extendedKeyUsage, keyUsage, parseCertificatesPem, type Certificate } from '../../core/src/x509.ts';
import { ext, keyIdentifier, simpleName } from '../../core/src/x509-build.ts';
import { generateSigner, signerFromPem } from '../../keys/src/memory.ts';
import { signCertificate, selfSignedRoot, intermediateCa } from '../../keys/src/certify.ts';
import { initCaChain, loadCaChain, validateCaChain, ephemeralCa, writeCsr } from './chain.ts';
import { withTempDir } from '../test/helpers.ts';

const YEAR = 365 * 86_400_000;
const pem = (...certs: Certificate[]) => certs.map((c) => encodePem('CERTIFICATE', c.der)).join('');
/** Asserts that `fn` refuses the chain with ERR_CHAIN_INVALID for the reason `re` names. */
const refusesChain = (fn: () => unknown, re: RegExp) => throwsWithCode(fn, 'ERR_CHAIN_INVALID', re);

test('initCaChain: P-384 root, codeSigning intermediate with pathLen 0, loadable chain and offline root key', async () => {
  const signer = generateSigner('ecdsa-p256');
  const r = await initCaChain({ intermediateSigner: signer, organization: 'Acme' });
  assert.equal(r.root.subject[OID.organizationName], 'Acme');
  assert.ok(r.root.notAfter.getTime() - Date.now() > 9.9 * YEAR);
  assert.deepEqual(basicConstraints(r.intermediate), { ca: true, pathLen: 0 });
  assert.deepEqual(extendedKeyUsage(r.intermediate), [OID.kpCodeSigning]);
  assert.ok(keyUsage(r.intermediate)!.has('keyCertSign'));
  const chain = loadCaChain(signer, r.chainPem);
  assert.equal(chain.certificates.length, 2);
  assert.equal(chain.pems.join(''), r.chainPem);
  const rootKey = signerFromPem(r.rootKeyPem!, 'file:///root.key');
  assert.equal(rootKey.kind, 'ecdsa-p384');
  withTempDir((dir) => {
    writeFileSync(join(dir, 'root.pem'), r.rootPem);
    writeFileSync(join(dir, 'int.pem'), r.intermediatePem);
    assert.match(execFileSync('openssl', ['verify', '-CAfile', join(dir, 'root.pem'), join(dir, 'int.pem')], { encoding: 'utf8' }), /OK/);
  });
  const e = await ephemeralCa();
  validateCaChain(e.signer, e.chain);
});

test('start-up checks refuse a key mismatch, a non-CA intermediate, a broken link and other defects', async () => {
  const rootSigner = generateSigner('ecdsa-p256');
  const signer = generateSigner('ecdsa-p256');
  const now = Date.now();
  const root = await selfSignedRoot(rootSigner, { commonName: 'Root', notAfter: new Date(now + YEAR), pathLen: 1 });
  const good = await intermediateCa(signer.publicKeySpki, rootSigner, root, {
    commonName: 'Issuing',
    notAfter: new Date(now + YEAR),
    pathLen: 0,
    extKeyUsage: [OID.kpCodeSigning],
  });
  loadCaChain(signer, pem(good, root));

  refusesChain(() => loadCaChain(generateSigner('ecdsa-p256'), pem(good, root)), /public key differs from the signer/);

  const leafLike = (extensions: ReturnType<typeof ext.basicConstraints>[]) =>
    signCertificate(
      {
        subject: simpleName(undefined, 'Not a CA'),
        spki: signer.publicKeySpki,
        notBefore: new Date(now - 60_000),
        notAfter: new Date(now + YEAR),
        extensions,
      },
      rootSigner,
      root,
    );
  const notCa = await leafLike([
    ext.basicConstraints(false),
    ext.keyUsage(['digitalSignature']),
    ext.extKeyUsage([OID.kpCodeSigning]),
    ext.subjectKeyId(signer.publicKeySpki),
    ext.authorityKeyId(keyIdentifier(root.spki)),
  ]);
  refusesChain(() => loadCaChain(signer, pem(notCa, root)), /is not a CA/);

  const noCertSign = await leafLike([
    ext.basicConstraints(true, 0),
    ext.keyUsage(['digitalSignature']),
    ext.extKeyUsage([OID.kpCodeSigning]),
    ext.subjectKeyId(signer.publicKeySpki),
  ]);
  refusesChain(() => loadCaChain(signer, pem(noCertSign, root)), /keyCertSign/);

  const otherRootSigner = generateSigner('ecdsa-p256');
  const otherRoot = await selfSignedRoot(otherRootSigner, { commonName: 'Root', notAfter: new Date(now + YEAR) });
  refusesChain(() => loadCaChain(signer, pem(good, otherRoot)), /signature does not verify|authority key id/);
  const otherNameRoot = await selfSignedRoot(otherRootSigner, { commonName: 'Another root', notAfter: new Date(now + YEAR) });
  refusesChain(() => loadCaChain(signer, pem(good, otherNameRoot)), /issuer name differs/);

  const tsaEku = await intermediateCa(signer.publicKeySpki, rootSigner, root, {
    commonName: 'Issuing',
    notAfter: new Date(now + YEAR),
    pathLen: 0,
    extKeyUsage: [OID.kpTimeStamping],
  });
  refusesChain(() => loadCaChain(signer, pem(tsaEku, root)), /without codeSigning/);
  const noEku = await intermediateCa(signer.publicKeySpki, rootSigner, root, {
    commonName: 'Issuing',
    notAfter: new Date(now + YEAR),
    pathLen: 0,
  });
  refusesChain(() => loadCaChain(signer, pem(noEku, root)), /EKU chaining/);

  const tightRoot = await selfSignedRoot(rootSigner, { commonName: 'Root', notAfter: new Date(now + YEAR), pathLen: 0 });
  const midSigner = generateSigner('ecdsa-p256');
  const mid = await intermediateCa(midSigner.publicKeySpki, rootSigner, tightRoot, {
    commonName: 'Mid',
    notAfter: new Date(now + YEAR),
    extKeyUsage: [OID.kpCodeSigning],
  });
  const low = await intermediateCa(signer.publicKeySpki, midSigner, mid, {
    commonName: 'Issuing',
    notAfter: new Date(now + YEAR),
    pathLen: 0,
    extKeyUsage: [OID.kpCodeSigning],
  });
  refusesChain(() => loadCaChain(signer, pem(low, mid, tightRoot)), /pathLen 0/);

  refusesChain(() => loadCaChain(signer, pem(good)), /not self-issued/);
  refusesChain(() => loadCaChain(signer, ''), /empty/);
  refusesChain(() => loadCaChain(signer, pem(good, root), new Date(now + 2 * YEAR)), /expired/);
  refusesChain(() => loadCaChain(signer, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'), /could not be parsed/);
});

test('writeCsr: an external CA (openssl) can certify the intermediate, and the result loads', async () => {
  const signer = generateSigner('ecdsa-p256');
  const r = await initCaChain({ intermediateSigner: generateSigner('ecdsa-p256'), organization: 'Customer' });
  const csr = await writeCsr(signer, { organization: 'Acme', commonName: 'Acme code-signing CA' });
  withTempDir((dir) => {
    const f = (n: string, t: string) => {
      writeFileSync(join(dir, n), t);
      return join(dir, n);
    };
    const csrFile = f('ca.csr', csr);
    const verified = spawnSync('openssl', ['req', '-in', csrFile, '-verify', '-noout'], { encoding: 'utf8' });
    assert.equal(verified.status, 0);
    assert.match(verified.stdout + verified.stderr, /verify OK/);
    const text = execFileSync('openssl', ['req', '-in', csrFile, '-noout', '-text'], { encoding: 'utf8' });
    assert.match(text, /CA:TRUE, pathlen:0/);
    assert.match(text, /Code Signing/);
    const out = join(dir, 'issued.pem');
    execFileSync(
      'openssl',
      [
        'x509',
        '-req',
        '-in',
        csrFile,
        '-CA',
        f('root.pem', r.rootPem),
        '-CAkey',
        f('root.key', r.rootKeyPem!),
        '-CAcreateserial',
        '-days',
        '365',
        '-copy_extensions',
        'copyall',
        '-out',
        out,
      ],
      { stdio: 'ignore' },
    );
    const issued = readFileSync(out, 'utf8');
    const chain = loadCaChain(signer, issued + r.rootPem);
    assert.equal(parseCertificatesPem(issued)[0]!.subject[OID.commonName], 'Acme code-signing CA');
    assert.equal(chain.certificates.length, 2);
  });
});
