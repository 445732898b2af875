// Small pieces the HSM and KMS signer backends share: signature format conversion, a public-key
// self-check after each remote signature, and error wording. No SDK imports here.
import { verify as nodeVerify } from 'node:crypto';
import { publicKeyFromSpki, asBuffer, integer, seq, WaxsealError, type HashName, type PublicKeyInfo } from '@waxseal/core';

/** Converts a raw r||s ECDSA signature (PKCS#11, JOSE) into the DER SEQUENCE X.509 and CMS use. */
export function rawEcdsaToDer(raw: Uint8Array): Uint8Array {
  if (raw.length === 0 || raw.length % 2 !== 0) {
    throw new WaxsealError('ERR_SIGNER', `ECDSA signature from the token has odd length ${raw.length}`);
  }
  const half = raw.length / 2;
  return seq(integer(raw.subarray(0, half)), integer(raw.subarray(half)));
}

/** Parses and re-encodes an SPKI through node:crypto so every backend reports the same canonical DER. */
export function canonicalPublicKey(spki: Uint8Array, what: string): PublicKeyInfo {
  let info: PublicKeyInfo;
  try {
    info = publicKeyFromSpki(spki);
  } catch (e) {
    throw new WaxsealError('ERR_SIGNER', `${what}: public key is not usable`, { cause: e });
  }
  const der = new Uint8Array(info.key.export({ format: 'der', type: 'spki' }));
  return der.length === info.spki.length && Buffer.compare(der, info.spki) === 0 ? info : publicKeyFromSpki(der);
}

/**
 * Checks a signature a remote backend returned against the key's public half before anyone
 * uses it. A faulty backend (wrong key, an emulator that hashes twice, a truncated response)
 * then fails loudly here instead of producing a certificate nobody can verify.
 */
export function assertSignatureMatches(
  pub: PublicKeyInfo,
  hash: HashName,
  message: Uint8Array,
  signature: Uint8Array,
  keyRef: string,
): void {
  let ok = false;
  try {
    ok =
      pub.kind === 'ed25519'
        ? nodeVerify(null, asBuffer(message), pub.key, asBuffer(signature))
        : nodeVerify(hash, asBuffer(message), { key: pub.key, dsaEncoding: 'der' }, asBuffer(signature));
  } catch {
    ok = false;
  }
  if (!ok) {
    throw new WaxsealError(
      'ERR_SIGNER',
      `the signature returned for ${keyRef} does not verify against its public key (backend fault or wrong key)`,
    );
  }
}

/** The text of an unknown thrown value, for error messages. */
export function errorText(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

/**
 * At most `size` resources (PKCS#11 sessions) in use at once; further callers wait in FIFO order.
 * A resource that broke is discarded and replaced lazily by the next acquirer.
 */
export class ResourcePool<T> {
  readonly #idle: T[] = [];
  readonly #waiters: Array<{ resolve: (r: T) => void; reject: (e: unknown) => void }> = [];
  #created = 0;
  #closed = false;
  readonly #size: number;
  readonly #create: () => T;

  constructor(size: number, create: () => T) {
    this.#size = size;
    this.#create = create;
  }

  acquire(): Promise<T> {
    if (this.#closed) return Promise.reject(new WaxsealError('ERR_SIGNER', 'signer is closed'));
    const idle = this.#idle.pop();
    if (idle !== undefined) return Promise.resolve(idle);
    if (this.#created < this.#size) {
      try {
        return Promise.resolve(this.#make());
      } catch (e) {
        return Promise.reject(e);
      }
    }
    return new Promise<T>((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  release(r: T): void {
    const next = this.#waiters.shift();
    if (next) next.resolve(r);
    else this.#idle.push(r);
  }

  /** Forgets a broken resource; a waiting caller gets a freshly created one (or the creation error). */
  discard(): void {
    this.#created--;
    const next = this.#waiters.shift();
    if (!next) return;
    try {
      next.resolve(this.#make());
    } catch (e) {
      next.reject(e);
    }
  }

  /** Refuses new acquirers, fails the waiting ones and returns the idle resources for closing. */
  close(): T[] {
    this.#closed = true;
    for (const w of this.#waiters.splice(0)) w.reject(new WaxsealError('ERR_SIGNER', 'signer was closed'));
    return this.#idle.splice(0);
  }

  #make(): T {
    const r = this.#create();
    this.#created++;
    return r;
  }
}
