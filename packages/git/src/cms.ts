// gitsign's signature format: a detached CMS SignedData (RFC 5652), PEM-armored as
// `SIGNED MESSAGE`, with exactly one SignerInfo (issuer and serial of the leaf), SHA-256,
// signed attributes contentType/signingTime/messageDigest, the leaf certificate, and the proofs
// as unsigned attributes: the RFC 3161 TimeStampToken over the signature value
// (1.2.840.113549.1.9.16.2.14) and, in gitsign's offline mode, the Rekor TransparencyLogEntry
// (1.3.6.1.4.1.57264.3.1, protobuf, canonicalizedBody cleared).
// Everything parsed here comes from a commit anyone could have written: the reader is strict
// about the structure it relies on and refuses anything else with check `cms.parse`/`cms.signers`.
import {
  WaxsealError,
  OID,
  TAG,
  parseDer,
  child,
  expectTag,
  readOid,
  readSmallInt,
  readIntegerBytes,
  readOctetString,
  readTime,
  isContext,
  seq,
  setOf,
  oid,
  integer,
  ctx,
  implicit,
  octetString,
  x509Time,
  bytesEqual,
  toBase64,
  fromBase64,
  decodeCanonicalBase64,
  parseCertificate,
  type Certificate,
  type DerNode,
} from '@waxseal/core';

export const SIGNED_MESSAGE_LABEL = 'SIGNED MESSAGE';
export const OID_TIMESTAMP_TOKEN = '1.2.840.113549.1.9.16.2.14';
export const OID_REKOR_TLOG_ENTRY = '1.3.6.1.4.1.57264.3.1';

/** The one signer of a gitsign signature, as read. */
export interface CmsSigner {
  issuerRaw: Uint8Array;
  serial: Uint8Array;
  /** DER of the signed attributes as signed (tag SET): the bytes the signature covers. */
  signedAttributes: Uint8Array;
  contentType: string;
  /** SHA-256 of the git object without its signature. */
  messageDigest: Uint8Array;
  /** The signer's own clock: not a trusted time. */
  signingTime: Date | undefined;
  signatureAlgorithm: string;
  signature: Uint8Array;
  /** DER TimeStampTokens (ContentInfo) under 1.2.840.113549.1.9.16.2.14. */
  timestampTokens: Uint8Array[];
  /** Binary TransparencyLogEntry protos under 1.3.6.1.4.1.57264.3.1. */
  tlogEntries: Uint8Array[];
}

export interface CmsSignature {
  /** The whole ContentInfo. */
  der: Uint8Array;
  /** Certificates carried in the SignedData (DER), in order. */
  certificates: Uint8Array[];
  /** Issuer and serial number of each certificate, in the same order. */
  certificateIds: { issuerRaw: Uint8Array; serial: Uint8Array }[];
  signer: CmsSigner;
}

function fail(message: string, check = 'cms.parse', cause?: unknown): never {
  throw new WaxsealError('ERR_VERIFY_SIGNATURE', `${check}: ${message}`, { check, ...(cause === undefined ? {} : { cause }) });
}

/** Runs a parse step; a DER error becomes a cms.parse failure naming `what`. */
function at<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof WaxsealError && e.check !== undefined) throw e;
    fail(`${what}: ${e instanceof Error ? e.message : String(e)}`, 'cms.parse', e);
  }
}

function algorithmOid(n: DerNode, what: string): string {
  expectTag(n, TAG.SEQUENCE, what);
  // Parameters, when present, must be NULL (RSA/SHA-2 style) or absent (ECDSA, SHA-2 per RFC 5754).
  if (n.children.length > 2 || (n.children[1] && n.children[1].tag !== TAG.NULL)) fail(`${what} has unexpected parameters`);
  return readOid(child(n, 0, what), what);
}

function attributes(n: DerNode, what: string): Map<string, DerNode[]> {
  const out = new Map<string, DerNode[]>();
  for (const a of n.children) {
    expectTag(a, TAG.SEQUENCE, `${what} attribute`);
    const type = readOid(child(a, 0, `${what} attribute type`));
    const values = expectTag(child(a, 1, `${what} attribute values`), TAG.SET, `${what} attribute values`);
    if (out.has(type)) fail(`${what} repeat attribute ${type}`);
    out.set(type, [...values.children]);
  }
  return out;
}

