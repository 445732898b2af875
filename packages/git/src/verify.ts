// Verification of a gitsign-format signature over a git object, offline, as gitsign's
// docs/bundle-cms.md maps it onto a Sigstore bundle: the signature covers DER(SignedAttrs), so
// that is the "artifact" the bundle verifier checks (signature, RFC 3161 timestamp over the
// signature value, embedded log entry, certificate chain at every verified time, SCTs, identity);
// the content binding (messageDigest = SHA-256 of the object without its signature) is checked
// here, first, as its own named check.
import {
  WaxsealError,
  OID,
  bytesEqual,
  sha256,
  toHex,
  toBase64,
  utf8,
  encodePem,
  canonicalBytes,
  certPublicKey,
  verifySignature,
  isSignedBy,
  parseCertificate,
  type Certificate,
} from '@waxseal/core';
import { BUNDLE_MEDIA_TYPE_V03, type Bundle, type TransparencyLogEntry } from '@waxseal/bundle';
import { signerIdentity, type Verifier, type VerificationPolicy, type VerificationResult, type SignerIdentity } from '@waxseal/verify';
import { dearmorSignature, parseCmsSignature, signerCertificate, signerCertificateDer, type CmsSignature } from './cms.ts';
import { decodeTransparencyLogEntry } from './protobuf.ts';

/** The checks this package adds to the verifier's (CHECKS in @waxseal/verify), with their codes. */
export const GIT_CHECKS = {
  'cms.format': 'ERR_VERIFY_SIGNATURE',
  'cms.parse': 'ERR_VERIFY_SIGNATURE',
  'cms.signers': 'ERR_VERIFY_SIGNATURE',
  'cms.certificate': 'ERR_VERIFY_SIGNATURE',
  'git.content-binding': 'ERR_VERIFY_ARTIFACT',
  'git.unsigned': 'ERR_VERIFY_SIGNATURE',
  'git.committer': 'ERR_VERIFY_IDENTITY',
  'threshold.timestamp': 'ERR_VERIFY_THRESHOLD',
} as const;

export interface GitVerifyOptions {
  /**
   * Accept a signature that carries no time proof (no RFC 3161 timestamp, no log entry: gitsign's
   * online mode, whose log entry must be searched for online). Only the CMS signature, the
   * content binding and the certificate's issuer are checked; the certificate's validity at
   * signing time and the identity's age are NOT established. Unsafe.
   */
  withoutTimeProofUnsafe?: boolean;
}

export interface GitVerification {
  /** The bundle verifier's result; absent only with withoutTimeProofUnsafe and no time proof. */
  result: VerificationResult | undefined;
  certificate: Certificate;
  identity: SignerIdentity;
  /** The signer's own clock (signingTime attribute): not trusted. */
  claimedSigningTime: Date | undefined;
  signature: CmsSignature;
}

function fail(check: keyof typeof GIT_CHECKS, message: string): never {
  throw new WaxsealError(GIT_CHECKS[check], `${check}: ${message}`, { check });
}

/**
 * gitsign clears canonicalizedBody before embedding the entry: the hashedrekord v0.0.1 body is
 * rebuilt from the signature, the digest of the signed attributes and the certificate, in Rekor's
 * canonical JSON (what its SET and inclusion proof cover).
 */
export function hashedRekordBody(signedAttributes: Uint8Array, signature: Uint8Array, certificate: Uint8Array): Uint8Array {
  return canonicalBytes({
    apiVersion: '0.0.1',
    kind: 'hashedrekord',
    spec: {
      data: { hash: { algorithm: 'sha256', value: toHex(sha256(signedAttributes)) } },
      signature: { content: toBase64(signature), publicKey: { content: toBase64(utf8(encodePem('CERTIFICATE', certificate))) } },
    },
  });
}

