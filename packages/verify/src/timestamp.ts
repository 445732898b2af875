// RFC 3161 timestamps: parse a TimeStampResp (or a bare TimeStampToken ContentInfo) and verify
// it against the TSAs of a trusted root as sigstore-go / timestamp-authority's
// pkg/verification do: CMS SignedData signature over the signed attributes, messageDigest over
// the TSTInfo, contentType, ESSCertID(v2) binding the TSA leaf, the TSA chain valid at genTime,
// leaf EKU rules, TSA validFor containing genTime, and the message imprint covering the data.
import { createHash } from 'node:crypto';
import {
  WaxsealError,
  bytesEqual,
  concat,
  parseDer,
  expectTag,
  child,
  readOid,
  readIntegerBytes,
  readOctetString,
  readTime,
  isContext,
  TAG,
  OID,
  digest,
  hashFromOid,
  verifySignature,
  HASH_SIZE,
  extendedKeyUsage,
  subjectKeyId,
  getExtension,
  certPublicKey,
  signatureAlgorithmHash,
  type DerNode,
  type HashName,
  type Certificate,
} from '@waxseal/core';
import { fail, type CheckName } from './fail.ts';
import {
  type Authority,
  authorityWindow,
  checkIssuingPath,
  checkPathAt,
  isCa,
  inRange,
  parseCertificateOnce,
  unhandledCriticalExtension,
} from './chain.ts';

const SHA1_OID = '1.3.14.3.2.26';
const IMPRINT_SIZES: Record<string, number> = { [OID.sha256]: 32, [OID.sha384]: 48, [OID.sha512]: 64, [SHA1_OID]: 20 };
const PKI_STATUS_GRANTED = 0;
const PKI_STATUS_GRANTED_WITH_MODS = 1;

export interface ParsedTimestamp {
  /** The TimeStampToken (ContentInfo) DER. */
  token: Uint8Array;
  /** TSTInfo fields. */
  policy: string;
  imprintAlgorithm: string;
  hashedMessage: Uint8Array;
  serialNumber: Uint8Array;
  genTime: Date;
  nonce?: Uint8Array;
  /** The DER TSTInfo (the CMS eContent), as signed. */
  tstInfo: Uint8Array;
  /** Certificates carried in the SignedData (may be empty). */
  certificates: Certificate[];
  signer: SignerInfo;
}

export interface SignerInfo {
  /** issuerAndSerialNumber, or subjectKeyIdentifier. */
  sid: { issuer: Uint8Array; serial: Uint8Array } | { subjectKeyId: Uint8Array };
  digestAlgorithm: string;
  /** DER of the signed attributes with the SET OF tag: the bytes the signature covers. */
  signedAttributes: Uint8Array;
  signatureAlgorithm: string;
  signature: Uint8Array;
  contentType?: string;
  messageDigest?: Uint8Array;
  /** ESSCertIDv2 (hash algorithm OID, certificate hash) of the first certificate listed. */
  essCertIdV2?: { hashAlgorithm: string; certHash: Uint8Array };
  /** ESSCertID (SHA-1 certificate hash) of the first certificate listed. */
  essCertId?: { certHash: Uint8Array };
}

function bad(message: string): never {
  throw new WaxsealError('ERR_VERIFY_TIMESTAMP', `timestamp.parse: ${message}`, { check: 'timestamp.parse' });
}

function algorithmOid(n: DerNode | undefined, what: string): string {
  return readOid(child(expectTag(n, TAG.SEQUENCE, what), 0, `${what} algorithm`), `${what} algorithm`);
}

function readAttributes(n: DerNode, s: SignerInfo): void {
  const seen = new Set<string>();
  for (const attr of n.children) {
    expectTag(attr, TAG.SEQUENCE, 'Attribute');
    const type = readOid(child(attr, 0, 'attribute type'));
    if (seen.has(type)) bad(`duplicate signed attribute ${type}`);
    seen.add(type);
    const values = expectTag(child(attr, 1, 'attribute values'), TAG.SET, 'attribute values');
    if (values.children.length !== 1) bad(`signed attribute ${type} must have exactly one value`);
    const v = values.children[0]!;
    switch (type) {
      case OID.attrContentType:
        s.contentType = readOid(v, 'contentType');
        break;
      case OID.attrMessageDigest:
        s.messageDigest = readOctetString(v, 'messageDigest');
        break;
      case OID.attrSigningCertificateV2: {
        const certs = expectTag(child(expectTag(v, TAG.SEQUENCE, 'SigningCertificateV2'), 0, 'certs'), TAG.SEQUENCE, 'certs');
        const first = expectTag(child(certs, 0, 'ESSCertIDv2'), TAG.SEQUENCE, 'ESSCertIDv2');
        let i = 0;
        let hashAlgorithm: string = OID.sha256; // DEFAULT sha256
        if (first.children[0]?.tag === TAG.SEQUENCE) hashAlgorithm = algorithmOid(first.children[i++], 'ESSCertIDv2 hashAlgorithm');
        s.essCertIdV2 = { hashAlgorithm, certHash: readOctetString(first.children[i], 'ESSCertIDv2 certHash') };
        break;
      }
      case OID.attrSigningCertificate: {
        const certs = expectTag(child(expectTag(v, TAG.SEQUENCE, 'SigningCertificate'), 0, 'certs'), TAG.SEQUENCE, 'certs');
        const first = expectTag(child(certs, 0, 'ESSCertID'), TAG.SEQUENCE, 'ESSCertID');
        s.essCertId = { certHash: readOctetString(first.children[0], 'ESSCertID certHash') };
        break;
      }
      default:
        break; // signingTime and others are not needed
    }
  }
}

