// OpenPGP (RFC 4880 / RFC 9580) detached signatures over data, for Rekor `rekord` entries with
// format "pgp". Enough of the packet format to verify what GnuPG produces: v4 keys (RSA,
// ECDSA P-256/384/521, EdDSA-legacy Ed25519, Ed25519) with self-certified user IDs and
// cross-certified signing subkeys, and v3/v4 binary or text signatures.
//
// Key checks follow go-crypto's CheckDetachedSignature (what Rekor uses) at the signature's
// creation time: the issuing key must be the primary key (certified by a valid self-signature
// on a user ID) or a subkey with a valid binding signature carrying the sign flag and an
// embedded primary-key binding signature; neither revoked nor expired at signing time.
// Hand-written rather than openpgp.js: a log must accept exactly what go-crypto (Rekor) accepts,
// whose rules differ from openpgp.js's, and the verifier side needs only this small subset.
import { createHash, createPublicKey, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { ByteReader, WaxsealError, concat, fromBase64, toBase64, toBase64Url, bytesEqual, toHex } from '@waxseal/core';

function invalid(message: string): never {
  throw new WaxsealError('ERR_LOG_ENTRY_INVALID', `pgp: ${message}`);
}

function reader(b: Uint8Array, what: string): ByteReader {
  return new ByteReader(b, 'ERR_LOG_ENTRY_INVALID', `pgp: ${what}`);
}

// ---------------------------------------------------------------- armor

const CRC24_INIT = 0xb704ce;
const CRC24_POLY = 0x1864cfb;

function crc24(data: Uint8Array): number {
  let crc = CRC24_INIT;
  for (const b of data) {
    crc ^= b << 16;
    for (let i = 0; i < 8; i++) {
      crc <<= 1;
      if (crc & 0x1000000) crc ^= CRC24_POLY;
    }
  }
  return crc & 0xffffff;
}

export interface ArmorBlock {
  type: string;
  data: Uint8Array;
}

const ARMOR_RE = /-----BEGIN PGP ([A-Z ,0-9/]+)-----\r?\n([\s\S]*?)-----END PGP \1-----/g;

/** Every armored block in `text`. The CRC24 line, when present, must match. */
export function dearmor(text: string): ArmorBlock[] {
  const out: ArmorBlock[] = [];
  for (const m of text.matchAll(ARMOR_RE)) {
    const lines = m[2]!.split(/\r?\n/);
    let i = 0;
    // Header lines "Key: Value" until the first blank line.
    while (i < lines.length && lines[i]!.trim() !== '') {
      if (!/^[^:\s]+: /.test(lines[i]!)) break; // no headers and no blank line (tolerated)
      i++;
    }
    if (i < lines.length && lines[i]!.trim() === '') i++;
    let b64 = '';
    let crc: string | undefined;
    for (; i < lines.length; i++) {
      const l = lines[i]!.trim();
      if (l === '') continue;
      if (l.startsWith('=') && l.length === 5) {
        crc = l.slice(1);
        continue;
      }
      if (crc !== undefined) invalid('armor data after the checksum');
      b64 += l;
    }
    const data = fromBase64(b64, 'PGP armor');
    if (crc !== undefined) {
      const want = fromBase64(crc, 'PGP armor checksum');
      const got = crc24(data);
      if (want.length !== 3 || ((want[0]! << 16) | (want[1]! << 8) | want[2]!) !== got) invalid('armor checksum mismatch');
    }
    out.push({ type: m[1]!, data });
  }
  return out;
}

export function armor(type: string, data: Uint8Array): string {
  const b64 = toBase64(data).match(/.{1,64}/g) ?? [];
  const c = crc24(data);
  const crc = toBase64(Uint8Array.of(c >> 16, (c >> 8) & 0xff, c & 0xff));
  return `-----BEGIN PGP ${type}-----\n\n${b64.join('\n')}\n=${crc}\n-----END PGP ${type}-----\n`;
}

function isArmored(b: Uint8Array): boolean {
  const head = Buffer.from(b.subarray(0, 64)).toString('latin1');
  return head.trimStart().startsWith('-----BEGIN PGP');
}

// ---------------------------------------------------------------- packets

export interface Packet {
  tag: number;
  body: Uint8Array;
}

const MAX_PACKETS = 4096;

export function readPackets(data: Uint8Array): Packet[] {
  const out: Packet[] = [];
  const r = reader(data, 'packets');
  while (!r.done) {
    if (out.length >= MAX_PACKETS) invalid('too many packets');
    const h = r.u8();
    if (!(h & 0x80)) invalid('malformed packet header');
    let tag: number;
    let len: number;
    if (h & 0x40) {
      tag = h & 0x3f;
      const l1 = r.u8();
      if (l1 < 192) len = l1;
      else if (l1 < 224) len = ((l1 - 192) << 8) + r.u8() + 192;
      else if (l1 === 255) len = r.u32();
      else invalid('partial body lengths are not allowed here');
    } else {
      tag = (h >> 2) & 0x0f;
      const lt = h & 3;
      if (lt === 3) invalid('indeterminate packet length');
      len = r.uint([1, 2, 4][lt]!);
    }
    out.push({ tag, body: r.bytes(len) });
  }
  return out;
}

function encodePacket(p: Packet): Uint8Array {
  const n = p.body.length;
  let lenBytes: Uint8Array;
  if (n < 192) lenBytes = Uint8Array.of(n);
  else if (n < 8384) lenBytes = Uint8Array.of(((n - 192) >> 8) + 192, (n - 192) & 0xff);
  else lenBytes = Uint8Array.of(255, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
  return concat(Uint8Array.of(0xc0 | p.tag), lenBytes, p.body);
}

/** Multiprecision integer: 2-byte bit count, then the big-endian value. */
function mpi(r: ByteReader): Uint8Array {
  const bits = r.u16();
  return r.bytes((bits + 7) >> 3);
}

// ---------------------------------------------------------------- keys

const ALG = { rsa: 1, rsaSign: 3, ecdh: 18, ecdsa: 19, eddsaLegacy: 22, x25519: 25, ed25519: 27 } as const;

const CURVES: Record<string, { crv: 'P-256' | 'P-384' | 'P-521' | 'Ed25519'; size: number }> = {
  '2a8648ce3d030107': { crv: 'P-256', size: 32 },
  '2b81040022': { crv: 'P-384', size: 48 },
  '2b81040023': { crv: 'P-521', size: 66 },
  '2b06010401da470f01': { crv: 'Ed25519', size: 32 },
};

export interface PgpKey {
  /** Packet body (fingerprint input). */
  body: Uint8Array;
  fingerprint: Uint8Array;
  keyId: Uint8Array;
  created: number;
  algorithm: number;
  /** The verification key, undefined for algorithms we cannot verify with (encryption-only etc.). */
  verifyKey: KeyObject | undefined;
  verifyKind: 'rsa' | 'ecdsa' | 'ed25519' | undefined;
}

function stripZeros(b: Uint8Array): Uint8Array {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}

function leftPad(b: Uint8Array, n: number): Uint8Array {
  const s = stripZeros(b);
  if (s.length > n) invalid('integer too large');
  const out = new Uint8Array(n);
  out.set(s, n - s.length);
  return out;
}

export function parsePublicKey(body: Uint8Array): PgpKey {
  const r = reader(body, 'public key');
  const version = r.u8();
  if (version !== 4) invalid(`unsupported key version ${version}`);
  const created = r.u32();
  const algorithm = r.u8();
  let verifyKey: KeyObject | undefined;
  let verifyKind: PgpKey['verifyKind'];
  try {
    switch (algorithm) {
      case ALG.rsa:
      case ALG.rsaSign: {
        const n = stripZeros(mpi(r));
        const e = stripZeros(mpi(r));
        if (n.length * 8 < 2048) invalid('RSA keys must be at least 2048 bits');
        verifyKey = createPublicKey({ key: { kty: 'RSA', n: toBase64Url(n), e: toBase64Url(e) }, format: 'jwk' });
        verifyKind = 'rsa';
        break;
      }
      case ALG.ecdsa: {
        const oid = r.bytes(r.u8());
        const curve = CURVES[toHex(oid)];
        const point = mpi(r);
        if (!curve || curve.crv === 'Ed25519') invalid('unsupported ECDSA curve');
        if (point.length !== 1 + 2 * curve.size || point[0] !== 4) invalid('malformed ECDSA point');
        verifyKey = createPublicKey({
          key: {
            kty: 'EC',
            crv: curve.crv,
            x: toBase64Url(point.subarray(1, 1 + curve.size)),
            y: toBase64Url(point.subarray(1 + curve.size)),
          },
          format: 'jwk',
        });
        verifyKind = 'ecdsa';
        break;
      }
      case ALG.eddsaLegacy: {
        const oid = r.bytes(r.u8());
        if (CURVES[toHex(oid)]?.crv !== 'Ed25519') invalid('unsupported EdDSA curve');
        const point = mpi(r);
        if (point.length !== 33 || point[0] !== 0x40) invalid('malformed Ed25519 point');
        verifyKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: toBase64Url(point.subarray(1)) }, format: 'jwk' });
        verifyKind = 'ed25519';
        break;
      }
      case ALG.ed25519: {
        verifyKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: toBase64Url(r.bytes(32)) }, format: 'jwk' });
        verifyKind = 'ed25519';
        break;
      }
      default:
        // Encryption-only or unsupported algorithms: kept for fingerprints, never used to verify.
        break;
    }
  } catch (e) {
    if (e instanceof WaxsealError) throw e;
    invalid('malformed public key material');
  }
  const fingerprint = new Uint8Array(
    createHash('sha1')
      .update(Uint8Array.of(0x99, body.length >> 8, body.length & 0xff))
      .update(body)
      .digest(),
  );
  return { body, fingerprint, keyId: fingerprint.subarray(12), created, algorithm, verifyKey, verifyKind };
}

