// cosign's encrypted private keys (cosign.key): a PEM block labelled ENCRYPTED SIGSTORE PRIVATE KEY
// (or the older ENCRYPTED COSIGN PRIVATE KEY) whose body is the JSON of go-securesystemslib's
// `encrypted` package: {kdf: {name: "scrypt", params: {N, r, p}, salt}, cipher: {name:
// "nacl/secretbox", nonce}, ciphertext}, all byte strings base64. The plaintext is a PKCS#8 DER
// private key. Reading accepts exactly the three scrypt parameter sets that package accepts (so a
// tampered file cannot make us spend unbounded memory or time); writing uses its default.
import { createPrivateKey, createPublicKey, randomBytes, scryptSync, type KeyObject } from 'node:crypto';
import { xsalsa20poly1305 } from '@noble/ciphers/salsa.js';
import { WaxsealError, decodePemAll, describeKey, encodePem, fromBase64, parseJsonBounded, toBase64, utf8 } from '@waxseal/core';
import { KeyObjectSigner } from './memory.ts';

export const COSIGN_KEY_LABEL = 'ENCRYPTED SIGSTORE PRIVATE KEY';
export const COSIGN_KEY_LABEL_OLD = 'ENCRYPTED COSIGN PRIVATE KEY';

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/** The parameter sets go-securesystemslib accepts (legacy, standard, OWASP); anything else is refused. */
export const COSIGN_SCRYPT_PARAMS = {
  legacy: { N: 32768, r: 8, p: 1 },
  standard: { N: 65536, r: 8, p: 1 },
  owasp: { N: 131072, r: 8, p: 1 },
} as const satisfies Record<string, ScryptParams>;

/** What cosign writes today (`encrypted.Encrypt` uses the standard set since go-securesystemslib v0.9). */
export const COSIGN_DEFAULT_SCRYPT: ScryptParams = COSIGN_SCRYPT_PARAMS.standard;

const SALT_BYTES = 32;
const NONCE_BYTES = 24;
const KEY_BYTES = 32;
/** A cosign key file is well under 1 KiB (RSA-4096: ~3.5 KiB); bound what is parsed. */
const MAX_KEY_FILE = 64 * 1024;

/** The parsed (still encrypted) key file. */
export interface CosignEncryptedKey {
  label: typeof COSIGN_KEY_LABEL | typeof COSIGN_KEY_LABEL_OLD;
  kdf: { name: 'scrypt'; params: ScryptParams; salt: Uint8Array };
  cipher: { name: 'nacl/secretbox'; nonce: Uint8Array };
  ciphertext: Uint8Array;
  /** The JSON body's field names as found (for structure comparisons). */
  fields: { top: string[]; kdf: string[]; params: string[]; cipher: string[] };
}

const bad = (why: string): never => {
  throw new WaxsealError('ERR_INVALID_INPUT', `not a cosign encrypted private key: ${why}`, { check: 'key.cosign' });
};

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parses a cosign key file's structure (no password needed). Throws ERR_PEM_PARSE / ERR_INVALID_INPUT. */
export function parseCosignKey(pem: string | Uint8Array): CosignEncryptedKey {
  if (pem.length > MAX_KEY_FILE) bad(`the file is larger than ${MAX_KEY_FILE} bytes`);
  const text = typeof pem === 'string' ? pem : new TextDecoder('utf-8', { fatal: false }).decode(pem);
  const blocks = decodePemAll(text);
  if (blocks.length === 0) {
    throw new WaxsealError('ERR_PEM_PARSE', 'not a cosign encrypted private key: no PEM block found', { check: 'key.cosign' });
  }
  const block = blocks[0]!;
  if (block.label !== COSIGN_KEY_LABEL && block.label !== COSIGN_KEY_LABEL_OLD) {
    throw new WaxsealError(
      'ERR_PEM_PARSE',
      `unsupported PEM type ${block.label}: a cosign private key is ${COSIGN_KEY_LABEL} (or ${COSIGN_KEY_LABEL_OLD})`,
      { check: 'key.cosign' },
    );
  }
  const j = parseJsonBounded(block.der, { maxBytes: MAX_KEY_FILE, what: 'cosign key body', code: 'ERR_INVALID_INPUT' });
  if (!isObj(j)) return bad('the PEM body is not a JSON object');
  const { kdf, cipher, ciphertext } = j;
  if (!isObj(kdf) || !isObj(cipher) || typeof ciphertext !== 'string') return bad('kdf, cipher or ciphertext missing');
  if (kdf.name !== 'scrypt') return bad(`unknown kdf name ${JSON.stringify(kdf.name)}`);
  if (cipher.name !== 'nacl/secretbox') return bad(`unknown cipher name ${JSON.stringify(cipher.name)}`);
  const params = kdf.params;
  if (!isObj(params)) return bad('kdf.params missing');
  const N = params.N;
  const r = params.r;
  const p = params.p;
  const known = Object.values(COSIGN_SCRYPT_PARAMS).some((s) => s.N === N && s.r === r && s.p === p);
  if (!known) return bad(`unsupported scrypt parameters N=${String(N)} r=${String(r)} p=${String(p)}`);
  if (typeof kdf.salt !== 'string' || typeof cipher.nonce !== 'string') return bad('salt or nonce missing');
  const salt = fromBase64(kdf.salt, 'cosign key salt');
  const nonce = fromBase64(cipher.nonce, 'cosign key nonce');
  if (nonce.length !== NONCE_BYTES) bad(`incorrect nonce size ${nonce.length}`);
  return {
    label: block.label,
    kdf: { name: 'scrypt', params: { N: N as number, r: r as number, p: p as number }, salt },
    cipher: { name: 'nacl/secretbox', nonce },
    ciphertext: fromBase64(ciphertext, 'cosign key ciphertext'),
    fields: { top: Object.keys(j), kdf: Object.keys(kdf), params: Object.keys(params), cipher: Object.keys(cipher) },
  };
}

