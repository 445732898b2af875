import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import {
  OID,
  assembleCertificate,
  concat,
  encodeTbs,
  oid,
  parseCertificate,
  randomSerial,
  seq,
  simpleName,
  tlv,
  type Certificate,
} from '@waxseal/core';
import { MAX_EMBEDDED_SCTS } from '@waxseal/bundle';
import { throwsWithCode } from '@waxseal/testkit';
import { embeddedScts, verifyEmbeddedScts } from './sct.ts';

const spki = new Uint8Array(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' }));

/** A certificate whose SCT list extension has `extnValue` (normally an OCTET STRING around the TLS list). */
function certWithSctExtension(extnValue: Uint8Array): Certificate {
  const alg = seq(oid(OID.ecdsaWithSha256));
  const name = simpleName('test', 'sct');
  const tbs = encodeTbs({
    serial: randomSerial(),
    signatureAlgorithm: alg,
    issuer: name,
    subject: name,
    notBefore: new Date('2025-01-01T00:00:00Z'),
    notAfter: new Date('2025-01-02T00:00:00Z'),
    spki,
    extensions: [{ oid: OID.ctSctList, value: extnValue }],
  });
  // The signature is never checked here: these tests only read the extension.
  return parseCertificate(assembleCertificate(tbs, alg, new Uint8Array(64)));
}

const u16 = (n: number) => Uint8Array.of(n >> 8, n & 0xff);
const vec16 = (b: Uint8Array) => concat(u16(b.length), b);
const octet = (b: Uint8Array) => tlv(0x04, b);

function sct(opts: { timestamp?: Uint8Array; extra?: Uint8Array } = {}): Uint8Array {
  return concat(
    Uint8Array.of(0), // version v1
    new Uint8Array(32).fill(7), // log id
    opts.timestamp ?? Uint8Array.of(0, 0, 1, 0x90, 0, 0, 0, 0),
    vec16(new Uint8Array(0)), // extensions
    Uint8Array.of(4, 3), // sha256, ecdsa
    vec16(new Uint8Array(70).fill(1)),
    opts.extra ?? new Uint8Array(0),
  );
}

const list = (...scts: Uint8Array[]) => vec16(concat(...scts.map(vec16)));

test('a well-formed SCT list parses', () => {
  const scts = embeddedScts(certWithSctExtension(octet(list(sct(), sct()))));
  assert.equal(scts.length, 2);
  assert.equal(scts[0]!.version, 0);
  assert.equal(scts[0]!.timestamp, 0x0190_0000_0000);
  assert.equal(scts[0]!.hashAlgorithm, 4);
  assert.equal(scts[0]!.signature.length, 70);
});

test('malformed SCT lists are ERR_VERIFY_SCT', () => {
  const good = list(sct());
  const cases: [string, Uint8Array][] = [
    ['not an OCTET STRING', tlv(0x0c, good)],
    ['not DER at all', Uint8Array.of(0x04, 0x85)],
    ['empty', octet(new Uint8Array(0))],
    ['list length past the end', octet(good.subarray(0, good.length - 1))],
    ['trailing data after the list', octet(concat(good, Uint8Array.of(0)))],
    ['SCT length past the end of the list', octet(vec16(concat(u16(500), sct())))],
    ['an SCT shorter than its fields', octet(list(sct().subarray(0, 40)))],
    ['trailing data inside an SCT', octet(list(sct({ extra: Uint8Array.of(9) })))],
    ['a timestamp beyond 2^53', octet(list(sct({ timestamp: new Uint8Array(8).fill(0xff) })))],
    ['too many SCTs', octet(list(...Array.from({ length: MAX_EMBEDDED_SCTS + 1 }, () => sct())))],
  ];
  for (const [what, value] of cases) throwsWithCode(() => embeddedScts(certWithSctExtension(value)), 'ERR_VERIFY_SCT', undefined, what);
});

test('the verifier reports a malformed SCT list as a problem, not a crash', () => {
  const leaf = certWithSctExtension(octet(Uint8Array.of(0, 9, 1)));
  const r = verifyEmbeddedScts(leaf, leaf, new Map());
  assert.deepEqual(r.verifiedLogs, []);
  assert.match(r.problems[0]!, /^malformed SCT list: SCT list: truncated/);
});