/** The Sigstore bundle (v0.3, message signature) a gitsign signature amounts to. */
export function bundleFromCms(sig: CmsSignature, leafDer: Uint8Array = signerCertificateDer(sig)): Bundle {
  const s = sig.signer;
  const tlogEntries: TransparencyLogEntry[] = s.tlogEntries.map((raw) => {
    const e = decodeTransparencyLogEntry(raw);
    if (e.canonicalizedBody.length === 0) e.canonicalizedBody = hashedRekordBody(s.signedAttributes, s.signature, leafDer);
    return e;
  });
  return {
    mediaType: BUNDLE_MEDIA_TYPE_V03,
    verificationMaterial: { content: { type: 'certificate', certificate: leafDer }, tlogEntries, rfc3161Timestamps: s.timestampTokens },
    content: {
      type: 'messageSignature',
      messageDigest: { algorithm: 'sha256', digest: sha256(s.signedAttributes) },
      signature: s.signature,
    },
  };
}

/**
 * Verifies `signature` (armored or DER) over `payload` (the object without its signature).
 * Throws a WaxsealError naming the failed check.
 */
export function verifyGitSignature(
  payload: Uint8Array,
  signature: Uint8Array | string,
  verifier: Verifier,
  policy: VerificationPolicy,
  options: GitVerifyOptions = {},
): GitVerification {
  const sig = parseCmsSignature(dearmorSignature(signature));
  const leafDer = signerCertificateDer(sig);
  const s = sig.signer;
  if (s.signatureAlgorithm !== OID.ecdsaWithSha256 && s.signatureAlgorithm !== OID.ecdsaWithSha384)
    fail('cms.parse', `unsupported signature algorithm ${s.signatureAlgorithm}`);
  if (!bytesEqual(sha256(payload), s.messageDigest))
    fail('git.content-binding', 'the signed messageDigest is not the SHA-256 of the object without its signature (the object was changed)');
  const base = { claimedSigningTime: s.signingTime, signature: sig };
  if (s.timestampTokens.length === 0 && s.tlogEntries.length === 0) {
    if (!options.withoutTimeProofUnsafe) {
      fail(
        'threshold.timestamp',
        'no trusted time proof: the signature carries neither an RFC 3161 timestamp nor a transparency-log entry (gitsign online mode: its log entry can only be found online)',
      );
    }
    const leaf = signerCertificate(sig);
    return { ...base, certificate: leaf, result: undefined, identity: checkWithoutTime(verifier, sig, leaf) };
  }
  // The verifier parses the certificate itself: it is read once.
  const result = verifier.verify(bundleFromCms(sig, leafDer), { bytes: s.signedAttributes }, policy);
  const signer = result.signer;
  if (signer.type !== 'certificate') throw new TypeError('a certificate bundle verified as a key bundle');
  return { ...base, certificate: signer.certificate, result, identity: signer };
}

/** The waived path: the signature over the signed attributes and an issuer in the trusted root, at no particular time. */
function checkWithoutTime(verifier: Verifier, sig: CmsSignature, leaf: Certificate): SignerIdentity {
  const key = certPublicKey(leaf);
  if (!verifySignature(key, sig.signer.signedAttributes, sig.signer.signature, { hash: 'sha256' }))
    throw new WaxsealError('ERR_VERIFY_SIGNATURE', 'signature: the signature does not verify over the signed attributes', {
      check: 'signature',
    });
  const issued = verifier.trustedRoot.certificateAuthorities.some((ca) =>
    ca.certChain.some((der) => {
      const c = parseCertificate(der);
      return bytesEqual(c.subjectRaw, leaf.issuerRaw) && isSignedBy(leaf, certPublicKey(c));
    }),
  );
  if (!issued)
    throw new WaxsealError('ERR_VERIFY_CERT_CHAIN', 'cert.chain: the certificate was not issued by a CA of the trusted root', {
      check: 'cert.chain',
    });
  return signerIdentity(leaf);
}

/**
 * gitsign.matchCommitter: the certificate's e-mail SAN must be the committer's e-mail, or its
 * URI SAN the committer's name (workload identities).
 */
export function checkCommitterMatch(identity: SignerIdentity, committer: { name: string; email: string } | undefined): void {
  const sans = identity.subjectAlternativeNames;
  const ok =
    committer !== undefined &&
    sans.some((s) => (s.type === 'email' && s.value === committer.email) || (s.type === 'uri' && s.value === committer.name));
  if (!ok)
    fail(
      'git.committer',
      `the certificate identity ${identity.san ?? '?'} is not the committer ${committer ? `${committer.name} <${committer.email}>` : '(none)'}`,
    );
}
