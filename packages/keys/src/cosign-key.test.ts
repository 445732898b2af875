import { fileURLToPath } from 'node:url';
// cosign's encrypted key files: the real vectors from cosign's tests (read from the shared vector
// folder, never copied here), round trips of what we write, and every kind of bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createPublicKey, generateKeyPairSync, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import { throwsWithCode } from '@waxseal/testkit';
import { encodePem, fromBase64, toBase64, utf8 } from '@waxseal/core';
import {
  COSIGN_DEFAULT_SCRYPT,
  COSIGN_KEY_LABEL,
  COSIGN_KEY_LABEL_OLD,
  COSIGN_SCRYPT_PARAMS,
  cosignSigner,
  decryptCosignKey,
  encryptCosignKey,
  importPrivateKeyPem,
  loadSigningKey,
  parseCosignKey,
  publicKeyPem,
} from './cosign-key.ts';

const VECTORS = process.env.WAXSEAL_COSIGN_KEY_VECTORS ?? fileURLToPath(new URL('../../../../shared/vectors/cosign-keys', import.meta.url));
const haveVectors = existsSync(`${VECTORS}/sigstore-labeled.key`);
const skipVectors = haveVectors ? false : `cosign key vectors not found in ${VECTORS} (set WAXSEAL_COSIGN_KEY_VECTORS)`;
const vector = (name: string) => readFileSync(`${VECTORS}/${name}`, 'utf8');

// The vectors use the legacy set (N=32768); our own keys in tests too, to keep them fast, except
// where the default is what is tested.
const FAST = COSIGN_SCRYPT_PARAMS.legacy;

test('cosign vectors: SIGSTORE- and COSIGN-labelled PKCS#8 keys load with password hello and sign', { skip: skipVectors }, () => {
  for (const name of ['sigstore-labeled.key', 'cosign-labeled-rsa.key']) {
    const key = decryptCosignKey(vector(name), 'hello');
    assert.equal(key.type, 'private', name);
    const msg = utf8(`payload for ${name}`);
    const sig = nodeSign('sha256', msg, key);
    assert.ok(nodeVerify('sha256', msg, createPublicKey(key), sig), name);
    const signer = cosignSigner(vector(name), 'hello', `file://${name}`);
    assert.equal(signer.hash, 'sha256');
  }
  assert.equal(parseCosignKey(vector('sigstore-labeled.key')).label, COSIGN_KEY_LABEL);
  assert.equal(parseCosignKey(vector('cosign-labeled-rsa.key')).label, COSIGN_KEY_LABEL_OLD);
});

test('cosign vectors: the SEC1 key inside a cosign file is refused, as cosign refuses it', { skip: skipVectors }, () => {
  throwsWithCode(() => decryptCosignKey(vector('cosign-labeled-ec-sec1.key'), 'hello'), 'ERR_KEY_UNSUPPORTED', /SEC1 EC key, not PKCS#8/);
});

test('cosign vectors: a wrong password is refused', { skip: skipVectors }, () => {
  for (const pw of ['', 'hello ', 'Hello', 'wrong']) {
    throwsWithCode(() => decryptCosignKey(vector('sigstore-labeled.key'), pw), 'ERR_INVALID_INPUT', {
      check: 'key.password',
      message: /wrong password/,
    });
  }
});

test('what we write has the structure of cosign’s files: same fields, label, accepted KDF parameters', { skip: skipVectors }, () => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ours = parseCosignKey(encryptCosignKey(privateKey, 'pw'));
  const theirs = parseCosignKey(vector('sigstore-labeled.key'));
  assert.deepEqual(ours.fields, theirs.fields);
  assert.equal(ours.label, theirs.label);
  assert.deepEqual(ours.kdf.params, COSIGN_DEFAULT_SCRYPT);
  // Every vector's parameters are one of the sets go-securesystemslib reads; ours is its default (standard).
  for (const name of ['sigstore-labeled.key', 'cosign-labeled-rsa.key', 'cosign-labeled-ec-sec1.key']) {
    const p = parseCosignKey(vector(name)).kdf.params;
    assert.ok(
      Object.values(COSIGN_SCRYPT_PARAMS).some((s) => s.N === p.N && s.r === p.r && s.p === p.p),
      name,
    );
  }
  assert.equal(ours.kdf.salt.length, theirs.kdf.salt.length);
  assert.equal(ours.cipher.nonce.length, theirs.cipher.nonce.length);
  // Same JSON text shape: field order as Go writes it.
  const body = (pem: string) =>
    Buffer.from(
      fromBase64(
        pem
          .split('\n')
          .filter((l) => l && !l.startsWith('-----'))
          .join(''),
      ),
    )
      .toString()
      .replace(/"[A-Za-z0-9+/=]{20,}"/g, '"…"')
      .replace(/"N":\d+/, '"N":0');
  assert.equal(body(encryptCosignKey(privateKey, 'pw')), body(vector('sigstore-labeled.key')));
});

