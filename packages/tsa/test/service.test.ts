// The TSA over HTTP: routes, content types, status codes, error bodies, and the JSON form as
// sigstore-js sends it, verified by @sigstore/verify through its public API.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, sign as nodeSign } from 'node:crypto';
import { Verifier, toSignedEntity, type TrustMaterial } from '@sigstore/verify';
import { MessageSignatureBundleBuilder, TSAWitness } from '@sigstore/sign';
import { X509Certificate } from '@sigstore/core';
import { rejectsWithCode, respondsWithCode, respondsWithStatus, throwsWithCode } from '@waxseal/testkit';
import { sha256, HASH_OID } from '../../core/src/crypto.ts';
import { toBase64 } from '../../core/src/bytes.ts';
import { seq, oid, nullValue, octetString, integer } from '../../core/src/der.ts';
import { OID } from '../../core/src/oids.ts';
import { parseCertificatesPem, type Certificate } from '../../core/src/x509.ts';
import { Router, requestListener, listen, type RunningServer } from '../../server/src/http.ts';
import { serveServices } from '../../server/src/service.ts';
import { generateDevTsaChain, type DevTsaChain } from '../src/chain.ts';
import { encodeTimeStampReq, nonceToBigInt } from '../src/timestamp.ts';
import { TsaService, startTsaServer, parseMediaType, tsaErrorFormatter } from '../src/service.ts';
import { decodeTimestampResponse } from './helpers.ts';

const digest = sha256(new TextEncoder().encode('payload'));
const derRequest = encodeTimeStampReq({ hash: 'sha256', hashedMessage: digest, nonce: 12345n, certReq: true });