const pw = (password: string | Uint8Array): Uint8Array => (typeof password === 'string' ? utf8(password) : password);

function deriveKey(password: Uint8Array, salt: Uint8Array, s: ScryptParams): Uint8Array {
  // scrypt needs 128·N·r bytes; node's default cap (32 MiB) is below the standard set's 64 MiB.
  const maxmem = 128 * s.N * s.r * s.p + 32 * 1024 * 1024;
  return new Uint8Array(scryptSync(password, salt, KEY_BYTES, { N: s.N, r: s.r, p: s.p, maxmem }));
}

/** Decrypts a parsed key: the PKCS#8 DER inside. Throws ERR_INVALID_INPUT (check key.password) on a wrong password. */
export function decryptCosignKeyDer(key: CosignEncryptedKey, password: string | Uint8Array): Uint8Array {
  const k = deriveKey(pw(password), key.kdf.salt, key.kdf.params);
  try {
    return xsalsa20poly1305(k, key.cipher.nonce).decrypt(key.ciphertext);
  } catch {
    throw new WaxsealError('ERR_INVALID_INPUT', 'cannot decrypt the cosign private key: wrong password (or a corrupted file)', {
      check: 'key.password',
    });
  }
}

/** Whether DER looks like SEC1 ECPrivateKey (SEQUENCE { INTEGER 1, OCTET STRING ... }), which cosign refuses inside its files. */
function looksSec1(der: Uint8Array): boolean {
  let i = 1;
  if (der[0] !== 0x30) return false;
  const l = der[i++]!;
  if (l & 0x80) i += l & 0x7f;
  return der[i] === 0x02 && der[i + 1] === 0x01 && der[i + 2] === 0x01 && der[i + 3] === 0x04;
}

/**
 * Validates a private key as sigstore's goodkey does: RSA 2048 to 4096 bits, ECDSA on P-256,
 * P-384 or P-521, Ed25519. Throws ERR_KEY_WEAK / ERR_KEY_UNSUPPORTED.
 */
export function checkCosignKeyType(key: KeyObject): void {
  const d = describeKey(key);
  if (d.kind === 'rsa') {
    const bits = d.rsaBits ?? 0;
    if (bits < 2048) throw new WaxsealError('ERR_KEY_WEAK', `RSA key of ${bits} bits: at least 2048 are required`);
    if (bits > 4096) throw new WaxsealError('ERR_KEY_UNSUPPORTED', `RSA key of ${bits} bits: at most 4096 are supported`);
  }
}

/** Decrypts a cosign key file to a node:crypto private key (PKCS#8 inside, as cosign requires). */
export function decryptCosignKey(pem: string | Uint8Array, password: string | Uint8Array): KeyObject {
  const der = decryptCosignKeyDer(parseCosignKey(pem), password);
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' });
  } catch (e) {
    const why = looksSec1(der)
      ? 'the decrypted key is a SEC1 EC key, not PKCS#8 (cosign refuses it too; re-import it with import-key-pair)'
      : 'the decrypted key is not a PKCS#8 private key';
    throw new WaxsealError('ERR_KEY_UNSUPPORTED', `cannot load the cosign private key: ${why}`, { check: 'key.cosign', cause: e });
  }
  checkCosignKeyType(key);
  return key;
}

/** A Signer over a cosign key file (ECDSA with SHA-256 for P-256, as cosign signs; RSA PKCS#1 v1.5 SHA-256). */
export function cosignSigner(pem: string | Uint8Array, password: string | Uint8Array, keyRef: string): KeyObjectSigner {
  return new KeyObjectSigner(decryptCosignKey(pem, password), keyRef);
}

/**
 * Encrypts a private key in cosign's format: PKCS#8 DER, scrypt (cosign's default parameters
 * unless given), a fresh 32-byte salt and 24-byte nonce, nacl/secretbox. Returns the PEM text.
 */
