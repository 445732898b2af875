// Builders for the trust documents an instance publishes: TrustedRoot entries from certificate
// chains and log keys, the TrustedRoot itself, and the SigningConfig of an instance run by one
// operator. Values in, typed values out; write them with serializeTrustedRoot /
// serializeSigningConfig.
import {
  WaxsealError,
  OID,
  decodePem,
  keyDetails,
  noteKeyId,
  parseCertificatesPem,
  publicKeyFromSpki,
  sha256,
  type Certificate,
} from '@waxseal/core';
import {
  PUBLIC_KEY_DETAILS,
  SIGNING_CONFIG_MEDIA_TYPE_V02,
  TRUSTED_ROOT_MEDIA_TYPE_V01,
  type CertificateAuthority,
  type PublicKeyDetails,
  type Service,
  type ServiceConfiguration,
  type SigningConfig,
  type TimeRange,
  type TransparencyLogInstance,
  type TrustedRoot,
} from './types.ts';

/**
 * A CA or TSA entry. `chain` (parsed certificates or PEM text) runs leaf-most first (the issuing
 * CA, or the TSA's signing certificate) and ends with the root. The subject is the first
 * certificate's; the window starts, unless given, at that certificate's notBefore.
 */
export function buildCertificateAuthority(o: {
  uri: string;
  chain: readonly Certificate[] | string;
  validFor?: TimeRange;
  operator?: string;
}): CertificateAuthority {
  const chain = typeof o.chain === 'string' ? parseCertificatesPem(o.chain) : o.chain;
  const first = chain[0];
  if (!first) throw new WaxsealError('ERR_TRUSTED_ROOT_INVALID', `the certificate chain for ${o.uri || 'an authority'} is empty`);
  const subject: CertificateAuthority['subject'] = {};
  const organization = first.subject[OID.organizationName];
  const commonName = first.subject[OID.commonName];
  if (organization) subject.organization = organization;
  if (commonName) subject.commonName = commonName;
  const validFor: TimeRange = { start: o.validFor?.start ?? first.notBefore };
  if (o.validFor?.end) validFor.end = o.validFor.end;
  const out: CertificateAuthority = { subject, uri: o.uri, certChain: chain.map((c) => c.der), validFor };
  if (o.operator) out.operator = o.operator;
  return out;
}

/** DER SPKI from bytes or a PEM "PUBLIC KEY" block, with its protobuf-specs key details. */
function logKey(publicKey: Uint8Array | string) {
  const spki = typeof publicKey === 'string' ? decodePem(publicKey, ['PUBLIC KEY']).der : publicKey;
  const info = publicKeyFromSpki(spki);
  const details = keyDetails(info);
  if (!(PUBLIC_KEY_DETAILS as readonly string[]).includes(details)) {
    throw new WaxsealError('ERR_KEY_UNSUPPORTED', `log key type ${details} has no protobuf-specs name`);
  }
  return { info, spki: info.spki, keyDetails: details as PublicKeyDetails };
}

/** A log's validity must have a start: it bounds the times the key may vouch for. */
type LogValidity = TimeRange & { start: Date };

/**
 * A transparency log (or CT log) entry for a public key (DER SPKI or PEM). The log ID defaults
 * to SHA-256 of the SPKI, as Rekor v1 and RFC 6962 logs derive it.
 */
export function buildTransparencyLog(o: {
  baseUrl: string;
  publicKey: Uint8Array | string;
  validFor: LogValidity;
  logId?: Uint8Array;
  checkpointKeyId?: Uint8Array;
  operator?: string;
}): TransparencyLogInstance {
  const key = logKey(o.publicKey);
  const out: TransparencyLogInstance = {
    baseUrl: o.baseUrl,
    hashAlgorithm: 'sha256',
    publicKey: { rawBytes: key.spki, keyDetails: key.keyDetails, validFor: { ...o.validFor } },
    logId: o.logId ?? sha256(key.spki),
  };
  if (o.checkpointKeyId) out.checkpointKeyId = o.checkpointKeyId;
  if (o.operator) out.operator = o.operator;
  return out;
}