// ---------------------------------------------------------------- signatures

const HASHES: Record<number, string> = { 2: 'sha1', 8: 'sha256', 9: 'sha384', 10: 'sha512', 11: 'sha224' };

export interface Subpacket {
  type: number;
  critical: boolean;
  data: Uint8Array;
}

export interface PgpSignature {
  version: number;
  sigType: number;
  algorithm: number;
  hashAlgorithm: number;
  /** The bytes hashed after the signed data (v4 trailer, or v3 type+time). */
  trailer: Uint8Array;
  hashed: Subpacket[];
  unhashed: Subpacket[];
  left16: Uint8Array;
  /** Signature value: RSA s, ECDSA/EdDSA r||s. */
  values: Uint8Array[];
  created: number;
  issuerKeyId: Uint8Array | undefined;
  issuerFingerprint: Uint8Array | undefined;
}

function readSubpackets(data: Uint8Array): Subpacket[] {
  const out: Subpacket[] = [];
  const r = reader(data, 'signature subpackets');
  while (!r.done) {
    const l1 = r.u8();
    let len: number;
    if (l1 < 192) len = l1;
    else if (l1 < 255) len = ((l1 - 192) << 8) + r.u8() + 192;
    else len = r.u32();
    if (len === 0) invalid('empty signature subpacket');
    const t = r.u8();
    out.push({ type: t & 0x7f, critical: (t & 0x80) !== 0, data: r.bytes(len - 1) });
  }
  return out;
}

