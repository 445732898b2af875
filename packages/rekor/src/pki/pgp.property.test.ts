// OpenPGP keys and detached signatures on hostile input: refused with a WaxsealError or parsed.
// OpenPGP has no unique encoding (old and new packet headers, several length forms, armor
// headers and line lengths), so Rekor re-serialises: what must hold is that parsing is
// deterministic and the canonical form is a fixed point (parsing it gives it back), for key
// rings, detached signatures, armor and packet streams alike. Seeds are a real Ed25519 key with
// a valid self-signature and a detached signature that verifies, built here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import fc from 'fast-check';
import { hostileBytes, hostileText, parseOrRefuse } from '@waxseal/testkit';
import { armor, dearmor, parseDetachedSignature, parseKeyRing, readPackets, verifyDetached, type Packet } from './pgp.ts';
import { concat, fromBase64Url, toHex, utf8 } from '../../../core/src/bytes.ts';

const u16 = (n: number) => Uint8Array.of(n >> 8, n & 0xff);
const u32 = (n: number) => Uint8Array.of(n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);

/** New-format packet with the shortest length form. */
function packet(tag: number, body: Uint8Array): Uint8Array {
  const n = body.length;
  const len =
    n < 192 ? Uint8Array.of(n) : n < 8384 ? Uint8Array.of(((n - 192) >> 8) + 192, (n - 192) & 0xff) : concat(Uint8Array.of(255), u32(n));
  return concat(Uint8Array.of(0xc0 | tag), len, body);
}

/** Old-format packet with a 2-byte length (another spelling of the same packet). */
const oldPacket = (tag: number, body: Uint8Array) => concat(Uint8Array.of(0x80 | (tag << 2) | 1), u16(body.length), body);

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const created = 1_700_000_000;
const keyBody = concat(Uint8Array.of(4), u32(created), Uint8Array.of(27), fromBase64Url(publicKey.export({ format: 'jwk' }).x!));
const fingerprint = new Uint8Array(
  createHash('sha1')
    .update(concat(Uint8Array.of(0x99), u16(keyBody.length), keyBody))
    .digest(),
);
const keyMaterial = concat(Uint8Array.of(0x99), u16(keyBody.length), keyBody);
const userId = utf8('Alice <Alice@Example.com>');

/** A v4 Ed25519 signature packet body of `sigType` over `material`. */
function signature(sigType: number, material: Uint8Array, extra: Uint8Array[] = []): Uint8Array {
  const sub = (type: number, data: Uint8Array) => concat(Uint8Array.of(data.length + 1, type), data);
  const hashed = concat(sub(2, u32(created + 10)), sub(27, Uint8Array.of(0x03)), sub(33, concat(Uint8Array.of(4), fingerprint)), ...extra);
  const head = concat(Uint8Array.of(4, sigType, 27, 8), u16(hashed.length), hashed);
  const trailer = concat(head, Uint8Array.of(4, 0xff), u32(head.length));
  const digest = new Uint8Array(createHash('sha256').update(concat(material, trailer)).digest());
  const value = new Uint8Array(sign(null, digest, privateKey));
  return concat(head, u16(0), digest.subarray(0, 2), value);
}

const selfSig = signature(0x13, concat(keyMaterial, Uint8Array.of(0xb4), u32(userId.length), userId));
const keyRing = concat(packet(6, keyBody), packet(13, userId), packet(2, selfSig));
const data = utf8('signed data\n');
const detached = packet(2, signature(0x00, data));
const keySeeds = [
  keyRing,
  concat(oldPacket(6, keyBody), oldPacket(13, userId), oldPacket(2, selfSig)),
  concat(keyRing, packet(12, Uint8Array.of(0))),
];
const armoredKey = armor('PUBLIC KEY BLOCK', keyRing);
const armoredSig = armor('SIGNATURE', detached);

const encode = (ps: readonly Packet[]) => concat(...ps.map((p) => packet(p.tag, p.body)));

