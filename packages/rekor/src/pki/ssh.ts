// OpenSSH public keys and SSHSIG signatures (`ssh-keygen -Y sign -n file`), for Rekor `rekord`
// entries with format "ssh". See OpenSSH PROTOCOL.sshsig:
//   blob   = "SSHSIG" uint32(1) string(publickey) string(namespace) string(reserved)
//            string(hash_algorithm) string(signature)
//   signed = "SSHSIG" string(namespace) string(reserved) string(hash_algorithm) string(H(data))
// Rekor requires the namespace "file". Keys: ssh-ed25519, ecdsa-sha2-nistp{256,384,521}, ssh-rsa
// (with rsa-sha2-256/512 signatures; SHA-1 "ssh-rsa" signatures are refused).
import { createHash, createPublicKey, verify as nodeVerify, type KeyObject } from 'node:crypto';
import {
  ByteReader,
  WaxsealError,
  concat,
  fromBase64,
  toBase64,
  toBase64Url,
  utf8,
  bytesEqual,
  decodePemAll,
  encodePem,
} from '@waxseal/core';

function invalid(message: string): never {
  throw new WaxsealError('ERR_LOG_ENTRY_INVALID', `ssh: ${message}`);
}

function reader(b: Uint8Array, what: string): ByteReader {
  return new ByteReader(b, 'ERR_LOG_ENTRY_INVALID', `ssh: ${what}`);
}

/** An SSH `string` read as text (names, namespaces): strict UTF-8, so no two spellings read alike. */
function text(r: ByteReader): string {
  const b = r.vector(4);
  const s = Buffer.from(b).toString('utf8');
  if (!bytesEqual(utf8(s), b)) invalid('string is not valid UTF-8');
  return s;
}

function sshString(b: Uint8Array): Uint8Array {
  const n = b.length;
  return concat(Uint8Array.of((n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff), b);
}

/**
 * mpint (RFC 4251): two's complement, a leading zero only when the high bit is set, zero as the
 * empty string. Anything longer is refused: one key, one blob (the blob is the canonical form).
 * Returns the magnitude.
 */
function mpint(b: Uint8Array): Uint8Array {
  if (b.length > 0 && b[0]! & 0x80) invalid('negative integer');
  if (b[0] === 0 && (b.length === 1 || !(b[1]! & 0x80))) invalid('integer with an unnecessary leading zero');
  return b[0] === 0 ? b.subarray(1) : b;
}

const CURVES: Record<string, { crv: 'P-256' | 'P-384' | 'P-521'; size: number; hash: string }> = {
  nistp256: { crv: 'P-256', size: 32, hash: 'sha256' },
  nistp384: { crv: 'P-384', size: 48, hash: 'sha384' },
  nistp521: { crv: 'P-521', size: 66, hash: 'sha512' },
};

export interface SshKey {
  type: string;
  /** The wire-format key blob. */
  blob: Uint8Array;
  key: KeyObject;
  comment: string;
  /** Canonical authorized_keys line: "<type> <base64>\n" (comment dropped). */
  canonical: string;
}

export function parseSshKeyBlob(blob: Uint8Array, comment = ''): SshKey {
  const r = reader(blob, 'key blob');
  const type = text(r);
  let key: KeyObject;
  try {
    if (type === 'ssh-ed25519') {
      const pk = r.vector(4);
      if (pk.length !== 32) invalid('Ed25519 key must be 32 bytes');
      key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: toBase64Url(pk) }, format: 'jwk' });
    } else if (type.startsWith('ecdsa-sha2-')) {
      const curveName = text(r);
      const curve = CURVES[curveName];
      if (!curve || type !== `ecdsa-sha2-${curveName}`) invalid(`unsupported ECDSA curve ${curveName}`);
      const q = r.vector(4);
      if (q.length !== 1 + 2 * curve.size || q[0] !== 4) invalid('malformed ECDSA point');
      key = createPublicKey({
        key: { kty: 'EC', crv: curve.crv, x: toBase64Url(q.subarray(1, 1 + curve.size)), y: toBase64Url(q.subarray(1 + curve.size)) },
        format: 'jwk',
      });
    } else if (type === 'ssh-rsa') {
      const e = mpint(r.vector(4));
      const n = mpint(r.vector(4));
      if (n.length * 8 < 2048) invalid('RSA keys must be at least 2048 bits');
      key = createPublicKey({ key: { kty: 'RSA', n: toBase64Url(n), e: toBase64Url(e) }, format: 'jwk' });
    } else {
      invalid(`unsupported key type ${JSON.stringify(type.slice(0, 64))}`);
    }
  } catch (e) {
    if (e instanceof WaxsealError) throw e;
    invalid('malformed public key');
  }
  r.expectEnd();
  return { type, blob, key, comment, canonical: `${type} ${toBase64(blob)}\n` };
}

