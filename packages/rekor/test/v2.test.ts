// Rekor v2 write API and the C2SP tlog-tiles read API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TLOG_ENTRY_JSON_FIELDS, respondsWithCode, respondsWithStatus } from '@waxseal/testkit';
import { sign } from 'node:crypto';
import { leafHash, verifyInclusion } from '../../core/src/merkle.ts';
import { canonicalize } from '../../core/src/jcs.ts';
import { noteKeyId } from '../../core/src/note.ts';
import { publicKeyFromSpki, sha256 as coreSha256 } from '../../core/src/crypto.ts';
import { decodeEntryBundle } from '../../tlog/src/tiles.ts';
import { verifyCheckpointNote } from '../../tlog/src/checkpoint.ts';
import { generateSigner } from '../../keys/src/memory.ts';
import {
  HOST,
  startTestLog,
  post,
  get,
  p256Key,
  hashedRekordV1,
  hashedRekordV2,
  b64,
  sha256,
  signData,
  dsseEnvelope,
  testCa,
} from './helpers.ts';

test('v2 hashedrekord: 201 with a TransparencyLogEntry whose proof verifies; duplicates get 409', async () => {
  const log = await startTestLog();
  try {
    const k = p256Key();
    const req = hashedRekordV2(k, 'artifact one');
    const res = await post(`${log.url}/api/v2/log/entries`, req);
    assert.equal(res.status, 201, res.text);
    const tle = res.json;
    assert.deepEqual(Object.keys(tle), TLOG_ENTRY_JSON_FIELDS);
    assert.equal(tle.logIndex, '0');
    assert.equal(tle.integratedTime, '0');
    assert.equal(tle.inclusionPromise, null);
    assert.deepEqual(tle.kindVersion, { kind: 'hashedrekord', version: '0.0.2' });
    const logKey = publicKeyFromSpki(log.service.log.signer.publicKeySpki);
    assert.equal(tle.logId.keyId, b64(noteKeyId(HOST, logKey)));
    // The body is the JCS protojson Entry that sigstore-go reconstructs from a bundle.
    const expectedBody = canonicalize({
      apiVersion: '0.0.2',
      kind: 'hashedrekord',
      spec: {
        hashedRekordV002: {
          data: { algorithm: 'SHA2_256', digest: b64(sha256('artifact one')) },
          signature: {
            content: req.hashedRekordRequestV002.signature.content,
            verifier: { keyDetails: 'PKIX_ECDSA_P256_SHA_256', publicKey: { rawBytes: b64(k.spki) } },
          },
        },
      },
    });
    const body = Buffer.from(tle.canonicalizedBody, 'base64');
    assert.equal(body.toString(), expectedBody);
    const p = tle.inclusionProof;
    const cp = verifyCheckpointNote(p.checkpoint.envelope, HOST, logKey);
    assert.equal(String(cp.size), p.treeSize);
    assert.equal(b64(cp.rootHash), p.rootHash);
    assert.ok(
      verifyInclusion(
        Number(tle.logIndex),
        cp.size,
        leafHash(body),
        p.hashes.map((h: string) => Buffer.from(h, 'base64')),
        cp.rootHash,
      ),
    );

    const dup = await post(`${log.url}/api/v2/log/entries`, req);
    await respondsWithStatus(dup, 409, 6, /an equivalent entry already exists in the log at index 0/); // AlreadyExists
    assert.equal(dup.headers.get('x-log-index'), '0');

    // Certificate verifier, snake_case field names (protojson accepts both spellings).
    const ca = await testCa();
    const k2 = p256Key();
    const leaf = await ca.leaf(k2, 'dev@example.com');
    const snake = {
      hashed_rekord_request_v002: {
        digest: b64(sha256('artifact two')),
        signature: {
          content: b64(signData(k2, 'artifact two')),
          verifier: { x509_certificate: { raw_bytes: b64(leaf.der) }, key_details: 'PKIX_ECDSA_P256_SHA_256' },
        },
      },
    };
    const r2 = await post(`${log.url}/api/v2/log/entries`, snake);
    assert.equal(r2.status, 201, r2.text);
    assert.equal(r2.json.logIndex, '1');
    assert.match(Buffer.from(r2.json.canonicalizedBody, 'base64').toString(), /"x509Certificate":\{"rawBytes":/);

    // Concurrent submissions are batched and all proven.
    const many = await Promise.all(
      Array.from({ length: 40 }, (_, i) => post(`${log.url}/api/v2/log/entries`, hashedRekordV2(k, `bulk ${i}`))),
    );
    assert.ok(many.every((r) => r.status === 201));
    assert.deepEqual(
      many.map((r) => Number(r.json.logIndex)).sort((a, b) => a - b),
      Array.from({ length: 40 }, (_, i) => i + 2),
    );
  } finally {
    await log.close();
  }
});

test('v2 rejects bad requests with 4xx and appends nothing', async () => {
  const log = await startTestLog();
  try {
    const k = p256Key();
    const good = hashedRekordV2(k, 'payload');
    const before = (await get(`${log.url}/checkpoint`)).text;
    const req = good.hashedRekordRequestV002;
    // The good request with some fields replaced: of the request, of its signature, of the verifier.
    const withRequest = (fields: object) => ({ hashedRekordRequestV002: { ...req, ...fields } });
    const withSignature = (fields: object) => withRequest({ signature: { ...req.signature, ...fields } });
    const withVerifier = (fields: object) => withSignature({ verifier: { ...req.signature.verifier, ...fields } });
    // Each refused with 400 and gRPC InvalidArgument (3), for the reason given.
    const variants: [string, unknown, RegExp][] = [
      ['unknown top-level field', { ...good, extra: 1 }, /unknown field "extra" in CreateEntryRequest/],
      ['unknown nested field', withRequest({ foo: 'bar' }), /unknown field "foo" in hashedRekordRequestV002/],
      ['unknown verifier field', withVerifier({ comment: 'x' }), /unknown field "comment" in signature\.verifier/],
      ['empty request', {}, /invalid type, must be hashedrekord/],
      ['not an object', [1, 2], /must be a JSON object/],
      ['pure Ed25519 refused', withVerifier({ keyDetails: 'PKIX_ED25519' }), /"PKIX_ED25519" is not an allowed signing algorithm/],
      [
        'keyDetails does not match key',
        withVerifier({ keyDetails: 'PKIX_ECDSA_P384_SHA_384' }),
        /key does not match keyDetails PKIX_ECDSA_P384_SHA_384/,
      ],
      [
        'unknown keyDetails',
        withVerifier({ keyDetails: 'PKIX_RSA_PSS_2048_SHA256' }),
        /"PKIX_RSA_PSS_2048_SHA256" is not an allowed signing algorithm/,
      ],
      ['digest length', withRequest({ digest: b64(new Uint8Array(48)) }), /digest length \(48\) does not match expected size \(32\)/],
      ['wrong digest', withRequest({ digest: b64(sha256('other')) }), /signature does not verify over the digest/],
      ['bad signature bytes', withSignature({ content: b64('not a signature') }), /signature does not verify over the digest/],
      ['bad base64', withRequest({ digest: '!!!' }), /digest is not valid base64/],
      [
        'garbage key',
        withSignature({ verifier: { publicKey: { rawBytes: b64('xx') }, keyDetails: 'PKIX_ECDSA_P256_SHA_256' } }),
        /unsupported or malformed public key/,
      ],
      [
        'certificate that is not one',
        withSignature({ verifier: { x509Certificate: { rawBytes: b64(k.spki) }, keyDetails: 'PKIX_ECDSA_P256_SHA_256' } }),
        /malformed X\.509 certificate/,
      ],
      ['both oneof members', { ...good, dsseRequestV002: {} }, /must set exactly one entry type/],
    ];
    for (const [name, body, why] of variants) await respondsWithStatus(post(`${log.url}/api/v2/log/entries`, body), 400, 3, why, name);
    await respondsWithStatus(post(`${log.url}/api/v2/log/entries`, '{"hashedRekordRequestV002":'), 400, 3, /not valid JSON/);
    await respondsWithStatus(
      post(`${log.url}/api/v2/log/entries`, good, { 'content-type': 'text/plain' }),
      415,
      3,
      /expected application\/json/,
    );
    const huge = JSON.stringify(withRequest({ digest: 'A'.repeat(400_000) }));
    await respondsWithStatus(post(`${log.url}/api/v2/log/entries`, huge), 413, 3, /exceeds 262144 bytes/);
    assert.equal((await get(`${log.url}/checkpoint`)).text, before, 'tree unchanged');
  } finally {
    await log.close();
  }
});

test('v2 dsse 0.0.2 is refused by default, as rekor-tiles does', async () => {
  const log = await startTestLog();
  try {
    const k = p256Key();
    const ca = await testCa();
    const leaf = await ca.leaf(k, 'ci@example.com');
    const env = dsseEnvelope(k, '{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"sha256":"00"}}]}');
    const before = (await get(`${log.url}/api/v1/log`)).json.treeSize;
    const r = await post(`${log.url}/api/v2/log/entries`, {
      dsseRequestV002: {
        envelope: env,
        verifiers: [{ x509Certificate: { rawBytes: b64(leaf.der) }, keyDetails: 'PKIX_ECDSA_P256_SHA_256' }],
      },
    });
    await respondsWithStatus(r, 400, 3, /must be hashedrekord/);
    assert.equal((await get(`${log.url}/api/v1/log`)).json.treeSize, before, 'nothing appended');
  } finally {
    await log.close();
  }
});

test('v2 dsse 0.0.2 (as sigstore-js sends it), when the operator opts in, is verified and logged as its own kind', async () => {
  const log = await startTestLog({ policy: { acceptDsseV002: true } });
  try {
    const k = p256Key();
    const ca = await testCa();
    const leaf = await ca.leaf(k, 'ci@example.com');
    const env = dsseEnvelope(k, '{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"sha256":"00"}}]}');
    const req = {
      dsseRequestV002: {
        envelope: env,
        verifiers: [{ x509Certificate: { rawBytes: b64(leaf.der) }, keyDetails: 'PKIX_ECDSA_P256_SHA_256' }],
      },
    };
    const r = await post(`${log.url}/api/v2/log/entries`, req);
    assert.equal(r.status, 201, r.text);
    assert.deepEqual(r.json.kindVersion, { kind: 'dsse', version: '0.0.2' });
    const body = JSON.parse(Buffer.from(r.json.canonicalizedBody, 'base64').toString());
    assert.equal(body.spec.dsseV002.payloadHash.digest, b64(sha256(Buffer.from(env.payload, 'base64'))));
    assert.equal(body.spec.dsseV002.signatures[0].content, env.signatures[0]!.sig);
    // A signature by another key is refused.
    const other = p256Key();
    const bad = { dsseRequestV002: { envelope: dsseEnvelope(other, 'x'), verifiers: req.dsseRequestV002.verifiers } };
    await respondsWithStatus(post(`${log.url}/api/v2/log/entries`, bad), 400, 3, /all signatures must have a key that verifies it/);
    const tooMany = {
      dsseRequestV002: { envelope: { ...env, signatures: Array(11).fill(env.signatures[0]) }, verifiers: req.dsseRequestV002.verifiers },
    };
    await respondsWithStatus(post(`${log.url}/api/v2/log/entries`, tooMany), 400, 3, /too many signatures: 11, max allowed: 10/);
  } finally {
    await log.close();
  }
});

test('tlog-tiles read API: checkpoint, tiles, entry bundles, caching and bogus paths', async () => {
  const log = await startTestLog({ signer: generateSigner('ecdsa-p256') });
  try {
    const k = p256Key();
    const bodies: Buffer[] = [];
    const results = await Promise.all(
      Array.from({ length: 300 }, (_, i) => post(`${log.url}/api/v2/log/entries`, hashedRekordV2(k, `tile entry ${i}`))),
    );
    for (const r of results) {
      assert.equal(r.status, 201);
      bodies[Number(r.json.logIndex)] = Buffer.from(r.json.canonicalizedBody, 'base64');
    }
    // ECDSA log key: the v2 log ID is SHA-256(SPKI), like the v1 one.
    assert.equal(results[0]!.json.logId.keyId, b64(coreSha256(log.service.log.signer.publicKeySpki)));
    const cpRes = await get(`${log.url}/checkpoint`);
    assert.equal(cpRes.status, 200);
    assert.match(cpRes.headers.get('content-type')!, /^text\/plain/);
    assert.equal(cpRes.headers.get('cache-control'), 'no-cache');
    const cp = verifyCheckpointNote(cpRes.text, HOST, publicKeyFromSpki(log.service.log.signer.publicKeySpki));
    assert.equal(cp.size, 300);
    const full = await get(`${log.url}/tile/0/000`);
    assert.equal(full.status, 200);
    assert.equal(full.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    assert.equal(full.headers.get('content-type'), 'application/octet-stream');
    assert.equal(full.bytes.length, 256 * 32);
    assert.deepEqual(full.bytes.subarray(32 * 7, 32 * 8), leafHash(bodies[7]!));
    const partial = await get(`${log.url}/tile/0/001.p/44`);
    assert.equal(partial.status, 200);
    assert.equal(partial.headers.get('cache-control'), 'public, max-age=60');
    assert.deepEqual(partial.bytes.subarray(32 * 43), leafHash(bodies[299]!));
    const narrower = await get(`${log.url}/tile/0/001.p/3`);
    assert.equal(narrower.bytes.length, 96);
    const level1 = await get(`${log.url}/tile/1/000.p/1`);
    assert.equal(level1.bytes.length, 32);
    const bundle = await get(`${log.url}/tile/entries/001.p/44`);
    const entries = decodeEntryBundle(bundle.bytes);
    assert.equal(entries.length, 44);
    assert.deepEqual(Buffer.from(entries[43]!), bodies[299]);
    assert.equal(decodeEntryBundle((await get(`${log.url}/tile/entries/000`)).bytes).length, 256);
    const beyond = /no such tile in the published tree/;
    for (const [bogus, why] of [
      ['tile/0/001', beyond],
      ['tile/0/001.p/45', beyond],
      ['tile/0/002.p/1', beyond],
      ['tile/2/000.p/1', beyond],
      ['tile/0/1', /tile path: bad index group/],
      ['tile/0/x000/001', /tile path: non-canonical index/],
      ['tile/0/001.p/0', /tile path: bad partial width/],
      ['tile/64/000', /tile path: bad level/],
      ['tile/entries/abc', /tile path: bad index group/],
      ['tile/0/001.p/999', /tile path: bad partial width/],
      ['tile/', /tile path: bad level/],
      ['tile/0/../../log.db', /no route for \/log\.db/],
      ['tile/entries/001.p/45', beyond],
    ] as const)
      await respondsWithCode(get(`${log.url}/${bogus}`), 'ERR_NOT_FOUND', why, bogus);
    // The server survived all of that.
    assert.equal((await get(`${log.url}/checkpoint`)).status, 200);
  } finally {
    await log.close();
  }
});

test('an RSA and an Ed25519ph client key are accepted with matching keyDetails', async () => {
  const log = await startTestLog();
  try {
    const { generateKeyPairSync } = await import('node:crypto');
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const data = Buffer.from('rsa artifact');
    const req = {
      hashedRekordRequestV002: {
        digest: b64(sha256(data)),
        signature: {
          content: b64(sign('sha256', data, rsa.privateKey)),
          verifier: {
            publicKey: { rawBytes: b64(rsa.publicKey.export({ format: 'der', type: 'spki' })) },
            keyDetails: 'PKIX_RSA_PKCS1V15_2048_SHA256',
          },
        },
      },
    };
    assert.equal((await post(`${log.url}/api/v2/log/entries`, req)).status, 201);
    const { ed25519, ed25519ph } = await import('@noble/curves/ed25519.js');
    const { sha512 } = await import('@noble/hashes/sha2.js');
    const sk = ed25519.utils.randomSecretKey();
    const spki = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), ed25519.getPublicKey(sk)]);
    const message = Buffer.from('ed artifact');
    const digest = sha512(message);
    const sig = ed25519ph.sign(message, sk);
    const edReq = {
      hashedRekordRequestV002: {
        digest: b64(digest),
        signature: { content: b64(sig), verifier: { publicKey: { rawBytes: b64(spki) }, keyDetails: 'PKIX_ED25519_PH' } },
      },
    };
    const r = await post(`${log.url}/api/v2/log/entries`, edReq);
    assert.equal(r.status, 201, r.text);
  } finally {
    await log.close();
  }
});

