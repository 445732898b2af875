// cosign's detached verification material, turned into what the verifier takes: a signature,
// certificate and RFC 3161 timestamp from separate files become a bundle-equivalent, and trust
// given as loose files (--certificate-chain, --timestamp-certificate-chain, SIGSTORE_REKOR_PUBLIC_KEY,
// SIGSTORE_CT_LOG_PUBLIC_KEY_FILE, ...) becomes a trusted root. Pure functions over bytes, so the
// same verifier runs whichever way the material came.
import { WaxsealError, bytesEqual, decodePem, fromBase64, fromUtf8, parseCertificatesPem, type Certificate } from '@waxseal/core';
import {
  BUNDLE_MEDIA_TYPE_V03,
  buildCertificateAuthority,
  buildTransparencyLog,
  buildTrustedRoot,
  type Bundle,
  type TrustedRoot,
} from '@waxseal/bundle';

const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/** Standard base64 that decodes (what cosign's isb64 accepts), else undefined. */
function base64Bytes(text: string): Uint8Array | undefined {
  const t = text.replace(/\s+/g, '');
  if (t.length === 0 || t.length % 4 !== 0 || !BASE64_RE.test(t)) return undefined;
  try {
    return fromBase64(t);
  } catch {
    return undefined;
  }
}

/** A --signature's content: base64 (what sign-blob writes) or the raw signature bytes. */
export function decodeSignature(content: Uint8Array): Uint8Array {
  const b = base64Bytes(fromUtf8(content));
  return b ?? content;
}

/** A --certificate's content: PEM, or PEM base64-encoded (cosign's --output-certificate default). */
export function decodeCertificate(content: Uint8Array, what = 'certificate'): Certificate {
  let text = fromUtf8(content);
  if (!text.includes('-----BEGIN')) {
    const b = base64Bytes(text);
    if (b) text = fromUtf8(b);
  }
  const certs = parseCertificatesPem(text);
  if (certs.length === 0) throw new WaxsealError('ERR_PEM_PARSE', `${what} holds no PEM certificate`);
  return certs[0]!;
}

/** cosign's RFC 3161 timestamp file: {"SignedRFC3161Timestamp": "<base64 DER>"}. */
export function decodeRfc3161TimestampJson(text: string, what = 'RFC 3161 timestamp'): Uint8Array {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new WaxsealError('ERR_JSON_PARSE', `${what} is not JSON`);
  }
  const v = (doc as { SignedRFC3161Timestamp?: unknown } | null)?.SignedRFC3161Timestamp;
  const der = typeof v === 'string' ? base64Bytes(v) : undefined;
  if (!der || der.length === 0) throw new WaxsealError('ERR_INVALID_INPUT', `${what} has no base64 SignedRFC3161Timestamp`);
  return der;
}

/** A message-signature bundle built from detached parts, for the verifier. */
export function bundleFromDetached(parts: { signature: Uint8Array; certificate?: Certificate; rfc3161Timestamps?: Uint8Array[] }): Bundle {
  return {
    mediaType: BUNDLE_MEDIA_TYPE_V03,
    verificationMaterial: {
      content: parts.certificate ? { type: 'certificate', certificate: parts.certificate.der } : { type: 'publicKey', hint: '' },
      tlogEntries: [],
      rfc3161Timestamps: parts.rfc3161Timestamps ?? [],
    },
    content: { type: 'messageSignature', signature: parts.signature },
  };
}

/** Whether the bundle's signing certificate is `cert` (cosign refuses a --certificate that differs). */
export function bundleHasCertificate(bundle: Bundle, cert: Certificate): boolean {
  const m = bundle.verificationMaterial.content;
  if (m.type === 'certificate') return bytesEqual(m.certificate, cert.der);
  if (m.type === 'x509CertificateChain') return m.certificates[0] !== undefined && bytesEqual(m.certificates[0], cert.der);
  return false;
}

const selfSigned = (c: Certificate) => bytesEqual(c.subjectRaw, c.issuerRaw);

/**
 * Certificate authorities from a PEM list (cosign's chain order, leaf-most first, root last; a
 * SIGSTORE_ROOT_FILE may hold roots and intermediates in any order): one authority per root, with
 * the intermediates in front of it.
 */
function authoritiesFromPem(pem: string, what: string) {
  const certs = parseCertificatesPem(pem);
  const roots = certs.filter(selfSigned);
  if (roots.length === 0) throw new WaxsealError('ERR_CHAIN_INVALID', `${what} must end with a (self-signed) root certificate`);
  const intermediates = certs.filter((c) => !selfSigned(c));
  return roots.map((root) => buildCertificateAuthority({ uri: '', chain: [...intermediates, root] }));
}

const SINCE_EVER = new Date(0);

/** Trust material given as loose files, as cosign takes it when there is no trusted root. */
export interface LooseTrust {
  /** CA certificates (PEM): --certificate-chain, else SIGSTORE_ROOT_FILE. */
  caCertificates?: string;
  /** TSA chain (PEM, leaf first, root last): --timestamp-certificate-chain, else SIGSTORE_TSA_CERTIFICATE_FILE. */
  tsaCertificates?: string;
  /** Transparency log public keys (PEM): SIGSTORE_REKOR_PUBLIC_KEY. */
  rekorPublicKeys?: string;
  /** CT log public keys (PEM): SIGSTORE_CT_LOG_PUBLIC_KEY_FILE. */
  ctLogPublicKeys?: string;
}

function logsFromPem(pem: string) {
  return [...pem.matchAll(/-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g)].map((m) =>
    // A key given out of band carries no validity period: it vouches for any time.
    buildTransparencyLog({ baseUrl: '', publicKey: decodePem(m[0], ['PUBLIC KEY']).der, validFor: { start: SINCE_EVER } }),
  );
}

export function trustedRootFromLooseTrust(t: LooseTrust): TrustedRoot {
  const tlogs = t.rekorPublicKeys ? logsFromPem(t.rekorPublicKeys) : [];
  const ctlogs = t.ctLogPublicKeys ? logsFromPem(t.ctLogPublicKeys) : [];
  if (t.rekorPublicKeys && tlogs.length === 0) throw new WaxsealError('ERR_PEM_PARSE', 'SIGSTORE_REKOR_PUBLIC_KEY holds no PEM public key');
  if (t.ctLogPublicKeys && ctlogs.length === 0)
    throw new WaxsealError('ERR_PEM_PARSE', 'SIGSTORE_CT_LOG_PUBLIC_KEY_FILE holds no PEM public key');
  return buildTrustedRoot({
    certificateAuthorities: t.caCertificates ? authoritiesFromPem(t.caCertificates, 'the CA certificates') : [],
    timestampAuthorities: t.tsaCertificates ? authoritiesFromPem(t.tsaCertificates, 'the timestamp authority chain') : [],
    tlogs,
    ctlogs,
  });
}
