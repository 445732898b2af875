import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { throwsWithCode } from '@waxseal/testkit';
import { OID } from '../../core/src/oids.ts';
import { ext, keyIdentifier, simpleName, type ExtensionSpec } from '../../core/src/x509-build.ts';
import { parseCertificate, type Certificate } from '../../core/src/x509.ts';
import { signCertificate, selfSignedRoot, intermediateCa } from '../../keys/src/certify.ts';
import { generateSigner, type KeyObjectSigner } from '../../keys/src/memory.ts';
import { checkTsaChain, chainToPem, generateDevTsaChain } from './chain.ts';

const notBefore = new Date(Math.floor(Date.now() / 1000) * 1000 - 3_600_000);
const notAfter = new Date(notBefore.getTime() + 86_400_000);

const refuses = (fn: () => unknown, pattern: RegExp) => throwsWithCode(fn, 'ERR_CHAIN_INVALID', pattern);

describe('checkTsaChain', () => {
  let rootSigner: KeyObjectSigner;
  let root: Certificate;
  let leafSigner: KeyObjectSigner;

  before(async () => {
    rootSigner = generateSigner();
    root = await selfSignedRoot(rootSigner, { commonName: 'test root', notBefore, notAfter });
    leafSigner = generateSigner();
  });

  const leafWith = (extensions: ExtensionSpec[], o: { nb?: Date; na?: Date } = {}) =>
    signCertificate(
      {
        subject: simpleName('test', 'tsa'),
        spki: leafSigner.publicKeySpki,
        notBefore: o.nb ?? notBefore,
        notAfter: o.na ?? notAfter,
        extensions: [ext.keyUsage(['digitalSignature']), ...extensions, ext.authorityKeyId(keyIdentifier(root.spki))],
      },
      rootSigner,
      root,
    );

  test('accepts the dev chains, with and without an intermediate, for every key type', async () => {
    for (const kind of ['ecdsa-p256', 'ecdsa-p384', 'ed25519'] as const) {
      for (const intermediate of [false, true]) {
        const dev = await generateDevTsaChain({ kind, intermediate });
        assert.equal(dev.chain.length, intermediate ? 3 : 2);
        checkTsaChain(dev.chain, dev.signer.publicKeySpki);
      }
    }
  });

  test('accepts a hand-built conforming leaf', async () => {
    checkTsaChain([await leafWith([ext.extKeyUsage([OID.kpTimeStamping], true)]), root], leafSigner.publicKeySpki);
  });

  test('refuses a chain of one certificate', async () => {
    const dev = await generateDevTsaChain();
    refuses(
      () => checkTsaChain(dev.chain.slice(0, 1), dev.signer.publicKeySpki),
      /at least two certificates \(TSA leaf \.\.\. root\), found 1/,
    );
  });

  test('refuses a leaf whose only, critical EKU is codeSigning', async () => {
    const leaf = await leafWith([ext.extKeyUsage([OID.kpCodeSigning], true)]);
    refuses(
      () => checkTsaChain([leaf, root], leafSigner.publicKeySpki),
      /extended key usage is codeSigning \(1\.3\.6\.1\.5\.5\.7\.3\.3\), not timeStamping/,
    );
  });

  test('refuses a non-critical timeStamping EKU', async () => {
    const leaf = await leafWith([ext.extKeyUsage([OID.kpTimeStamping], false)]);
    refuses(() => checkTsaChain([leaf, root], leafSigner.publicKeySpki), /must mark its extended key usage extension critical/);
  });

  test('refuses two EKUs, including an unknown one', async () => {
    const two = await leafWith([ext.extKeyUsage([OID.kpTimeStamping, OID.kpCodeSigning], true)]);
    refuses(() => checkTsaChain([two, root], leafSigner.publicKeySpki), /exactly one extended key usage, found 2/);
    const unknown = await leafWith([ext.extKeyUsage([OID.kpTimeStamping, '1.3.6.1.4.1.99999.1'], true)]);
    refuses(() => checkTsaChain([unknown, root], leafSigner.publicKeySpki), /found 2: .*1\.3\.6\.1\.4\.1\.99999\.1/);
  });

  test('refuses a leaf with no EKU', async () => {
    const leaf = await leafWith([]);
    refuses(() => checkTsaChain([leaf, root], leafSigner.publicKeySpki), /has no extended key usage/);
  });

  test('refuses a CA leaf', async () => {
    const leaf = await leafWith([ext.basicConstraints(true), ext.extKeyUsage([OID.kpTimeStamping], true)]);
    refuses(() => checkTsaChain([leaf, root], leafSigner.publicKeySpki), /end-entity certificate, not a CA/);
  });

  test("refuses a leaf whose key is not the signer's", async () => {
    const dev = await generateDevTsaChain();
    refuses(() => checkTsaChain(dev.chain, generateSigner().publicKeySpki), /public key is not the signer's key/);
  });

  test('refuses a broken leaf signature', async () => {
    const dev = await generateDevTsaChain();
    const der = new Uint8Array(dev.chain[0]!.der);
    der[der.length - 1] ^= 0x01;
    refuses(
      () => checkTsaChain([parseCertificate(der), dev.chain[1]!], dev.signer.publicKeySpki),
      /signature of certificate 0 .* does not verify/,
    );
  });

  test('refuses a chain whose links do not connect', async () => {
    const a = await generateDevTsaChain();
    const b = await generateDevTsaChain({ commonName: 'other' });
    refuses(() => checkTsaChain([a.chain[0]!, b.chain[1]!], a.signer.publicKeySpki), /was not issued by certificate 1/);
  });

  test('refuses validity that does not nest, and expired certificates', async () => {
    const outlives = await leafWith([ext.extKeyUsage([OID.kpTimeStamping], true)], { na: new Date(notAfter.getTime() + 1000) });
    refuses(() => checkTsaChain([outlives, root], leafSigner.publicKeySpki), /does not nest/);
    const dev = await generateDevTsaChain();
    refuses(
      () => checkTsaChain(dev.chain, dev.signer.publicKeySpki, { now: new Date(Date.now() + 2 * 365 * 86_400_000) }),
      /is not valid at/,
    );
  });

  test('refuses a non-CA issuer and an intermediate without timeStamping', async () => {
    const notCa = await signCertificate(
      {
        subject: simpleName('test', 'not a ca'),
        spki: rootSigner.publicKeySpki,
        notBefore,
        notAfter,
        extensions: [ext.basicConstraints(false)],
      },
      rootSigner,
    );
    // A TSA leaf (just the timeStamping EKU) for leafSigner's key, issued by `issuer`.
    const leafUnder = (issuerSigner: KeyObjectSigner, issuer: Certificate) =>
      signCertificate(
        {
          subject: simpleName('test', 'tsa'),
          spki: leafSigner.publicKeySpki,
          notBefore,
          notAfter,
          extensions: [ext.extKeyUsage([OID.kpTimeStamping], true)],
        },
        issuerSigner,
        issuer,
      );
    const leaf = await leafUnder(rootSigner, notCa);
    refuses(() => checkTsaChain([leaf, notCa], leafSigner.publicKeySpki), /certificate 1 \(root "not a ca"\) is not a CA/);

    const intSigner = generateSigner();
    const int = await intermediateCa(intSigner.publicKeySpki, rootSigner, root, { commonName: 'int', notBefore, notAfter });
    const leaf2 = await leafUnder(intSigner, int);
    refuses(() => checkTsaChain([leaf2, int, root], leafSigner.publicKeySpki), /intermediate "int"\) must carry the timeStamping/);
    // Without enforcement an intermediate with no EKU passes; one restricted to codeSigning never does.
    checkTsaChain([leaf2, int, root], leafSigner.publicKeySpki, { enforceIntermediateEku: false });
    const intCs = await intermediateCa(intSigner.publicKeySpki, rootSigner, root, {
      commonName: 'int',
      notBefore,
      notAfter,
      extKeyUsage: [OID.kpCodeSigning],
    });
    refuses(
      () => checkTsaChain([leaf2, intCs, root], leafSigner.publicKeySpki, { enforceIntermediateEku: false }),
      /excludes timeStamping/,
    );
  });

  test('chainToPem writes leaf first, root last', async () => {
    const dev = await generateDevTsaChain({ intermediate: true });
    const pem = chainToPem(dev.chain);
    assert.equal(pem.match(/BEGIN CERTIFICATE/g)?.length, 3);
    assert.ok(pem.startsWith('-----BEGIN CERTIFICATE-----\n'));
  });
});