test('multi-threaded front end: v2 writes on worker threads, every other route forwarded', async () => {
  const log = await startTestLog({ httpWorkers: 2 });
  try {
    const k = p256Key();
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => post(`${log.url}/api/v2/log/entries`, hashedRekordV2(k, `frontend ${i}`))),
    );
    assert.ok(
      results.every((r) => r.status === 201),
      results.map((r) => r.text).join('\n'),
    );
    assert.deepEqual(
      results.map((r) => Number(r.json.logIndex)).sort((a, b) => a - b),
      Array.from({ length: 30 }, (_, i) => i),
    );
    const logKey = publicKeyFromSpki(log.service.log.signer.publicKeySpki);
    for (const r of results.slice(0, 5)) {
      const cp = verifyCheckpointNote(r.json.inclusionProof.checkpoint.envelope, HOST, logKey);
      const body = Buffer.from(r.json.canonicalizedBody, 'base64');
      assert.ok(
        verifyInclusion(
          Number(r.json.logIndex),
          cp.size,
          leafHash(body),
          r.json.inclusionProof.hashes.map((h: string) => Buffer.from(h, 'base64')),
          cp.rootHash,
        ),
      );
    }
    const dup = await post(`${log.url}/api/v2/log/entries`, hashedRekordV2(k, 'frontend 3'));
    assert.ok(dup.status === 201 || dup.status === 409);
    await respondsWithStatus(post(`${log.url}/api/v2/log/entries`, { bogus: 1 }), 400, 3, /unknown field "bogus"/);
    await respondsWithStatus(post(`${log.url}/api/v2/log/entries`, '{'), 400, 3, /not valid JSON/);
    for (let i = 0; i < 6; i++) {
      // Forwarded routes answer identically whichever thread accepted the connection.
      const cp = await get(`${log.url}/checkpoint`);
      assert.equal(cp.status, 200);
      assert.match(cp.headers.get('content-type')!, /^text\/plain/);
      assert.equal((await get(`${log.url}/tile/0/000.p/3`)).bytes.length, 96);
      await respondsWithCode(get(`${log.url}/nope`), 'ERR_NOT_FOUND', /no route for \/nope/);
      assert.equal((await get(`${log.url}/api/v1/log`)).json.treeSize >= 30, true);
    }
    assert.equal((await post(`${log.url}/api/v1/log/entries`, hashedRekordV1(k, 'v1 via main'))).status, 201);
  } finally {
    await log.close();
  }
});
