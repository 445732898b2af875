// The RFC 3161 codec: parse a TimeStampReq (DER, or the JSON form sigstore-js sends), and build
// the TimeStampResp whose token is the CMS SignedData sigstore/timestamp-authority produces (RFC
// 3161, RFC 5652, RFC 5816 ESSCertIDv2). Pure and synchronous: signing, batching and threads are issuer.ts's business.
import {
  WaxsealError,
  isWaxsealError,
  parseJsonBounded,
  parseDer,
  expectTag,
  readOid,
  readIntegerBytes,
  readBoolean,
  readOctetString,
  TAG,
  seq,
  setOf,
  oid as derOid,
  integer,
  octetString,
  nullValue,
  tlv,
  tlvOf,
  derTree,
  encodeTree,
  explicit,
  bool,
  generalizedTime,
  x509Time,
  concat,
  fromBase64,
  fromHex,
  toHex,
  OID,
  digest,
  HASH_OID,
  HASH_SIZE,
  type DerNode,
  type DerPart,
  type HashName,
  type Certificate,
} from '@waxseal/core';
import { hash as nodeHash } from 'node:crypto';
import { signatureAlgorithmIdentifier, type Signer } from '@waxseal/keys';

/** Sigstore's TSA policy, the default policy of timestamp-authority. */
export const SIGSTORE_TSA_POLICY = OID.sigstoreTsaPolicy;

/** JSON timestamp requests are capped at 1 KiB (timestamp-authority v2.1.3). */
export const MAX_JSON_REQUEST_BYTES = 1024;

/** A parsed, structurally valid timestamp request (policy and extensions not yet judged). */
export interface TimestampRequest {
  hash: HashName;
  hashedMessage: Uint8Array;
  /** DER MessageImprint, copied verbatim into TSTInfo as RFC 3161 requires. */
  messageImprint: Uint8Array;
  /** Requested TSA policy OID (dotted), if any. */
  reqPolicy?: string;
  /** Nonce as DER INTEGER content octets (two's complement); echoed verbatim. */
  nonce?: Uint8Array;
  /** Whether the TSA certificate must be included in the response. */
  certReq: boolean;
  /** Content octets of the request's [0] IMPLICIT Extensions (the Extension SEQUENCEs). */
  extensions?: Uint8Array;
  /** OIDs of the request extensions, for messages and policy. */
  extensionOids?: string[];
}

// ---------------------------------------------------------------------------------------------
// Hash algorithms

const HASH_BY_OID = new Map<string, HashName>([
  [OID.sha256, 'sha256'],
  [OID.sha384, 'sha384'],
  [OID.sha512, 'sha512'],
]);

const KNOWN_UNSUPPORTED_HASHES: Record<string, string> = {
  '1.2.840.113549.2.5': 'MD5',
  '1.2.840.113549.2.2': 'MD2',
  '2.16.840.1.101.3.4.2.4': 'SHA-224',
  '2.16.840.1.101.3.4.2.5': 'SHA-512/224',
  '2.16.840.1.101.3.4.2.6': 'SHA-512/256',
  '2.16.840.1.101.3.4.2.8': 'SHA3-256',
  '2.16.840.1.101.3.4.2.9': 'SHA3-384',
  '2.16.840.1.101.3.4.2.10': 'SHA3-512',
};

const ACCEPTED_HASHES = 'use SHA-256, SHA-384 or SHA-512';

function weakHash(): never {
  throw new WaxsealError('ERR_HASH_WEAK', `Weak hash algorithm in timestamp request: SHA-1 is not accepted; ${ACCEPTED_HASHES}`);
}

function hashForOid(o: string): HashName {
  const h = HASH_BY_OID.get(o);
  if (h) return h;
  if (o === OID.sha1) weakHash();
  const name = KNOWN_UNSUPPORTED_HASHES[o];
  throw new WaxsealError(
    'ERR_HASH_UNSUPPORTED',
    `unsupported hash algorithm ${name ? `${name} (${o})` : o} in timestamp request; ${ACCEPTED_HASHES}`,
  );
}

function hashForName(name: unknown): HashName {
  if (typeof name !== 'string') throw new WaxsealError('ERR_HASH_UNSUPPORTED', `hashAlgorithm must be a string; ${ACCEPTED_HASHES}`);
  const lower = name.toLowerCase();
  if (lower === 'sha256' || lower === 'sha384' || lower === 'sha512') return lower;
  if (lower === 'sha1') weakHash();
  throw new WaxsealError(
    'ERR_HASH_UNSUPPORTED',
    `unsupported hash algorithm ${JSON.stringify(name)} in timestamp request; ${ACCEPTED_HASHES}`,
  );
}

