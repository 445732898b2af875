// Builds the client-facing trust documents of an instance: trusted_root.json (TrustedRoot) and
// signing_config.json (SigningConfig v0.2), in the protobuf-JSON forms sigstore clients read.
import { toBase64, type Certificate } from '@waxseal/core';

export const TRUSTED_ROOT_MEDIA_TYPE = 'application/vnd.dev.sigstore.trustedroot+json;version=0.1';
export const SIGNING_CONFIG_MEDIA_TYPE = 'application/vnd.dev.sigstore.signingconfig.v0.2+json';

export interface ValidFor {
  start: string;
  end?: string;
}

export interface CertificateAuthorityJson {
  subject: { organization?: string; commonName?: string };
  uri: string;
  certChain: { certificates: { rawBytes: string }[] };
  validFor: ValidFor;
}

export interface TransparencyLogJson {
  baseUrl: string;
  hashAlgorithm: 'SHA2_256';
  publicKey: { rawBytes: string; keyDetails: string; validFor: ValidFor };
  logId: { keyId: string };
  checkpointKeyId?: { keyId: string };
}

export interface TrustedRootJson {
  mediaType: string;
  tlogs: TransparencyLogJson[];
  certificateAuthorities: CertificateAuthorityJson[];
  ctlogs: TransparencyLogJson[];
  timestampAuthorities: CertificateAuthorityJson[];
}

/** A CA or TSA entry: `chain` runs leaf-most (issuing CA / TSA leaf) first, root last. */
export function authorityEntry(uri: string, chain: readonly Certificate[], validFor: ValidFor): CertificateAuthorityJson {
  const first = chain[0];
  if (!first) throw new TypeError('authority chain is empty');
  return {
    subject: {
      ...(first.subject['2.5.4.10'] ? { organization: first.subject['2.5.4.10'] } : {}),
      ...(first.subject['2.5.4.3'] ? { commonName: first.subject['2.5.4.3'] } : {}),
    },
    uri,
    certChain: { certificates: chain.map((c) => ({ rawBytes: toBase64(c.der) })) },
    validFor,
  };
}

export function trustedRoot(parts: {
  certificateAuthorities: CertificateAuthorityJson[];
  timestampAuthorities: CertificateAuthorityJson[];
  tlogs?: TransparencyLogJson[];
  ctlogs?: TransparencyLogJson[];
}): TrustedRootJson {
  const byStart = <T extends { validFor?: ValidFor; publicKey?: { validFor: ValidFor } }>(a: T, b: T) =>
    (a.validFor ?? a.publicKey!.validFor).start.localeCompare((b.validFor ?? b.publicKey!.validFor).start);
  return {
    mediaType: TRUSTED_ROOT_MEDIA_TYPE,
    tlogs: [...(parts.tlogs ?? [])].sort(byStart),
    certificateAuthorities: [...parts.certificateAuthorities].sort(byStart),
    ctlogs: [...(parts.ctlogs ?? [])].sort(byStart),
    timestampAuthorities: [...parts.timestampAuthorities].sort(byStart),
  };
}

export interface ServiceJson {
  url: string;
  majorApiVersion: number;
  validFor: ValidFor;
  operator: string;
}

export interface SigningConfigJson {
  mediaType: string;
  caUrls: ServiceJson[];
  oidcUrls: ServiceJson[];
  rekorTlogUrls: ServiceJson[];
  tsaUrls: ServiceJson[];
  rekorTlogConfig: { selector: 'ALL' | 'ANY' | 'EXACT'; count?: number };
  tsaConfig: { selector: 'ALL' | 'ANY' | 'EXACT'; count?: number };
}

/** SigningConfig v0.2. CA/Rekor/OIDC URLs are base URLs; the TSA URL is the full POST URL. */
export function signingConfig(o: {
  operator: string;
  validFrom: string;
  caUrl: string;
  oidcUrl?: string;
  tsaUrl: string;
  rekor?: { url: string; majorApiVersion: 1 | 2 }[];
}): SigningConfigJson {
  const svc = (url: string, majorApiVersion: number): ServiceJson => ({
    url,
    majorApiVersion,
    validFor: { start: o.validFrom },
    operator: o.operator,
  });
  return {
    mediaType: SIGNING_CONFIG_MEDIA_TYPE,
    caUrls: [svc(o.caUrl, 1)],
    oidcUrls: o.oidcUrl ? [svc(o.oidcUrl, 1)] : [],
    rekorTlogUrls: (o.rekor ?? []).map((r) => svc(r.url, r.majorApiVersion)),
    tsaUrls: [svc(o.tsaUrl, 1)],
    rekorTlogConfig: { selector: 'ANY' },
    tsaConfig: { selector: 'ANY' },
  };
}
