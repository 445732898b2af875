// Signing X.509 structures with a Signer: the async edge around the pure builders in
// src/core/x509-build.ts. Used by `ca init`, the dev-mode chains and the CA's leaf issuance.
import {
  assembleCertificate,
  encodeTbs,
  ext,
  keyIdentifier,
  randomSerial,
  simpleName,
  parseCertificate,
  OID,
  type ExtensionSpec,
  type Certificate,
} from '@waxseal/core';
import { signatureAlgorithmIdentifier, type Signer } from './signer.ts';

export interface CertificateRequest {
  /** Subject DER Name (use simpleName()). */
  subject: Uint8Array;
  spki: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  extensions: ExtensionSpec[];
  serial?: Uint8Array;
}

/** Issues a certificate signed by `issuerSigner`; `issuer` is the issuing certificate (absent for self-signed). */
export async function signCertificate(req: CertificateRequest, issuerSigner: Signer, issuer?: Certificate): Promise<Certificate> {
  const sigAlg = signatureAlgorithmIdentifier(issuerSigner);
  const tbs = encodeTbs({
    serial: req.serial ?? randomSerial(),
    signatureAlgorithm: sigAlg,
    issuer: issuer ? issuer.subjectRaw : req.subject,
    subject: req.subject,
    notBefore: req.notBefore,
    notAfter: req.notAfter,
    spki: req.spki,
    extensions: req.extensions,
  });
  const signature = await issuerSigner.sign(tbs);
  return parseCertificate(assembleCertificate(tbs, sigAlg, signature));
}

/** Subject and validity, as every profile below takes them. */
export interface NameAndValidity {
  organization?: string;
  commonName: string;
  /** Default: a minute ago (clock skew). */
  notBefore?: Date;
  notAfter: Date;
}

export interface CaCertOptions extends NameAndValidity {
  /** Path length constraint; undefined means unconstrained. */
  pathLen?: number;
  /** EKUs to put on the CA certificate (Fulcio intermediates carry codeSigning). */
  extKeyUsage?: string[];
}

function request(spki: Uint8Array, o: NameAndValidity, extensions: ExtensionSpec[]): CertificateRequest {
  return {
    subject: simpleName(o.organization, o.commonName),
    spki,
    notBefore: o.notBefore ?? new Date(Date.now() - 60_000),
    notAfter: o.notAfter,
    extensions,
  };
}

/** CA profile: basicConstraints, keyUsage keyCertSign + cRLSign, SKID, AKID (unless self-signed), EKUs if any. */
function caExtensions(spki: Uint8Array, o: CaCertOptions, issuer?: Certificate): ExtensionSpec[] {
  return [
    ext.basicConstraints(true, o.pathLen),
    ext.keyUsage(['keyCertSign', 'cRLSign']),
    ext.subjectKeyId(spki),
    ...(issuer ? [ext.authorityKeyId(keyIdentifier(issuer.spki))] : []),
    ...(o.extKeyUsage ? [ext.extKeyUsage(o.extKeyUsage)] : []),
  ];
}

/** A self-signed root CA certificate for `signer`'s key. */
export function selfSignedRoot(signer: Signer, o: CaCertOptions): Promise<Certificate> {
  return signCertificate(request(signer.publicKeySpki, o, caExtensions(signer.publicKeySpki, o)), signer);
}

/** An intermediate CA certificate for `subjectSpki`, issued by `issuer` / `issuerSigner`. */
export function intermediateCa(subjectSpki: Uint8Array, issuerSigner: Signer, issuer: Certificate, o: CaCertOptions): Promise<Certificate> {
  return signCertificate(request(subjectSpki, o, caExtensions(subjectSpki, o, issuer)), issuerSigner, issuer);
}

/** A TSA leaf: not a CA, exactly one EKU (timeStamping), critical. */
export function tsaLeaf(subjectSpki: Uint8Array, issuerSigner: Signer, issuer: Certificate, o: NameAndValidity): Promise<Certificate> {
  const extensions = [
    ext.keyUsage(['digitalSignature']),
    ext.extKeyUsage([OID.kpTimeStamping], true),
    ext.subjectKeyId(subjectSpki),
    ext.authorityKeyId(keyIdentifier(issuer.spki)),
  ];
  return signCertificate(request(subjectSpki, o, extensions), issuerSigner, issuer);
}