function checkDigestLength(hash: HashName, hashed: Uint8Array): void {
  if (hashed.length !== HASH_SIZE[hash]) {
    throw new WaxsealError(
      'ERR_TSA_REQUEST',
      `Message digest has incorrect length for specified algorithm: ${hash} digests are ${HASH_SIZE[hash]} bytes, got ${hashed.length}`,
    );
  }
}

/** AlgorithmIdentifier with NULL parameters, as Go and OpenSSL write message imprints. */
const IMPRINT_ALGORITHM: Record<HashName, Uint8Array> = {
  sha256: seq(derOid(HASH_OID.sha256), nullValue()),
  sha384: seq(derOid(HASH_OID.sha384), nullValue()),
  sha512: seq(derOid(HASH_OID.sha512), nullValue()),
};

// ---------------------------------------------------------------------------------------------
// DER TimeStampReq

function bad(message: string): never {
  throw new WaxsealError('ERR_TSA_REQUEST', `malformed timestamp request: ${message}`);
}

/**
 * Parses a DER TimeStampReq (RFC 3161 section 2.4.1):
 *   SEQUENCE { version INTEGER (1), messageImprint MessageImprint, reqPolicy OID OPTIONAL,
 *              nonce INTEGER OPTIONAL, certReq BOOLEAN DEFAULT FALSE, extensions [0] IMPLICIT OPTIONAL }
 * Weak or unknown hashes, wrong digest lengths and any structural error are WaxsealErrors.
 */
export function parseTimeStampReq(der: Uint8Array): TimestampRequest {
  try {
    return parseTimeStampReqInner(der);
  } catch (e) {
    if (isWaxsealError(e, 'ERR_DER_PARSE') || isWaxsealError(e, 'ERR_INVALID_INPUT')) {
      throw new WaxsealError('ERR_DER_PARSE', `malformed timestamp request: ${e.message}`, { cause: e });
    }
    throw e;
  }
}

function parseTimeStampReqInner(input: Uint8Array): TimestampRequest {
  if (input.length === 0) bad('empty body');
  // A plain Uint8Array view: slicing a Buffer (what servers hand us) costs more per node.
  const der = input.constructor === Uint8Array ? input : new Uint8Array(input.buffer, input.byteOffset, input.length);
  const root = parseDer(der);
  if (root.tag !== TAG.SEQUENCE) bad(`expected a TimeStampReq SEQUENCE, found tag 0x${root.tag.toString(16)}`);
  const items = root.children;
  if (items.length < 2) bad('TimeStampReq needs at least version and messageImprint');

  const version = readIntegerBytes(items[0], 'TimeStampReq version');
  if (version.length !== 1 || version[0] !== 1) bad(`unsupported TimeStampReq version 0x${toHex(version)} (expected 1)`);

  const mi = expectTag(items[1], TAG.SEQUENCE, 'messageImprint');
  if (mi.children.length !== 2) bad('messageImprint must hold hashAlgorithm and hashedMessage');
  const alg = expectTag(mi.children[0], TAG.SEQUENCE, 'messageImprint hashAlgorithm');
  if (alg.children.length < 1 || alg.children.length > 2) bad('hashAlgorithm must be an AlgorithmIdentifier');
  const algOid = readOid(alg.children[0], 'hashAlgorithm algorithm');
  const params = alg.children[1];
  if (params && !(params.tag === TAG.NULL && params.value.length === 0)) bad('hashAlgorithm parameters must be absent or NULL');
  const hashedMessage = readOctetString(mi.children[1], 'hashedMessage');
  const hash = hashForOid(algOid);
  checkDigestLength(hash, hashedMessage);

  const req: TimestampRequest = { hash, hashedMessage, messageImprint: mi.raw, certReq: false };
  // The optional fields must come in their declared order, each at most once.
  let stage = 0;
  for (let i = 2; i < items.length; i++) {
    const item: DerNode = items[i]!;
    if (item.tag === TAG.OID && stage < 1) {
      req.reqPolicy = readOid(item, 'reqPolicy');
      stage = 1;
    } else if (item.tag === TAG.INTEGER && stage < 2) {
      readIntegerBytes(item, 'nonce'); // rejects non-minimal encodings
      req.nonce = item.value;
      stage = 2;
    } else if (item.tag === TAG.BOOLEAN && stage < 3) {
      req.certReq = readBoolean(item, 'certReq');
      stage = 3;
    } else if (item.tag === 0xa0 && stage < 4) {
      const oids = item.children.map((ext) => {
        expectTag(ext, TAG.SEQUENCE, 'request extension');
        const n = ext.children.length;
        const hasCritical = ext.children[1]?.tag === TAG.BOOLEAN;
        if (n !== (hasCritical ? 3 : 2)) bad('an extension must be SEQUENCE { extnID, critical BOOLEAN OPTIONAL, extnValue OCTET STRING }');
        if (hasCritical) readBoolean(ext.children[1], 'extension critical flag');
        readOctetString(ext.children[n - 1], 'extnValue');
        return readOid(ext.children[0], 'extnID');
      });
      if (oids.length > 0) {
        req.extensions = item.value;
        req.extensionOids = oids;
      }
      stage = 4;
    } else {
      bad(`unexpected or out-of-order element with tag 0x${item.tag.toString(16)} at position ${i}`);
    }
  }
  return req;
}