/**
 * The two trusted-root views of one Rekor log key: the v1 API (log ID = SHA-256(SPKI)) and the
 * v2 API (log ID = checkpoint key ID = the C2SP note key ID for `origin`, the log's host name).
 */
export function buildRekorLogs(o: {
  origin: string;
  publicKey: Uint8Array | string;
  validFor: LogValidity;
  v1BaseUrl: string;
  v2BaseUrl?: string;
  operator?: string;
}): { v1: TransparencyLogInstance; v2: TransparencyLogInstance } {
  const v2BaseUrl = o.v2BaseUrl ?? o.v1BaseUrl;
  const host = URL.canParse(v2BaseUrl) ? new URL(v2BaseUrl).hostname : undefined;
  // Rekor v2 clients check checkpoints against the log's origin, which is the v2 URL's host.
  if (host !== o.origin) throw new WaxsealError('ERR_CONFIG', `the v2 base URL host ${host} must equal the log origin ${o.origin}`);
  const key = logKey(o.publicKey);
  const v2Id = noteKeyId(o.origin, key.info);
  const common = { publicKey: key.spki, validFor: o.validFor, ...(o.operator ? { operator: o.operator } : {}) };
  return {
    v1: buildTransparencyLog({ ...common, baseUrl: o.v1BaseUrl }),
    v2: buildTransparencyLog({ ...common, baseUrl: v2BaseUrl, logId: v2Id, checkpointKeyId: v2Id }),
  };
}

const startOf = (r: TimeRange | undefined) => r?.start?.getTime() ?? -Infinity;

/**
 * A TrustedRoot with every list ordered by the start of its validity, oldest first (retired keys
 * before current ones). The media type defaults to the v0.1 spelling every client accepts
 * (sigstore-go rejects the newer ones).
 */
export function buildTrustedRoot(parts: {
  certificateAuthorities: readonly CertificateAuthority[];
  timestampAuthorities: readonly CertificateAuthority[];
  tlogs?: readonly TransparencyLogInstance[];
  ctlogs?: readonly TransparencyLogInstance[];
  mediaType?: string;
}): TrustedRoot {
  const byAuthority = (a: CertificateAuthority, b: CertificateAuthority) => startOf(a.validFor) - startOf(b.validFor);
  const byLog = (a: TransparencyLogInstance, b: TransparencyLogInstance) => startOf(a.publicKey.validFor) - startOf(b.publicKey.validFor);
  return {
    mediaType: parts.mediaType ?? TRUSTED_ROOT_MEDIA_TYPE_V01,
    tlogs: [...(parts.tlogs ?? [])].sort(byLog),
    certificateAuthorities: [...parts.certificateAuthorities].sort(byAuthority),
    ctlogs: [...(parts.ctlogs ?? [])].sort(byLog),
    timestampAuthorities: [...parts.timestampAuthorities].sort(byAuthority),
  };
}

/**
 * SigningConfig v0.2 of an instance run by one operator: one CA (Fulcio API v1), optionally one
 * OIDC provider, one TSA (its full POST URL) and Rekor endpoints, all valid from `validFrom`.
 * Logs and TSAs are chosen with selector ANY unless told otherwise.
 */
export function buildSigningConfig(o: {
  operator: string;
  validFrom: Date;
  caUrl: string;
  oidcUrl?: string;
  tsaUrl: string;
  rekor?: readonly { url: string; majorApiVersion: number }[];
  rekorTlogConfig?: ServiceConfiguration;
  tsaConfig?: ServiceConfiguration;
}): SigningConfig {
  const service = (url: string, majorApiVersion: number): Service => ({
    url,
    majorApiVersion,
    validFor: { start: o.validFrom },
    operator: o.operator,
  });
  return {
    mediaType: SIGNING_CONFIG_MEDIA_TYPE_V02,
    caUrls: [service(o.caUrl, 1)],
    oidcUrls: o.oidcUrl ? [service(o.oidcUrl, 1)] : [],
    rekorTlogUrls: (o.rekor ?? []).map((r) => service(r.url, r.majorApiVersion)),
    tsaUrls: [service(o.tsaUrl, 1)],
    rekorTlogConfig: o.rekorTlogConfig ?? { selector: 'ANY' },
    tsaConfig: o.tsaConfig ?? { selector: 'ANY' },
  };
}
