import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rejectsWithCode } from '@waxseal/testkit';
import { encodePem } from '../../core/src/pem.ts';
import { OID, FULCIO_OID } from '../../core/src/oids.ts';
import {
  parseCertificate,
  subjectAltNames,
  fulcioExtensions,
  keyUsage,
  extendedKeyUsage,
  basicConstraints,
  subjectKeyId,
  authorityKeyId,
  isSignedBy,
  certPublicKey,
} from '../../core/src/x509.ts';
import type { Signer } from '../../keys/src/signer.ts';
import { LeafIssuer, LEAF_VALIDITY_MS, randomLeafSerial } from './certificate.ts';
import { ephemeralCa } from './chain.ts';
import type { Principal } from './issuers.ts';
import { clientKey } from '../test/helpers.ts';

const spkiOf = () => new Uint8Array(clientKey('p256').publicKey.export({ format: 'der', type: 'spki' }));

test('the leaf has exactly Fulcio’s profile and its extensions read back', async () => {
  const ca = await ephemeralCa();
  const issuer = new LeafIssuer(ca.signer, ca.chain[0]!);
  const principal: Principal = {
    san: { type: 'uri', value: 'https://github.com/o/r/.github/workflows/ci.yml@refs/heads/main' },
    challenge: 'repo:o/r:ref:refs/heads/main',
    issuer: 'https://token.actions.githubusercontent.com',
    subject: 'repo:o/r:ref:refs/heads/main',
    extensions: {
      githubWorkflowTrigger: 'push',
      githubWorkflowSha: 'abc',
      buildSignerURI: 'https://github.com/o/r/.github/workflows/ci.yml@refs/heads/main',
      runnerEnvironment: 'github-hosted',
      sourceRepositoryVisibilityAtSigning: 'public',
      deploymentEnvironment: '',
    },
  };
  // A time with milliseconds: X.509 keeps whole seconds, and so must the reported validity.
  const now = new Date(Math.floor(Date.now() / 1000) * 1000 + 750);
  const spki = spkiOf();
  const issued = await issuer.issue(principal, spki, now);
  assert.equal(issued.notBefore.getTime(), now.getTime() - 750);
  const cert = parseCertificate(issued.der);
  assert.equal(cert.version, 3);
  assert.deepEqual([...cert.subjectRaw], [0x30, 0x00], 'empty subject');
  assert.equal(cert.notAfter.getTime() - cert.notBefore.getTime(), LEAF_VALIDITY_MS);
  assert.equal(cert.notBefore.getTime() % 1000, 0);
  assert.equal(cert.notBefore.getTime(), issued.notBefore.getTime());
  assert.equal(cert.serial.length, 20);
  assert.equal(cert.serial[0]! & 0x80, 0, 'positive serial');
  assert.equal(Buffer.from(cert.serial).toString('hex'), issued.serial);
  assert.deepEqual(cert.spki, spki);

  const san = cert.extensions.filter((e) => e.oid === OID.subjectAltName);
  assert.equal(san.length, 1);
  assert.equal(san[0]!.critical, true);
  assert.deepEqual(subjectAltNames(cert), [principal.san]);
  assert.deepEqual([...keyUsage(cert)!], ['digitalSignature']);
  assert.equal(cert.extensions.find((e) => e.oid === OID.keyUsage)!.critical, true);
  assert.deepEqual(extendedKeyUsage(cert), [OID.kpCodeSigning]);
  assert.equal(basicConstraints(cert), undefined);
  assert.deepEqual(authorityKeyId(cert), subjectKeyId(ca.chain[0]!));
  assert.ok(subjectKeyId(cert));
  for (const e of cert.extensions) if (e.oid !== OID.subjectAltName && e.oid !== OID.keyUsage) assert.equal(e.critical, false, e.oid);

  assert.deepEqual(fulcioExtensions(cert), {
    issuerV1: principal.issuer,
    issuer: principal.issuer,
    githubWorkflowTrigger: 'push',
    githubWorkflowSha: 'abc',
    buildSignerURI: principal.extensions.buildSignerURI,
    runnerEnvironment: 'github-hosted',
    sourceRepositoryVisibilityAtSigning: 'public',
    tokenSubject: principal.subject,
  });
  // 1.1 is the raw string, 1.8 a DER UTF8String.
  assert.deepEqual(Buffer.from(cert.extensions.find((e) => e.oid === FULCIO_OID.issuerV1)!.value).toString(), principal.issuer);
  assert.equal(cert.extensions.find((e) => e.oid === FULCIO_OID.issuer)!.value[0], 0x0c);
  assert.equal(
    cert.extensions.find((e) => e.oid === FULCIO_OID.deploymentEnvironment),
    undefined,
    'empty values are never emitted',
  );
  assert.ok(isSignedBy(cert, certPublicKey(ca.chain[0]!)));
});

