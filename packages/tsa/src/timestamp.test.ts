import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RFC3161Timestamp } from '@sigstore/core';
import { WaxsealError } from '../../core/src/errors.ts';
import { assertWaxsealError, parseOrRefuse, rejectsWithCode, throwsWithCode } from '@waxseal/testkit';
import { seq, integer, oid, nullValue, octetString, bool, tlv, parseDer, readOid, readSmallInt, explicit } from '../../core/src/der.ts';
import { digest, sha256, verifySignature, HASH_OID, type HashName } from '../../core/src/crypto.ts';
import { certPublicKey, type Certificate } from '../../core/src/x509.ts';
import { OID } from '../../core/src/oids.ts';
import { toBase64 } from '../../core/src/bytes.ts';
import type { Signer } from '../../keys/src/signer.ts';
import type { KeyObjectSigner } from '../../keys/src/memory.ts';
import { SigningThread, type BatchCallback } from '../../keys/src/signing-thread.ts';
import { generateKeyPairSync } from 'node:crypto';
import { generateDevTsaChain } from './chain.ts';
import { TimestampIssuer } from './issuer.ts';
import {
  encodeTimeStampReq,
  parseTimeStampReq,
  parseJsonTimestampRequest,
  parseJsonTimestampBody,
  readJsonNonce,
  nonceToBigInt,
  nonceFromBigInt,
  SIGSTORE_TSA_POLICY,
  type TimestampRequest,
} from './timestamp.ts';
import { decodeTimestampResponse } from '../test/helpers.ts';

const digest32 = sha256(new TextEncoder().encode('hello'));

function rawRequest(hashAlg: Uint8Array, hashed: Uint8Array, ...rest: Uint8Array[]): Uint8Array {
  return seq(integer(1), seq(hashAlg, octetString(hashed)), ...rest);
}