test('the seeds parse and verify: a self-certified Ed25519 key and a detached signature', () => {
  const ring = parseKeyRing(keyRing);
  assert.deepEqual(ring.emails, ['alice@example.com']);
  assert.ok(verifyDetached(ring, parseDetachedSignature(detached), data));
  assert.ok(verifyDetached(parseKeyRing(utf8(armoredKey)), parseDetachedSignature(utf8(armoredSig)), data));
  assert.ok(!verifyDetached(ring, parseDetachedSignature(detached), utf8('tampered')));
  // Old-format headers are another spelling of the same key: the same canonical form.
  assert.equal(parseKeyRing(keySeeds[1]!).canonical, ring.canonical);
});

test('property: readPackets refuses with a WaxsealError or re-encodes to a fixed point', () => {
  fc.assert(
    fc.property(hostileBytes([...keySeeds, detached], 200), (bytes) => {
      const ps = parseOrRefuse(() => readPackets(bytes), toHex(bytes.subarray(0, 48)));
      if (!ps) return;
      const canonical = encode(ps);
      assert.deepEqual(
        readPackets(canonical).map((p) => [p.tag, toHex(p.body)]),
        ps.map((p) => [p.tag, toHex(p.body)]),
      );
    }),
    { numRuns: 2000 },
  );
});

/**
 * A property of a parser of keys or signatures: it refuses `content` with a WaxsealError, or its
 * canonical form parses again to the same canonical form (and `same` holds), deterministically.
 */
function canonicalFixedPoint<T extends { canonical: string }>(
  parse: (content: Uint8Array) => T,
  same: (again: T, first: T) => void,
): (content: Uint8Array) => void {
  return (content) => {
    const first = parseOrRefuse(() => parse(content), toHex(content.subarray(0, 48)));
    if (!first) return;
    const again = parse(utf8(first.canonical));
    assert.equal(again.canonical, first.canonical);
    same(again, first);
    assert.deepEqual(parse(content).canonical, first.canonical); // deterministic
  };
}

/** Runs `check` on hostile binary input near `binary` and on hostile text near the armored form. */
function onBinaryAndArmored(check: (content: Uint8Array) => void, binary: Uint8Array[], maxLength: number, armored: string): void {
  fc.assert(fc.property(hostileBytes(binary, maxLength), check), { numRuns: 1500 });
  fc.assert(
    fc.property(hostileText([armored]), (text) => check(utf8(text))),
    { numRuns: 1000 },
  );
}

test('property: parseKeyRing refuses with a WaxsealError or its canonical form is a fixed point', () => {
  const check = canonicalFixedPoint(parseKeyRing, (again, ring) => {
    assert.deepEqual(again.emails, ring.emails);
    assert.deepEqual(
      again.entities.map((e) => toHex(e.primary.fingerprint)),
      ring.entities.map((e) => toHex(e.primary.fingerprint)),
    );
  });
  onBinaryAndArmored(check, keySeeds, 200, armoredKey);
});

test('property: parseDetachedSignature refuses with a WaxsealError or its canonical form is a fixed point', () => {
  const check = canonicalFixedPoint(parseDetachedSignature, (again, s) => {
    assert.equal(toHex(again.sig.trailer), toHex(s.sig.trailer));
    assert.deepEqual(again.sig.values.map(toHex), s.sig.values.map(toHex));
  });
  onBinaryAndArmored(check, [detached, oldPacket(2, signature(0x01, data))], 160, armoredSig);
});

test('property: dearmor refuses with a WaxsealError or its blocks re-armor to a fixed point', () => {
  fc.assert(
    fc.property(hostileText([armoredKey, armoredSig, `${armoredSig}${armoredKey}`]), (text) => {
      const blocks = parseOrRefuse(() => dearmor(text), JSON.stringify(text.slice(0, 80)));
      if (!blocks) return;
      for (const b of blocks) {
        const again = dearmor(armor(b.type, b.data));
        assert.equal(again.length, 1);
        assert.equal(again[0]!.type, b.type);
        assert.equal(toHex(again[0]!.data), toHex(b.data));
      }
    }),
    { numRuns: 1500 },
  );
});
