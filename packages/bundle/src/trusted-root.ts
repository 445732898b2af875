// TrustedRoot (dev.sigstore.trustroot.v1.TrustedRoot) JSON codec, media types v0.1 (both
// spellings) and v0.2. Structural validation only; the Verifier parses keys and certificates.
import { toBase64, HASH_ENUM, type HashName } from '@waxseal/core';
import {
  type JsonObject,
  type Where,
  at,
  invalid,
  asObject,
  optObject,
  reqObject,
  optString,
  reqString,
  optArray,
  optBytes,
  reqBytes,
  optEnum,
  optHashAlgorithm,
  parseJsonText,
  parseTimestamp,
  formatTimestamp,
  field,
} from './json.ts';
import { MAX_CERT_CHAIN_LENGTH, MAX_DER_OBJECT_BYTES, MAX_TRUST_LIST_ENTRIES, MAX_JSON_TEXT_BYTES } from './limits.ts';
import {
  type TrustedRoot,
  type TransparencyLogInstance,
  type CertificateAuthority,
  type TimeRange,
  type TrustedPublicKey,
  PUBLIC_KEY_DETAILS,
  PUBLIC_KEY_DETAILS_BY_NUMBER,
  TRUSTED_ROOT_MEDIA_TYPE_V01,
  TRUSTED_ROOT_MEDIA_TYPE_V01_NEW,
  TRUSTED_ROOT_MEDIA_TYPE_V02,
} from './types.ts';

const ROOT: Where = { code: 'ERR_TRUSTED_ROOT_INVALID', path: '' };
const MEDIA_TYPES = [TRUSTED_ROOT_MEDIA_TYPE_V01, TRUSTED_ROOT_MEDIA_TYPE_V01_NEW, TRUSTED_ROOT_MEDIA_TYPE_V02];

/** TimeRange {start, end}; both optional. An end before the start is an empty window, not an error. */
export function parseTimeRange(o: JsonObject | undefined, w: Where): TimeRange {
  if (o === undefined) return {};
  const out: TimeRange = {};
  const start = field(o, 'start', w);
  const end = field(o, 'end', w);
  if (start !== undefined) out.start = parseTimestamp(start, at(w, 'start'), 'floor');
  if (end !== undefined) out.end = parseTimestamp(end, at(w, 'end'), 'ceil');
  return out;
}

export function serializeTimeRange(r: TimeRange): JsonObject {
  const out: JsonObject = {};
  if (r.start) out.start = formatTimestamp(r.start);
  if (r.end) out.end = formatTimestamp(r.end);
  return out;
}

/** Log tree hash: RFC 6962 logs (Rekor, CT, tlog-tiles) all hash with SHA-256 (sigstore-go requires it). */
function parseHash(o: JsonObject, w: Where): HashName {
  const h = optHashAlgorithm(o, 'hashAlgorithm', w);
  if (h !== 'SHA2_256') invalid(at(w, 'hashAlgorithm'), h === undefined ? 'is required (SHA2_256)' : `unsupported log hash algorithm ${h}`);
  return 'sha256';
}

function parsePublicKey(o: JsonObject, w: Where): TrustedPublicKey {
  const rawBytes = optBytes(o, 'rawBytes', w, MAX_DER_OBJECT_BYTES);
  const keyDetails = optEnum(o, 'keyDetails', w, PUBLIC_KEY_DETAILS, PUBLIC_KEY_DETAILS_BY_NUMBER) ?? 'PUBLIC_KEY_DETAILS_UNSPECIFIED';
  const out: TrustedPublicKey = { keyDetails };
  if (rawBytes !== undefined && rawBytes.length > 0) out.rawBytes = rawBytes;
  const vf = optObject(o, 'validFor', w);
  if (vf !== undefined) out.validFor = parseTimeRange(vf, at(w, 'validFor'));
  return out;
}

export function parseTransparencyLogInstance(v: unknown, w: Where): TransparencyLogInstance {
  const o = asObject(v, w);
  const out: TransparencyLogInstance = {
    baseUrl: reqString(o, 'baseUrl', w),
    hashAlgorithm: parseHash(o, w),
    publicKey: parsePublicKey(reqObject(o, 'publicKey', w), at(w, 'publicKey')),
    logId: reqBytes(reqObject(o, 'logId', w), 'keyId', at(w, 'logId'), 64),
  };
  // A log key without bytes or without the start of its validity cannot be used safely: the
  // start bounds the integrated times and SCT times it may vouch for (sigstore-go requires it).
  const pw = at(w, 'publicKey');
  if (!out.publicKey.rawBytes) invalid(at(pw, 'rawBytes'), 'is required');
  if (!out.publicKey.validFor?.start) invalid(at(at(pw, 'validFor'), 'start'), 'is required for a log key');
  const cp = optObject(o, 'checkpointKeyId', w);
  if (cp !== undefined) out.checkpointKeyId = reqBytes(cp, 'keyId', at(w, 'checkpointKeyId'), 64);
  const operator = optString(o, 'operator', w);
  if (operator) out.operator = operator;
  return out;
}

