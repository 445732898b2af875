// Google Cloud KMS backend against recorded API exchanges. There is no GCP KMS emulator, so this
// test runs a 127.0.0.1 HTTP server that answers the two REST calls the backend makes
// (GET …/cryptoKeyVersions/V/publicKey and POST …/cryptoKeyVersions/V:asymmetricSign) in the
// real API's JSON shapes (documented field names, int64 as strings, bytes as base64, enums as
// numbers because the client asks for `$alt=json;enum-encoding=int`), with signatures made by
// real keys the test holds. It also checks what the client sends: path, query, a self-signed
// service-account JWT in Authorization, the routing header, the digest and its CRC32C.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import {
  constants,
  createHash,
  createPublicKey,
  generateKeyPairSync,
  privateEncrypt,
  sign as nodeSign,
  verify as nodeVerify,
  type KeyObject,
} from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { p256, p384 } from '@noble/curves/nist.js';
import { fromBase64, fromBase64Url, toBase64, utf8 } from '../../core/src/bytes.ts';
import { HASH_OID, type HashName } from '../../core/src/crypto.ts';
import { nullValue, octetString, oid as derOid, seq } from '../../core/src/der.ts';
import { rejectsWithCode } from '@waxseal/testkit';
import { OID } from '../../core/src/oids.ts';
import { crc32c } from '../src/gcpkms.ts';
import { openSigner } from '../../keys/src/open.ts';
import type { Signer } from '../../keys/src/signer.ts';
import { assertSigns, assertSignsChain, fileRoot, freePort, tempDir } from '../../keys/test/helpers.ts';

const PREFIX = 'projects/waxseal-test/locations/us-east1/keyRings/ca';
const SA_EMAIL = 'waxseal-signer@waxseal-test.iam.gserviceaccount.com';

interface TestKey {
  algorithm: string;
  algorithmNumber: number;
  privateKey: KeyObject;
  hash?: HashName;
  /** Misbehaviours to check the client's integrity checks. */
  fault?: 'pem-crc' | 'signature-crc' | 'unverified' | 'wrong-name' | 'wrong-key';
}

const ec = (curve: 'P-256' | 'P-384') => generateKeyPairSync('ec', { namedCurve: curve }).privateKey;
const rsa = () => generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
const p256Key = ec('P-256');
const KEYS: Record<string, TestKey> = {
  p256: { algorithm: 'EC_SIGN_P256_SHA256', algorithmNumber: 12, privateKey: p256Key, hash: 'sha256' },
  p384: { algorithm: 'EC_SIGN_P384_SHA384', algorithmNumber: 13, privateKey: ec('P-384'), hash: 'sha384' },
  rsa: { algorithm: 'RSA_SIGN_PKCS1_2048_SHA256', algorithmNumber: 5, privateKey: rsa(), hash: 'sha256' },
  ed25519: { algorithm: 'EC_SIGN_ED25519', algorithmNumber: 40, privateKey: generateKeyPairSync('ed25519').privateKey },
  pss: { algorithm: 'RSA_SIGN_PSS_2048_SHA256', algorithmNumber: 2, privateKey: rsa(), hash: 'sha256' },
  'bad-pem-crc': { algorithm: 'EC_SIGN_P256_SHA256', algorithmNumber: 12, privateKey: p256Key, hash: 'sha256', fault: 'pem-crc' },
  'bad-sig-crc': { algorithm: 'EC_SIGN_P256_SHA256', algorithmNumber: 12, privateKey: p256Key, hash: 'sha256', fault: 'signature-crc' },
  unverified: { algorithm: 'EC_SIGN_P256_SHA256', algorithmNumber: 12, privateKey: p256Key, hash: 'sha256', fault: 'unverified' },
  'wrong-name': { algorithm: 'EC_SIGN_P256_SHA256', algorithmNumber: 12, privateKey: p256Key, hash: 'sha256', fault: 'wrong-name' },
  'wrong-key': { algorithm: 'EC_SIGN_P256_SHA256', algorithmNumber: 12, privateKey: p256Key, hash: 'sha256', fault: 'wrong-key' },
};
const versionName = (key: string) => `${PREFIX}/cryptoKeys/${key}/cryptoKeyVersions/1`;

