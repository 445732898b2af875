// Shared by the ECDSA digest-verification tests (native addon and ECDH route): the curves with
// their names in node:crypto, OpenSSL and noble, and hand-built keys and signatures.
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { p256, p384, p521 } from '@noble/curves/nist.js';
import type { EcdsaCurveBits } from '../src/ecdsa-digest.ts';

export interface TestCurve {
  bits: EcdsaCurveBits;
  /** node:crypto's name. */
  name: string;
  /** OpenSSL's name. */
  openssl: string;
  hash: 'sha256' | 'sha384' | 'sha512';
  noble: typeof p256;
}

export const CURVES: readonly TestCurve[] = [
  { bits: 256, name: 'P-256', openssl: 'prime256v1', hash: 'sha256', noble: p256 },
  { bits: 384, name: 'P-384', openssl: 'secp384r1', hash: 'sha384', noble: p384 },
  { bits: 521, name: 'P-521', openssl: 'secp521r1', hash: 'sha512', noble: p521 },
];

/** The uncompressed SEC 1 point (04 || X || Y) of an EC public key. */
export function uncompressedPoint(pub: KeyObject): Uint8Array {
  const jwk = pub.export({ format: 'jwk' });
  return Uint8Array.from([4, ...Buffer.from(jwk.x!, 'base64url'), ...Buffer.from(jwk.y!, 'base64url')]);
}

function derInt(v: bigint): Buffer {
  let h = v.toString(16);
  if (h.length % 2) h = `0${h}`;
  let b = Buffer.from(h, 'hex');
  if (b[0]! & 0x80) b = Buffer.concat([Buffer.of(0), b]);
  return Buffer.concat([Buffer.of(2, b.length), b]);
}

/** An ECDSA-Sig-Value (SEQUENCE of r and s) for any r and s, out-of-range ones included. */
export function derSignature(r: bigint, s: bigint): Uint8Array {
  const body = Buffer.concat([derInt(r), derInt(s)]);
  return Buffer.concat([body.length < 0x80 ? Buffer.of(0x30, body.length) : Buffer.of(0x30, 0x81, body.length), body]);
}

/**
 * A fresh key on `c` (its point `q`) and signatures by noble over random raw digests of 20, 32, 48
 * and 64 bytes: shorter than, as long as and longer than the curve order.
 */
export function signedDigestsOfEveryLength(c: TestCurve): { q: Uint8Array; signed: { len: number; digest: Buffer; sig: Uint8Array }[] } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: c.name });
  const d = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url');
  const signed = [20, 32, 48, 64].map((len) => {
    const digest = randomBytes(len);
    return { len, digest, sig: c.noble.sign(digest, d, { prehash: false, format: 'der', lowS: false }) };
  });
  return { q: uncompressedPoint(publicKey), signed };
}