/** Encodes a DER TimeStampReq (for clients, tests and benchmarks). */
export function encodeTimeStampReq(r: {
  hash: HashName;
  hashedMessage: Uint8Array;
  reqPolicy?: string;
  nonce?: bigint | Uint8Array;
  certReq?: boolean;
  /** Encoded Extension SEQUENCEs to send as [0] IMPLICIT Extensions. */
  extensions?: Uint8Array[];
}): Uint8Array {
  const parts: Uint8Array[] = [integer(1), seq(IMPRINT_ALGORITHM[r.hash], octetString(r.hashedMessage))];
  if (r.reqPolicy !== undefined) parts.push(derOid(r.reqPolicy));
  if (r.nonce !== undefined) parts.push(typeof r.nonce === 'bigint' ? integer(r.nonce) : tlv(TAG.INTEGER, r.nonce));
  if (r.certReq) parts.push(bool(true));
  if (r.extensions?.length) parts.push(tlv(0xa0, Buffer.concat(r.extensions)));
  return seq(...parts);
}

// ---------------------------------------------------------------------------------------------
// Nonces

/** The nonce as a bigint (two's complement content octets). */
export function nonceToBigInt(nonce: Uint8Array): bigint {
  if (nonce.length === 0) return 0n;
  let x = BigInt(`0x${toHex(nonce)}`);
  if (nonce[0]! & 0x80) x -= 1n << BigInt(nonce.length * 8);
  return x;
}

/** Minimal DER INTEGER content octets of a non-negative bigint. */
export function nonceFromBigInt(n: bigint): Uint8Array {
  if (n < 0n) throw new WaxsealError('ERR_TSA_REQUEST', 'nonce must not be negative');
  let hex = n.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  if (parseInt(hex.slice(0, 2), 16) & 0x80) hex = `00${hex}`;
  return fromHex(hex);
}

// ---------------------------------------------------------------------------------------------
// JSON requests: {"artifactHash": b64, "hashAlgorithm": "sha256", "certificates": bool,
//                 "nonce": <JSON integer>, "tsaPolicyOID": "1.2.3"}

const OID_RE = /^[0-2](?:\.(?:0|[1-9]\d*))+$/;

function parsePolicyOid(s: string): string {
  if (!OID_RE.test(s)) throw new WaxsealError('ERR_TSA_REQUEST', `tsaPolicyOID ${JSON.stringify(s.slice(0, 64))} is not a dotted OID`);
  const arcs = s.split('.');
  if (arcs.length > 128) throw new WaxsealError('ERR_TSA_REQUEST', 'OID should be comprised of at most 128 components');
  if (arcs.some((a) => a.length > 15 || Number(a) > Number.MAX_SAFE_INTEGER))
    throw new WaxsealError('ERR_TSA_REQUEST', 'tsaPolicyOID has an arc that is too large');
  if (Number(arcs[0]) < 2 && Number(arcs[1]) >= 40) throw new WaxsealError('ERR_TSA_REQUEST', `tsaPolicyOID ${s} is not a valid OID`);
  return s;
}

/**
 * Validates the JSON form of a request (already parsed). A nonce may be a bigint (use
 * parseJsonTimestampBody to get one from the raw text) or a safe integer; a JSON number that
 * has lost precision is refused rather than silently changed.
 */