/** What the real service does for a digest: ECDSA/RSA PKCS#1 v1.5 over the given digest. */
function signDigest(k: TestKey, digestBytes: Uint8Array): Uint8Array {
  const jwk = k.privateKey.export({ format: 'jwk' });
  if (k.algorithm.startsWith('EC_SIGN_P')) {
    const curve = k.algorithm === 'EC_SIGN_P256_SHA256' ? p256 : p384;
    return curve.sign(digestBytes, fromBase64Url(jwk.d!), { prehash: false, format: 'der' });
  }
  const digestInfo = seq(seq(derOid(HASH_OID[k.hash!]), nullValue()), octetString(digestBytes));
  return new Uint8Array(privateEncrypt({ key: k.privateKey, padding: constants.RSA_PKCS1_PADDING }, digestInfo));
}

interface Recorded {
  method: string;
  path: string;
  query: string;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

function apiError(code: number, status: string, message: string) {
  return { status: code, body: { error: { code, message, status } } };
}

/** Answers like cloudkms.googleapis.com's REST surface for the two methods. */
function fakeKms(): (method: string, path: string, query: string, body: unknown) => { status: number; body: unknown } {
  return (method, path, query, body) => {
    const numericEnums = decodeURIComponent(query).includes('$alt=json;enum-encoding=int');
    const m = /^\/v1\/(projects\/[^:]+\/cryptoKeyVersions\/\d+)(\/publicKey|:asymmetricSign)$/.exec(path);
    if (!m) return apiError(404, 'NOT_FOUND', `Method not found: ${path}`);
    const name = m[1]!;
    const keyId = /cryptoKeys\/([^/]+)\//.exec(name)?.[1] ?? '';
    if (keyId === 'denied')
      return apiError(
        403,
        'PERMISSION_DENIED',
        `Permission 'cloudkms.cryptoKeyVersions.viewPublicKey' denied on resource '${name}' (or it may not exist).`,
      );
    const k = KEYS[keyId];
    if (!k) return apiError(404, 'NOT_FOUND', `CryptoKeyVersion ${name} not found.`);
    const enumValue = (n: number, s: string) => (numericEnums ? n : s);
    if (m[2] === '/publicKey') {
      if (method !== 'GET') return apiError(404, 'NOT_FOUND', 'wrong method');
      const pemText = createPublicKey(k.privateKey).export({ format: 'pem', type: 'spki' }) as string;
      return {
        status: 200,
        body: {
          pem: pemText,
          algorithm: enumValue(k.algorithmNumber, k.algorithm),
          pemCrc32c: String(k.fault === 'pem-crc' ? crc32c(utf8(pemText)) ^ 1 : crc32c(utf8(pemText))),
          name,
          protectionLevel: enumValue(1, 'SOFTWARE'),
        },
      };
    }
    if (method !== 'POST') return apiError(404, 'NOT_FOUND', 'wrong method');
    const req = body as { digest?: Record<string, string>; digestCrc32c?: string; data?: string; dataCrc32c?: string };
    let signature: Uint8Array;
    let verified: Record<string, boolean>;
    if (k.algorithm === 'EC_SIGN_ED25519') {
      if (req.data === undefined) return apiError(400, 'INVALID_ARGUMENT', 'Ed25519 keys sign data, not a digest.');
      const data = fromBase64(req.data);
      signature = new Uint8Array(nodeSign(null, data, k.privateKey));
      verified = { verifiedDataCrc32c: req.dataCrc32c !== undefined && Number(req.dataCrc32c) === crc32c(data) };
    } else {
      const [[alg, b64]] = Object.entries(req.digest ?? {}) as [[string, string]];
      if (alg !== k.hash)
        return apiError(400, 'INVALID_ARGUMENT', `The requested digest algorithm ${alg} does not match the key algorithm.`);
      const d = fromBase64(b64);
      const signer = k.fault === 'wrong-key' ? { ...k, privateKey: ec('P-256') } : k;
      signature = signDigest(signer, d);
      verified = {
        verifiedDigestCrc32c: k.fault !== 'unverified' && req.digestCrc32c !== undefined && Number(req.digestCrc32c) === crc32c(d),
      };
    }
    return {
      status: 200,
      body: {
        signature: toBase64(signature),
        signatureCrc32c: String(k.fault === 'signature-crc' ? (crc32c(signature) + 1) >>> 0 : crc32c(signature)),
        ...verified,
        name: k.fault === 'wrong-name' ? versionName('p256') : name,
        protectionLevel: enumValue(1, 'SOFTWARE'),
      },
    };
  };
}

describe('GCP KMS signer against recorded REST exchanges', () => {
  let server: Server;
  let port = 0;
  let dir = '';
  let saPublic: KeyObject;
  const savedCreds = process.env['GOOGLE_APPLICATION_CREDENTIALS'];
  const recorded: Recorded[] = [];
  const opened: Signer[] = [];
  const track = <T extends Signer>(s: T): T => (opened.push(s), s);
  const uri = (key: string) => `gcpkms://${versionName(key)}?endpoint=127.0.0.1:${port}`;

  before(async () => {
    dir = tempDir('gcpkms');
    // A service-account key file: the client then authenticates with a self-signed JWT, offline.
    const sa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    saPublic = sa.publicKey;
    writeFileSync(
      join(dir, 'sa.json'),
      JSON.stringify({
        type: 'service_account',
        project_id: 'waxseal-test',
        private_key_id: 'test-key-1',
        private_key: sa.privateKey.export({ format: 'pem', type: 'pkcs8' }),
        client_email: SA_EMAIL,
        client_id: '100000000000000000001',
        token_uri: 'https://oauth2.googleapis.com/token',
      }),
      { mode: 0o600 },
    );
    process.env['GOOGLE_APPLICATION_CREDENTIALS'] = join(dir, 'sa.json');
    const answer = fakeKms();
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const [path, query = ''] = (req.url ?? '').split('?', 2) as [string, string?];
        const text = Buffer.concat(chunks).toString('utf8');
        const body: unknown = text ? JSON.parse(text) : undefined;
        recorded.push({ method: req.method ?? '', path, query, headers: req.headers, body });
        const out = answer(req.method ?? '', path, query, body);
        res.writeHead(out.status, { 'content-type': 'application/json; charset=UTF-8' });
        res.end(JSON.stringify(out.body));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const addr = server.address();
    port = typeof addr === 'object' && addr ? addr.port : 0;
  });

  after(async () => {
    for (const s of opened) await s.close?.();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    if (savedCreds === undefined) delete process.env['GOOGLE_APPLICATION_CREDENTIALS'];
    else process.env['GOOGLE_APPLICATION_CREDENTIALS'] = savedCreds;
    rmSync(dir, { recursive: true, force: true });
  });

  test('CRC32C matches the Castagnoli check value', () => {
    assert.equal(crc32c(utf8('123456789')), 0xe3069283);
    assert.equal(crc32c(new Uint8Array(0)), 0);
    assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  });

  test('P-256: opens through openSigner, sends the documented requests, signatures verify', async () => {
    recorded.length = 0;
    const signer = track(await openSigner(uri('p256')));
    assert.equal(signer.kind, 'ecdsa-p256');
    assert.equal(signer.hash, 'sha256');
    assert.equal(signer.keyRef, uri('p256'));
    const data = utf8('sign me in Cloud KMS');
    const sig = await signer.sign(data);
    assertSigns(signer, data, sig);

    assert.equal(recorded.length, 2);
    const [get, post] = recorded as [Recorded, Recorded];
    assert.equal(get.method, 'GET');
    assert.equal(get.path, `/v1/${versionName('p256')}/publicKey`);
    assert.equal(decodeURIComponent(get.query), '$alt=json;enum-encoding=int');
    assert.equal(post.method, 'POST');
    assert.equal(post.path, `/v1/${versionName('p256')}:asymmetricSign`);
    assert.equal(post.headers['content-type'], 'application/json');
    assert.equal(post.headers['x-goog-request-params'], `name=${encodeURIComponent(versionName('p256'))}`);
    const digest = createHash('sha256').update(data).digest();
    assert.deepEqual(post.body, { digest: { sha256: digest.toString('base64') }, digestCrc32c: String(crc32c(digest)) });

    // Authorization: a JWT the service account's key signed, naming the account and the KMS scope.
    for (const r of recorded) {
      const auth = String(r.headers['authorization'] ?? '');
      const m = /^Bearer ([\w-]+)\.([\w-]+)\.([\w-]+)$/.exec(auth);
      assert.ok(m, 'bearer JWT');
      assert.ok(
        nodeVerify('sha256', Buffer.from(`${m[1]}.${m[2]}`), saPublic, Buffer.from(m[3]!, 'base64url')),
        'JWT signed by the service-account key',
      );
      const claims = JSON.parse(Buffer.from(m[2]!, 'base64url').toString()) as { iss: string; sub: string; scope?: string };
      assert.equal(claims.iss, SA_EMAIL);
      assert.equal(claims.sub, SA_EMAIL);
      assert.match(claims.scope ?? '', /cloudkms/);
    }
  });

  test('P-384 sends a sha384 digest; RSA PKCS#1 v1.5; Ed25519 sends the data itself', async () => {
    const data = utf8('several algorithms');
    const s384 = track(await openSigner(uri('p384')));
    assert.equal(s384.hash, 'sha384');
    recorded.length = 0;
    assertSigns(s384, data, await s384.sign(data));
    assert.ok((recorded[0]!.body as { digest: Record<string, string> }).digest['sha384']);

    const r = track(await openSigner(uri('rsa')));
    assert.equal(r.kind, 'rsa');
    assertSigns(r, data, await r.sign(data));

    const ed = track(await openSigner(uri('ed25519')));
    assert.equal(ed.kind, 'ed25519');
    recorded.length = 0;
    assertSigns(ed, data, await ed.sign(data));
    assert.deepEqual(recorded[0]!.body, { data: Buffer.from(data).toString('base64'), dataCrc32c: String(crc32c(data)) });
  });

  test('chain: file-key root -> GCP KMS intermediate -> TSA leaf signed in KMS; openssl verify accepts it', async () => {
    const root = await fileRoot(dir);
    const kms = track(await openSigner(uri('p256')));
    await assertSignsChain(dir, root, kms, { intermediate: 'GCP KMS intermediate', signatureAlgorithm: OID.ecdsaWithSha256 });
  });

  test('unknown, forbidden and unsupported keys give ERR_CONFIG', async () => {
    await rejectsWithCode(
      openSigner(uri('missing')),
      'ERR_CONFIG',
      /cryptoKeys\/missing\/cryptoKeyVersions\/1 at http:\/\/127\.0\.0\.1:\d+ not found/,
    );
    await rejectsWithCode(openSigner(uri('denied')), 'ERR_CONFIG', /permission denied/);
    await rejectsWithCode(openSigner(uri('pss')), 'ERR_CONFIG', /uses RSA_SIGN_PSS_2048_SHA256; Waxseal signs with EC_SIGN_P256_SHA256/);
    await rejectsWithCode(openSigner(`gcpkms://${PREFIX}/cryptoKeys/p256`), 'ERR_CONFIG', /name the key version/);
  });

  test('integrity checks: corrupted PEM, signature, unconfirmed digest, wrong version, wrong key -> ERR_SIGNER', async () => {
    await rejectsWithCode(openSigner(uri('bad-pem-crc')), 'ERR_SIGNER', /public key .* fails its CRC32C check/);
    const data = utf8('x');
    await rejectsWithCode(track(await openSigner(uri('bad-sig-crc'))).sign(data), 'ERR_SIGNER', /signature .* fails its CRC32C check/);
    await rejectsWithCode(track(await openSigner(uri('unverified'))).sign(data), 'ERR_SIGNER', /verifiedDigestCrc32c is not true/);
    await rejectsWithCode(
      track(await openSigner(uri('wrong-name'))).sign(data),
      'ERR_SIGNER',
      /answered for key version .*cryptoKeys\/p256\//,
    );
    await rejectsWithCode(track(await openSigner(uri('wrong-key'))).sign(data), 'ERR_SIGNER', /does not verify against its public key/);
  });

  test('an unreachable endpoint fails with ERR_SIGNER instead of hanging', async () => {
    const closed = await freePort();
    await rejectsWithCode(
      openSigner(`gcpkms://${versionName('p256')}?endpoint=127.0.0.1:${closed}`),
      'ERR_SIGNER',
      /reading the public key of .* failed/,
    );
  });
});