export function parseCertificateAuthority(v: unknown, w: Where): CertificateAuthority {
  const o = asObject(v, w);
  const subj = optObject(o, 'subject', w);
  const subject: CertificateAuthority['subject'] = {};
  if (subj) {
    const org = optString(subj, 'organization', at(w, 'subject'));
    const cn = optString(subj, 'commonName', at(w, 'subject'));
    if (org) subject.organization = org;
    if (cn) subject.commonName = cn;
  }
  const chain = reqObject(o, 'certChain', w);
  const cw = at(at(w, 'certChain'), 'certificates');
  const certs = optArray(chain, 'certificates', at(w, 'certChain'), MAX_CERT_CHAIN_LENGTH);
  if (certs.length === 0) invalid(cw, 'must hold at least one certificate');
  const out: CertificateAuthority = {
    subject,
    uri: optString(o, 'uri', w) ?? '',
    certChain: certs.map((c, i) => reqBytes(asObject(c, at(cw, i)), 'rawBytes', at(cw, i), MAX_DER_OBJECT_BYTES)),
    validFor: parseTimeRange(optObject(o, 'validFor', w), at(w, 'validFor')),
  };
  const operator = optString(o, 'operator', w);
  if (operator) out.operator = operator;
  return out;
}

export function parseTrustedRoot(value: unknown): TrustedRoot {
  const o = asObject(value, ROOT);
  const mediaType = optString(o, 'mediaType', ROOT);
  if (mediaType === undefined) invalid(at(ROOT, 'mediaType'), 'is required');
  if (!MEDIA_TYPES.includes(mediaType))
    invalid(at(ROOT, 'mediaType'), `unsupported trusted root media type ${JSON.stringify(mediaType.slice(0, 100))}`);
  const list = <T>(name: string, parse: (v: unknown, w: Where) => T): T[] =>
    optArray(o, name, ROOT, MAX_TRUST_LIST_ENTRIES).map((v, i) => parse(v, at(at(ROOT, name), i)));
  return {
    mediaType,
    tlogs: list('tlogs', parseTransparencyLogInstance),
    certificateAuthorities: list('certificateAuthorities', parseCertificateAuthority),
    ctlogs: list('ctlogs', parseTransparencyLogInstance),
    timestampAuthorities: list('timestampAuthorities', parseCertificateAuthority),
  };
}

export function parseTrustedRootJson(input: string | Uint8Array): TrustedRoot {
  return parseTrustedRoot(parseJsonText(input, 'ERR_TRUSTED_ROOT_INVALID', 'trusted root', MAX_JSON_TEXT_BYTES));
}

function serializeLog(l: TransparencyLogInstance): JsonObject {
  const pk: JsonObject = {};
  if (l.publicKey.rawBytes) pk.rawBytes = toBase64(l.publicKey.rawBytes);
  pk.keyDetails = l.publicKey.keyDetails;
  if (l.publicKey.validFor) pk.validFor = serializeTimeRange(l.publicKey.validFor);
  const out: JsonObject = {
    baseUrl: l.baseUrl,
    hashAlgorithm: HASH_ENUM[l.hashAlgorithm],
    publicKey: pk,
    logId: { keyId: toBase64(l.logId) },
  };
  if (l.checkpointKeyId) out.checkpointKeyId = { keyId: toBase64(l.checkpointKeyId) };
  if (l.operator) out.operator = l.operator;
  return out;
}

function serializeAuthority(a: CertificateAuthority): JsonObject {
  const out: JsonObject = {
    subject: {
      ...(a.subject.organization ? { organization: a.subject.organization } : {}),
      ...(a.subject.commonName ? { commonName: a.subject.commonName } : {}),
    },
  };
  if (a.uri) out.uri = a.uri;
  out.certChain = { certificates: a.certChain.map((c) => ({ rawBytes: toBase64(c) })) };
  out.validFor = serializeTimeRange(a.validFor);
  if (a.operator) out.operator = a.operator;
  return out;
}

export function serializeTrustedRoot(r: TrustedRoot): JsonObject {
  return {
    mediaType: r.mediaType,
    tlogs: r.tlogs.map(serializeLog),
    certificateAuthorities: r.certificateAuthorities.map(serializeAuthority),
    ctlogs: r.ctlogs.map(serializeLog),
    timestampAuthorities: r.timestampAuthorities.map(serializeAuthority),
  };
}
