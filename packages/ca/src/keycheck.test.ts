import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, sign as nodeSign } from 'node:crypto';
import { rejectsWithCode, throwsWithCode } from '@waxseal/testkit';
import { bitString, oid, seq } from '../../core/src/der.ts';
import { encodePem } from '../../core/src/pem.ts';
import { concat, fromBase64Url, toBase64 } from '../../core/src/bytes.ts';
import { OID } from '../../core/src/oids.ts';
import { KeyObjectSigner } from '../../keys/src/memory.ts';
import {
  parsePublicKeyContent,
  checkKeyStrength,
  allowedAlgorithmSet,
  checkAlgorithmAllowed,
  verifyProofOfPossession,
  decodeProtoBytes,
  checkCsr,
  signingAlgorithmName,
  DEFAULT_CLIENT_SIGNING_ALGORITHMS,
} from './keycheck.ts';
import { writeCsr } from './chain.ts';
import { clientKey, opensslCsr } from '../test/helpers.ts';

test('public keys parse from PEM (PUBLIC KEY, RSA PUBLIC KEY) for every supported kind', () => {
  for (const [kind, expected] of [
    ['p256', 'ecdsa-p256'],
    ['p384', 'ecdsa-p384'],
    ['p521', 'ecdsa-p521'],
    ['ed25519', 'ed25519'],
    ['rsa2048', 'rsa'],
  ] as const) {
    const k = clientKey(kind);
    const info = parsePublicKeyContent(k.pem);
    assert.equal(info.kind, expected);
    checkKeyStrength(info);
  }
  // Other armour layouts take the general PEM path and give the same key.
  const k = clientKey('p256');
  const b64 = k.pem.replace(/-----[A-Z ]+-----|\s/g, '');
  const crlf76 = `-----BEGIN PUBLIC KEY-----\r\n${b64.match(/.{1,76}/g)!.join('\r\n')}\r\n-----END PUBLIC KEY-----\r\n`;
  const framed = `leading text\n${k.pem}trailing text`;
  for (const variant of [crlf76, framed]) assert.deepEqual(parsePublicKeyContent(variant).spki, parsePublicKeyContent(k.pem).spki);
  throwsWithCode(() => parsePublicKeyContent(k.pem.replace(/\n(.)/, '\n*$1')), 'ERR_INVALID_INPUT', /not valid base64/);
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pkcs1 = rsa.publicKey.export({ format: 'pem', type: 'pkcs1' }) as string;
  assert.equal(parsePublicKeyContent(pkcs1).kind, 'rsa');
});

test('unsupported and malformed keys are refused with ERR_KEY_UNSUPPORTED', () => {
  throwsWithCode(() => parsePublicKeyContent(clientKey('secp256k1').pem), 'ERR_KEY_UNSUPPORTED', /secp256k1/);
  throwsWithCode(() => parsePublicKeyContent(''), 'ERR_KEY_UNSUPPORTED');
  throwsWithCode(() => parsePublicKeyContent('not a key'), 'ERR_KEY_UNSUPPORTED');
  throwsWithCode(() => parsePublicKeyContent(encodePem('CERTIFICATE', Uint8Array.of(1, 2, 3))), 'ERR_KEY_UNSUPPORTED');
  const x25519 = generateKeyPairSync('x25519').publicKey.export({ format: 'pem', type: 'spki' }) as string;
  throwsWithCode(() => parsePublicKeyContent(x25519), 'ERR_KEY_UNSUPPORTED');
  // A compressed P-256 point: valid for OpenSSL, refused by Fulcio (Go) and by us.
  const jwk = clientKey('p256').publicKey.export({ format: 'jwk' });
  const y = fromBase64Url(jwk.y!);
  const compressed = concat(Uint8Array.of(y[y.length - 1]! & 1 ? 3 : 2), fromBase64Url(jwk.x!));
  const spki = seq(seq(oid(OID.ecPublicKey), oid(OID.p256)), bitString(compressed));
  throwsWithCode(() => parsePublicKeyContent(encodePem('PUBLIC KEY', spki)), 'ERR_KEY_UNSUPPORTED', /uncompressed/);
  // Trailing bytes after the SPKI.
  const good = clientKey('p256').publicKey.export({ format: 'der', type: 'spki' });
  throwsWithCode(() => parsePublicKeyContent(encodePem('PUBLIC KEY', concat(good, Uint8Array.of(0)))), 'ERR_KEY_UNSUPPORTED');
});