function parseSignerInfo(n: DerNode): SignerInfo {
  expectTag(n, TAG.SEQUENCE, 'SignerInfo');
  let i = 1; // version
  const sidNode = child(n, i++, 'sid');
  let sid: SignerInfo['sid'];
  if (sidNode.tag === TAG.SEQUENCE) {
    sid = {
      issuer: expectTag(child(sidNode, 0, 'issuer'), TAG.SEQUENCE, 'issuer').raw,
      serial: readIntegerBytes(child(sidNode, 1, 'serialNumber'), 'serialNumber'),
    };
  } else if (sidNode.tag === 0x80) {
    sid = { subjectKeyId: sidNode.value };
  } else {
    bad('unsupported SignerIdentifier');
  }
  const digestAlgorithm = algorithmOid(n.children[i++], 'digestAlgorithm');
  const attrs = n.children[i];
  if (attrs?.tag !== 0xa0) bad('SignerInfo has no signed attributes (RFC 3161 requires them)');
  i++;
  // The signature covers the attributes re-tagged as a SET OF (RFC 5652 5.4).
  const signedAttributes = concat(Uint8Array.of(TAG.SET), attrs.raw.subarray(1));
  const signatureAlgorithm = algorithmOid(n.children[i++], 'signatureAlgorithm');
  const signature = readOctetString(n.children[i++], 'signature');
  const s: SignerInfo = { sid, digestAlgorithm, signedAttributes, signatureAlgorithm, signature };
  readAttributes(attrs, s);
  return s;
}

function parseTstInfo(
  der: Uint8Array,
): Pick<ParsedTimestamp, 'policy' | 'imprintAlgorithm' | 'hashedMessage' | 'serialNumber' | 'genTime' | 'nonce'> {
  const n = expectTag(parseDer(der), TAG.SEQUENCE, 'TSTInfo');
  const version = readIntegerBytes(child(n, 0, 'version'));
  if (version.length !== 1 || version[0] !== 1) bad('TSTInfo version must be 1');
  const policy = readOid(child(n, 1, 'policy'), 'policy');
  const imprint = expectTag(child(n, 2, 'messageImprint'), TAG.SEQUENCE, 'messageImprint');
  const imprintAlgorithm = algorithmOid(imprint.children[0], 'messageImprint hashAlgorithm');
  const hashedMessage = readOctetString(imprint.children[1], 'messageImprint hashedMessage');
  // A digest whose length contradicts its algorithm is malformed, not merely "for other data".
  const size = IMPRINT_SIZES[imprintAlgorithm];
  if (size !== undefined && hashedMessage.length !== size)
    bad(`message imprint is ${hashedMessage.length} bytes, not a ${size}-byte digest`);
  const serialNumber = readIntegerBytes(child(n, 3, 'serialNumber'), 'serialNumber');
  const genNode = expectTag(child(n, 4, 'genTime'), TAG.GENERALIZED_TIME, 'genTime');
  const genTime = readTime(genNode, 'genTime');
  let nonce: Uint8Array | undefined;
  for (const c of n.children.slice(5)) if (c.tag === TAG.INTEGER) nonce = readIntegerBytes(c, 'nonce');
  return nonce === undefined
    ? { policy, imprintAlgorithm, hashedMessage, serialNumber, genTime }
    : { policy, imprintAlgorithm, hashedMessage, serialNumber, genTime, nonce };
}

