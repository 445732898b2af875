// minisign (https://jedisct1.github.io/minisign/) keys and signatures for Rekor `rekord`
// entries with format "minisign".
//   public key: "untrusted comment: ...\n" base64("Ed" || keyId[8] || ed25519 pk[32])
//   signature:  "untrusted comment: ...\n" base64(alg[2] || keyId[8] || sig[64]) "\n"
//               "trusted comment: <text>\n" base64(globalSig[64])
// alg "Ed" signs the data; "ED" (the default since minisign 0.10) signs BLAKE2b-512(data).
// The global signature (over sig || trusted comment) is checked when present; Rekor's canonical
// form keeps only the first two lines, as Rekor does.
import { createHash, createPublicKey, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { WaxsealError, concat, fromBase64, toBase64, toBase64Url, utf8, bytesEqual } from '@waxseal/core';

function invalid(message: string): never {
  throw new WaxsealError('ERR_LOG_ENTRY_INVALID', `minisign: ${message}`);
}

export interface MinisignKey {
  keyId: Uint8Array;
  publicKey: Uint8Array;
  key: KeyObject;
  /** Canonical form: base64 of "Ed" || keyId || key. */
  canonical: string;
}

export interface MinisignSignature {
  algorithm: 'Ed' | 'ED';
  keyId: Uint8Array;
  signature: Uint8Array;
  trustedComment: string | undefined;
  globalSignature: Uint8Array | undefined;
  /** Canonical form: "untrusted comment:\n" + base64(alg || keyId || sig). */
  canonical: string;
}

function lines(content: Uint8Array): string[] {
  return Buffer.from(content)
    .toString('utf8')
    .replace(/\r\n/g, '\n')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

function edKey(raw: Uint8Array): KeyObject {
  try {
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: toBase64Url(raw) }, format: 'jwk' });
  } catch {
    invalid('invalid Ed25519 public key');
  }
}

export function parseMinisignKey(content: Uint8Array): MinisignKey {
  let blob: Uint8Array;
  if (content.length === 32) {
    // A raw 32-byte key, as Rekor also accepts.
    blob = concat(utf8('Ed'), new Uint8Array(8), content);
  } else {
    const ls = lines(content);
    const b64 =
      ls.length === 2 && ls[0]!.startsWith('untrusted comment:')
        ? ls[1]!
        : ls.length === 1
          ? ls[0]!
          : invalid('unrecognised public key format');
    blob = fromBase64(b64, 'minisign public key');
  }
  if (blob.length !== 42 || blob[0] !== 0x45 || blob[1] !== 0x64) invalid('public key must be an Ed25519 ("Ed") key of 42 bytes');
  const publicKey = blob.subarray(10);
  return { keyId: blob.subarray(2, 10), publicKey, key: edKey(publicKey), canonical: toBase64(blob) };
}

export function parseMinisignSignature(content: Uint8Array): MinisignSignature {
  const ls = lines(content);
  if (ls.length !== 2 && ls.length !== 4) invalid(`signature must have 2 or 4 lines, found ${ls.length}`);
  if (!ls[0]!.startsWith('untrusted comment:')) invalid('missing untrusted comment line');
  const blob = fromBase64(ls[1]!, 'minisign signature');
  if (blob.length !== 74) invalid('signature blob must be 74 bytes');
  const alg = String.fromCharCode(blob[0]!, blob[1]!);
  if (alg !== 'Ed' && alg !== 'ED') invalid(`unsupported signature algorithm ${JSON.stringify(alg)}`);
  let trustedComment: string | undefined;
  let globalSignature: Uint8Array | undefined;
  if (ls.length === 4) {
    if (!ls[2]!.startsWith('trusted comment: ')) invalid('missing trusted comment line');
    trustedComment = ls[2]!.slice('trusted comment: '.length);
    globalSignature = fromBase64(ls[3]!, 'minisign global signature');
    if (globalSignature.length !== 64) invalid('global signature must be 64 bytes');
  }
  return {
    algorithm: alg,
    keyId: blob.subarray(2, 10),
    signature: blob.subarray(10),
    trustedComment,
    globalSignature,
    canonical: `untrusted comment:\n${toBase64(blob)}`,
  };
}

export function verifyMinisign(key: MinisignKey, sig: MinisignSignature, data: Uint8Array): boolean {
  // A key with an all-zero ID came from raw bytes and cannot name its signatures.
  if (key.keyId.some((b) => b !== 0) && !bytesEqual(key.keyId, sig.keyId)) return false;
  const message = sig.algorithm === 'ED' ? createHash('blake2b512').update(data).digest() : data;
  try {
    if (!nodeVerify(null, message, key.key, sig.signature)) return false;
    if (sig.globalSignature) return nodeVerify(null, concat(sig.signature, utf8(sig.trustedComment ?? '')), key.key, sig.globalSignature);
    return true;
  } catch {
    return false;
  }
}