test('OtherName and email SANs; no 1.24 without a subject; bad SAN text is refused', async () => {
  const ca = await ephemeralCa();
  const issuer = new LeafIssuer(ca.signer, ca.chain[0]!);
  // A certificate for a fresh key, for an email principal with `p`'s fields.
  const issue = (p: Partial<Principal>) =>
    issuer.issue(
      { san: { type: 'email', value: 'a@example.com' }, challenge: 'x', issuer: 'https://i', subject: 's', extensions: {}, ...p },
      spkiOf(),
      new Date(),
    );
  const un = await issue({
    san: { type: 'otherName', value: 'alice!example.com' },
    challenge: 'alice',
    issuer: 'https://login.example.com',
    subject: 'alice',
  });
  const c1 = parseCertificate(un.der);
  assert.deepEqual(subjectAltNames(c1), [{ type: 'otherName', typeId: FULCIO_OID.otherName, value: 'alice!example.com' }]);
  assert.equal(c1.extensions.find((e) => e.oid === OID.subjectAltName)!.critical, true);

  const em = await issue({ challenge: 'a@example.com', issuer: 'https://idp.example.com', subject: '' });
  const ext = fulcioExtensions(parseCertificate(em.der));
  assert.equal(ext.tokenSubject, undefined);
  assert.equal(ext.issuer, 'https://idp.example.com');

  await rejectsWithCode(issue({ san: { type: 'email', value: 'ü@example.com' } }), 'ERR_IDENTITY_CLAIMS');
  await rejectsWithCode(issue({ san: { type: 'uri', value: 'https://a/\nb' } }), 'ERR_IDENTITY_CLAIMS');
  await rejectsWithCode(issue({ subject: 'x\uD800' }), 'ERR_IDENTITY_CLAIMS');
  await rejectsWithCode(issue({ issuer: '' }), 'ERR_IDENTITY_CLAIMS');
});

test('asynchronous signers (HSM, KMS) work; an expired CA refuses to issue', async () => {
  const ca = await ephemeralCa();
  const remote: Signer = {
    kind: ca.signer.kind,
    hash: ca.signer.hash,
    keyRef: 'kms://test',
    publicKeySpki: ca.signer.publicKeySpki,
    sign: async (m) => {
      await new Promise((r) => setImmediate(r));
      return ca.signer.signSync(m);
    },
  };
  const issuer = new LeafIssuer(remote, ca.chain[0]!);
  const p: Principal = {
    san: { type: 'email', value: 'a@example.com' },
    challenge: 'a@example.com',
    issuer: 'https://i.example.com',
    subject: 's',
    extensions: {},
  };
  const cert = parseCertificate((await issuer.issue(p, spkiOf(), new Date())).der);
  assert.ok(isSignedBy(cert, certPublicKey(ca.chain[0]!)));
  await rejectsWithCode(issuer.issue(p, spkiOf(), new Date(Date.now() + 2 * 365 * 86_400_000)), 'ERR_CHAIN_INVALID');
  const failing: Signer = { ...remote, sign: async () => Promise.reject(new Error('HSM unplugged')) };
  await rejectsWithCode(new LeafIssuer(failing, ca.chain[0]!).issue(p, spkiOf(), new Date()), 'ERR_SIGNER');
});

test('the fast TBS encoder matches the core builders (encodeTbs) byte for byte', async () => {
  const ca = await ephemeralCa();
  const issuer = new LeafIssuer(ca.signer, ca.chain[0]!);
  const rsaSpki = new Uint8Array(clientKey('rsa2048').publicKey.export({ format: 'der', type: 'spki' }));
  const principals: Principal[] = [
    {
      san: { type: 'email', value: 'a@example.com' },
      challenge: 'a@example.com',
      issuer: 'https://i.example.com',
      subject: '',
      extensions: {},
    },
    {
      san: { type: 'otherName', value: 'bob!example.com' },
      challenge: 'bob',
      issuer: 'https://i.example.com',
      subject: 'bob',
      extensions: {},
    },
    {
      san: { type: 'uri', value: `https://ci.example.com/${'x'.repeat(300)}` },
      challenge: 's',
      issuer: 'https://ci.example.com',
      subject: 's'.repeat(70_000),
      extensions: {
        githubWorkflowRef: 'refs/heads/main',
        buildSignerURI: 'https://ci.example.com/b',
        runInvocationURI: 'y'.repeat(200),
        deploymentEnvironment: 'prod',
      },
    },
  ];
  for (const p of principals) {
    for (const spki of [spkiOf(), rsaSpki]) {
      const serial = Uint8Array.from({ length: 20 }, (_, i) => (i === 0 ? 0x42 : i));
      const now = new Date(Math.floor(Date.now() / 1000) * 1000);
      const fast = issuer.buildTbs(p, spki, now, serial).tbs;
      assert.deepEqual(Buffer.from(fast), Buffer.from(issuer.referenceTbs(p, spki, now, serial)), p.san.value.slice(0, 30));
    }
  }
  const issued = await issuer.issue(principals[0]!, spkiOf(), new Date());
  assert.equal(issued.pem, encodePem('CERTIFICATE', issued.der));
  assert.deepEqual(Buffer.from(parseCertificate(issued.der).der), Buffer.from(issued.der));
});

test('leaf serials: 20 bytes, positive, no leading zero, never repeated', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const s = randomLeafSerial();
    assert.equal(s.length, 20);
    assert.ok(s[0]! >= 1 && s[0]! <= 0x7f);
    seen.add(Buffer.from(s).toString('hex'));
  }
  assert.equal(seen.size, 2000);
});