function parseToken(ci: DerNode): ParsedTimestamp {
  expectTag(ci, TAG.SEQUENCE, 'ContentInfo');
  if (readOid(child(ci, 0, 'contentType')) !== OID.cmsSignedData) bad('token is not CMS SignedData');
  const wrapped = child(ci, 1, 'content');
  if (!isContext(wrapped, 0) || (wrapped.tag & 0x20) === 0) bad('ContentInfo content must be [0] EXPLICIT');
  const sd = expectTag(child(wrapped, 0, 'SignedData'), TAG.SEQUENCE, 'SignedData');
  let i = 1; // version
  expectTag(child(sd, i++, 'digestAlgorithms'), TAG.SET, 'digestAlgorithms');
  const encap = expectTag(child(sd, i++, 'encapContentInfo'), TAG.SEQUENCE, 'encapContentInfo');
  if (readOid(child(encap, 0, 'eContentType')) !== OID.ctTstInfo) bad('encapsulated content is not a TSTInfo');
  const eWrap = child(encap, 1, 'eContent');
  if (!isContext(eWrap, 0)) bad('eContent must be [0] EXPLICIT');
  const tstInfo = readOctetString(child(eWrap, 0, 'eContent'), 'eContent');
  const certificates: Certificate[] = [];
  if (sd.children[i]?.tag === 0xa0) {
    for (const c of sd.children[i]!.children) if (c.tag === TAG.SEQUENCE) certificates.push(parseCertificateOnce(c.raw));
    i++;
  }
  if (sd.children[i]?.tag === 0xa1) i++; // crls
  const signerInfos = expectTag(child(sd, i, 'signerInfos'), TAG.SET, 'signerInfos');
  if (signerInfos.children.length !== 1) bad(`expected exactly one SignerInfo, found ${signerInfos.children.length}`);
  return { token: ci.raw, ...parseTstInfo(tstInfo), tstInfo, certificates, signer: parseSignerInfo(signerInfos.children[0]!) };
}

/**
 * Parses a DER TimeStampResp (status must be granted) or a bare TimeStampToken. Throws a
 * WaxsealError (check "timestamp.parse") on anything malformed; never anything else.
 */
export function parseTimestampResponse(der: Uint8Array): ParsedTimestamp {
  try {
    const top = expectTag(parseDer(der), TAG.SEQUENCE, 'TimeStampResp');
    const first = child(top, 0, 'status or contentType');
    if (first.tag === TAG.OID) return parseToken(top); // bare ContentInfo
    expectTag(first, TAG.SEQUENCE, 'PKIStatusInfo');
    const status = readIntegerBytes(child(first, 0, 'status'), 'status');
    if (status.length !== 1 || (status[0] !== PKI_STATUS_GRANTED && status[0] !== PKI_STATUS_GRANTED_WITH_MODS)) {
      bad(`timestamp response status ${status[0]} is not granted`);
    }
    if (top.children.length !== 2) bad('granted response carries no timeStampToken');
    return parseToken(top.children[1]!);
  } catch (e) {
    if (e instanceof WaxsealError && e.check === 'timestamp.parse') throw e;
    const why = e instanceof Error ? e.message : String(e);
    throw new WaxsealError('ERR_VERIFY_TIMESTAMP', `timestamp.parse: ${why}`, { check: 'timestamp.parse', cause: e });
  }
}

// ---------------------------------------------------------------- verification

function hashOf(oid: string): HashName | undefined {
  try {
    return hashFromOid(oid);
  } catch {
    return undefined;
  }
}

function sidMatches(sid: SignerInfo['sid'], cert: Certificate): boolean {
  if ('subjectKeyId' in sid) {
    const ski = subjectKeyId(cert);
    return ski !== undefined && bytesEqual(ski, sid.subjectKeyId);
  }
  return bytesEqual(sid.issuer, cert.issuerRaw) && bytesEqual(sid.serial, cert.serial);
}

/** Leaf EKU rules (timestamp-authority v2.1.3): exactly one EKU, timeStamping, critical; not a CA. */
function tsaLeafProblem(leaf: Certificate): string | null {
  if (isCa(leaf)) return 'TSA signing certificate is a CA certificate';
  const ext = getExtension(leaf, OID.extKeyUsage);
  if (!ext) return 'TSA signing certificate has no extended key usage';
  if (!ext.critical) return 'TSA signing certificate extended key usage is not critical';
  const ekus = extendedKeyUsage(leaf) ?? [];
  if (ekus.length !== 1 || ekus[0] !== OID.kpTimeStamping)
    return 'TSA signing certificate must have exactly one extended key usage, timeStamping';
  const crit = unhandledCriticalExtension(leaf);
  if (crit) return `TSA signing certificate has an unhandled critical extension ${crit}`;
  return null;
}

function essMatches(s: SignerInfo, cert: Certificate): boolean {
  if (s.essCertIdV2) {
    const h = hashOf(s.essCertIdV2.hashAlgorithm);
    return h !== undefined && bytesEqual(digest(h, cert.der), s.essCertIdV2.certHash);
  }
  if (s.essCertId) return bytesEqual(new Uint8Array(createHash('sha1').update(cert.der).digest()), s.essCertId.certHash);
  return false;
}