export function parseJsonTimestampRequest(obj: unknown): TimestampRequest {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    throw new WaxsealError('ERR_TSA_REQUEST', 'a JSON timestamp request must be an object');
  }
  const o = obj as Record<string, unknown>;
  const hash = hashForName(o['hashAlgorithm'] ?? '');

  const artifactHash = o['artifactHash'];
  if (typeof artifactHash !== 'string' || artifactHash === '')
    throw new WaxsealError('ERR_TSA_REQUEST', 'artifactHash (base64 digest) is required');
  let hashedMessage: Uint8Array;
  try {
    hashedMessage = fromBase64(artifactHash, 'artifactHash');
  } catch {
    throw new WaxsealError('ERR_TSA_REQUEST', 'failed to decode base64 encoded artifact hash');
  }
  checkDigestLength(hash, hashedMessage);

  const certificates = o['certificates'] ?? false;
  if (typeof certificates !== 'boolean') throw new WaxsealError('ERR_TSA_REQUEST', 'certificates must be a boolean');

  const req: TimestampRequest = {
    hash,
    hashedMessage,
    messageImprint: seq(IMPRINT_ALGORITHM[hash], octetString(hashedMessage)),
    certReq: certificates,
  };

  const nonce = o['nonce'];
  if (typeof nonce === 'bigint') {
    req.nonce = nonceFromBigInt(nonce);
  } else if (typeof nonce === 'number') {
    if (!Number.isInteger(nonce)) throw new WaxsealError('ERR_TSA_REQUEST', 'nonce must be an integer');
    if (!Number.isSafeInteger(nonce)) {
      throw new WaxsealError(
        'ERR_TSA_REQUEST',
        'nonce is larger than a double holds exactly; parse the raw body with parseJsonTimestampBody',
      );
    }
    req.nonce = nonceFromBigInt(BigInt(nonce));
  } else if (nonce !== undefined && nonce !== null) {
    throw new WaxsealError('ERR_TSA_REQUEST', 'nonce must be a JSON integer');
  }

  const policy = o['tsaPolicyOID'];
  if (policy !== undefined && policy !== null && policy !== '') {
    if (typeof policy !== 'string') throw new WaxsealError('ERR_TSA_REQUEST', 'tsaPolicyOID must be a string');
    req.reqPolicy = parsePolicyOid(policy);
  }
  return req;
}

const INTEGER_TOKEN_RE = /^-?(?:0|[1-9]\d*)$/;

/**
 * Parses raw JSON text, turning the top-level "nonce" number into a bigint read from its source
 * text (JSON.parse source access), so nonces beyond 2^53 keep every digit.
 */
export function parseJsonWithBigNonce(raw: string): unknown {
  const sources = new Map<object, string>();
  let parsed: unknown;
  try {
    parsed = parseJsonBounded(raw, {
      maxBytes: MAX_JSON_REQUEST_BYTES,
      reviver(this: object, key: string, value: unknown, context?: { source?: string }) {
        if (key === 'nonce' && typeof value === 'number' && context?.source !== undefined) sources.set(this, context.source);
        return value;
      },
    });
  } catch {
    throw new WaxsealError('ERR_JSON_PARSE', 'timestamp request body is not valid JSON');
  }
  if (typeof parsed === 'object' && parsed !== null) {
    const source = sources.get(parsed);
    if (source !== undefined) {
      if (!INTEGER_TOKEN_RE.test(source))
        throw new WaxsealError('ERR_TSA_REQUEST', 'nonce must be a JSON integer (no fraction or exponent)');
      (parsed as Record<string, unknown>)['nonce'] = BigInt(source);
    }
  }
  return parsed;
}

/** Reads just the nonce of a raw JSON request body, exactly (undefined when absent or null). */
export function readJsonNonce(raw: string): bigint | undefined {
  const parsed = parseJsonWithBigNonce(raw);
  const n = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>)['nonce'] : undefined;
  return typeof n === 'bigint' ? n : undefined;
}

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Parses and validates a raw JSON request body (at most 1 KiB, as timestamp-authority). */
export function parseJsonTimestampBody(raw: string | Uint8Array): TimestampRequest {
  const size = typeof raw === 'string' ? Buffer.byteLength(raw) : raw.length;
  if (size > MAX_JSON_REQUEST_BYTES) {
    throw new WaxsealError(
      'ERR_BODY_TOO_LARGE',
      `timestamp request is too large: JSON requests are limited to ${MAX_JSON_REQUEST_BYTES} bytes`,
    );
  }
  let text: string;
  if (typeof raw === 'string') text = raw;
  else {
    try {
      text = STRICT_UTF8.decode(raw);
    } catch {
      throw new WaxsealError('ERR_JSON_PARSE', 'timestamp request body is not valid UTF-8');
    }
  }
  return parseJsonTimestampRequest(parseJsonWithBigNonce(text));
}

