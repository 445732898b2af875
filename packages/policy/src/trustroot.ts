// TrustRoot `sigstoreKeys` <-> a Sigstore trusted root, as policy-controller converts them
// (pkg/apis/config/sigstore_keys.go): each CA and TSA keeps the TrustRoot's subject and URI and
// its PEM chain in order; validity starts at the epoch (a TrustRoot carries no window); log IDs
// are SHA-256 of the public key. The reverse direction prints a TrustRoot for an instance (the
// `chainctl sigstore ca describe` equivalent), with chains as base64 of PEM, as the CRD's byte
// fields are written.
import { basicConstraints, encodePem, toBase64, utf8, WaxsealError, type Certificate } from '@waxseal/core';
import {
  buildTransparencyLog,
  TRUSTED_ROOT_MEDIA_TYPE_V01,
  type CertificateAuthority,
  type TransparencyLogInstance,
  type TrustedRoot,
} from '@waxseal/bundle';
import type { SigstoreKeys, TrustRoot, TrustRootAuthority, TrustRootLog } from './resources.ts';

const EPOCH = new Date(0);

function authority(a: TrustRootAuthority, tsa: boolean): CertificateAuthority {
  let certs = a.certificates;
  if (tsa) {
    // The TSA's own certificate leads the chain whatever order the TrustRoot lists it in.
    const leafIdx = certs.findIndex((c) => !isCa(c));
    if (leafIdx > 0) certs = [certs[leafIdx]!, ...certs.filter((_, i) => i !== leafIdx)];
  }
  return {
    subject: { organization: a.subject.organization, commonName: a.subject.commonName },
    uri: a.uri,
    certChain: certs.map((c) => c.der),
    validFor: { start: EPOCH },
  };
}

function isCa(c: Certificate): boolean {
  // Same rule as policy-controller's SplitPEMCertificateChain: the CA flag of basicConstraints.
  try {
    return basicConstraints(c)?.ca === true;
  } catch {
    return false;
  }
}

function log(l: TrustRootLog, where: string): TransparencyLogInstance {
  try {
    const inst = buildTransparencyLog({ baseUrl: l.baseURL, publicKey: l.publicKeyPem, validFor: { start: EPOCH } });
    const h = l.hashAlgorithm.toLowerCase().replace('-', '');
    if (h === 'sha384' || h === 'sha512') inst.hashAlgorithm = h;
    return inst;
  } catch (e) {
    throw new WaxsealError('ERR_TRUSTED_ROOT_INVALID', `${where}: ${(e as Error).message}`, { cause: e });
  }
}

/** The trusted root of a TrustRoot's sigstoreKeys (all four kinds of material). */
export function sigstoreKeysToTrustedRoot(keys: SigstoreKeys, name = 'TrustRoot'): TrustedRoot {
  return {
    mediaType: TRUSTED_ROOT_MEDIA_TYPE_V01,
    certificateAuthorities: keys.certificateAuthorities.map((a) => authority(a, false)),
    timestampAuthorities: keys.timestampAuthorities.map((a) => authority(a, true)),
    tlogs: keys.tLogs.map((l, i) => log(l, `${name} tLogs[${i}]`)),
    ctlogs: keys.ctLogs.map((l, i) => log(l, `${name} ctLogs[${i}]`)),
  };
}

/**
 * A TrustRoot's trusted root: its sigstoreKeys, or what the app layer fetched through TUF for
 * `remote`/`repository` (passed in `fetched`). Throws when neither is available.
 */
export function trustRootMaterial(tr: TrustRoot, fetched?: TrustedRoot): TrustedRoot {
  if (tr.spec.sigstoreKeys) return sigstoreKeysToTrustedRoot(tr.spec.sigstoreKeys, `TrustRoot ${tr.name}`);
  if (fetched) return fetched;
  const how = tr.spec.remote ? `remote TUF repository ${tr.spec.remote.mirror}` : 'air-gapped TUF repository';
  throw new WaxsealError('ERR_UNAVAILABLE', `TrustRoot ${tr.name}: the trusted root from its ${how} has not been loaded`);
}