describe('parseTimeStampReq', () => {
  test('reads every field of a full request', () => {
    const ext = seq(oid('1.2.3.4'), octetString(Uint8Array.of(5)));
    const der = encodeTimeStampReq({
      hash: 'sha256',
      hashedMessage: digest32,
      reqPolicy: '1.2.3',
      nonce: 0x1234567890abcdefn,
      certReq: true,
      extensions: [ext],
    });
    const r = parseTimeStampReq(der);
    assert.equal(r.hash, 'sha256');
    assert.deepEqual(r.hashedMessage, digest32);
    assert.equal(r.reqPolicy, '1.2.3');
    assert.equal(nonceToBigInt(r.nonce!), 0x1234567890abcdefn);
    assert.equal(r.certReq, true);
    assert.deepEqual(r.extensionOids, ['1.2.3.4']);
    assert.deepEqual(r.extensions, ext);
    assert.deepEqual(r.messageImprint, parseDer(der).children[1]!.raw);
  });

  test('defaults: no policy, no nonce, certReq false; also sha384 and sha512, and absent NULL parameters', () => {
    for (const hash of ['sha384', 'sha512'] as HashName[]) {
      const hashed = digest(hash, Uint8Array.of(1));
      const r = parseTimeStampReq(encodeTimeStampReq({ hash, hashedMessage: hashed }));
      assert.equal(r.hash, hash);
      assert.equal(r.certReq, false);
      assert.equal(r.nonce, undefined);
      assert.equal(r.reqPolicy, undefined);
    }
    const r = parseTimeStampReq(rawRequest(seq(oid(HASH_OID.sha256)), digest32, bool(false)));
    assert.equal(r.certReq, false);
  });

  test('SHA-1 is weak, MD5 and unknown OIDs are unsupported', () => {
    throwsWithCode(() => parseTimeStampReq(rawRequest(seq(oid(OID.sha1), nullValue()), new Uint8Array(20))), 'ERR_HASH_WEAK', /SHA-1/);
    throwsWithCode(
      () => parseTimeStampReq(rawRequest(seq(oid('1.2.840.113549.2.5'), nullValue()), new Uint8Array(16))),
      'ERR_HASH_UNSUPPORTED',
      /MD5/,
    );
    throwsWithCode(
      () => parseTimeStampReq(rawRequest(seq(oid('1.2.3.4.5'), nullValue()), new Uint8Array(32))),
      'ERR_HASH_UNSUPPORTED',
      /1\.2\.3\.4\.5/,
    );
  });

  test('the digest length must match the hash', () => {
    throwsWithCode(
      () => parseTimeStampReq(rawRequest(seq(oid(HASH_OID.sha256), nullValue()), new Uint8Array(31))),
      'ERR_TSA_REQUEST',
      /32 bytes, got 31/,
    );
    throwsWithCode(
      () => parseTimeStampReq(rawRequest(seq(oid(HASH_OID.sha512), nullValue()), digest32)),
      'ERR_TSA_REQUEST',
      /64 bytes, got 32/,
    );
  });

  test('structural errors are clear 400s', () => {
    const good = encodeTimeStampReq({ hash: 'sha256', hashedMessage: digest32, nonce: 7n, certReq: true });
    throwsWithCode(() => parseTimeStampReq(new Uint8Array(0)), 'ERR_TSA_REQUEST', /empty/);
    throwsWithCode(() => parseTimeStampReq(good.subarray(0, good.length - 3)), 'ERR_DER_PARSE', /malformed timestamp request/);
    throwsWithCode(() => parseTimeStampReq(Uint8Array.from([...good, 0])), 'ERR_DER_PARSE', /trailing/);
    throwsWithCode(() => parseTimeStampReq(new TextEncoder().encode('{"artifactHash":"x"}')), 'ERR_DER_PARSE');
    throwsWithCode(() => parseTimeStampReq(octetString(digest32)), 'ERR_TSA_REQUEST', /SEQUENCE/);
    throwsWithCode(
      () => parseTimeStampReq(seq(integer(2), seq(seq(oid(HASH_OID.sha256)), octetString(digest32)))),
      'ERR_TSA_REQUEST',
      /version/,
    );
    throwsWithCode(() => parseTimeStampReq(rawRequest(seq(oid(HASH_OID.sha256), integer(1)), digest32)), 'ERR_TSA_REQUEST', /parameters/);
    // certReq before nonce: out of order
    throwsWithCode(
      () => parseTimeStampReq(rawRequest(seq(oid(HASH_OID.sha256)), digest32, bool(true), integer(5))),
      'ERR_TSA_REQUEST',
      /out-of-order/,
    );
    throwsWithCode(
      () => parseTimeStampReq(rawRequest(seq(oid(HASH_OID.sha256)), digest32, integer(5), integer(6))),
      'ERR_TSA_REQUEST',
      /out-of-order/,
    );
    // non-minimal INTEGER nonce
    throwsWithCode(
      () => parseTimeStampReq(rawRequest(seq(oid(HASH_OID.sha256)), digest32, tlv(0x02, Uint8Array.of(0, 5)))),
      'ERR_DER_PARSE',
      /non-minimal/,
    );
    // an extension that is not an Extension
    throwsWithCode(
      () => parseTimeStampReq(rawRequest(seq(oid(HASH_OID.sha256)), digest32, tlv(0xa0, seq(oid('1.2.3'))))),
      'ERR_TSA_REQUEST',
      /extension/,
    );
  });

  test('property: arbitrary bytes only ever produce a WaxsealError', () => {
    const valid = encodeTimeStampReq({ hash: 'sha256', hashedMessage: digest32, reqPolicy: '1.2.3', nonce: 99n, certReq: true });
    const check = (bytes: Uint8Array) => void parseOrRefuse(() => parseTimeStampReq(bytes));
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => check(b)),
      { numRuns: 2000 },
    );
    // Mutations of a valid request reach deeper into the parser than random bytes do.
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
        fc.nat(valid.length),
        (edits, cut) => {
          const b = new Uint8Array(valid);
          for (const [i, v] of edits) b[i] = v;
          check(b.subarray(0, cut));
          check(b);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('JSON requests', () => {
  const hashB64 = toBase64(digest32);

  test('the form sigstore-js sends', () => {
    const r = parseJsonTimestampBody(JSON.stringify({ artifactHash: hashB64, hashAlgorithm: 'sha256' }));
    assert.equal(r.hash, 'sha256');
    assert.equal(r.certReq, false);
    assert.equal(r.nonce, undefined);
    assert.deepEqual(r.messageImprint, seq(seq(oid(HASH_OID.sha256), nullValue()), octetString(digest32)));
  });

  test('every field, with a nonce beyond 2^53 kept exactly', () => {
    const big = 123456789012345678901234567890123n;
    const raw = `{"artifactHash":"${hashB64}","hashAlgorithm":"SHA256","certificates":true,"nonce":${big},"tsaPolicyOID":"1.3.6.1.4.1.57264.2"}`;
    const r = parseJsonTimestampBody(raw);
    assert.equal(nonceToBigInt(r.nonce!), big);
    assert.equal(readJsonNonce(raw), big);
    assert.equal(r.certReq, true);
    assert.equal(r.reqPolicy, SIGSTORE_TSA_POLICY);
    assert.equal(readJsonNonce(`{"nonce":null}`), undefined);
    // a nested "nonce" is not the request's nonce
    assert.equal(readJsonNonce(`{"x":{"nonce":5}}`), undefined);
  });

  test('an object with a lossy number nonce is refused; bigint and safe numbers are fine', () => {
    throwsWithCode(
      () => parseJsonTimestampRequest({ artifactHash: hashB64, hashAlgorithm: 'sha256', nonce: 2 ** 60 }),
      'ERR_TSA_REQUEST',
      /parseJsonTimestampBody/,
    );
    assert.equal(nonceToBigInt(parseJsonTimestampRequest({ artifactHash: hashB64, hashAlgorithm: 'sha256', nonce: 42 }).nonce!), 42n);
    assert.equal(
      nonceToBigInt(parseJsonTimestampRequest({ artifactHash: hashB64, hashAlgorithm: 'sha256', nonce: 2n ** 100n }).nonce!),
      2n ** 100n,
    );
    assert.deepEqual(nonceFromBigInt(128n), Uint8Array.of(0, 128));
  });

  test('bad JSON requests', () => {
    const body = (o: Record<string, unknown>) => JSON.stringify({ artifactHash: hashB64, hashAlgorithm: 'sha256', ...o });
    throwsWithCode(() => parseJsonTimestampBody(body({ hashAlgorithm: 'sha1' })), 'ERR_HASH_WEAK');
    throwsWithCode(() => parseJsonTimestampBody(body({ hashAlgorithm: 'md5' })), 'ERR_HASH_UNSUPPORTED', /md5/);
    throwsWithCode(() => parseJsonTimestampBody(body({ hashAlgorithm: undefined })), 'ERR_HASH_UNSUPPORTED');
    throwsWithCode(() => parseJsonTimestampBody(body({ artifactHash: 'not base64!' })), 'ERR_TSA_REQUEST', /base64/);
    throwsWithCode(() => parseJsonTimestampBody(body({ artifactHash: undefined })), 'ERR_TSA_REQUEST', /artifactHash/);
    throwsWithCode(() => parseJsonTimestampBody(body({ hashAlgorithm: 'sha384' })), 'ERR_TSA_REQUEST', /48 bytes, got 32/);
    throwsWithCode(() => parseJsonTimestampBody(body({ certificates: 'yes' })), 'ERR_TSA_REQUEST', /boolean/);
    throwsWithCode(() => parseJsonTimestampBody(body({ nonce: '12' })), 'ERR_TSA_REQUEST', /integer/);
    throwsWithCode(() => parseJsonTimestampBody(body({ nonce: -5 })), 'ERR_TSA_REQUEST', /negative/);
    throwsWithCode(() => parseJsonTimestampBody(body({}).replace('}', ',"nonce":1.5}')), 'ERR_TSA_REQUEST', /integer/);
    throwsWithCode(() => parseJsonTimestampBody(body({}).replace('}', ',"nonce":1e3}')), 'ERR_TSA_REQUEST', /integer/);
    throwsWithCode(() => parseJsonTimestampBody(body({ tsaPolicyOID: 'policy' })), 'ERR_TSA_REQUEST', /OID/);
    throwsWithCode(
      () => parseJsonTimestampBody(body({ tsaPolicyOID: `1.${Array(130).fill(1).join('.')}` })),
      'ERR_TSA_REQUEST',
      /128 components/,
    );
    throwsWithCode(() => parseJsonTimestampBody('{"artifactHash":'), 'ERR_JSON_PARSE');
    throwsWithCode(() => parseJsonTimestampBody('[1,2]'), 'ERR_TSA_REQUEST', /object/);
    throwsWithCode(() => parseJsonTimestampBody(body({ pad: 'x'.repeat(1024) })), 'ERR_BODY_TOO_LARGE', /1024 bytes/);
    throwsWithCode(() => parseJsonTimestampBody(Uint8Array.of(0x7b, 0xff, 0x7d)), 'ERR_JSON_PARSE', /UTF-8/);
  });
});

describe('TimestampIssuer', () => {
  let signer: KeyObjectSigner;
  let chain: Certificate[];
  let issuer: TimestampIssuer;
  before(async () => {
    ({ signer, chain } = await generateDevTsaChain({ intermediate: true }));
    issuer = new TimestampIssuer({ signer, chain });
  });

  const request = (o: Partial<TimestampRequest> & { hash?: HashName } = {}): TimestampRequest => {
    const hash = o.hash ?? 'sha256';
    const base = parseTimeStampReq(
      encodeTimeStampReq({ hash, hashedMessage: digest(hash, Uint8Array.of(1, 2, 3)), nonce: 0xfeedn, certReq: true }),
    );
    return { ...base, ...o };
  };

  test('a response with exactly the fields timestamp-authority writes', async () => {
    const now = new Date('2026-03-04T05:06:07.891Z');
    const req = request();
    const d = decodeTimestampResponse(await issuer.issue(req, now));
    assert.equal(d.status, 0);
    assert.equal(d.contentType, OID.cmsSignedData);
    assert.equal(d.signedDataVersion, 3);
    assert.deepEqual(d.digestAlgorithms, [OID.sha256]);
    assert.equal(d.eContentType, OID.ctTstInfo);

    assert.equal(d.tst.version, 1);
    assert.equal(d.tst.policy, SIGSTORE_TSA_POLICY);
    assert.deepEqual(d.tst.messageImprint, req.messageImprint);
    assert.equal(d.tst.serial.length, 20);
    assert.equal(d.tst.serial[0]! & 0x80, 0);
    assert.equal(d.tst.genTime, '20260304050607Z', 'whole seconds, UTC, no fraction');
    assert.equal(readSmallInt(d.tst.accuracy!.children[0]), 1);
    assert.equal(d.tst.accuracy!.children.length, 1);
    assert.equal(d.tst.ordering, undefined, 'ordering FALSE is omitted');
    assert.equal(nonceToBigInt(d.tst.nonce!), 0xfeedn);
    assert.deepEqual(d.tst.tsa!.raw, explicit(0, explicit(4, chain[0]!.subjectRaw)));
    assert.equal(d.tst.extensions, undefined);

    assert.deepEqual(d.certificates, [chain[0]!.der], 'certReq: the leaf only');
    const si = d.signerInfo;
    assert.equal(si.version, 1);
    assert.deepEqual(si.sid.children[0]!.raw, chain[0]!.issuerRaw);
    assert.deepEqual(si.sid.children[1]!.value.at(-1), chain[0]!.serial.at(-1));
    assert.equal(readOid(si.digestAlgorithm.children[0]), OID.sha256);
    assert.equal(si.digestAlgorithm.children.length, 1, 'no parameters on SHA-2 digest algorithms');
    assert.equal(readOid(si.signatureAlgorithm.children[0]), OID.ecdsaWithSha256);
    assert.deepEqual(
      [...si.attributes.keys()].sort(),
      [OID.attrContentType, OID.attrMessageDigest, OID.attrSigningTime, OID.attrSigningCertificateV2].sort(),
    );
    assert.equal(readOid(si.attributes.get(OID.attrContentType)!.children[0]), OID.ctTstInfo);
    assert.deepEqual(si.attributes.get(OID.attrMessageDigest)!.children[0]!.value, sha256(d.tstInfoDer));
    assert.equal(new TextDecoder().decode(si.attributes.get(OID.attrSigningTime)!.children[0]!.value), '260304050607Z');
    // ESSCertIDv2 for SHA-256: hash algorithm omitted (DEFAULT), certHash, issuerSerial
    const essId = si.attributes.get(OID.attrSigningCertificateV2)!.children[0]!.children[0]!.children[0]!;
    assert.equal(essId.children.length, 2);
    assert.deepEqual(essId.children[0]!.value, sha256(chain[0]!.der));
    const issuerSerial = essId.children[1]!;
    assert.deepEqual(issuerSerial.children[0]!.children[0]!.children[0]!.raw, chain[0]!.issuerRaw);
    assert.ok(
      verifySignature(certPublicKey(chain[0]!), si.signedAttrs, si.signature, { hash: 'sha256' }),
      'signature verifies with the leaf key',
    );
  });

  test('ESSCertIDv2 uses the request hash; certReq false omits certificates', async () => {
    for (const hash of ['sha384', 'sha512'] as HashName[]) {
      const d = decodeTimestampResponse(await issuer.issue(request({ hash, certReq: false })));
      const essId = d.signerInfo.attributes.get(OID.attrSigningCertificateV2)!.children[0]!.children[0]!.children[0]!;
      assert.equal(readOid(essId.children[0]!.children[0]), HASH_OID[hash]);
      assert.deepEqual(essId.children[1]!.value, digest(hash, chain[0]!.der));
      assert.equal(d.tst.imprintAlgorithm, HASH_OID[hash]);
      assert.deepEqual(d.digestAlgorithms, [OID.sha256], 'the token digest follows the signer, not the request');
      assert.deepEqual(d.certificates, []);
    }
  });

  test('@sigstore/core parses and verifies the token', async () => {
    for (const kind of ['ecdsa-p256', 'ecdsa-p384'] as const) {
      const dev = await generateDevTsaChain({ kind });
      const iss = new TimestampIssuer({ signer: dev.signer, chain: dev.chain });
      const data = new TextEncoder().encode(`artifact signature ${kind}`);
      const der = await iss.issue(parseTimeStampReq(encodeTimeStampReq({ hash: 'sha256', hashedMessage: sha256(data) })), new Date());
      const ts = RFC3161Timestamp.parse(Buffer.from(der));
      ts.verify(Buffer.from(data), certPublicKey(dev.chain[0]!).key);
      assert.equal(ts.status, 0n);
      assert.equal(ts.signingTime.getUTCMilliseconds(), 0);
    }
  });

  test('includeChainInResponse puts the whole chain in, leaf first', async () => {
    const iss = new TimestampIssuer({ signer, chain, includeChainInResponse: true });
    const d = decodeTimestampResponse(await iss.issue(request()));
    assert.deepEqual(
      d.certificates,
      chain.map((c) => c.der),
    );
    const none = decodeTimestampResponse(await iss.issue(request({ certReq: false })));
    assert.deepEqual(none.certificates, []);
  });

  test('policies: default, accepted, unaccepted', async () => {
    const iss = new TimestampIssuer({ signer, chain, defaultPolicyOid: '1.2.3.4', acceptedPolicyOids: ['1.2.3.4', '1.2.3.5'] });
    assert.equal(decodeTimestampResponse(await iss.issue(request())).tst.policy, '1.2.3.4');
    assert.equal(decodeTimestampResponse(await iss.issue(request({ reqPolicy: '1.2.3.5' }))).tst.policy, '1.2.3.5');
    await rejectsWithCode(iss.issue(request({ reqPolicy: '1.2.3.6' })), 'ERR_TSA_POLICY', /1\.2\.3\.6/);
    await rejectsWithCode(issuer.issue(request({ reqPolicy: '1.2.3.5' })), 'ERR_TSA_POLICY');
    assert.equal(decodeTimestampResponse(await issuer.issue(request({ reqPolicy: SIGSTORE_TSA_POLICY }))).tst.policy, SIGSTORE_TSA_POLICY);
  });

  test('request extensions are refused unless allowed, then copied into TSTInfo', async () => {
    const ext = seq(oid('1.2.3.4'), octetString(Uint8Array.of(9)));
    const req = parseTimeStampReq(encodeTimeStampReq({ hash: 'sha256', hashedMessage: digest32, extensions: [ext] }));
    await rejectsWithCode(issuer.issue(req), 'ERR_TSA_REQUEST', /unaccepted extension.*1\.2\.3\.4/);
    const iss = new TimestampIssuer({ signer, chain, allowCustomExtensions: true });
    const d = decodeTimestampResponse(await iss.issue(req));
    assert.equal(d.tst.extensions!.tag, 0xa1);
    assert.deepEqual(d.tst.extensions!.value, ext);
  });

  test('accuracy: 0 omits it, fractions become millis', async () => {
    assert.equal(
      decodeTimestampResponse(await new TimestampIssuer({ signer, chain, accuracySeconds: 0 }).issue(request())).tst.accuracy,
      undefined,
    );
    const acc = decodeTimestampResponse(await new TimestampIssuer({ signer, chain, accuracySeconds: 2.5 }).issue(request())).tst.accuracy!;
    assert.equal(readSmallInt(acc.children[0]), 2);
    assert.equal(acc.children[1]!.tag, 0x80);
    assert.deepEqual(acc.children[1]!.value, Uint8Array.of(0x01, 0xf4));
    throwsWithCode(() => new TimestampIssuer({ signer, chain, accuracySeconds: -1 }), 'ERR_CONFIG');
  });

  /**
   * Issues `count` requests at once, number `bad` with an unaccepted policy: that one must fail
   * with ERR_TSA_POLICY, every other one must give a verifying token that echoes its own nonce.
   */
  const issueAtOnce = async (iss: TimestampIssuer, count: number, bad: number): Promise<void> => {
    const reqs = Array.from({ length: count }, (_, i) =>
      i === bad ? request({ reqPolicy: '1.2.3.99' }) : request({ nonce: Uint8Array.of(i + 1) }),
    );
    const results = await Promise.allSettled(reqs.map((r) => iss.issue(r)));
    results.forEach((r, i) => {
      if (i === bad) {
        assert.equal(r.status, 'rejected');
        assertWaxsealError((r as PromiseRejectedResult).reason, 'ERR_TSA_POLICY');
        return;
      }
      assert.equal(r.status, 'fulfilled');
      const d = decodeTimestampResponse((r as PromiseFulfilledResult<Uint8Array>).value);
      assert.equal(nonceToBigInt(d.tst.nonce!), BigInt(i + 1));
      assert.ok(
        verifySignature(certPublicKey(chain[0]!), d.signerInfo.signedAttrs, d.signerInfo.signature, { hash: 'sha256' }),
        `token ${i}`,
      );
    });
  };

  test('requests issued in one event-loop turn are batched; each gets its own token or error, in order', async () => {
    await issueAtOnce(issuer, 40, 7);
    // The synchronous batch API gives the same per-item results.
    const many = issuer.issueMany([
      { req: request(), now: new Date() },
      { req: request({ reqPolicy: '1.2.3.99' }), now: new Date() },
    ]);
    assert.ok(many[0] instanceof Uint8Array);
    assert.ok(!(many[1] instanceof Uint8Array));
    assertWaxsealError(many[1]!.error, 'ERR_TSA_POLICY');
    throwsWithCode(() => issuer.issueSync(request({ reqPolicy: '1.2.3.99' })), 'ERR_TSA_POLICY');
  });

  test('on a signing thread: tokens verify, errors stay per request, and the event loop shares the load', async () => {
    const threaded = new TimestampIssuer({ signer, chain, signingThread: true });
    try {
      // 100 at once: more than the thread takes in flight, so both threads sign some.
      await issueAtOnce(threaded, 100, 3);
    } finally {
      await threaded.close();
    }
    // Closed, it signs on the calling thread.
    assert.equal(decodeTimestampResponse(await threaded.issue(request())).status, 0);
  });

  test('a signing thread that fails mid-batch loses no request: the batch is signed on the event loop', async () => {
    let failures = 0;
    class FlakyThread extends SigningThread {
      override signMany(_m: readonly Uint8Array[], done: BatchCallback): void {
        failures++;
        setImmediate(() => done(new WaxsealError('ERR_SIGNER', 'signing thread exited with code 1')));
      }
    }
    // The thread's own key is never used: every batch it is given fails.
    const flaky = new FlakyThread(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, 'sha256');
    const iss = new TimestampIssuer({ signer, chain, signingThread: flaky });
    try {
      const ders = await Promise.all([1, 2, 3].map((n) => iss.issue(request({ nonce: Uint8Array.of(n) }))));
      assert.ok(failures > 0);
      for (const der of ders) {
        const d = decodeTimestampResponse(der);
        assert.ok(verifySignature(certPublicKey(chain[0]!), d.signerInfo.signedAttrs, d.signerInfo.signature, { hash: 'sha256' }));
      }
    } finally {
      await iss.close();
    }
  });

  test('serial numbers differ between tokens', async () => {
    const a = decodeTimestampResponse(await issuer.issue(request())).tst.serial;
    const b = decodeTimestampResponse(await issuer.issue(request())).tst.serial;
    assert.notDeepEqual(a, b);
  });

  test('an asynchronous signer (HSM/KMS shape) gives the same kind of token; its failure is ERR_SIGNER', async () => {
    const asyncSigner: Signer = {
      kind: signer.kind,
      hash: signer.hash,
      keyRef: 'test://async',
      publicKeySpki: signer.publicKeySpki,
      sign: async (m) => signer.signSync(m),
    };
    const d = decodeTimestampResponse(await new TimestampIssuer({ signer: asyncSigner, chain }).issue(request()));
    assert.ok(verifySignature(certPublicKey(chain[0]!), d.signerInfo.signedAttrs, d.signerInfo.signature, { hash: 'sha256' }));
    const viaSign = new TimestampIssuer({ signer, chain, syncSigning: false });
    assert.equal(viaSign.canIssueSync, false);
    assert.equal(issuer.canIssueSync, true);
    assert.equal(decodeTimestampResponse(await viaSign.issue(request())).status, 0);
    const failing: Signer = { ...asyncSigner, sign: async () => Promise.reject(new Error('HSM unplugged')) };
    await rejectsWithCode(new TimestampIssuer({ signer: failing, chain }).issue(request()), 'ERR_SIGNER', /HSM unplugged/);
  });

  test('Ed25519 and P-384 TSA keys sign with the matching CMS algorithms', async () => {
    for (const [kind, sigOid, digestOid] of [
      ['ed25519', OID.ed25519, OID.sha512],
      ['ecdsa-p384', OID.ecdsaWithSha384, OID.sha384],
    ] as const) {
      const dev = await generateDevTsaChain({ kind });
      const d = decodeTimestampResponse(await new TimestampIssuer({ signer: dev.signer, chain: dev.chain }).issue(request()));
      assert.equal(readOid(d.signerInfo.signatureAlgorithm.children[0]), sigOid);
      assert.deepEqual(d.digestAlgorithms, [digestOid]);
      assert.deepEqual(d.signerInfo.attributes.get(OID.attrMessageDigest)!.children[0]!.value, digest(dev.signer.hash, d.tstInfoDer));
      assert.ok(verifySignature(certPublicKey(dev.chain[0]!), d.signerInfo.signedAttrs, d.signerInfo.signature, { hash: dev.signer.hash }));
    }
  });
});
