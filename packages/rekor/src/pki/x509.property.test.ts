// X.509 verification material of Rekor entries on hostile input: refused with a WaxsealError or
// parsed. DER material (Rekor v2) has one encoding: its canonical PEM encodes exactly the input
// bytes. PEM material (Rekor v1) may be spelled many ways, so its canonical PEM must be a fixed
// point, and canonical input must come back unchanged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { hostileBytes, hostileText, parseOrRefuse } from '@waxseal/testkit';
import { parseX509Pem, x509FromDer, type X509Material } from './x509.ts';
import { decodePemAll, encodePem } from '../../../core/src/pem.ts';
import { seq, oid } from '../../../core/src/der.ts';
import { OID } from '../../../core/src/oids.ts';
import { assembleCertificate, encodeTbs, ext, simpleName } from '../../../core/src/x509-build.ts';
import { toHex, utf8 } from '../../../core/src/bytes.ts';

const spkiOf = (k: ReturnType<typeof generateKeyPairSync>['publicKey']) => new Uint8Array(k.export({ format: 'der', type: 'spki' }));
const keys = [
  spkiOf(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey),
  spkiOf(generateKeyPairSync('ed25519').publicKey),
  spkiOf(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey),
];
const alg = seq(oid(OID.ecdsaWithSha256));
const cert = (subject: string, spki: Uint8Array) =>
  assembleCertificate(
    encodeTbs({
      serial: Uint8Array.of(9),
      signatureAlgorithm: alg,
      issuer: simpleName(undefined, 'CA'),
      subject: simpleName(undefined, subject),
      notBefore: new Date(Date.UTC(2026, 0, 1)),
      notAfter: new Date(Date.UTC(2027, 0, 1)),
      spki,
      extensions: [ext.subjectAltName([{ type: 'email', value: `${subject}@example.com` }], false)],
    }),
    alg,
    new Uint8Array(64).fill(1),
  );
const certs = [cert('leaf', keys[0]!), cert('ca', keys[1]!)];

const sameMaterial = (a: X509Material, b: X509Material) => {
  assert.equal(a.canonicalPem, b.canonicalPem);
  assert.equal(toHex(a.key.spki), toHex(b.key.spki));
  assert.deepEqual(
    a.certs.map((c) => toHex(c.der)),
    b.certs.map((c) => toHex(c.der)),
  );
};

test('property: parseX509Pem refuses with a WaxsealError or parses to a fixed point', () => {
  const canonical = [
    ...keys.map((k) => encodePem('PUBLIC KEY', k)),
    ...certs.map((c) => encodePem('CERTIFICATE', c)),
    certs.map((c) => encodePem('CERTIFICATE', c)).join(''),
  ];
  for (const text of canonical) assert.equal(parseX509Pem(utf8(text)).canonicalPem, text);
  fc.assert(
    fc.property(hostileText(canonical), (text) => {
      const m = parseOrRefuse(() => parseX509Pem(utf8(text)), JSON.stringify(text.slice(0, 80)));
      if (m) sameMaterial(parseX509Pem(utf8(m.canonicalPem)), m);
    }),
    { numRuns: 1000 },
  );
});

test('property: x509FromDer refuses with a WaxsealError or its canonical PEM holds exactly the input', () => {
  fc.assert(
    fc.property(hostileBytes([...keys, ...certs], 300), fc.constantFrom('publicKey', 'x509Certificate' as const), (der, type) => {
      const m = parseOrRefuse(() => x509FromDer(der, type as 'publicKey' | 'x509Certificate'), toHex(der.subarray(0, 48)));
      if (!m) return;
      const blocks = decodePemAll(m.canonicalPem);
      assert.equal(blocks.length, 1);
      assert.equal(blocks[0]!.label, type === 'publicKey' ? 'PUBLIC KEY' : 'CERTIFICATE');
      assert.equal(toHex(blocks[0]!.der), toHex(der));
    }),
    { numRuns: 1500 },
  );
});
