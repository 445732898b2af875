// The one interface every private key sits behind: CA, TSA and log keys alike, whether the key
// lives in a file, in memory, in an HSM (PKCS#11) or in a cloud KMS. Backends are chosen by key
// URI (see ./open.ts); nothing outside src/keys touches private key material.
import { OID, seq, oid as derOid, nullValue, type HashName, type KeyKind } from '@waxseal/core';

export interface Signer {
  /** Key kind (curve / RSA), derived from the public key. */
  readonly kind: KeyKind;
  /** DER SubjectPublicKeyInfo of the signing key. */
  readonly publicKeySpki: Uint8Array;
  /** The hash this signer applies before signing (ignored for Ed25519, which signs the message). */
  readonly hash: HashName;
  /** A URI naming the key for audit records (never the secret itself), e.g. `file:///etc/ca.key`. */
  readonly keyRef: string;
  /**
   * Signs `message`: ECDSA returns a DER signature over hash(message), RSA PKCS#1 v1.5 over
   * hash(message), Ed25519 a pure signature over the message.
   */
  sign(message: Uint8Array): Promise<Uint8Array>;
  /** Releases sessions or connections, if any. */
  close?(): Promise<void>;
}

/** Signature algorithm OID a signer produces for X.509 / CMS (ecdsa-with-SHAx, shaXWithRSA, Ed25519). */
export function signatureAlgorithmOid(s: Pick<Signer, 'kind' | 'hash'>): string {
  if (s.kind === 'ed25519') return OID.ed25519;
  if (s.kind === 'rsa') return s.hash === 'sha384' ? OID.sha384WithRsa : s.hash === 'sha512' ? OID.sha512WithRsa : OID.sha256WithRsa;
  return s.hash === 'sha384' ? OID.ecdsaWithSha384 : s.hash === 'sha512' ? OID.ecdsaWithSha512 : OID.ecdsaWithSha256;
}

/** DER AlgorithmIdentifier for the signer's signature algorithm (no NULL params for ECDSA/Ed25519). */
export function signatureAlgorithmIdentifier(s: Pick<Signer, 'kind' | 'hash'>): Uint8Array {
  const o = signatureAlgorithmOid(s);
  return s.kind === 'rsa' ? seq(derOid(o), nullValue()) : seq(derOid(o));
}
