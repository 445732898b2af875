// A signer over a node:crypto KeyObject held in memory: used for file keys once decrypted and
// for the ephemeral keys of dev mode. Signing is synchronous underneath (node:crypto).
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign as nodeSign, type KeyObject } from 'node:crypto';
import { defaultHash, describeKey, WaxsealError, type HashName, type KeyKind } from '@waxseal/core';
import type { Signer } from './signer.ts';
import { SigningThread } from './signing-thread.ts';

export class KeyObjectSigner implements Signer {
  readonly kind: KeyKind;
  readonly publicKeySpki: Uint8Array;
  readonly hash: HashName;
  readonly keyRef: string;
  readonly #key: KeyObject;
  /** node:crypto's digest argument: null for Ed25519, which signs the message itself. */
  readonly #digest: HashName | null;

  constructor(privateKey: KeyObject, keyRef: string, hash?: HashName) {
    if (privateKey.type !== 'private') throw new TypeError('KeyObjectSigner needs a private key');
    const d = describeKey(privateKey);
    if (d.kind === 'rsa' && (d.rsaBits ?? 0) < 2048) throw new WaxsealError('ERR_KEY_WEAK', 'RSA keys must be at least 2048 bits');
    this.kind = d.kind;
    this.hash = hash ?? defaultHash(d.kind);
    this.keyRef = keyRef;
    this.#key = privateKey;
    this.#digest = this.kind === 'ed25519' ? null : this.hash;
    this.publicKeySpki = new Uint8Array(createPublicKey(privateKey).export({ format: 'der', type: 'spki' }));
  }

  /** Synchronous signing, for hot paths that know they hold an in-memory key. */
  signSync(message: Uint8Array): Uint8Array {
    // DER is node's default ECDSA encoding; passing the KeyObject itself avoids an options copy.
    return new Uint8Array(nodeSign(this.#digest, message, this.#key));
  }

  /** Signs on libuv's threadpool (node:crypto's callback form), off the event loop. */
  sign(message: Uint8Array): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      nodeSign(this.#digest, message, this.#key, (err, sig) =>
        err ? reject(err) : resolve(new Uint8Array(sig.buffer, sig.byteOffset, sig.byteLength)),
      );
    });
  }

  /** A thread of its own that signs batches with this key (see signing-thread.ts). */
  startSigningThread(): SigningThread {
    return new SigningThread(this.#key, this.#digest);
  }

  /** PKCS#8 PEM of the private key, optionally encrypted (for writing key files). */
  exportPkcs8Pem(passphrase?: string): string {
    return this.#key.export(
      passphrase ? { format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase } : { format: 'pem', type: 'pkcs8' },
    ) as string;
  }
}

export type GeneratedKeyKind = 'ecdsa-p256' | 'ecdsa-p384' | 'ed25519';

/** A fresh in-memory key. */
export function generateSigner(kind: GeneratedKeyKind = 'ecdsa-p256', keyRef = 'memory://ephemeral'): KeyObjectSigner {
  const { privateKey } =
    kind === 'ed25519'
      ? generateKeyPairSync('ed25519')
      : generateKeyPairSync('ec', { namedCurve: kind === 'ecdsa-p384' ? 'P-384' : 'P-256' });
  return new KeyObjectSigner(privateKey, keyRef);
}

/** Loads a PEM private key (PKCS#8, PKCS#1 or SEC1; encrypted when a passphrase is given). */
export function signerFromPem(pem: string, keyRef: string, passphrase?: string): KeyObjectSigner {
  let key: KeyObject;
  try {
    key = createPrivateKey(passphrase === undefined ? { key: pem, format: 'pem' } : { key: pem, format: 'pem', passphrase });
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const hint = /passphrase|decrypt|bad decrypt/i.test(msg) ? ' (wrong or missing passphrase?)' : '';
    throw new WaxsealError('ERR_CONFIG', `cannot load private key ${keyRef}${hint}`, { cause: e });
  }
  return new KeyObjectSigner(key, keyRef);
}