// ---------------------------------------------------------------------------------------------
// Tokens: TimeStampResp = { status granted, ContentInfo { SignedData { TSTInfo, SignerInfo } } }

export interface TimestampTokenOptions {
  /** The hash and signature algorithm the tokens are signed with (the key itself is not used). */
  signer: Pick<Signer, 'hash' | 'kind'>;
  /** TSA leaf first, then intermediates, root last. */
  chain: Certificate[];
  /** Policy put in TSTInfo when the request names none (default 1.3.6.1.4.1.57264.2). */
  defaultPolicyOid?: string;
  /** Policies a request may ask for (default: just the default policy). */
  acceptedPolicyOids?: string[];
  /** Accept request extensions and copy them into TSTInfo (default false: reject them). */
  allowCustomExtensions?: boolean;
  /** With certReq, also include the intermediates and root (default false: only the leaf). */
  includeChainInResponse?: boolean;
  /** TSTInfo accuracy in seconds (default 1; 0 omits it; fractions become millis). */
  accuracySeconds?: number;
}

/** A token ready to sign: the TSTInfo and the DER SET OF signed attributes the signature covers. */
export interface PreparedToken {
  tstInfo: Uint8Array;
  signedAttrs: Uint8Array;
}

const SIGNED_DATA_OID = derOid(OID.cmsSignedData);
const TST_INFO_OID = derOid(OID.ctTstInfo);
const STATUS_GRANTED = seq(integer(0));
const INT_1 = integer(1);
const INT_3 = integer(3);
const MESSAGE_DIGEST_OID = derOid(OID.attrMessageDigest);
const SIGNING_TIME_OID = derOid(OID.attrSigningTime);

// Serial numbers come from a pooled random buffer: one getRandomValues call per 512 tokens.
const SERIAL_BYTES = 20;
const POOL_BYTES = SERIAL_BYTES * 512;
let randomPool: Uint8Array = new Uint8Array(0);
let randomPos = 0;

function randomSerialTlv(): Uint8Array {
  if (randomPos + SERIAL_BYTES > randomPool.length) {
    randomPool = crypto.getRandomValues(new Uint8Array(POOL_BYTES));
    randomPos = 0;
  }
  const out = new Uint8Array(2 + SERIAL_BYTES);
  out[0] = TAG.INTEGER;
  out[1] = SERIAL_BYTES;
  out.set(randomPool.subarray(randomPos, randomPos + SERIAL_BYTES), 2);
  randomPos += SERIAL_BYTES;
  out[2] = (out[2]! & 0x7f) | 0x01; // positive, 20 bytes, no leading zero octet
  return out;
}

// genTime and signingTime only change once a second: keep the last encodings.
let timeSecond = NaN;
let genTimeDer: Uint8Array = new Uint8Array(0);
let signingTimeAttr: Uint8Array = new Uint8Array(0);

function timeEncodings(now: Date): { genTime: Uint8Array; signingTime: Uint8Array } {
  const second = Math.floor(now.getTime() / 1000);
  if (second !== timeSecond) {
    const whole = new Date(second * 1000);
    // Whole seconds: sigstore-js accepts no fraction or exactly three digits, and DER forbids
    // trailing zeros, so a fraction could not be written reliably anyway.
    genTimeDer = generalizedTime(whole, false);
    signingTimeAttr = seq(SIGNING_TIME_OID, setOf(x509Time(whole)));
    timeSecond = second;
  }
  return { genTime: genTimeDer, signingTime: signingTimeAttr };
}

/** The serialNumber INTEGER of a certificate exactly as encoded in its TBS. */
function serialTlv(cert: Certificate): Uint8Array {
  const tbs = parseDer(cert.tbs);
  const first = tbs.children[0];
  const serial = first && first.tag === 0xa0 ? tbs.children[1] : first;
  return expectTag(serial, TAG.INTEGER, 'certificate serialNumber').raw;
}

