// The signer's ephemeral key: generated in memory for one signing operation, never written
// anywhere, dropped when the operation ends. P-256, as Sigstore clients use by default.
import { generateKeyPairSync, sign as nodeSign, type KeyObject } from 'node:crypto';
import { p256 } from '@noble/curves/nist.js';
import { fromBase64Url, utf8, encodePem } from '@waxseal/core';

export class EphemeralKey {
  readonly #privateKey: KeyObject;
  readonly publicKeySpki: Uint8Array;

  constructor() {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.#privateKey = privateKey;
    this.publicKeySpki = new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }));
  }

  get publicKeyPem(): string {
    return encodePem('PUBLIC KEY', this.publicKeySpki);
  }

  /** ECDSA P-256 / SHA-256 over a message (DER signature). */
  signMessage(message: Uint8Array): Uint8Array {
    return new Uint8Array(nodeSign('sha256', message, { key: this.#privateKey, dsaEncoding: 'der' }));
  }

  /** Proof of possession for the CA: a signature over the UTF-8 challenge (email or sub). */
  proveChallenge(challenge: string): Uint8Array {
    return this.signMessage(utf8(challenge));
  }

  /**
   * ECDSA over an already-computed SHA-256 digest, so a large artifact is hashed once
   * (node:crypto can only sign by hashing the whole message itself).
   */
  signDigest(digest: Uint8Array): Uint8Array {
    const d = fromBase64Url(this.#privateKey.export({ format: 'jwk' }).d!);
    return p256.sign(digest, d, { prehash: false, format: 'der', lowS: false });
  }
}
