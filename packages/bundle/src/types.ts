// The Sigstore client-facing documents as plain TypeScript values (protobuf-specs
// dev.sigstore.bundle.v1.Bundle, dev.sigstore.trustroot.v1.TrustedRoot / SigningConfig /
// ClientTrustConfig). Bytes are decoded (Uint8Array), 64-bit integers are numbers (< 2^53),
// Timestamps are Dates. Build these directly and hand them to the serializers.
import type { HashName } from '@waxseal/core';

// ---------------------------------------------------------------- media types

export const BUNDLE_MEDIA_TYPE_V01 = 'application/vnd.dev.sigstore.bundle+json;version=0.1';
export const BUNDLE_MEDIA_TYPE_V02 = 'application/vnd.dev.sigstore.bundle+json;version=0.2';
/** The v0.3 spelling to emit. */
export const BUNDLE_MEDIA_TYPE_V03 = 'application/vnd.dev.sigstore.bundle.v0.3+json';
/** The older v0.3 spelling, accepted on input. */
export const BUNDLE_MEDIA_TYPE_V03_LEGACY = 'application/vnd.dev.sigstore.bundle+json;version=0.3';

export const TRUSTED_ROOT_MEDIA_TYPE_V01 = 'application/vnd.dev.sigstore.trustedroot+json;version=0.1';
export const TRUSTED_ROOT_MEDIA_TYPE_V01_NEW = 'application/vnd.dev.sigstore.trustedroot.v0.1+json';
export const TRUSTED_ROOT_MEDIA_TYPE_V02 = 'application/vnd.dev.sigstore.trustedroot.v0.2+json';

export const SIGNING_CONFIG_MEDIA_TYPE_V02 = 'application/vnd.dev.sigstore.signingconfig.v0.2+json';
export const CLIENT_TRUST_CONFIG_MEDIA_TYPE_V01 = 'application/vnd.dev.sigstore.clienttrustconfig.v0.1+json';

export type BundleVersion = '0.1' | '0.2' | '0.3';

// ---------------------------------------------------------------- common

/** protobuf-specs PublicKeyDetails names. */
export const PUBLIC_KEY_DETAILS = [
  'PUBLIC_KEY_DETAILS_UNSPECIFIED',
  'PKCS1_RSA_PKCS1V5',
  'PKCS1_RSA_PSS',
  'PKIX_RSA_PKCS1V5',
  'PKIX_RSA_PSS',
  'PKIX_RSA_PKCS1V15_2048_SHA256',
  'PKIX_RSA_PKCS1V15_3072_SHA256',
  'PKIX_RSA_PKCS1V15_4096_SHA256',
  'PKIX_RSA_PSS_2048_SHA256',
  'PKIX_RSA_PSS_3072_SHA256',
  'PKIX_RSA_PSS_4096_SHA256',
  'PKIX_ECDSA_P256_HMAC_SHA_256',
  'PKIX_ECDSA_P256_SHA_256',
  'PKIX_ECDSA_P384_SHA_384',
  'PKIX_ECDSA_P521_SHA_512',
  'PKIX_ED25519',
  'PKIX_ED25519_PH',
  'PKIX_ECDSA_P384_SHA_256',
  'PKIX_ECDSA_P521_SHA_256',
  'LMS_SHA256',
  'LMOTS_SHA256',
  'ML_DSA_44',
  'ML_DSA_65',
  'ML_DSA_87',
] as const;
export type PublicKeyDetails = (typeof PUBLIC_KEY_DETAILS)[number];

/** protobuf enum numbers of PublicKeyDetails (protojson accepts numbers too). */
export const PUBLIC_KEY_DETAILS_BY_NUMBER: Record<number, PublicKeyDetails> = {
  0: 'PUBLIC_KEY_DETAILS_UNSPECIFIED',
  1: 'PKCS1_RSA_PKCS1V5',
  2: 'PKCS1_RSA_PSS',
  3: 'PKIX_RSA_PKCS1V5',
  4: 'PKIX_RSA_PSS',
  5: 'PKIX_ECDSA_P256_SHA_256',
  6: 'PKIX_ECDSA_P256_HMAC_SHA_256',
  7: 'PKIX_ED25519',
  8: 'PKIX_ED25519_PH',
  9: 'PKIX_RSA_PKCS1V15_2048_SHA256',
  10: 'PKIX_RSA_PKCS1V15_3072_SHA256',
  11: 'PKIX_RSA_PKCS1V15_4096_SHA256',
  12: 'PKIX_ECDSA_P384_SHA_384',
  13: 'PKIX_ECDSA_P521_SHA_512',
  14: 'LMS_SHA256',
  15: 'LMOTS_SHA256',
  16: 'PKIX_RSA_PSS_2048_SHA256',
  17: 'PKIX_RSA_PSS_3072_SHA256',
  18: 'PKIX_RSA_PSS_4096_SHA256',
  19: 'PKIX_ECDSA_P384_SHA_256',
  20: 'PKIX_ECDSA_P521_SHA_256',
  21: 'ML_DSA_65',
  22: 'ML_DSA_87',
  23: 'ML_DSA_44',
};