test('goodkey: RSA size, modulus length, exponent and small factors are ERR_KEY_WEAK', () => {
  throwsWithCode(() => checkKeyStrength(parsePublicKeyContent(clientKey('rsa1024').pem)), 'ERR_KEY_WEAK', /1024 bits/);
  const e3 = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 3 }).publicKey.export({
    format: 'pem',
    type: 'spki',
  }) as string;
  throwsWithCode(() => checkKeyStrength(parsePublicKeyContent(e3)), 'ERR_KEY_WEAK', /65537/);
  const odd = generateKeyPairSync('rsa', { modulusLength: 2052 }).publicKey.export({ format: 'pem', type: 'spki' }) as string;
  throwsWithCode(() => checkKeyStrength(parsePublicKeyContent(odd)), 'ERR_KEY_WEAK', /multiple of 8/);
  // A 2048-bit modulus divisible by 3 (never a real RSA key, but parseable).
  let n = (1n << 2047n) + 1n;
  while (n % 3n !== 0n) n += 2n;
  const nBytes = Buffer.from(n.toString(16).padStart(512, '0'), 'hex');
  const fake = createPublicKey({ key: { kty: 'RSA', n: nBytes.toString('base64url'), e: 'AQAB' }, format: 'jwk' }).export({
    format: 'pem',
    type: 'spki',
  }) as string;
  throwsWithCode(() => checkKeyStrength(parsePublicKeyContent(fake)), 'ERR_KEY_WEAK', /small prime/);
});

test('allowed client signing algorithms: Fulcio defaults, flag names, refusals', () => {
  const defaults = allowedAlgorithmSet();
  assert.deepEqual([...defaults].sort(), [...DEFAULT_CLIENT_SIGNING_ALGORITHMS].sort());
  const p256 = parsePublicKeyContent(clientKey('p256').pem);
  assert.equal(checkAlgorithmAllowed(defaults, p256, 'sha256'), 'PKIX_ECDSA_P256_SHA_256');
  throwsWithCode(() => checkAlgorithmAllowed(defaults, p256, 'sha384'), 'ERR_KEY_UNSUPPORTED', /not permitted/);
  const onlyEd = allowedAlgorithmSet(['ed25519']);
  throwsWithCode(() => checkAlgorithmAllowed(onlyEd, p256, 'sha256'), 'ERR_KEY_UNSUPPORTED');
  assert.equal(checkAlgorithmAllowed(onlyEd, parsePublicKeyContent(clientKey('ed25519').pem), null), 'PKIX_ED25519');
  assert.equal(allowedAlgorithmSet(['ecdsa-sha2-256-nistp256']).has('PKIX_ECDSA_P256_SHA_256'), true);
  throwsWithCode(() => allowedAlgorithmSet(['rsa-sign-pkcs1-1024-sha1']), 'ERR_CONFIG');
  throwsWithCode(() => allowedAlgorithmSet([]), 'ERR_CONFIG');
  assert.equal(signingAlgorithmName(parsePublicKeyContent(clientKey('rsa2048').pem), 'sha256'), 'PKIX_RSA_PKCS1V15_2048_SHA256');
});