function single(attrs: Map<string, DerNode[]>, type: string, name: string): DerNode {
  const v = attrs.get(type);
  if (!v) fail(`the signed attributes have no ${name}`);
  if (v.length !== 1) fail(`the ${name} attribute must have exactly one value`);
  return v[0]!;
}

/** Parses a DER ContentInfo holding gitsign's detached SignedData. */
export function parseCmsSignature(der: Uint8Array): CmsSignature {
  const ci = at('ContentInfo', () => parseDer(der));
  return at('SignedData', () => {
    expectTag(ci, TAG.SEQUENCE, 'ContentInfo');
    if (readOid(child(ci, 0, 'contentType')) !== OID.cmsSignedData) fail('the ContentInfo is not SignedData');
    const wrapper = child(ci, 1, 'content');
    if (!isContext(wrapper, 0) || wrapper.children.length !== 1) fail('the ContentInfo content is not [0] EXPLICIT');
    const sd = expectTag(wrapper.children[0], TAG.SEQUENCE, 'SignedData');
    let i = 0;
    const version = readSmallInt(child(sd, i++, 'SignedData version'));
    if (version !== 1) fail(`SignedData version ${version}, expected 1`);
    expectTag(child(sd, i++, 'digestAlgorithms'), TAG.SET, 'digestAlgorithms');
    const encap = expectTag(child(sd, i++, 'encapContentInfo'), TAG.SEQUENCE, 'encapContentInfo');
    if (readOid(child(encap, 0, 'eContentType')) !== OID.cmsData) fail('the encapsulated content type is not id-data');
    if (encap.children.length !== 1) fail('the signature is not detached: it encapsulates content');
    const certificates: Uint8Array[] = [];
    const certificateIds: { issuerRaw: Uint8Array; serial: Uint8Array }[] = [];
    if (isContext(sd.children[i], 0)) {
      for (const c of sd.children[i++]!.children) {
        if (c.tag !== TAG.SEQUENCE) fail('the certificate set holds something other than X.509 certificates');
        certificates.push(c.raw);
        // TBSCertificate: [0] version, serialNumber, signature, issuer (read from the tree already parsed)
        const tbs = expectTag(child(c, 0, 'TBSCertificate'), TAG.SEQUENCE, 'TBSCertificate');
        const v = isContext(tbs.children[0], 0) ? 1 : 0;
        certificateIds.push({
          serial: readIntegerBytes(child(tbs, v, 'serialNumber')),
          issuerRaw: expectTag(child(tbs, v + 2, 'issuer'), TAG.SEQUENCE, 'issuer').raw,
        });
      }
    }
    if (isContext(sd.children[i], 1)) i++; // CRLs: not used
    const infos = expectTag(child(sd, i++, 'signerInfos'), TAG.SET, 'signerInfos');
    if (i !== sd.children.length) fail('trailing fields after signerInfos');
    if (infos.children.length !== 1) fail(`${infos.children.length} signers, gitsign signatures have exactly one`, 'cms.signers');
    return { der, certificates, certificateIds, signer: parseSignerInfo(infos.children[0]!) };
  });
}