/** Parses an authorized_keys style line: "[options] <type> <base64> [comment]". */
export function parseSshPublicKey(content: Uint8Array): SshKey {
  const text = Buffer.from(content).toString('utf8').trim();
  const line = text
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l !== '' && !l.startsWith('#'));
  if (!line) invalid('no public key found');
  const fields = line.split(/\s+/);
  const at = fields.findIndex((f, i) => i + 1 < fields.length && /^(ssh-|ecdsa-)/.test(f));
  if (at < 0) invalid('no public key found');
  const blob = fromBase64(fields[at + 1]!, 'ssh public key');
  const k = parseSshKeyBlob(blob, fields.slice(at + 2).join(' '));
  if (k.type !== fields[at]) invalid('key type does not match the key blob');
  return k;
}

export interface SshSignature {
  publicKey: Uint8Array;
  namespace: string;
  /** The reserved field (empty as OpenSSH writes it; verifiers ignore its contents). */
  reserved: Uint8Array;
  hashAlgorithm: 'sha256' | 'sha512';
  sigType: string;
  sigData: Uint8Array;
  /** Canonical armored form. */
  canonical: string;
}

const MAGIC = utf8('SSHSIG');

export function parseSshSignature(content: Uint8Array): SshSignature {
  let blocks;
  try {
    blocks = decodePemAll(Buffer.from(content).toString('utf8'));
  } catch {
    invalid('unable to decode the signature armor');
  }
  if (blocks.length !== 1 || blocks[0]!.label !== 'SSH SIGNATURE') invalid('expected one SSH SIGNATURE block');
  const blob = blocks[0]!.der;
  if (!bytesEqual(blob.subarray(0, 6), MAGIC)) invalid('invalid magic header');
  const r = reader(blob.subarray(6), 'signature');
  if (r.u32() !== 1) invalid('unsupported signature version');
  const publicKey = r.vector(4);
  const namespace = text(r);
  const reserved = r.vector(4); // kept: verifiers ignore it, but it is part of the blob
  const hashAlgorithm = text(r);
  const signature = r.vector(4);
  r.expectEnd();
  if (namespace !== 'file') invalid(`signature namespace must be "file", not ${JSON.stringify(namespace.slice(0, 64))}`);
  if (hashAlgorithm !== 'sha256' && hashAlgorithm !== 'sha512')
    invalid(`unsupported hash algorithm ${JSON.stringify(hashAlgorithm.slice(0, 32))}`);
  const sr = reader(signature, 'signature blob');
  const sigType = text(sr);
  const sigData = sr.vector(4);
  sr.expectEnd();
  return { publicKey, namespace, reserved, hashAlgorithm, sigType, sigData, canonical: encodePem('SSH SIGNATURE', blob) };
}

export function verifySshSignature(key: SshKey, sig: SshSignature, data: Uint8Array): boolean {
  if (!bytesEqual(sig.publicKey, key.blob)) return false;
  const h = createHash(sig.hashAlgorithm).update(data).digest();
  const signed = concat(
    MAGIC,
    sshString(utf8(sig.namespace)),
    sshString(new Uint8Array(0)),
    sshString(utf8(sig.hashAlgorithm)),
    sshString(h),
  );
  try {
    if (key.type === 'ssh-ed25519') return sig.sigType === 'ssh-ed25519' && nodeVerify(null, signed, key.key, sig.sigData);
    if (key.type === 'ssh-rsa') {
      const hash = sig.sigType === 'rsa-sha2-256' ? 'sha256' : sig.sigType === 'rsa-sha2-512' ? 'sha512' : undefined;
      return hash !== undefined && nodeVerify(hash, signed, key.key, sig.sigData);
    }
    if (sig.sigType !== key.type) return false;
    const curve = CURVES[key.type.slice('ecdsa-sha2-'.length)]!;
    const sr = reader(sig.sigData, 'ECDSA signature');
    const rr = mpint(sr.vector(4));
    const ss = mpint(sr.vector(4));
    if (!sr.done) return false;
    const der = (v: Uint8Array) => (v[0]! & 0x80 ? concat(Uint8Array.of(2, v.length + 1, 0), v) : concat(Uint8Array.of(2, v.length), v));
    const body = concat(der(rr), der(ss));
    const seq = body.length < 128 ? concat(Uint8Array.of(0x30, body.length), body) : concat(Uint8Array.of(0x30, 0x81, body.length), body);
    return nodeVerify(curve.hash, signed, { key: key.key, dsaEncoding: 'der' }, seq);
  } catch {
    return false;
  }
}
