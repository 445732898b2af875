// OpenSSH keys and SSHSIG signatures on hostile input: refused with a WaxsealError or parsed.
// A key blob and a signature blob have one encoding: rebuilt from the parsed values they are
// byte for byte the input (so one key or signature has one canonical form in the log); the
// authorized_keys text form (options, comments, spacing) is not unique, so there the canonical
// form must be a fixed point.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import fc from 'fast-check';
import { hostileBytes, hostileText, parseOrRefuse, throwsWithCode } from '@waxseal/testkit';
import { parseSshKeyBlob, parseSshPublicKey, parseSshSignature, verifySshSignature, type SshKey } from './ssh.ts';
import { encodePem, decodePemAll } from '../../../core/src/pem.ts';
import { concat, fromBase64Url, toBase64, toHex, utf8 } from '../../../core/src/bytes.ts';

const u32 = (n: number) => Uint8Array.of(n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
const str = (b: Uint8Array | string) => {
  const v = typeof b === 'string' ? utf8(b) : b;
  return concat(u32(v.length), v);
};
/** RFC 4251 mpint of a non-negative magnitude. */
const mpint = (mag: Uint8Array) => {
  let i = 0;
  while (i < mag.length && mag[i] === 0) i++;
  const m = mag.subarray(i);
  return str(m.length && m[0]! & 0x80 ? concat(Uint8Array.of(0), m) : m);
};

/** The key blob, rebuilt from the parsed key's public material. */
function marshal(k: SshKey): Uint8Array {
  const jwk = k.key.export({ format: 'jwk' });
  if (k.type === 'ssh-ed25519') return concat(str(k.type), str(fromBase64Url(jwk.x!)));
  if (k.type === 'ssh-rsa') return concat(str(k.type), mpint(fromBase64Url(jwk.e!)), mpint(fromBase64Url(jwk.n!)));
  const curve = k.type.slice('ecdsa-sha2-'.length);
  return concat(str(k.type), str(curve), str(concat(Uint8Array.of(4), fromBase64Url(jwk.x!), fromBase64Url(jwk.y!))));
}

function keyBlob(kind: 'ed25519' | 'p256' | 'p384' | 'rsa') {
  const pair =
    kind === 'ed25519'
      ? generateKeyPairSync('ed25519')
      : kind === 'rsa'
        ? generateKeyPairSync('rsa', { modulusLength: 2048 })
        : generateKeyPairSync('ec', { namedCurve: kind === 'p256' ? 'P-256' : 'P-384' });
  const jwk = pair.publicKey.export({ format: 'jwk' });
  const blob =
    kind === 'ed25519'
      ? concat(str('ssh-ed25519'), str(fromBase64Url(jwk.x!)))
      : kind === 'rsa'
        ? concat(str('ssh-rsa'), mpint(fromBase64Url(jwk.e!)), mpint(fromBase64Url(jwk.n!)))
        : concat(
            str(`ecdsa-sha2-nist${kind}`),
            str(`nist${kind}`),
            str(concat(Uint8Array.of(4), fromBase64Url(jwk.x!), fromBase64Url(jwk.y!))),
          );
  return { pair, blob };
}

const keys = (['ed25519', 'p256', 'p384', 'rsa'] as const).map(keyBlob);
const blobSeeds = keys.map((k) => k.blob);

/** An SSHSIG blob (PROTOCOL.sshsig) by an Ed25519 key over `data`, with the given fields. */
function sshsig(o: { namespace?: string; reserved?: Uint8Array; hash?: string; data?: string } = {}): Uint8Array {
  const k = keys[0]!;
  const namespace = o.namespace ?? 'file';
  const reserved = o.reserved ?? new Uint8Array(0);
  const hash = o.hash ?? 'sha512';
  const h = new Uint8Array(
    createHash(hash)
      .update(o.data ?? 'data')
      .digest(),
  );
  // The signed data always carries an empty reserved field, whatever the blob says (OpenSSH sshsig.c).
  const signed = concat(utf8('SSHSIG'), str(namespace), str(new Uint8Array(0)), str(hash), str(h));
  const sig = new Uint8Array(sign(null, signed, k.pair.privateKey));
  return concat(utf8('SSHSIG'), u32(1), str(k.blob), str(namespace), str(reserved), str(hash), str(concat(str('ssh-ed25519'), str(sig))));
}
const armored = (blob: Uint8Array) => encodePem('SSH SIGNATURE', blob);

test('property: parseSshKeyBlob refuses with a WaxsealError or the blob rebuilt from the key is the input', () => {
  fc.assert(
    fc.property(hostileBytes(blobSeeds, 120), (blob) => {
      const k = parseOrRefuse(() => parseSshKeyBlob(blob), toHex(blob.subarray(0, 48)));
      if (!k) return;
      assert.equal(toHex(marshal(k)), toHex(blob));
      assert.equal(k.canonical, `${k.type} ${toBase64(blob)}\n`);
    }),
    { numRuns: 1500 },
  );
});

test('property: parseSshPublicKey refuses with a WaxsealError or its canonical line is a fixed point', () => {
  const lines = keys.map(
    (k, i) => `${i % 2 ? 'no-pty ' : ''}${Buffer.from(k.blob.subarray(4, 4 + k.blob[3]!)).toString()} ${toBase64(k.blob)} user${i}@host\n`,
  );
  fc.assert(
    fc.property(hostileText(lines), (text) => {
      const k = parseOrRefuse(() => parseSshPublicKey(utf8(text)), JSON.stringify(text.slice(0, 80)));
      if (!k) return;
      const again = parseSshPublicKey(utf8(k.canonical));
      assert.equal(again.canonical, k.canonical);
      assert.equal(toHex(again.blob), toHex(k.blob));
    }),
    { numRuns: 1000 },
  );
});

test('property: parseSshSignature refuses with a WaxsealError or the blob rebuilt from its fields is the input', () => {
  const seeds = [sshsig(), sshsig({ hash: 'sha256' }), sshsig({ reserved: Uint8Array.of(7) })];
  const textSeeds = seeds.map(armored);
  const check = (content: Uint8Array) => {
    const s = parseOrRefuse(() => parseSshSignature(content), JSON.stringify(Buffer.from(content).toString().slice(0, 80)));
    if (!s) return;
    const blob = decodePemAll(s.canonical)[0]!.der;
    const rebuilt = concat(
      utf8('SSHSIG'),
      u32(1),
      str(s.publicKey),
      str(s.namespace),
      str(s.reserved),
      str(s.hashAlgorithm),
      str(concat(str(s.sigType), str(s.sigData))),
    );
    assert.equal(toHex(rebuilt), toHex(blob));
    assert.equal(parseSshSignature(utf8(s.canonical)).canonical, s.canonical);
  };
  fc.assert(
    fc.property(hostileBytes(seeds, 200), (blob) => check(utf8(armored(blob)))),
    { numRuns: 1500 },
  );
  fc.assert(
    fc.property(hostileText(textSeeds), (text) => check(utf8(text))),
    { numRuns: 1000 },
  );
});

test('the seeds parse and verify; non-minimal integers and invalid UTF-8 names are refused', () => {
  for (const k of keys) assert.equal(toHex(marshal(parseSshKeyBlob(k.blob))), toHex(k.blob));
  const key = parseSshKeyBlob(keys[0]!.blob);
  assert.ok(verifySshSignature(key, parseSshSignature(utf8(armored(sshsig()))), utf8('data')));
  // A non-empty reserved field is ignored by verifiers but kept in the parsed value.
  const withReserved = parseSshSignature(utf8(armored(sshsig({ reserved: Uint8Array.of(7) }))));
  assert.deepEqual([...withReserved.reserved], [7]);
  assert.ok(verifySshSignature(key, withReserved, utf8('data')));

  // RSA exponent 65537 with a padding zero byte: the same key, another blob.
  const rsa = keys[3]!.blob;
  const padded = concat(str('ssh-rsa'), str(Uint8Array.of(0, 1, 0, 1)), rsa.subarray(str('ssh-rsa').length + 7));
  throwsWithCode(() => parseSshKeyBlob(padded), 'ERR_LOG_ENTRY_INVALID', /leading zero/);
  const badName = concat(str(Uint8Array.of(0x73, 0x73, 0x68, 0x2d, 0xc3, 0x28)), str(new Uint8Array(32)));
  throwsWithCode(() => parseSshKeyBlob(badName), 'ERR_LOG_ENTRY_INVALID', /not valid UTF-8/);
});