// Subpackets whose meaning we honour or that only carry preferences.
const KNOWN_SUBPACKETS = new Set([2, 3, 4, 5, 7, 9, 11, 12, 16, 20, 21, 22, 23, 24, 25, 26, 27, 28, 30, 32, 33, 34, 39]);

export function parseSignature(body: Uint8Array): PgpSignature {
  const r = reader(body, 'signature');
  const version = r.u8();
  if (version === 3) {
    if (r.u8() !== 5) invalid('malformed v3 signature');
    const sigType = r.u8();
    const created = r.u32();
    const issuer = r.bytes(8);
    const algorithm = r.u8();
    const hashAlgorithm = r.u8();
    const left16 = r.bytes(2);
    const values = readSigValues(r, algorithm);
    const trailer = Uint8Array.of(sigType, (created >>> 24) & 0xff, (created >> 16) & 0xff, (created >> 8) & 0xff, created & 0xff);
    return {
      version,
      sigType,
      algorithm,
      hashAlgorithm,
      trailer,
      hashed: [],
      unhashed: [],
      left16,
      values,
      created,
      issuerKeyId: issuer,
      issuerFingerprint: undefined,
    };
  }
  if (version !== 4) invalid(`unsupported signature version ${version}`);
  const sigType = r.u8();
  const algorithm = r.u8();
  const hashAlgorithm = r.u8();
  const hashedLen = r.u16();
  const hashedData = r.bytes(hashedLen);
  const unhashedData = r.bytes(r.u16());
  const left16 = r.bytes(2);
  const values = readSigValues(r, algorithm);
  const hashed = readSubpackets(hashedData);
  const unhashed = readSubpackets(unhashedData);
  for (const s of hashed) if (s.critical && !KNOWN_SUBPACKETS.has(s.type)) invalid(`unknown critical subpacket ${s.type}`);
  const createdSp = hashed.find((s) => s.type === 2);
  if (createdSp?.data.length !== 4) invalid('signature has no creation time');
  const created = reader(createdSp.data, 'creation time').u32();
  const head = body.subarray(0, 6 + hashedLen);
  const n = head.length;
  const trailer = concat(head, Uint8Array.of(4, 0xff, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff));
  const find = (t: number) => hashed.find((s) => s.type === t) ?? unhashed.find((s) => s.type === t);
  const issuer = find(16)?.data;
  const fpr = find(33)?.data;
  return {
    version,
    sigType,
    algorithm,
    hashAlgorithm,
    trailer,
    hashed,
    unhashed,
    left16,
    values,
    created,
    issuerKeyId: issuer && issuer.length === 8 ? issuer : undefined,
    issuerFingerprint: fpr && fpr.length === 21 && fpr[0] === 4 ? fpr.subarray(1) : undefined,
  };
}