export function encryptCosignKey(
  privateKey: KeyObject,
  password: string | Uint8Array,
  o: { params?: ScryptParams; label?: CosignEncryptedKey['label'] } = {},
): string {
  if (privateKey.type !== 'private') throw new TypeError('encryptCosignKey needs a private key');
  checkCosignKeyType(privateKey);
  const params = o.params ?? COSIGN_DEFAULT_SCRYPT;
  if (!Object.values(COSIGN_SCRYPT_PARAMS).some((s) => s.N === params.N && s.r === params.r && s.p === params.p)) {
    throw new TypeError('encryptCosignKey: scrypt parameters must be one of COSIGN_SCRYPT_PARAMS');
  }
  const der = new Uint8Array(privateKey.export({ format: 'der', type: 'pkcs8' }));
  const salt = new Uint8Array(randomBytes(SALT_BYTES));
  const nonce = new Uint8Array(randomBytes(NONCE_BYTES));
  const ciphertext = xsalsa20poly1305(deriveKey(pw(password), salt, params), nonce).encrypt(der);
  // Field order as Go's encoding/json writes the struct.
  const body = JSON.stringify({
    kdf: { name: 'scrypt', params: { N: params.N, r: params.r, p: params.p }, salt: toBase64(salt) },
    cipher: { name: 'nacl/secretbox', nonce: toBase64(nonce) },
    ciphertext: toBase64(ciphertext),
  });
  return encodePem(o.label ?? COSIGN_KEY_LABEL, utf8(body));
}

/** The PEM public key (SPKI) of a private key, as cosign writes cosign.pub. */
export function publicKeyPem(privateKey: KeyObject): string {
  return encodePem('PUBLIC KEY', new Uint8Array(createPublicKey(privateKey).export({ format: 'der', type: 'spki' })));
}

/**
 * A plain PEM private key as cosign's import-key-pair reads it: RSA PRIVATE KEY (PKCS#1), EC
 * PRIVATE KEY (SEC1) or PRIVATE KEY (PKCS#8: RSA, ECDSA, Ed25519), unencrypted. Throws
 * ERR_PEM_PARSE / ERR_KEY_UNSUPPORTED / ERR_KEY_WEAK.
 */
export function importPrivateKeyPem(pem: string | Uint8Array): KeyObject {
  if (pem.length > MAX_KEY_FILE) throw new WaxsealError('ERR_PEM_PARSE', `the key file is larger than ${MAX_KEY_FILE} bytes`);
  const text = typeof pem === 'string' ? pem : new TextDecoder().decode(pem);
  const blocks = decodePemAll(text);
  if (blocks.length === 0) throw new WaxsealError('ERR_PEM_PARSE', 'invalid pem block: no PEM block found');
  const b = blocks[0]!;
  const formats: Record<string, 'pkcs1' | 'sec1' | 'pkcs8'> = {
    'RSA PRIVATE KEY': 'pkcs1',
    'EC PRIVATE KEY': 'sec1',
    'PRIVATE KEY': 'pkcs8',
  };
  const type = formats[b.label];
  if (!type) {
    const hint = b.label === COSIGN_KEY_LABEL || b.label === COSIGN_KEY_LABEL_OLD ? ' (it is already a cosign key)' : '';
    throw new WaxsealError(
      'ERR_KEY_UNSUPPORTED',
      `unsupported private key: PEM type ${b.label}${hint}; expected RSA PRIVATE KEY, EC PRIVATE KEY or PRIVATE KEY`,
    );
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: Buffer.from(b.der), format: 'der', type });
  } catch (e) {
    throw new WaxsealError('ERR_KEY_UNSUPPORTED', `error parsing ${b.label}: ${(e as Error).message}`, { cause: e });
  }
  if (type === 'pkcs1' && key.asymmetricKeyType !== 'rsa') throw new WaxsealError('ERR_KEY_UNSUPPORTED', 'RSA PRIVATE KEY is not RSA');
  if (type === 'sec1' && key.asymmetricKeyType !== 'ec') throw new WaxsealError('ERR_KEY_UNSUPPORTED', 'EC PRIVATE KEY is not EC');
  if (!['rsa', 'ec', 'ed25519'].includes(key.asymmetricKeyType ?? '')) {
    throw new WaxsealError('ERR_KEY_UNSUPPORTED', `unexpected private key type ${key.asymmetricKeyType}`);
  }
  checkCosignKeyType(key);
  return key;
}

/**
 * The private key of `--key <file>`, read as cosign's LoadPrivateKey reads it: only its encrypted
 * format (decrypted with `password()`, asked only then). A plain PEM private key is refused, as
 * cosign refuses it, with the way to convert it.
 */
export function loadSigningKey(pem: string | Uint8Array, password: () => string | Uint8Array): KeyObject {
  const text = typeof pem === 'string' ? pem : new TextDecoder().decode(pem);
  const label = /-----BEGIN ([A-Z0-9 ]+)-----/.exec(text)?.[1];
  if (label === 'RSA PRIVATE KEY' || label === 'EC PRIVATE KEY' || label === 'PRIVATE KEY') {
    throw new WaxsealError(
      'ERR_KEY_UNSUPPORTED',
      `unsupported pem type: ${label}: --key takes a cosign encrypted key; convert this one with \`waxseal import-key-pair --key <file>\``,
      { check: 'key.cosign' },
    );
  }
  parseCosignKey(text); // a malformed file fails before any password prompt
  return decryptCosignKey(text, password());
}
