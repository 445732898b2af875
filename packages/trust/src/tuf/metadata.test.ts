import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { Metadata as TufJsMetadata } from '@tufjs/models';
import { generateSigner, KeyObjectSigner } from '../../../keys/src/memory.ts';
import { isWaxsealError } from '../../../core/src/errors.ts';
import {
  TUF_SPEC_VERSION,
  countValidSignatures,
  formatExpires,
  signMetadata,
  tufKeyForSigner,
  tufKeyId,
  verifyThreshold,
  type RootSigned,
} from './metadata.ts';

function rootFor(signers: KeyObjectSigner[], threshold: number): RootSigned {
  const keys = Object.fromEntries(signers.map((s) => [tufKeyId(tufKeyForSigner(s)), tufKeyForSigner(s)]));
  const ids = Object.keys(keys).sort();
  return {
    _type: 'root',
    spec_version: TUF_SPEC_VERSION,
    version: 1,
    expires: formatExpires(new Date(Date.now() + 86_400_000)),
    keys,
    roles: {
      root: { keyids: ids, threshold },
      targets: { keyids: ids, threshold: 1 },
      snapshot: { keyids: ids, threshold: 1 },
      timestamp: { keyids: ids, threshold: 1 },
    },
    consistent_snapshot: true,
  };
}

test('TUF key objects use the securesystemslib forms (ecdsa PEM, ed25519 hex)', () => {
  const ed = tufKeyForSigner(generateSigner('ed25519'));
  assert.equal(ed.keytype, 'ed25519');
  assert.equal(ed.scheme, 'ed25519');
  assert.match(ed.keyval.public, /^[0-9a-f]{64}$/);
  const ec = tufKeyForSigner(generateSigner('ecdsa-p256'));
  assert.deepEqual([ec.keytype, ec.scheme], ['ecdsa', 'ecdsa-sha2-nistp256']);
  assert.match(ec.keyval.public, /^-----BEGIN PUBLIC KEY-----\n[\s\S]+\n-----END PUBLIC KEY-----\n$/);
  assert.equal(tufKeyForSigner(generateSigner('ecdsa-p384')).scheme, 'ecdsa-sha2-nistp384');
  assert.match(tufKeyId(ec), /^[0-9a-f]{64}$/);
});

test('TUF refuses keys clients cannot verify (RSA PKCS#1 v1.5, P-256 with SHA-384)', () => {
  const rsa = new KeyObjectSigner(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey, 'memory://rsa');
  assert.throws(
    () => tufKeyForSigner(rsa),
    (e) => isWaxsealError(e, 'ERR_KEY_UNSUPPORTED'),
  );
  const p256 = new KeyObjectSigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, 'memory://p', 'sha384');
  assert.throws(
    () => tufKeyForSigner(p256),
    (e) => isWaxsealError(e, 'ERR_KEY_UNSUPPORTED'),
  );
});

test('our signatures verify with tuf-js models (independent canonical JSON + crypto)', async () => {
  for (const kinds of [['ed25519'], ['ecdsa-p256'], ['ecdsa-p384'], ['ed25519', 'ecdsa-p256', 'ecdsa-p256']] as const) {
    const signers = kinds.map((k) => generateSigner(k));
    const threshold = signers.length;
    const md = await signMetadata(rootFor(signers, threshold), signers);
    assert.equal(countValidSignatures(md, md.signed.keys, md.signed.roles.root), threshold);
    const parsed = TufJsMetadata.fromJSON('root' as never, JSON.parse(JSON.stringify(md)));
    parsed.verifyDelegate('root', parsed); // throws when below threshold
  }
});

test('threshold counting ignores bad, duplicate and foreign signatures', async () => {
  const [a, b, c] = [generateSigner('ed25519'), generateSigner('ecdsa-p256'), generateSigner('ed25519')];
  const signed = rootFor([a, b], 2);
  const md = await signMetadata(signed, [a, b]);
  verifyThreshold(md, signed.keys, signed.roles.root, 'root');

  const dup = { ...md, signatures: [md.signatures[0]!, md.signatures[0]!] };
  assert.equal(countValidSignatures(dup, signed.keys, signed.roles.root), 1);
  assert.throws(() => verifyThreshold(dup, signed.keys, signed.roles.root, 'root'), /signed by 1\/2/);

  const foreign = await signMetadata(signed, [a, c]);
  assert.equal(countValidSignatures(foreign, signed.keys, signed.roles.root), 1);

  const edited = { signed: { ...signed, version: 2 }, signatures: md.signatures };
  assert.equal(countValidSignatures(edited, signed.keys, signed.roles.root), 0);

  const garbage = { ...md, signatures: md.signatures.map((s) => ({ ...s, sig: `zz${s.sig}` })) };
  assert.equal(countValidSignatures(garbage, signed.keys, signed.roles.root), 0);
});

test('expiry format has second precision and a Z suffix', () => {
  assert.equal(formatExpires(new Date('2030-01-02T03:04:05.678Z')), '2030-01-02T03:04:05Z');
  assert.throws(() => formatExpires(new Date('nope')), /invalid expiry/);
});