function readSigValues(r: ByteReader, algorithm: number): Uint8Array[] {
  switch (algorithm) {
    case ALG.rsa:
    case ALG.rsaSign:
      return [mpi(r)];
    case ALG.ecdsa:
    case ALG.eddsaLegacy:
      return [mpi(r), mpi(r)];
    case ALG.ed25519:
      return [r.bytes(64)];
    default:
      invalid(`unsupported signature algorithm ${algorithm}`);
  }
}

function derInt(v: Uint8Array): Uint8Array {
  let b = stripZeros(v);
  if (b[0]! & 0x80) b = concat(Uint8Array.of(0), b);
  return concat(Uint8Array.of(2, b.length), b);
}

/** Verifies the signature value over hash(material || trailer). */
function checkSignatureValue(sig: PgpSignature, key: PgpKey, material: Uint8Array[], allowSha1: boolean): boolean {
  const hashName = HASHES[sig.hashAlgorithm];
  if (!hashName || (hashName === 'sha1' && !allowSha1)) return false;
  if (!key.verifyKey || (key.algorithm !== sig.algorithm && !(key.algorithm === ALG.rsaSign && sig.algorithm === ALG.rsa))) return false;
  const message = concat(...material, sig.trailer);
  const digest = createHash(hashName).update(message).digest();
  if (digest[0] !== sig.left16[0] || digest[1] !== sig.left16[1]) return false;
  try {
    switch (key.verifyKind) {
      case 'rsa': {
        const modBytes = ((key.verifyKey.asymmetricKeyDetails?.modulusLength ?? 0) + 7) >> 3;
        return nodeVerify(hashName, message, key.verifyKey, leftPad(sig.values[0]!, modBytes));
      }
      case 'ecdsa': {
        const body = concat(derInt(sig.values[0]!), derInt(sig.values[1]!));
        if (body.length > 127) return false;
        return nodeVerify(hashName, message, { key: key.verifyKey, dsaEncoding: 'der' }, concat(Uint8Array.of(0x30, body.length), body));
      }
      case 'ed25519': {
        // OpenPGP EdDSA signs the hash value, not the message.
        const raw = sig.values.length === 1 ? sig.values[0]! : concat(leftPad(sig.values[0]!, 32), leftPad(sig.values[1]!, 32));
        return nodeVerify(null, digest, key.verifyKey, raw);
      }
      default:
        return false;
    }
  } catch {
    return false;
  }
}

function keyMaterial(k: PgpKey): Uint8Array {
  return concat(Uint8Array.of(0x99, k.body.length >> 8, k.body.length & 0xff), k.body);
}