test('round trip: P-256, P-384, RSA-2048 and Ed25519 keys encrypt and decrypt to the same key', () => {
  const keys = [
    generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
    generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey,
    generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
    generateKeyPairSync('ed25519').privateKey,
  ];
  for (const k of keys) {
    const pem = encryptCosignKey(k, 'sécret', { params: FAST });
    assert.match(pem, /^-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n/);
    const back = decryptCosignKey(pem, 'sécret');
    assert.deepEqual(back.export({ format: 'der', type: 'pkcs8' }), k.export({ format: 'der', type: 'pkcs8' }));
    assert.equal(publicKeyPem(back), publicKeyPem(k));
    throwsWithCode(() => decryptCosignKey(pem, 'secret'), 'ERR_INVALID_INPUT', { check: 'key.password' });
  }
  // An empty password is what COSIGN_PASSWORD= gives; it works both ways, as in cosign.
  const k = keys[0]!;
  assert.ok(decryptCosignKey(encryptCosignKey(k, '', { params: FAST }), ''));
  // Each write has a fresh salt and nonce.
  const a = parseCosignKey(encryptCosignKey(k, 'x', { params: FAST }));
  const b = parseCosignKey(encryptCosignKey(k, 'x', { params: FAST }));
  assert.notDeepEqual(a.kdf.salt, b.kdf.salt);
  assert.notDeepEqual(a.cipher.nonce, b.cipher.nonce);
});

test('tampered or foreign files are refused with a clear error, never a crash or a huge scrypt', () => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = encryptCosignKey(privateKey, 'pw', { params: FAST });
  const json = JSON.parse(Buffer.from(fromBase64(pem.split('\n').slice(1, -2).join(''))).toString());
  const rewrap = (j: unknown, label = COSIGN_KEY_LABEL) => encodePem(label, utf8(JSON.stringify(j)));
  const cases: [string, string, string, RegExp][] = [
    ['garbage', 'this is not a key', 'ERR_PEM_PARSE', /no PEM block/],
    ['other label', encodePem('CERTIFICATE', utf8('x')), 'ERR_PEM_PARSE', /unsupported PEM type CERTIFICATE/],
    ['not JSON', encodePem(COSIGN_KEY_LABEL, utf8('{nope')), 'ERR_INVALID_INPUT', /cosign key body/],
    ['JSON array', rewrap([1]), 'ERR_INVALID_INPUT', /not a JSON object/],
    ['no kdf', rewrap({ ...json, kdf: undefined }), 'ERR_INVALID_INPUT', /kdf, cipher or ciphertext missing/],
    ['other kdf', rewrap({ ...json, kdf: { ...json.kdf, name: 'argon2' } }), 'ERR_INVALID_INPUT', /unknown kdf name "argon2"/],
    ['other cipher', rewrap({ ...json, cipher: { ...json.cipher, name: 'aes' } }), 'ERR_INVALID_INPUT', /unknown cipher name/],
    [
      'huge N',
      rewrap({ ...json, kdf: { ...json.kdf, params: { N: 1 << 30, r: 8, p: 1 } } }),
      'ERR_INVALID_INPUT',
      /unsupported scrypt parameters/,
    ],
    ['N as string', rewrap({ ...json, kdf: { ...json.kdf, params: { N: '32768', r: 8, p: 1 } } }), 'ERR_INVALID_INPUT', /scrypt/],
    [
      'short nonce',
      rewrap({ ...json, cipher: { ...json.cipher, nonce: toBase64(new Uint8Array(12)) } }),
      'ERR_INVALID_INPUT',
      /nonce size/,
    ],
    ['bad base64', rewrap({ ...json, ciphertext: '!!!' }), 'ERR_INVALID_INPUT', /base64/],
    [
      'flipped ciphertext',
      rewrap({ ...json, ciphertext: toBase64(fromBase64(json.ciphertext).map((x, i) => (i === 5 ? x ^ 1 : x))) }),
      'ERR_INVALID_INPUT',
      /wrong password/,
    ],
    ['other salt', rewrap({ ...json, kdf: { ...json.kdf, salt: toBase64(new Uint8Array(32)) } }), 'ERR_INVALID_INPUT', /wrong password/],
    ['oversize', `${pem}${' '.repeat(70_000)}`, 'ERR_INVALID_INPUT', /larger than/],
  ];
  for (const [what, text, code, re] of cases) {
    throwsWithCode(() => decryptCosignKey(text, 'pw'), code as 'ERR_INVALID_INPUT', re, what);
  }
  // A JSON body whose secretbox holds something that is not a key.
  const notKey = parseCosignKey(pem);
  assert.ok(notKey.ciphertext.length > 16);
});