/** An interval; either end may be open. Both ends are inclusive. */
export interface TimeRange {
  start?: Date;
  end?: Date;
}

export interface MessageDigest {
  algorithm: HashName;
  digest: Uint8Array;
}

// ---------------------------------------------------------------- bundle

export interface KindVersion {
  kind: string;
  version: string;
}

export interface InclusionProof {
  /** Index of the entry inside the (shard) tree the proof is for. */
  logIndex: number;
  rootHash: Uint8Array;
  treeSize: number;
  hashes: Uint8Array[];
  /** The checkpoint (signed note) text. Required by protobuf-specs. */
  checkpoint: string;
}

export interface TransparencyLogEntry {
  /** Rekor v1: global virtual index; Rekor v2: index in the shard. */
  logIndex: number;
  /** Rekor v1: SHA-256(SPKI); Rekor v2: the full 32-byte C2SP key ID. */
  logId: Uint8Array;
  kindVersion: KindVersion;
  /** Unix seconds; 0 when absent (Rekor v2 has none). Trusted only with a verified SET. */
  integratedTime: number;
  inclusionPromise?: { signedEntryTimestamp: Uint8Array };
  inclusionProof?: InclusionProof;
  canonicalizedBody: Uint8Array;
}

export type VerificationMaterialContent =
  | { type: 'publicKey'; hint: string }
  | { type: 'x509CertificateChain'; certificates: Uint8Array[] }
  | { type: 'certificate'; certificate: Uint8Array };

export interface VerificationMaterial {
  content: VerificationMaterialContent;
  tlogEntries: TransparencyLogEntry[];
  /** DER RFC 3161 TimeStampResp (or bare TimeStampToken) values. */
  rfc3161Timestamps: Uint8Array[];
}

export interface DsseSignature {
  sig: Uint8Array;
  keyid: string;
}

export interface DsseEnvelope {
  payload: Uint8Array;
  payloadType: string;
  signatures: DsseSignature[];
}

export type BundleContent =
  | { type: 'messageSignature'; messageDigest?: MessageDigest; signature: Uint8Array }
  | { type: 'dsseEnvelope'; envelope: DsseEnvelope };

export interface Bundle {
  mediaType: string;
  verificationMaterial: VerificationMaterial;
  content: BundleContent;
}

// ---------------------------------------------------------------- trusted root

export interface TrustedPublicKey {
  /** DER SPKI (or PKCS#1 for the deprecated PKCS1_* key details). May be absent in the proto. */
  rawBytes?: Uint8Array;
  keyDetails: PublicKeyDetails;
  validFor?: TimeRange;
}

export interface TransparencyLogInstance {
  baseUrl: string;
  hashAlgorithm: HashName;
  publicKey: TrustedPublicKey;
  logId: Uint8Array;
  /** TrustedRoot v0.2: C2SP checkpoint key ID. */
  checkpointKeyId?: Uint8Array;
  /** TrustedRoot v0.2: operator name. */
  operator?: string;
}

export interface DistinguishedName {
  organization?: string;
  commonName?: string;
}

export interface CertificateAuthority {
  subject: DistinguishedName;
  uri: string;
  /** DER certificates, leaf-most first, ending with the trust anchor. */
  certChain: Uint8Array[];
  validFor: TimeRange;
  operator?: string;
}

export interface TrustedRoot {
  mediaType: string;
  tlogs: TransparencyLogInstance[];
  certificateAuthorities: CertificateAuthority[];
  ctlogs: TransparencyLogInstance[];
  timestampAuthorities: CertificateAuthority[];
}

// ---------------------------------------------------------------- signing config

export interface Service {
  url: string;
  majorApiVersion: number;
  validFor: TimeRange;
  operator: string;
}

export type ServiceSelector = 'ALL' | 'ANY' | 'EXACT';

export interface ServiceConfiguration {
  selector: ServiceSelector;
  /** Used only with EXACT. */
  count?: number;
}

export interface SigningConfig {
  mediaType: string;
  caUrls: Service[];
  oidcUrls: Service[];
  rekorTlogUrls: Service[];
  tsaUrls: Service[];
  rekorTlogConfig: ServiceConfiguration;
  tsaConfig: ServiceConfiguration;
}

export interface ClientTrustConfig {
  mediaType: string;
  trustedRoot: TrustedRoot;
  signingConfig: SigningConfig;
}
