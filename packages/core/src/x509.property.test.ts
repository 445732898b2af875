// X.509 certificates on hostile bytes: parseCertificate and every extension reader either
// refuse with a WaxsealError or succeed; a parsed certificate is exactly its input (no trailing
// bytes, der === input) and parsing is deterministic. Its DER is unique by der.property.test.ts.
// Seeds: certificates built here, plus the real ones in the shared vectors when present.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { hostileBytes, parseOrRefuse, throwsWithCode } from '@waxseal/testkit';
import {
  parseCertificate,
  basicConstraints,
  keyUsage,
  extendedKeyUsage,
  subjectKeyId,
  authorityKeyId,
  subjectAltNames,
  fulcioExtensions,
  certificateIdentity,
  type Certificate,
} from './x509.ts';
import { assembleCertificate, encodeTbs, ext, keyIdentifier, simpleName } from './x509-build.ts';
import { seq, oid, explicit, integer, tlv, parseDer } from './der.ts';
import { OID, FULCIO_OID } from './oids.ts';
import { fromBase64, toHex } from './bytes.ts';

const spki = new Uint8Array(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'der', type: 'spki' }));
const alg = seq(oid(OID.ecdsaWithSha256));

function built(extensions: Parameters<typeof encodeTbs>[0]['extensions'], notAfter = new Date(Date.UTC(2049, 11, 31))): Uint8Array {
  const tbs = encodeTbs({
    serial: Uint8Array.of(0x42, 1, 2),
    signatureAlgorithm: alg,
    issuer: simpleName('Waxseal', 'Root'),
    subject: simpleName(undefined, 'Leaf'),
    notBefore: new Date(Date.UTC(2026, 0, 2, 3, 4, 5)),
    notAfter,
    spki,
    extensions,
  });
  return assembleCertificate(tbs, alg, new Uint8Array(70).fill(0x5a));
}

/** rawBytes of every certificate in the shared vectors' trusted roots and bundles (none when absent). */
function vectorCertificates(): Uint8Array[] {
  const dir = process.env.WAXSEAL_VECTORS ?? resolve(new URL('.', import.meta.url).pathname, '../../../../shared/vectors');
  if (!existsSync(join(dir, 'index.json'))) return [];
  const files = [
    ...readdirSync(join(dir, 'trusted-roots'))
      .filter((f) => f.endsWith('.json'))
      .map((f) => join(dir, 'trusted-roots', f)),
    ...readdirSync(dir)
      .map((c) => join(dir, c, 'bundle.sigstore.json'))
      .filter(existsSync),
  ];
  const out = new Map<string, Uint8Array>();
  for (const f of files)
    for (const m of readFileSync(f, 'utf8').matchAll(/"rawBytes":\s*"([A-Za-z0-9+/=]+)"/g)) {
      const der = fromBase64(m[1]!);
      if (parseOrRefuse(() => parseCertificate(der))) out.set(m[1]!, der);
    }
  return [...out.values()];
}

const real = vectorCertificates();
const seeds = [
  built([
    ext.basicConstraints(true, 1),
    ext.keyUsage(['keyCertSign', 'cRLSign']),
    ext.extKeyUsage([OID.kpCodeSigning]),
    ext.subjectKeyId(spki),
    ext.authorityKeyId(keyIdentifier(spki)),
  ]),
  built(
    [
      ext.keyUsage(['digitalSignature']),
      ext.subjectAltName(
        [
          { type: 'email', value: 'dev@example.com' },
          { type: 'uri', value: 'https://example.com/x' },
          { type: 'dns', value: 'example.com' },
          { type: 'otherName', typeId: FULCIO_OID.otherName, value: 'alice!example.com' },
        ],
        true,
      ),
      ext.raw(FULCIO_OID.issuerV1, 'https://issuer.example'),
      ext.utf8(FULCIO_OID.issuer, 'https://issuer.example'),
      ext.utf8(FULCIO_OID.sourceRepositoryURI, 'https://github.com/o/r'),
    ],
    new Date(Date.UTC(2051, 0, 1)), // GeneralizedTime
  ),
  built([]),
  ...real.slice(0, 40),
];

function readEverything(c: Certificate): void {
  for (const read of [
    basicConstraints,
    keyUsage,
    extendedKeyUsage,
    subjectKeyId,
    authorityKeyId,
    subjectAltNames,
    fulcioExtensions,
    certificateIdentity,
  ])
    parseOrRefuse(() => read(c), read.name);
}

test('property: parseCertificate refuses with a WaxsealError or holds exactly its input', () => {
  fc.assert(
    fc.property(hostileBytes(seeds, 300), (bytes) => {
      const c = parseOrRefuse(() => parseCertificate(bytes), toHex(bytes.subarray(0, 64)));
      if (!c) return;
      assert.equal(toHex(c.der), toHex(bytes));
      assert.equal(toHex(c.tbs), toHex(parseDer(bytes).children[0]!.raw));
      assert.ok([1, 2, 3].includes(c.version), `version ${c.version}`);
      assert.deepEqual(parseCertificate(bytes), c);
      readEverything(c);
    }),
    { numRuns: 3000 },
  );
});

test('the seeds parse, and their extensions read back', () => {
  assert.ok(seeds.length >= 3);
  const [ca, leaf] = seeds.map((s) => parseCertificate(s));
  assert.deepEqual(basicConstraints(ca!), { ca: true, pathLen: 1 });
  assert.equal(certificateIdentity(leaf!), 'https://example.com/x');
  assert.equal(fulcioExtensions(leaf!).issuer, 'https://issuer.example');
  assert.equal(leaf!.notAfter.toISOString(), '2051-01-01T00:00:00.000Z');
  for (const r of real) readEverything(parseCertificate(r));
});

test('a version other than v1-v3, a padded version and a repeated extension list are refused', () => {
  const good = parseDer(seeds[0]!);
  const tbs = good.children[0]!;
  const withTbs = (children: Uint8Array[]) => seq(seq(...children), good.children[1]!.raw, good.children[2]!.raw);
  const rest = tbs.children.slice(1).map((c) => c.raw);
  throwsWithCode(() => parseCertificate(withTbs([explicit(0, integer(3)), ...rest])), 'ERR_DER_PARSE', /version 4/);
  // Formerly read as its first byte (v2): a two-byte INTEGER 0x0102.
  throwsWithCode(() => parseCertificate(withTbs([explicit(0, tlv(0x02, Uint8Array.of(1, 2))), ...rest])), 'ERR_DER_PARSE', /version/);
  throwsWithCode(() => parseCertificate(withTbs([tlv(0xa0, new Uint8Array(0)), ...rest])), 'ERR_DER_PARSE', /version/);
  const extensions = tbs.children[tbs.children.length - 1]!.raw;
  throwsWithCode(() => parseCertificate(withTbs([...tbs.children.map((c) => c.raw), extensions])), 'ERR_DER_PARSE', /duplicate extension/);
});