test('importPrivateKeyPem reads PKCS#1, SEC1 and PKCS#8 as cosign import-key-pair does, and validates them', () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const ed = generateKeyPairSync('ed25519').privateKey;
  const forms = [
    rsa.export({ format: 'pem', type: 'pkcs1' }) as string,
    rsa.export({ format: 'pem', type: 'pkcs8' }) as string,
    ec.export({ format: 'pem', type: 'sec1' }) as string,
    ec.export({ format: 'pem', type: 'pkcs8' }) as string,
    ed.export({ format: 'pem', type: 'pkcs8' }) as string,
  ];
  for (const pem of forms) {
    const k = importPrivateKeyPem(pem);
    const converted = encryptCosignKey(k, 'pw', { params: FAST });
    assert.equal(publicKeyPem(decryptCosignKey(converted, 'pw')), publicKeyPem(k));
  }
  const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'pem', type: 'pkcs1' }) as string;
  throwsWithCode(() => importPrivateKeyPem(weak), 'ERR_KEY_WEAK');
  const k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
  throwsWithCode(() => importPrivateKeyPem(k1), 'ERR_KEY_UNSUPPORTED', /curve/);
  throwsWithCode(() => importPrivateKeyPem(encodePem('PUBLIC KEY', new Uint8Array(10))), 'ERR_KEY_UNSUPPORTED', /PUBLIC KEY/);
  throwsWithCode(() => importPrivateKeyPem(encodePem('PRIVATE KEY', new Uint8Array(10))), 'ERR_KEY_UNSUPPORTED', /error parsing/);
  throwsWithCode(() => importPrivateKeyPem('nothing'), 'ERR_PEM_PARSE');
  // Encrypted PKCS#8 is not what import-key-pair takes.
  const enc = ec.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'x' }) as string;
  throwsWithCode(() => importPrivateKeyPem(enc), 'ERR_KEY_UNSUPPORTED', /ENCRYPTED PRIVATE KEY/);
});

test('loadSigningKey takes cosign keys only, asks the password only for them, and points plain keys to import-key-pair', () => {
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  let asked = 0;
  const k = loadSigningKey(encryptCosignKey(ec, 'pw', { params: FAST }), () => (asked++, 'pw'));
  assert.equal(asked, 1);
  assert.equal(publicKeyPem(k), publicKeyPem(ec));
  throwsWithCode(
    () => loadSigningKey(ec.export({ format: 'pem', type: 'pkcs8' }) as string, () => assert.fail('no password for a plain key')),
    'ERR_KEY_UNSUPPORTED',
    /import-key-pair/,
  );
  throwsWithCode(() => loadSigningKey('garbage', () => assert.fail('no password for garbage')), 'ERR_PEM_PARSE');
});