// Both ways the TSA is served: alone (its own hot-path listener) and mounted on a shared router
// (the all-in-one dev server). Every request check must behave the same in both.
for (const setup of ['standalone', 'mounted'] as const)
  describe(`TSA service over HTTP (${setup})`, () => {
    let dev: DevTsaChain;
    let server: RunningServer;
    let endpoint: string;

    before(async () => {
      dev = await generateDevTsaChain({ intermediate: true });
      server =
        setup === 'standalone'
          ? await startTsaServer({ signer: dev.signer, chain: dev.chain })
          : await serveServices([await TsaService.create({ signer: dev.signer, chain: dev.chain })], { errorFormatter: tsaErrorFormatter });
      endpoint = `${server.url}/api/v1/timestamp`;
    });
    after(() => server.close());

    const post = (body: Uint8Array | string, contentType?: string) =>
      fetch(endpoint, {
        method: 'POST',
        body: typeof body === 'string' ? body : Buffer.from(body),
        headers: contentType === undefined ? {} : { 'content-type': contentType },
      });

    // timestamp-authority's error shape: {code: <the HTTP status>, message}.
    async function expectError(res: Response, status: number, pattern: RegExp): Promise<void> {
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
      await respondsWithStatus(res, status, status, pattern);
    }

    test('DER request -> 200 application/timestamp-reply with the nonce echoed and the leaf included', async () => {
      const res = await post(derRequest, 'application/timestamp-query');
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'application/timestamp-reply');
      const d = decodeTimestampResponse(new Uint8Array(await res.arrayBuffer()));
      assert.equal(d.status, 0);
      assert.equal(nonceToBigInt(d.tst.nonce!), 12345n);
      assert.deepEqual(d.tst.hashedMessage, digest);
      assert.deepEqual(d.certificates, [dev.chain[0]!.der]);
    });

    test('Content-Type with parameters and mixed case is accepted', async () => {
      const res = await post(derRequest, 'Application/Timestamp-Query; charset="binary"');
      assert.equal(res.status, 200);
      await res.arrayBuffer();
      const json = await post(
        JSON.stringify({ artifactHash: toBase64(digest), hashAlgorithm: 'sha256' }),
        'application/json; charset=utf-8',
      );
      assert.equal(json.status, 200);
      await json.arrayBuffer();
    });

    test('certchain: PEM, leaf first, root last', async () => {
      const res = await fetch(`${endpoint}/certchain`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'application/pem-certificate-chain');
      const certs = parseCertificatesPem(await res.text());
      assert.deepEqual(
        certs.map((c: Certificate) => c.der),
        dev.chain.map((c) => c.der),
      );
    });

    test('healthz', async () => {
      const res = await fetch(`${server.url}/healthz`);
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { status: 'ok' });
    });

    test('bad DER requests get 400 with a clear message', async () => {
      await expectError(
        await post(Uint8Array.of(0x30, 0x03, 0x02, 0x01), 'application/timestamp-query'),
        400,
        /malformed timestamp request/,
      );
      await expectError(await post(derRequest.subarray(0, 20), 'application/timestamp-query'), 400, /malformed timestamp request/);
      await expectError(await post(new Uint8Array(0), 'application/timestamp-query'), 400, /empty/);
      const sha1 = seq(integer(1), seq(seq(oid(OID.sha1), nullValue()), octetString(new Uint8Array(20))));
      await expectError(await post(sha1, 'application/timestamp-query'), 400, /Weak hash algorithm.*SHA-1/);
      const md5 = seq(integer(1), seq(seq(oid('1.2.840.113549.2.5'), nullValue()), octetString(new Uint8Array(16))));
      await expectError(await post(md5, 'application/timestamp-query'), 400, /unsupported hash algorithm MD5/);
      const unknown = seq(integer(1), seq(seq(oid('1.2.3.4'), nullValue()), octetString(new Uint8Array(32))));
      await expectError(await post(unknown, 'application/timestamp-query'), 400, /unsupported hash algorithm 1\.2\.3\.4/);
      const short = seq(integer(1), seq(seq(oid(HASH_OID.sha256), nullValue()), octetString(new Uint8Array(20))));
      await expectError(await post(short, 'application/timestamp-query'), 400, /incorrect length.*32 bytes, got 20/);
    });

    test('policy and extensions', async () => {
      const policy = encodeTimeStampReq({ hash: 'sha256', hashedMessage: digest, reqPolicy: '1.2.3.4' });
      await expectError(await post(policy, 'application/timestamp-query'), 400, /unaccepted policy.*1\.2\.3\.4/);
      const ok = await post(
        encodeTimeStampReq({ hash: 'sha256', hashedMessage: digest, reqPolicy: OID.sigstoreTsaPolicy }),
        'application/timestamp-query',
      );
      assert.equal(ok.status, 200);
      await ok.arrayBuffer();
      const withExt = encodeTimeStampReq({
        hash: 'sha256',
        hashedMessage: digest,
        extensions: [seq(oid('1.2.3.9'), octetString(Uint8Array.of(1)))],
      });
      await expectError(await post(withExt, 'application/timestamp-query'), 400, /unaccepted extension.*1\.2\.3\.9/);
      await expectError(
        await post(
          JSON.stringify({ artifactHash: toBase64(digest), hashAlgorithm: 'sha256', tsaPolicyOID: '1.2.3.4' }),
          'application/json',
        ),
        400,
        /unaccepted policy/,
      );
    });

    test('bad JSON requests', async () => {
      await expectError(await post('{"artifactHash": ', 'application/json'), 400, /not valid JSON/);
      await expectError(
        await post(JSON.stringify({ artifactHash: toBase64(digest), hashAlgorithm: 'sha1' }), 'application/json'),
        400,
        /Weak hash/,
      );
      await expectError(
        await post(JSON.stringify({ artifactHash: toBase64(digest), hashAlgorithm: 'md5' }), 'application/json'),
        400,
        /unsupported hash algorithm "md5"/,
      );
      await expectError(
        await post(JSON.stringify({ artifactHash: toBase64(digest.subarray(1)), hashAlgorithm: 'sha256' }), 'application/json'),
        400,
        /incorrect length/,
      );
      await expectError(
        await post(
          JSON.stringify({ artifactHash: toBase64(digest), hashAlgorithm: 'sha256', nonce: 'x'.repeat(1100) }),
          'application/json',
        ),
        413,
        /limited to 1024 bytes/,
      );
    });

    test('body limits: DER over 1 MiB is refused with 413, declared or streamed', async () => {
      await expectError(await post(new Uint8Array((1 << 20) + 1), 'application/timestamp-query'), 413, /exceeds 1048576 bytes/);
      // No Content-Length (chunked): the limit applies while reading.
      let sent = 0;
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent > 1 << 20) return controller.close();
          sent += 64 * 1024;
          controller.enqueue(new Uint8Array(64 * 1024));
        },
      });
      const res = await fetch(endpoint, {
        method: 'POST',
        body: stream,
        headers: { 'content-type': 'application/timestamp-query' },
        duplex: 'half',
      } as RequestInit);
      await expectError(res, 413, /exceeds 1048576 bytes/);
      // The connection stays usable afterwards.
      const ok = await post(derRequest, 'application/timestamp-query');
      assert.equal(ok.status, 200);
      await ok.arrayBuffer();
    });

    test('content types: outside application/* is 415, another application/* subtype is 400', async () => {
      await expectError(await post(derRequest, 'text/plain'), 415, /application media type/);
      await expectError(await post(derRequest, 'multipart/form-data; boundary=application/json'), 415, /failed to parse content-type/);
      await expectError(await post(derRequest, 'multipart/form-data; boundary="application/json"'), 415, /application media type/);
      await expectError(await post(derRequest, 'application/foo'), 400, /unsupported content type application\/foo/);
      await expectError(await post(derRequest, 'application/json; charset'), 415, /failed to parse content-type/);
      await expectError(await post(derRequest, 'application'), 415, /failed to parse content-type/);
      await expectError(
        await fetch(endpoint, { method: 'POST', body: Buffer.from(derRequest), headers: { 'content-type': '' } }),
        415,
        /no media type/,
      );
    });

    test('wrong method is 405 with Allow; unknown path is 404; both in the TSA error shape', async () => {
      const get = await fetch(endpoint);
      assert.equal(get.headers.get('allow'), 'POST');
      await expectError(get, 405, /GET is not allowed.*use POST/);
      await expectError(await fetch(`${server.url}/api/v1/nothing`), 404, /no route/);
    });

    test('the JSON form as sigstore-js sends it, verified by @sigstore/verify', async () => {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const publicPem = publicKey.export({ format: 'pem', type: 'spki' }) as string;
      const builder = new MessageSignatureBundleBuilder({
        signer: {
          sign: async (data: Buffer) => ({
            signature: nodeSign('sha256', data, privateKey),
            key: { $case: 'publicKey', publicKey: publicPem, hint: 'test-key' },
          }),
        },
        witnesses: [new TSAWitness({ tsaBaseURL: server.url, retry: 0, timeout: 5000 })],
      });
      const artifact = Buffer.from('artifact timestamped through sigstore-js');
      const bundle = await builder.create({ data: artifact });
      assert.equal(bundle.verificationMaterial.timestampVerificationData?.rfc3161Timestamps.length, 1);

      const trust: TrustMaterial = {
        certificateAuthorities: [],
        timestampAuthorities: [
          {
            certChain: dev.chain.map((c) => X509Certificate.parse(Buffer.from(c.der))),
            validFor: { start: new Date(0), end: new Date(8.64e15) },
          },
        ],
        tlogs: [],
        ctlogs: [],
        publicKey: (hint: string) => {
          assert.equal(hint, 'test-key');
          return { publicKey: createPublicKey(publicPem), validFor: () => true };
        },
      };
      const verifier = new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 1 });
      verifier.verify(toSignedEntity(bundle, artifact));

      // The check can fail: a timestamp from a TSA the trust material does not name is refused.
      const other = await generateDevTsaChain();
      const untrusted: TrustMaterial = {
        ...trust,
        timestampAuthorities: [
          {
            certChain: other.chain.map((c) => X509Certificate.parse(Buffer.from(c.der))),
            validFor: { start: new Date(0), end: new Date(8.64e15) },
          },
        ],
      };
      assert.throws(
        () =>
          new Verifier(untrusted, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 1 }).verify(toSignedEntity(bundle, artifact)),
        // sigstore-js's own error type and code, not ours.
        { name: 'VerificationError', code: 'TIMESTAMP_ERROR' },
      );
    });
  });