/** Verifies the CMS signature of the signer with `cert`'s key. */
function cmsSignatureOk(t: ParsedTimestamp, cert: Certificate): boolean {
  const s = t.signer;
  let hash: HashName | null | undefined;
  try {
    hash = signatureAlgorithmHash(s.signatureAlgorithm);
  } catch {
    // Bare key algorithm OIDs (rsaEncryption, ecPublicKey): the digest algorithm decides.
    hash = s.signatureAlgorithm === OID.rsaEncryption || s.signatureAlgorithm === OID.ecPublicKey ? hashOf(s.digestAlgorithm) : undefined;
  }
  if (hash === undefined) return false;
  let key;
  try {
    key = certPublicKey(cert);
  } catch {
    return false;
  }
  return verifySignature(key, s.signedAttributes, s.signature, hash === null ? {} : { hash });
}

export interface TimestampVerification {
  time: Date;
  authority: Authority;
}

/**
 * Verifies one parsed timestamp over `data` (the signature bytes) against the trusted TSAs.
 * Returns the verified time and the TSA, or throws a WaxsealError naming the failed check.
 */
export function verifyTimestamp(t: ParsedTimestamp, data: Uint8Array, tsas: readonly Authority[]): TimestampVerification {
  const imprintHash = hashOf(t.imprintAlgorithm);
  if (imprintHash === undefined) fail('timestamp.imprint', `unsupported or weak message imprint algorithm ${t.imprintAlgorithm}`);
  if (t.hashedMessage.length !== HASH_SIZE[imprintHash] || !bytesEqual(digest(imprintHash, data), t.hashedMessage)) {
    fail('timestamp.imprint', "the message imprint does not cover this bundle's signature");
  }
  const s = t.signer;
  if (s.contentType !== OID.ctTstInfo) fail('timestamp.signature', 'signed contentType attribute is missing or not id-ct-TSTInfo');
  const dHash = hashOf(s.digestAlgorithm);
  if (dHash === undefined) fail('timestamp.signature', `unsupported digest algorithm ${s.digestAlgorithm}`);
  if (!s.messageDigest || !bytesEqual(digest(dHash, t.tstInfo), s.messageDigest))
    fail('timestamp.signature', 'messageDigest attribute does not match the TSTInfo');
  if (!s.essCertIdV2 && !s.essCertId) fail('timestamp.signature', 'no signingCertificate(V2) attribute');

  let reason = tsas.length === 0 ? 'the trusted root lists no timestamp authorities' : 'no trusted timestamp authority matches the signer';
  let reasonCheck: CheckName = 'timestamp.authority';
  for (const tsa of tsas) {
    if (tsa.chain.length === 0) continue;
    // The signing certificate: the TSA's leaf from the trusted root, or, when the trusted
    // chain starts at a CA, the certificate the response carries.
    let signer: Certificate | undefined;
    let issuer: number;
    if (!isCa(tsa.chain[0]!)) {
      signer = tsa.chain[0]!;
      if (!sidMatches(s.sid, signer)) continue;
      issuer = tsa.chain.length > 1 ? 1 : -1;
    } else {
      signer = t.certificates.find((c) => sidMatches(s.sid, c) && !isCa(c));
      if (!signer) continue;
      issuer = tsa.findIssuer(signer);
      if (issuer < 0) continue;
    }
    if (!essMatches(s, signer)) {
      reason = 'the ESSCertID does not match the TSA certificate';
      reasonCheck = 'timestamp.signature';
      continue;
    }
    if (!cmsSignatureOk(t, signer)) {
      reason = `the CMS signature does not verify under TSA ${tsa.name}`;
      reasonCheck = 'timestamp.signature';
      continue;
    }
    const leafProblem = tsaLeafProblem(signer);
    if (leafProblem) {
      reason = leafProblem;
      reasonCheck = 'timestamp.chain';
      continue;
    }
    if (issuer >= 0) {
      const p =
        (issuer === 1 ? tsa.linksFrom(0) : null) ??
        checkIssuingPath(tsa, issuer, OID.kpTimeStamping) ??
        checkPathAt(tsa, signer, issuer, t.genTime);
      if (p !== null) {
        reason = p;
        reasonCheck = 'timestamp.chain';
        continue;
      }
    } else if (!inRange(tsa.source.validFor, t.genTime)) {
      reason = `${authorityWindow(tsa)}, genTime ${t.genTime.toISOString()}`;
      reasonCheck = 'timestamp.chain';
      continue;
    } else if (signer.notBefore > t.genTime || signer.notAfter < t.genTime) {
      reason = `TSA ${tsa.name}'s certificate is valid ${signer.notBefore.toISOString()}..${signer.notAfter.toISOString()}, genTime ${t.genTime.toISOString()}`;
      reasonCheck = 'timestamp.chain';
      continue;
    }
    return { time: t.genTime, authority: tsa };
  }
  return fail(reasonCheck, reason);
}