function parseSignerInfo(si: DerNode): CmsSigner {
  expectTag(si, TAG.SEQUENCE, 'SignerInfo');
  let i = 0;
  if (readSmallInt(child(si, i++, 'SignerInfo version')) !== 1) fail('SignerInfo version must be 1 (issuer and serial number)');
  const sid = expectTag(child(si, i++, 'sid'), TAG.SEQUENCE, 'IssuerAndSerialNumber');
  const issuerRaw = expectTag(child(sid, 0, 'issuer'), TAG.SEQUENCE, 'issuer').raw;
  const serial = readIntegerBytes(child(sid, 1, 'serial number'));
  const digestAlgorithm = algorithmOid(child(si, i++, 'digestAlgorithm'), 'digestAlgorithm');
  if (digestAlgorithm !== OID.sha256) fail(`digest algorithm ${digestAlgorithm}, expected SHA-256`);
  const signed = child(si, i++, 'signedAttrs');
  if (!isContext(signed, 0) || !(signed.tag & 0x20)) fail('the SignerInfo has no signed attributes');
  // The signature covers the attributes with the SET tag, not the [0] IMPLICIT one.
  const signedAttributes = Uint8Array.from(signed.raw);
  signedAttributes[0] = TAG.SET;
  const attrs = attributes(signed, 'signed');
  const contentType = readOid(single(attrs, OID.attrContentType, 'contentType'), 'contentType');
  if (contentType !== OID.cmsData) fail('the signed content type is not id-data');
  const messageDigest = readOctetString(single(attrs, OID.attrMessageDigest, 'messageDigest'), 'messageDigest');
  if (messageDigest.length !== 32) fail('the messageDigest is not a SHA-256 digest');
  const st = attrs.get(OID.attrSigningTime);
  const signingTime = st ? readTime(single(attrs, OID.attrSigningTime, 'signingTime'), 'signingTime') : undefined;
  const signatureAlgorithm = algorithmOid(child(si, i++, 'signatureAlgorithm'), 'signatureAlgorithm');
  const signature = readOctetString(child(si, i++, 'signature'), 'signature');
  const timestampTokens: Uint8Array[] = [];
  const tlogEntries: Uint8Array[] = [];
  const unsigned = si.children[i];
  if (unsigned) {
    if (!isContext(unsigned, 1) || !(unsigned.tag & 0x20)) fail('unexpected field after the signature');
    i++;
    const u = attributes(unsigned, 'unsigned');
    for (const v of u.get(OID_TIMESTAMP_TOKEN) ?? []) timestampTokens.push(expectTag(v, TAG.SEQUENCE, 'TimeStampToken').raw);
    for (const v of u.get(OID_REKOR_TLOG_ENTRY) ?? []) tlogEntries.push(readOctetString(v, 'TransparencyLogEntry'));
    // Older gitsign versions' separate 1.3.6.1.4.1.57264.3.* attributes carry nothing this verifier relies on.
  }
  if (i !== si.children.length) fail('trailing fields in the SignerInfo');
  return {
    issuerRaw,
    serial,
    signedAttributes,
    contentType,
    messageDigest,
    signingTime,
    signatureAlgorithm,
    signature,
    timestampTokens,
    tlogEntries,
  };
}

/** DER of the certificate the SignerInfo names (by issuer and serial number). */
export function signerCertificateDer(sig: CmsSignature): Uint8Array {
  const i = sig.certificateIds.findIndex((c) => bytesEqual(c.issuerRaw, sig.signer.issuerRaw) && bytesEqual(c.serial, sig.signer.serial));
  if (i < 0) fail('the signature carries no certificate for its signer', 'cms.certificate');
  return sig.certificates[i]!;
}

/** The certificate the SignerInfo names, parsed. */
export function signerCertificate(sig: CmsSignature): Certificate {
  const der = signerCertificateDer(sig);
  return at('the signer certificate', () => parseCertificate(der));
}

// ---------------------------------------------------------------- writer

/** The signed attributes gitsign writes (DER SET, the bytes to sign). */
export function signedAttributes(messageDigest: Uint8Array, signingTime: Date): Uint8Array {
  const attr = (type: string, value: Uint8Array) => seq(oid(type), setOf(value));
  return setOf(
    attr(OID.attrContentType, oid(OID.cmsData)),
    attr(OID.attrSigningTime, x509Time(signingTime)),
    attr(OID.attrMessageDigest, octetString(messageDigest)),
  );
}

export interface CmsParts {
  certificate: Certificate;
  /** From signedAttributes(). */
  signedAttributes: Uint8Array;
  /** ECDSA P-256 with SHA-256, DER. */
  signature: Uint8Array;
  /** DER TimeStampToken (ContentInfo) or TimeStampResp (its token is taken). */
  timestamp?: Uint8Array;
  /** Binary TransparencyLogEntry to embed (gitsign offline mode). */
  tlogEntry?: Uint8Array;
}