describe('TSA service setup', () => {
  let dev: DevTsaChain;
  before(async () => {
    dev = await generateDevTsaChain({ intermediate: true });
  });

  test('useHttp201 answers 201 (and sigstore-js accepts it)', async () => {
    const s201 = await startTsaServer({ signer: dev.signer, chain: dev.chain, useHttp201: true });
    try {
      const res = await fetch(`${s201.url}/api/v1/timestamp`, {
        method: 'POST',
        body: Buffer.from(derRequest),
        headers: { 'content-type': 'application/timestamp-query' },
      });
      assert.equal(res.status, 201);
      await res.arrayBuffer();
      const witness = new TSAWitness({ tsaBaseURL: s201.url, retry: 0, timeout: 5000 });
      const out = await witness.testify({
        $case: 'messageSignature',
        messageSignature: { messageDigest: { algorithm: 1, digest: Buffer.from(digest) }, signature: Buffer.from('sig') },
      });
      assert.equal(out.rfc3161Timestamps.length, 1);
    } finally {
      await s201.close();
    }
  });

  test('mounts under a prefix next to other services', async () => {
    const router = new Router();
    router.get('/other', () => ({ status: 204 }));
    const service = await TsaService.create({ signer: dev.signer, chain: dev.chain });
    service.mount(router, '/tsa');
    const running = await listen(requestListener({ router }));
    try {
      const res = await fetch(`${running.url}/tsa/api/v1/timestamp`, {
        method: 'POST',
        body: Buffer.from(derRequest),
        headers: { 'content-type': 'application/timestamp-query' },
      });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
      assert.equal((await fetch(`${running.url}/tsa/api/v1/timestamp/certchain`)).status, 200);
      assert.equal((await fetch(`${running.url}/other`)).status, 204);
      await respondsWithCode(fetch(`${running.url}/api/v1/timestamp/certchain`), 'ERR_NOT_FOUND');
    } finally {
      await running.close();
      await service.close();
    }
  });

  test('refuses to start on a bad chain', async () => {
    const other = await generateDevTsaChain();
    await rejectsWithCode(TsaService.create({ signer: other.signer, chain: dev.chain }), 'ERR_CHAIN_INVALID', /signer's key/);
    await rejectsWithCode(startTsaServer({ signer: dev.signer, chain: dev.chain.slice(0, 1) }), 'ERR_CHAIN_INVALID');
  });
});

describe('parseMediaType', () => {
  test('parses like Go mime.ParseMediaType', () => {
    assert.equal(parseMediaType('application/json'), 'application/json');
    assert.equal(parseMediaType(' Application/JSON ; charset=UTF-8'), 'application/json');
    assert.equal(parseMediaType('application/json; a="x;y"; b=c'), 'application/json');
    assert.equal(parseMediaType('application/json;'), 'application/json');
    for (const bad of [
      undefined,
      '',
      'json',
      'application/',
      '/json',
      'application/json; =x',
      'application/json; a',
      'application/json; a=b; a=c',
      'application/json; a="x',
      'a b/c',
    ]) {
      throwsWithCode(() => parseMediaType(bad), 'ERR_MEDIA_TYPE', undefined, String(bad));
    }
  });
});