function accuracyEncoding(seconds: number): Uint8Array | undefined {
  if (!Number.isFinite(seconds) || seconds < 0)
    throw new WaxsealError('ERR_CONFIG', `accuracySeconds must be a non-negative number, got ${seconds}`);
  const whole = Math.floor(seconds);
  const millis = Math.round((seconds - whole) * 1000);
  if (whole === 0 && millis === 0) return undefined;
  const parts: Uint8Array[] = [];
  if (whole > 0) parts.push(integer(whole));
  if (millis > 0) parts.push(tlv(0x80, integer(millis).subarray(2))); // millis [0] IMPLICIT INTEGER (1..999)
  return seq(...parts);
}

function checkPolicyOid(o: string, what: string): void {
  if (!OID_RE.test(o)) throw new WaxsealError('ERR_CONFIG', `${what} ${JSON.stringify(o)} is not a dotted OID`);
}

/**
 * Builds the RFC 3161 responses of one TSA key and chain, in two steps around the signature:
 * prepare() encodes TSTInfo and the signed attributes, finish() assembles the response around the
 * signature. Everything constant is encoded once, here; per token only the serial, the times,
 * the imprint, the nonce and the digest are new.
 */
export class TimestampTokenBuilder {
  readonly chain: readonly Certificate[];
  readonly defaultPolicyOid: string;
  readonly acceptedPolicyOids: readonly string[];
  readonly allowCustomExtensions: boolean;
  readonly includeChainInResponse: boolean;
  readonly hash: HashName;

  readonly #policies = new Map<string, Uint8Array>();
  readonly #defaultPolicy: Uint8Array;
  readonly #accuracy: Uint8Array | undefined;
  readonly #tsaName: Uint8Array;
  readonly #sid: Uint8Array;
  readonly #digestAlgorithm: Uint8Array;
  readonly #digestAlgorithms: Uint8Array;
  readonly #signatureAlgorithm: Uint8Array;
  readonly #contentTypeAttr: Uint8Array;
  /** The messageDigest attribute up to the digest octets (their length is fixed per hash). */
  readonly #messageDigestPrefix: Uint8Array;
  readonly #signingCertAttr: Record<HashName, Uint8Array>;
  readonly #certificates: Uint8Array;