/** The TimeStampToken of a TimeStampResp, or the token itself. */
export function timeStampToken(der: Uint8Array): Uint8Array {
  const n = parseDer(der);
  // TimeStampResp = SEQUENCE { PKIStatusInfo SEQUENCE, token ContentInfo }; a token starts with an OID.
  return n.children[0]?.tag === TAG.OID ? der : child(n, 1, 'timeStampToken').raw;
}

/** Assembles the DER ContentInfo (detached SignedData, one signer). */
export function assembleCmsSignature(p: CmsParts): Uint8Array {
  const sha256Alg = seq(oid(OID.sha256));
  const unsigned: Uint8Array[] = [];
  if (p.timestamp) unsigned.push(seq(oid(OID_TIMESTAMP_TOKEN), setOf(timeStampToken(p.timestamp))));
  if (p.tlogEntry) unsigned.push(seq(oid(OID_REKOR_TLOG_ENTRY), setOf(octetString(p.tlogEntry))));
  const signerInfo = seq(
    integer(1),
    seq(p.certificate.issuerRaw, integer(p.certificate.serial)),
    sha256Alg,
    implicit(0, p.signedAttributes),
    seq(oid(OID.ecdsaWithSha256)),
    octetString(p.signature),
    ...(unsigned.length ? [implicit(1, setOf(...unsigned))] : []),
  );
  const signedData = seq(integer(1), setOf(sha256Alg), seq(oid(OID.cmsData)), ctx(0, p.certificate.der), setOf(signerInfo));
  return seq(oid(OID.cmsSignedData), ctx(0, signedData));
}

/** PEM armor as git stores it (64-column base64). */
export function armorSignature(der: Uint8Array): string {
  const lines = toBase64(der).match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${SIGNED_MESSAGE_LABEL}-----\n${lines.join('\n')}\n-----END ${SIGNED_MESSAGE_LABEL}-----\n`;
}

const ARMOR_RE = /^-----BEGIN SIGNED MESSAGE-----\r?\n([A-Za-z0-9+/=\s]*?)-----END SIGNED MESSAGE-----\s*$/;

const ARMOR_BEGIN = '-----BEGIN SIGNED MESSAGE-----';
const ARMOR_END = '-----END SIGNED MESSAGE-----';

/**
 * The common case without the regular expressions (they cost more than the rest of the parse):
 * one armor around base64 that re-encodes to itself, which ARMOR_RE and fromBase64 accept with
 * the same bytes. Anything else is left to them (undefined), and to their error messages.
 */
function dearmorCanonical(text: string): Uint8Array | undefined {
  if (!text.startsWith(ARMOR_BEGIN) || !text.endsWith(ARMOR_END)) return undefined;
  let start = ARMOR_BEGIN.length;
  if (text.charCodeAt(start) === 0x0d) start++;
  if (text.charCodeAt(start) !== 0x0a) return undefined;
  return decodeCanonicalBase64(text.slice(start + 1, text.length - ARMOR_END.length).replace(/\s+/g, ''));
}

/** The DER inside a `SIGNED MESSAGE` armor (also accepts DER or a `PKCS7`/`CMS` label as written by other tools). */
export function dearmorSignature(input: Uint8Array | string): Uint8Array {
  const text = typeof input === 'string' ? input : Buffer.from(input).toString('latin1');
  if (typeof input !== 'string' && input[0] === TAG.SEQUENCE) return input;
  const trimmed = text.trim();
  const fast = dearmorCanonical(trimmed);
  if (fast) return fast;
  const m = ARMOR_RE.exec(trimmed);
  if (!m) {
    if (/-----BEGIN PGP SIGNATURE-----/.test(text)) fail('this is an OpenPGP signature, not an X.509 (CMS) one', 'cms.format');
    fail('the signature is not a PEM block labelled SIGNED MESSAGE', 'cms.format');
  }
  return at('armor', () => fromBase64(m[1]!.replace(/\s+/g, ''), 'SIGNED MESSAGE body'));
}