function chainPem(ders: Uint8Array[]): string {
  return ders.map((d) => encodePem('CERTIFICATE', d)).join('');
}

function subjectOf(a: CertificateAuthority, fallbackOrg: string): { organization: string; commonName: string } {
  return {
    organization: a.subject.organization || fallbackOrg,
    commonName: a.subject.commonName || a.uri || 'unknown',
  };
}

/**
 * A TrustRoot resource (policy.sigstore.dev/v1alpha1, sigstoreKeys) holding a trusted root's
 * CAs and TSAs (and, with `logs`, its Rekor and CT log keys): chains and keys as base64 of PEM.
 */
export function trustRootFromTrustedRoot(
  root: TrustedRoot,
  name: string,
  o: { organization?: string; logs?: boolean } = {},
): Record<string, unknown> {
  const org = o.organization ?? 'waxseal';
  const ca = (a: CertificateAuthority) => ({ subject: subjectOf(a, org), uri: a.uri, certChain: toBase64(utf8(chainPem(a.certChain))) });
  const tl = (l: TransparencyLogInstance) => ({
    baseURL: l.baseUrl,
    hashAlgorithm: l.hashAlgorithm === 'sha256' ? 'sha-256' : l.hashAlgorithm === 'sha384' ? 'sha-384' : 'sha-512',
    publicKey: toBase64(utf8(encodePem('PUBLIC KEY', l.publicKey.rawBytes ?? new Uint8Array()))),
  });
  const now = Date.now();
  // Only material valid now: a rotated-out key would be trusted forever (a TrustRoot has no windows).
  const current = <T extends { validFor?: { end?: Date } }>(x: T) => !x.validFor?.end || x.validFor.end.getTime() > now;
  const sigstoreKeys: Record<string, unknown> = {
    certificateAuthorities: root.certificateAuthorities.filter(current).map(ca),
  };
  const tsas = root.timestampAuthorities.filter(current).map(ca);
  if (tsas.length) sigstoreKeys.timestampAuthorities = tsas;
  const tlogs = root.tlogs.filter((l) => current(l.publicKey)).map(tl);
  // Rekor v1 and v2 views of one key are the same key: list it once.
  const uniq = (xs: Record<string, unknown>[]) => xs.filter((x, i) => xs.findIndex((y) => y.publicKey === x.publicKey) === i);
  if (tlogs.length && o.logs) sigstoreKeys.tLogs = uniq(tlogs);
  const ctlogs = root.ctlogs.filter((l) => current(l.publicKey)).map(tl);
  if (ctlogs.length && o.logs) sigstoreKeys.ctLogs = uniq(ctlogs);
  return { apiVersion: 'policy.sigstore.dev/v1alpha1', kind: 'TrustRoot', metadata: { name }, spec: { sigstoreKeys } };
}

/**
 * The ClusterImagePolicy that admits images signed keylessly by `identity` on an instance without
 * a CT log, its signatures timestamped by the instance's TSA (Chainguard Enforce Signing's
 * example policy): a keyless authority (url, identities, trustRootRef, insecureIgnoreSCT) with
 * an rfc3161timestamp authority on the same TrustRoot.
 */
export function keylessClusterImagePolicy(o: {
  name: string;
  trustRootName: string;
  url: string;
  glob: string;
  identity?: string;
  identityRegExp?: string;
  issuer?: string;
  issuerRegExp?: string;
}): Record<string, unknown> {
  const id: Record<string, string> = {};
  if (o.issuer) id.issuer = o.issuer;
  if (o.issuerRegExp) id.issuerRegExp = o.issuerRegExp;
  if (o.identity) id.subject = o.identity;
  if (o.identityRegExp) id.subjectRegExp = o.identityRegExp;
  return {
    apiVersion: 'policy.sigstore.dev/v1beta1',
    kind: 'ClusterImagePolicy',
    metadata: { name: o.name },
    spec: {
      images: [{ glob: o.glob }],
      authorities: [
        {
          keyless: { trustRootRef: o.trustRootName, url: o.url, identities: [id], insecureIgnoreSCT: true },
          rfc3161timestamp: { trustRootRef: o.trustRootName },
        },
      ],
    },
  };
}