test('proof of possession uses the key default algorithm over the UTF-8 challenge', async () => {
  for (const kind of ['p256', 'p384', 'p521', 'ed25519', 'rsa2048'] as const) {
    const k = clientKey(kind);
    const info = parsePublicKeyContent(k.pem);
    await verifyProofOfPossession(info, 'dev@example.com', decodeProtoBytes(k.prove('dev@example.com'), 'pop'));
    await rejectsWithCode(
      verifyProofOfPossession(info, 'other@example.com', decodeProtoBytes(k.prove('dev@example.com'), 'pop')),
      'ERR_PROOF_OF_POSSESSION',
      undefined,
      kind,
    );
  }
  // P-384 with SHA-256 was Fulcio's behaviour before v1.7; now SHA-384 is required.
  const p384 = clientKey('p384');
  const sha256Sig = nodeSign('sha256', Buffer.from('sub'), p384.privateKey);
  await rejectsWithCode(verifyProofOfPossession(parsePublicKeyContent(p384.pem), 'sub', sha256Sig), 'ERR_PROOF_OF_POSSESSION');
  await rejectsWithCode(verifyProofOfPossession(parsePublicKeyContent(p384.pem), 'sub', new Uint8Array()), 'ERR_PROOF_OF_POSSESSION');
  // Garbage where a DER signature belongs is a failed proof, not a crash.
  await rejectsWithCode(
    verifyProofOfPossession(parsePublicKeyContent(p384.pem), 'sub', Uint8Array.of(0x30, 0xff, 1)),
    'ERR_PROOF_OF_POSSESSION',
  );
});

test('protobuf bytes: standard and URL-safe base64, padded or not', () => {
  const bytes = Uint8Array.of(0xfb, 0xff, 0xfe, 1);
  assert.deepEqual(decodeProtoBytes(toBase64(bytes), 'x'), bytes);
  assert.deepEqual(decodeProtoBytes(toBase64(bytes).replace(/=+$/, ''), 'x'), bytes);
  assert.deepEqual(decodeProtoBytes(Buffer.from(bytes).toString('base64url'), 'x'), bytes);
  for (const bad of ['a', '!!!!', 'ab+_', 42])
    throwsWithCode(() => decodeProtoBytes(bad, 'x'), 'ERR_INVALID_INPUT', undefined, String(bad));
});

test('CSR form: openssl and our own CSRs verify; tampering, wrong labels and weak keys are refused', async () => {
  const p256 = clientKey('p256');
  const r = checkCsr(opensslCsr(p256));
  assert.equal(r.key.kind, 'ecdsa-p256');
  assert.equal(r.hash, 'sha256');
  const rsa = clientKey('rsa2048');
  assert.equal(checkCsr(opensslCsr(rsa)).key.kind, 'rsa');
  const ed = clientKey('ed25519');
  const edCsr = checkCsr(opensslCsr(ed));
  assert.equal(edCsr.hash, null);

  const signer = new KeyObjectSigner(generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey, 'memory://t');
  const ours = await writeCsr(signer, { organization: 'Acme', commonName: 'Acme issuing CA' });
  assert.equal(checkCsr(Buffer.from(ours).toString('base64')).hash, 'sha384');
  // "NEW CERTIFICATE REQUEST" is accepted too.
  assert.equal(
    checkCsr(Buffer.from(ours.replaceAll('CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST')).toString('base64')).key.kind,
    'ecdsa-p384',
  );

  // Flip one byte of the signature.
  const der = Buffer.from(ours.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
  der[der.length - 3] ^= 1;
  throwsWithCode(
    () => checkCsr(Buffer.from(encodePem('CERTIFICATE REQUEST', der)).toString('base64')),
    'ERR_CSR_INVALID',
    /does not verify/,
  );
  throwsWithCode(() => checkCsr(Buffer.from(p256.pem).toString('base64')), 'ERR_CSR_INVALID');
  throwsWithCode(() => checkCsr(Buffer.from('garbage').toString('base64')), 'ERR_CSR_INVALID');
  throwsWithCode(() => checkCsr('%%%'), 'ERR_INVALID_INPUT');
  throwsWithCode(() => checkCsr(opensslCsr(clientKey('rsa1024'))), 'ERR_KEY_WEAK');
});