function u32be(n: number): Uint8Array {
  return Uint8Array.of((n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
}

// ---------------------------------------------------------------- key rings

interface SignedThing {
  sigs: PgpSignature[];
}

interface UserId extends SignedThing {
  tag: number;
  body: Uint8Array;
}

interface Subkey extends SignedThing {
  key: PgpKey;
}

export interface PgpEntity {
  primary: PgpKey;
  directSigs: PgpSignature[];
  userIds: UserId[];
  subkeys: Subkey[];
  /** Public packets, for the canonical re-serialisation. */
  packets: Packet[];
}

export interface PgpKeyRing {
  entities: PgpEntity[];
  /** Canonical armored form (Rekor CanonicalValue). */
  canonical: string;
  /** E-mail addresses of the user IDs, lower-cased. */
  emails: string[];
}

const TAG = {
  signature: 2,
  secretKey: 5,
  publicKey: 6,
  secretSubkey: 7,
  marker: 10,
  trust: 12,
  userId: 13,
  publicSubkey: 14,
  userAttribute: 17,
} as const;

/** The packets that belong to the key a primary key packet opened, as errors name them. */
const MEMBER_PACKETS: Record<number, string> = {
  [TAG.userId]: 'user ID',
  [TAG.userAttribute]: 'user ID',
  [TAG.publicSubkey]: 'subkey',
  [TAG.signature]: 'signature',
};

function parseEntities(packets: Packet[]): PgpEntity[] {
  const entities: PgpEntity[] = [];
  let cur: PgpEntity | undefined;
  let target: SignedThing | undefined;
  for (const p of packets) {
    switch (p.tag) {
      case TAG.publicKey:
        cur = { primary: parsePublicKey(p.body), directSigs: [], userIds: [], subkeys: [], packets: [p] };
        entities.push(cur);
        target = undefined;
        continue;
      case TAG.secretKey:
      case TAG.secretSubkey:
        invalid('private key material must not be uploaded to a transparency log');
      case TAG.trust:
      case TAG.marker:
        continue;
    }
    const what = MEMBER_PACKETS[p.tag];
    if (what === undefined) invalid(`unexpected packet type ${p.tag} in a key`);
    if (!cur) invalid(`${what} before a primary key`);
    if (p.tag === TAG.signature) {
      let sig: PgpSignature;
      try {
        sig = parseSignature(p.body);
      } catch {
        continue; // unreadable third-party certifications are ignored, as GnuPG does
      }
      // A signature certifies the user ID or subkey before it, else the primary key itself.
      (target?.sigs ?? cur.directSigs).push(sig);
    } else if (p.tag === TAG.publicSubkey) {
      const s: Subkey = { key: parsePublicKey(p.body), sigs: [] };
      cur.subkeys.push(s);
      target = s;
    } else {
      const u: UserId = { tag: p.tag, body: p.body, sigs: [] };
      cur.userIds.push(u);
      target = u;
    }
    cur.packets.push(p);
  }
  return entities;
}

const EMAIL_RE = /<([^<>\s@]+@[^<>\s@]+)>|^([^<>\s@]+@[^<>\s@]+)$/;

export function parseKeyRing(content: Uint8Array): PgpKeyRing {
  let packets: Packet[];
  if (isArmored(content)) {
    const blocks = dearmor(Buffer.from(content).toString('utf8'));
    if (blocks.length === 0) invalid('no armored key found');
    if (blocks.some((b) => b.type !== 'PUBLIC KEY BLOCK')) invalid('expected a PUBLIC KEY BLOCK');
    packets = blocks.flatMap((b) => readPackets(b.data));
  } else {
    packets = readPackets(content);
  }
  const entities = parseEntities(packets);
  if (entities.length === 0) invalid('no public keys could be read');
  const emails: string[] = [];
  for (const e of entities) {
    for (const u of e.userIds) {
      if (u.tag !== TAG.userId) continue;
      const m = EMAIL_RE.exec(Buffer.from(u.body).toString('utf8').trim());
      const email = m?.[1] ?? m?.[2];
      if (email) emails.push(email.toLowerCase());
    }
  }
  const canonical = armor('PUBLIC KEY BLOCK', concat(...entities.flatMap((e) => e.packets.map(encodePacket))));
  return { entities, canonical, emails };
}

function flags(sig: PgpSignature): number | undefined {
  const f = sig.hashed.find((s) => s.type === 27);
  return f && f.data.length > 0 ? f.data[0]! : undefined;
}

function keyExpiry(key: PgpKey, sig: PgpSignature): number | undefined {
  const e = sig.hashed.find((s) => s.type === 9);
  if (e?.data.length !== 4) return undefined;
  const secs = reader(e.data, 'key expiry').u32();
  return secs === 0 ? undefined : key.created + secs;
}

/** The primary key's newest valid self-certification at time `at`, if any. */
function primarySelfSig(e: PgpEntity, at: number): PgpSignature | undefined {
  let best: PgpSignature | undefined;
  const pk = keyMaterial(e.primary);
  for (const u of e.userIds) {
    const prefix = u.tag === TAG.userId ? 0xb4 : 0xd1;
    const material = [pk, Uint8Array.of(prefix), u32be(u.body.length), u.body];
    for (const s of u.sigs) {
      if (s.sigType < 0x10 || s.sigType > 0x13 || s.created > at) continue;
      if (!issuedBy(s, e.primary)) continue;
      if (!checkSignatureValue(s, e.primary, material, true)) continue;
      if (!best || s.created > best.created) best = s;
    }
  }
  return best;
}

function issuedBy(sig: PgpSignature, key: PgpKey): boolean {
  if (sig.issuerFingerprint) return bytesEqual(sig.issuerFingerprint, key.fingerprint);
  if (sig.issuerKeyId) return bytesEqual(sig.issuerKeyId, key.keyId);
  return true;
}

function revoked(e: PgpEntity, type: number, sigs: PgpSignature[], material: Uint8Array[]): boolean {
  return sigs.some((s) => s.sigType === type && issuedBy(s, e.primary) && checkSignatureValue(s, e.primary, material, true));
}

/** Keys of the ring that may have made `sig` (valid for signing at its creation time). */
function signingKeys(ring: PgpKeyRing, sig: PgpSignature): PgpKey[] {
  const out: PgpKey[] = [];
  for (const e of ring.entities) {
    const at = sig.created;
    const self = primarySelfSig(e, at);
    if (!self) continue; // an entity without a valid self-certified identity is not trusted
    if (revoked(e, 0x20, e.directSigs, [keyMaterial(e.primary)])) continue;
    const primaryExpiry = keyExpiry(e.primary, self);
    if (primaryExpiry !== undefined && at > primaryExpiry) continue;
    const primaryFlags = flags(self);
    if (issuedBy(sig, e.primary) && (primaryFlags === undefined || primaryFlags & 0x02)) out.push(e.primary);
    for (const sk of e.subkeys) {
      if (!issuedBy(sig, sk.key)) continue;
      const material = [keyMaterial(e.primary), keyMaterial(sk.key)];
      const binding = sk.sigs
        .filter((s) => s.sigType === 0x18 && s.created <= at && issuedBy(s, e.primary) && checkSignatureValue(s, e.primary, material, true))
        .sort((a, b) => b.created - a.created)[0];
      if (!binding) continue;
      if (!((flags(binding) ?? 0) & 0x02)) continue;
      if (revoked(e, 0x28, sk.sigs, material)) continue;
      const exp = keyExpiry(sk.key, binding);
      if (exp !== undefined && at > exp) continue;
      // A signing subkey must cross-certify its primary key (embedded 0x19 signature).
      const embedded = binding.hashed.find((s) => s.type === 32) ?? binding.unhashed.find((s) => s.type === 32);
      if (!embedded) continue;
      let back: PgpSignature;
      try {
        back = parseSignature(embedded.data);
      } catch {
        continue;
      }
      if (back.sigType !== 0x19 || !checkSignatureValue(back, sk.key, material, true)) continue;
      out.push(sk.key);
    }
  }
  return out;
}

export interface PgpDetachedSignature {
  sig: PgpSignature;
  /** Canonical armored form. */
  canonical: string;
}

export function parseDetachedSignature(content: Uint8Array): PgpDetachedSignature {
  let data: Uint8Array;
  if (isArmored(content)) {
    const blocks = dearmor(Buffer.from(content).toString('utf8'));
    if (blocks.length !== 1 || blocks[0]!.type !== 'SIGNATURE') invalid('expected one armored PGP SIGNATURE');
    data = blocks[0]!.data;
  } else data = content;
  const packets = readPackets(data);
  if (packets.length !== 1 || packets[0]!.tag !== TAG.signature) invalid('expected exactly one signature packet');
  const sig = parseSignature(packets[0]!.body);
  if (sig.sigType !== 0x00 && sig.sigType !== 0x01) invalid('not a signature over a document');
  return { sig, canonical: armor('SIGNATURE', encodePacket(packets[0]!)) };
}

/** Text signatures (type 0x01) hash the data with CRLF line endings. */
function canonicalText(data: Uint8Array): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < data.length; i++) {
    const b = data[i]!;
    if (b === 0x0a && (i === 0 || data[i - 1] !== 0x0d)) out.push(0x0d);
    out.push(b);
  }
  return Uint8Array.from(out);
}

/** True when `sig` is a valid signature over `data` by a key of `ring` usable for signing. */
export function verifyDetached(ring: PgpKeyRing, sig: PgpDetachedSignature, data: Uint8Array): boolean {
  const s = sig.sig;
  const hashName = HASHES[s.hashAlgorithm];
  if (!hashName || hashName === 'sha1') return false;
  const material = s.sigType === 0x01 ? canonicalText(data) : data;
  return signingKeys(ring, s).some((k) => checkSignatureValue(s, k, [material], false));
}