  constructor(o: TimestampTokenOptions) {
    if (!o.chain || o.chain.length === 0) throw new WaxsealError('ERR_CONFIG', 'the TSA needs a certificate chain (leaf first)');
    const leaf = o.chain[0]!;
    this.chain = [...o.chain];
    this.hash = o.signer.hash;
    this.defaultPolicyOid = o.defaultPolicyOid ?? SIGSTORE_TSA_POLICY;
    checkPolicyOid(this.defaultPolicyOid, 'defaultPolicyOid');
    this.acceptedPolicyOids = [...(o.acceptedPolicyOids ?? [this.defaultPolicyOid])];
    for (const p of this.acceptedPolicyOids) {
      checkPolicyOid(p, 'accepted policy OID');
      this.#policies.set(p, derOid(p));
    }
    this.#defaultPolicy = derOid(this.defaultPolicyOid);
    this.allowCustomExtensions = o.allowCustomExtensions ?? false;
    this.includeChainInResponse = o.includeChainInResponse ?? false;
    this.#accuracy = accuracyEncoding(o.accuracySeconds ?? 1);

    // tsa [0] GeneralName: directoryName [4] (a CHOICE, hence explicit tagging) = leaf subject.
    this.#tsaName = explicit(0, explicit(4, leaf.subjectRaw));
    const leafSerial = serialTlv(leaf);
    this.#sid = seq(leaf.issuerRaw, leafSerial);
    // SHA-2 AlgorithmIdentifiers without parameters (RFC 5754), as digitorus/pkcs7 writes them.
    this.#digestAlgorithm = seq(derOid(HASH_OID[this.hash]));
    this.#digestAlgorithms = setOf(this.#digestAlgorithm);
    this.#signatureAlgorithm = signatureAlgorithmIdentifier(o.signer);
    this.#contentTypeAttr = seq(derOid(OID.attrContentType), setOf(TST_INFO_OID));
    const size = HASH_SIZE[this.hash];
    const attr = seq(MESSAGE_DIGEST_OID, setOf(octetString(new Uint8Array(size))));
    this.#messageDigestPrefix = attr.subarray(0, attr.length - size);

    // signingCertificateV2 with one ESSCertIDv2 per possible request hash: certHash of the leaf
    // under the request's hash, algorithm omitted for SHA-256 (its DEFAULT), issuerSerial.
    const issuerSerial = seq(seq(explicit(4, leaf.issuerRaw)), leafSerial);
    const essAttr = (h: HashName): Uint8Array => {
      const certHash = octetString(digest(h, leaf.der));
      const essCertId = h === 'sha256' ? seq(certHash, issuerSerial) : seq(IMPRINT_ALGORITHM[h], certHash, issuerSerial);
      return seq(derOid(OID.attrSigningCertificateV2), setOf(seq(seq(essCertId))));
    };
    this.#signingCertAttr = { sha256: essAttr('sha256'), sha384: essAttr('sha384'), sha512: essAttr('sha512') };

    // certificates [0] IMPLICIT: the leaf first (upstream order), then the rest when configured.
    const certs = this.includeChainInResponse ? this.chain : [leaf];
    this.#certificates = tlvOf(
      0xa0,
      certs.map((c) => c.der),
    );
  }

  /** Throws when the request asks for a policy or extensions this TSA does not accept. */
  check(req: TimestampRequest): void {
    if (req.reqPolicy !== undefined && !this.#policies.has(req.reqPolicy)) {
      throw new WaxsealError(
        'ERR_TSA_POLICY',
        `unaccepted policy: requested TSA policy ${req.reqPolicy} is not supported by the TSA (accepted: ${this.acceptedPolicyOids.join(', ')})`,
      );
    }
    if (req.extensions !== undefined && !this.allowCustomExtensions) {
      throw new WaxsealError(
        'ERR_TSA_REQUEST',
        `unaccepted extension: requested extensions (${(req.extensionOids ?? []).join(', ')}) are not supported by the TSA`,
      );
    }
  }

  /** TSTInfo and the signed attributes for `req` at `now` (call check() first). */
  prepare(req: TimestampRequest, now: Date): PreparedToken {
    const { genTime, signingTime } = timeEncodings(now);
    const parts: DerPart[] = [
      INT_1,
      req.reqPolicy !== undefined ? this.#policies.get(req.reqPolicy)! : this.#defaultPolicy,
      req.messageImprint,
      randomSerialTlv(),
      genTime,
    ];
    if (this.#accuracy) parts.push(this.#accuracy);
    // ordering is FALSE, its DEFAULT, so DER leaves it out.
    if (req.nonce !== undefined) parts.push(tlv(TAG.INTEGER, req.nonce));
    parts.push(this.#tsaName);
    if (req.extensions !== undefined) parts.push(tlv(0xa1, req.extensions)); // extensions [1] IMPLICIT
    const tstInfo = encodeTree(derTree(TAG.SEQUENCE, ...parts));

    const messageDigestAttr = concat(this.#messageDigestPrefix, nodeHash(this.hash, tstInfo, 'buffer'));
    const attrs = [this.#contentTypeAttr, messageDigestAttr, signingTime, this.#signingCertAttr[req.hash]];
    attrs.sort(Buffer.compare); // DER SET OF order
    // Signed over with the SET OF tag; stored in SignerInfo as [0] IMPLICIT (same content).
    return { tstInfo, signedAttrs: encodeTree(derTree(TAG.SET, ...attrs)) };
  }

  /** The DER TimeStampResp around a prepared token and its signature. */
  finish(p: PreparedToken, signature: Uint8Array, certReq: boolean): Uint8Array {
    const attrsField = new Uint8Array(p.signedAttrs);
    attrsField[0] = 0xa0;
    const signerInfo = derTree(
      TAG.SEQUENCE,
      INT_1,
      this.#sid,
      this.#digestAlgorithm,
      attrsField,
      this.#signatureAlgorithm,
      tlv(TAG.OCTET_STRING, signature),
    );
    const signedData = derTree(
      TAG.SEQUENCE,
      INT_3,
      this.#digestAlgorithms,
      derTree(TAG.SEQUENCE, TST_INFO_OID, derTree(0xa0, tlv(TAG.OCTET_STRING, p.tstInfo))),
      ...(certReq ? [this.#certificates] : []),
      derTree(TAG.SET, signerInfo),
    );
    return encodeTree(derTree(TAG.SEQUENCE, STATUS_GRANTED, derTree(TAG.SEQUENCE, SIGNED_DATA_OID, derTree(0xa0, signedData))));
  }
}
