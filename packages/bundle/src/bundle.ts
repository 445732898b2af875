// Sigstore bundle (v0.1, v0.2, v0.3) JSON codec with the structural and version rules of
// protobuf-specs / sigstore-go bundle.validate. Parsing never trusts anything: it only checks
// shape, sizes and version rules; the verifier does the cryptography.
import { WaxsealError, toBase64, bytesEqual, toHex, hashFromEnum, HASH_ENUM, HASH_SIZE, type HashName } from '@waxseal/core';
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
  decodeBase64Strict,
  optInt64,
  optHashAlgorithm,
  parseJsonText,
} from './json.ts';
import {
  MAX_TLOG_ENTRIES,
  MAX_TIMESTAMPS,
  MAX_CERT_CHAIN_LENGTH,
  MAX_DSSE_PAYLOAD_BYTES,
  MAX_DSSE_SIGNATURES,
  MAX_INCLUSION_PROOF_HASHES,
  MAX_CANONICALIZED_BODY_BYTES,
  MAX_DER_OBJECT_BYTES,
  MAX_CHECKPOINT_BYTES,
  MAX_JSON_TEXT_BYTES,
} from './limits.ts';
import {
  type Bundle,
  type BundleVersion,
  type BundleContent,
  type TransparencyLogEntry,
  type InclusionProof,
  type VerificationMaterial,
  type VerificationMaterialContent,
  type MessageDigest,
  type DsseEnvelope,
  BUNDLE_MEDIA_TYPE_V01,
  BUNDLE_MEDIA_TYPE_V02,
  BUNDLE_MEDIA_TYPE_V03,
  BUNDLE_MEDIA_TYPE_V03_LEGACY,
} from './types.ts';

const ROOT: Where = { code: 'ERR_BUNDLE_INVALID', path: '' };

/** The bundle format version a media type names; throws for unknown or too-new media types. */
export function bundleVersion(mediaType: string): BundleVersion {
  switch (mediaType) {
    case BUNDLE_MEDIA_TYPE_V01:
      return '0.1';
    case BUNDLE_MEDIA_TYPE_V02:
      return '0.2';
    case BUNDLE_MEDIA_TYPE_V03:
    case BUNDLE_MEDIA_TYPE_V03_LEGACY:
      return '0.3';
  }
  const m = /^application\/vnd\.dev\.sigstore\.bundle(?:\+json;version=|\.v)(\d+)\.(\d+)(?:\+json)?$/.exec(mediaType);
  if (m) {
    throw new WaxsealError(
      'ERR_BUNDLE_INVALID',
      `mediaType: unsupported bundle version ${m[1]}.${m[2]} (this verifier supports 0.1 to 0.3)`,
      {
        detail: { field: 'mediaType' },
      },
    );
  }
  throw new WaxsealError('ERR_BUNDLE_INVALID', `mediaType: unknown bundle media type ${JSON.stringify(mediaType.slice(0, 100))}`, {
    detail: { field: 'mediaType' },
  });
}

export function hashFromProtoEnum(name: string | undefined, w: Where): HashName {
  if (name === undefined || name === 'HASH_ALGORITHM_UNSPECIFIED') invalid(w, 'hash algorithm is required');
  // core owns the name mapping; here an unknown name is a bundle error at this field.
  if (!Object.values(HASH_ENUM).includes(name)) invalid(w, `unsupported hash algorithm ${name}`);
  return hashFromEnum(name);
}

function parseMessageDigest(o: JsonObject, w: Where): MessageDigest {
  const algorithm = hashFromProtoEnum(optHashAlgorithm(o, 'algorithm', w), at(w, 'algorithm'));
  const digest = reqBytes(o, 'digest', w, 64);
  if (digest.length !== HASH_SIZE[algorithm])
    invalid(at(w, 'digest'), `is ${digest.length} bytes; ${algorithm} digests are ${HASH_SIZE[algorithm]}`);
  return { algorithm, digest };
}

function parseInclusionProof(o: JsonObject, w: Where): InclusionProof {
  const logIndex = optInt64(o, 'logIndex', w) ?? 0;
  const rootHash = reqBytes(o, 'rootHash', w, 64);
  if (rootHash.length !== 32) invalid(at(w, 'rootHash'), 'must be 32 bytes');
  const treeSize = optInt64(o, 'treeSize', w) ?? 0;
  if (logIndex >= treeSize) invalid(at(w, 'logIndex'), `${logIndex} is not below the tree size ${treeSize}`);
  const hashes = optArray(o, 'hashes', w, MAX_INCLUSION_PROOF_HASHES).map((h, i) => {
    const b = decodeBase64Strict(h, at(at(w, 'hashes'), i), 64);
    if (b.length !== 32) invalid(at(at(w, 'hashes'), i), 'must be 32 bytes');
    return b;
  });
  // protobuf-specs marks the checkpoint REQUIRED in every InclusionProof.
  const cp = optObject(o, 'checkpoint', w);
  const envelope = cp === undefined ? undefined : optString(cp, 'envelope', at(w, 'checkpoint'));
  if (envelope === undefined || envelope === '') invalid(at(w, 'checkpoint'), 'is required in an inclusion proof');
  if (envelope.length > MAX_CHECKPOINT_BYTES) invalid(at(w, 'checkpoint'), 'is too large');
  return { logIndex, rootHash, treeSize, hashes, checkpoint: envelope };
}

export function parseTransparencyLogEntry(v: unknown, w: Where = { code: 'ERR_BUNDLE_INVALID', path: 'tlogEntry' }): TransparencyLogEntry {
  const o = asObject(v, w);
  const logIndex = optInt64(o, 'logIndex', w) ?? 0;
  const logIdObj = reqObject(o, 'logId', w);
  const logId = reqBytes(logIdObj, 'keyId', at(w, 'logId'), 64);
  const kv = reqObject(o, 'kindVersion', w);
  const kindVersion = { kind: reqString(kv, 'kind', at(w, 'kindVersion')), version: reqString(kv, 'version', at(w, 'kindVersion')) };
  const integratedTime = optInt64(o, 'integratedTime', w) ?? 0;
  const promise = optObject(o, 'inclusionPromise', w);
  const proof = optObject(o, 'inclusionProof', w);
  const canonicalizedBody = reqBytes(o, 'canonicalizedBody', w, MAX_CANONICALIZED_BODY_BYTES);
  const entry: TransparencyLogEntry = { logIndex, logId, kindVersion, integratedTime, canonicalizedBody };
  if (promise !== undefined) {
    entry.inclusionPromise = {
      signedEntryTimestamp: reqBytes(promise, 'signedEntryTimestamp', at(w, 'inclusionPromise'), MAX_DER_OBJECT_BYTES),
    };
  }
  if (proof !== undefined) entry.inclusionProof = parseInclusionProof(proof, at(w, 'inclusionProof'));
  return entry;
}

function parseMaterialContent(vm: JsonObject, w: Where, version: BundleVersion): VerificationMaterialContent {
  const publicKey = optObject(vm, 'publicKey', w);
  const chain = optObject(vm, 'x509CertificateChain', w);
  const certificate = optObject(vm, 'certificate', w);
  const present = [publicKey, chain, certificate].filter((x) => x !== undefined).length;
  if (present === 0) invalid(w, 'needs one of publicKey, x509CertificateChain or certificate');
  if (present > 1) invalid(w, 'has more than one of publicKey, x509CertificateChain and certificate');
  if (publicKey) return { type: 'publicKey', hint: optString(publicKey, 'hint', at(w, 'publicKey')) ?? '' };
  if (chain) {
    const cw = at(w, 'x509CertificateChain');
    if (version === '0.3') invalid(cw, 'is not allowed in a v0.3 bundle (use certificate)');
    const certs = optArray(chain, 'certificates', cw, MAX_CERT_CHAIN_LENGTH);
    if (certs.length === 0) invalid(at(cw, 'certificates'), 'must hold at least the signing certificate');
    return {
      type: 'x509CertificateChain',
      certificates: certs.map((c, i) =>
        reqBytes(asObject(c, at(at(cw, 'certificates'), i)), 'rawBytes', at(at(cw, 'certificates'), i), MAX_DER_OBJECT_BYTES),
      ),
    };
  }
  return { type: 'certificate', certificate: reqBytes(certificate!, 'rawBytes', at(w, 'certificate'), MAX_DER_OBJECT_BYTES) };
}

function parseVerificationMaterial(o: JsonObject, w: Where, version: BundleVersion): VerificationMaterial {
  const content = parseMaterialContent(o, w, version);
  const tw = at(w, 'tlogEntries');
  const tlogEntries = optArray(o, 'tlogEntries', w, MAX_TLOG_ENTRIES).map((e, i) => parseTransparencyLogEntry(e, at(tw, i)));
  const seen = new Set<string>();
  tlogEntries.forEach((e, i) => {
    const ew = at(tw, i);
    // Version rules (protobuf-specs, sigstore-go bundle.validate).
    if (version === '0.1' && !e.inclusionPromise) invalid(ew, 'a v0.1 bundle needs an inclusionPromise on every entry');
    if (version !== '0.1' && !e.inclusionProof)
      invalid(ew, `a v${version} bundle needs an inclusionProof (with checkpoint) on every entry`);
    // Duplicates would let one entry count twice toward a threshold.
    const key = `${toHex(e.logId)}/${e.logIndex}`;
    if (seen.has(key)) invalid(ew, `duplicate entry for log ${toHex(e.logId).slice(0, 16)} index ${e.logIndex}`);
    seen.add(key);
  });
  const tsd = optObject(o, 'timestampVerificationData', w);
  const sw = at(at(w, 'timestampVerificationData'), 'rfc3161Timestamps');
  const rfc3161Timestamps =
    tsd === undefined
      ? []
      : optArray(tsd, 'rfc3161Timestamps', at(w, 'timestampVerificationData'), MAX_TIMESTAMPS).map((t, i) =>
          reqBytes(asObject(t, at(sw, i)), 'signedTimestamp', at(sw, i), MAX_DER_OBJECT_BYTES),
        );
  for (let i = 0; i < rfc3161Timestamps.length; i++) {
    for (let j = 0; j < i; j++) {
      if (bytesEqual(rfc3161Timestamps[i]!, rfc3161Timestamps[j]!)) invalid(at(sw, i), `duplicates timestamp ${j}`);
    }
  }
  return { content, tlogEntries, rfc3161Timestamps };
}

function parseDsseEnvelope(o: JsonObject, w: Where): DsseEnvelope {
  const payload = optBytes(o, 'payload', w, MAX_DSSE_PAYLOAD_BYTES);
  if (payload === undefined) invalid(at(w, 'payload'), 'is required');
  const payloadType = reqString(o, 'payloadType', w);
  const sw = at(w, 'signatures');
  const signatures = optArray(o, 'signatures', w, MAX_DSSE_SIGNATURES).map((s, i) => {
    const so = asObject(s, at(sw, i));
    return { sig: reqBytes(so, 'sig', at(sw, i), MAX_DER_OBJECT_BYTES), keyid: optString(so, 'keyid', at(sw, i)) ?? '' };
  });
  // A bundle's envelope carries exactly one signature (protobuf-specs, sigstore-go ErrDSSEInvalidSignatureCount).
  if (signatures.length !== 1) invalid(sw, `must hold exactly one signature, found ${signatures.length}`);
  return { payload, payloadType, signatures };
}

function parseContent(o: JsonObject): BundleContent {
  const ms = optObject(o, 'messageSignature', ROOT);
  const dsse = optObject(o, 'dsseEnvelope', ROOT);
  if (ms && dsse) invalid(ROOT, 'has both messageSignature and dsseEnvelope');
  if (ms) {
    const w = at(ROOT, 'messageSignature');
    const md = optObject(ms, 'messageDigest', w);
    const signature = reqBytes(ms, 'signature', w, MAX_DER_OBJECT_BYTES);
    return md === undefined
      ? { type: 'messageSignature', signature }
      : { type: 'messageSignature', messageDigest: parseMessageDigest(md, at(w, 'messageDigest')), signature };
  }
  if (dsse) return { type: 'dsseEnvelope', envelope: parseDsseEnvelope(dsse, at(ROOT, 'dsseEnvelope')) };
  invalid(ROOT, 'needs messageSignature or dsseEnvelope content');
}

/** Parses and validates a bundle given as a JSON value. Throws ERR_BUNDLE_INVALID naming the field. */
export function parseBundle(value: unknown): Bundle {
  const o = asObject(value, ROOT);
  const mediaType = optString(o, 'mediaType', ROOT);
  if (mediaType === undefined) invalid(at(ROOT, 'mediaType'), 'is required');
  const version = bundleVersion(mediaType);
  const vm = reqObject(o, 'verificationMaterial', ROOT);
  const verificationMaterial = parseVerificationMaterial(vm, at(ROOT, 'verificationMaterial'), version);
  const content = parseContent(o);
  return { mediaType, verificationMaterial, content };
}

/** Parses a bundle from JSON text or UTF-8 bytes. */
export function parseBundleJson(input: string | Uint8Array): Bundle {
  return parseBundle(parseJsonText(input, 'ERR_BUNDLE_INVALID', 'bundle', MAX_JSON_TEXT_BYTES));
}

// ---------------------------------------------------------------- serializer

export function serializeTransparencyLogEntry(e: TransparencyLogEntry): JsonObject {
  const out: JsonObject = {
    logIndex: String(e.logIndex),
    logId: { keyId: toBase64(e.logId) },
    kindVersion: { kind: e.kindVersion.kind, version: e.kindVersion.version },
  };
  if (e.integratedTime !== 0) out.integratedTime = String(e.integratedTime);
  if (e.inclusionPromise) out.inclusionPromise = { signedEntryTimestamp: toBase64(e.inclusionPromise.signedEntryTimestamp) };
  if (e.inclusionProof) {
    const p = e.inclusionProof;
    out.inclusionProof = {
      logIndex: String(p.logIndex),
      rootHash: toBase64(p.rootHash),
      treeSize: String(p.treeSize),
      hashes: p.hashes.map(toBase64),
      checkpoint: { envelope: p.checkpoint },
    };
  }
  out.canonicalizedBody = toBase64(e.canonicalizedBody);
  return out;
}

/** The bundle as camelCase protobuf JSON (a plain object; JSON.stringify it to write). */
export function serializeBundle(b: Bundle): JsonObject {
  const vm: JsonObject = {};
  const c = b.verificationMaterial.content;
  if (c.type === 'publicKey') vm.publicKey = c.hint === '' ? {} : { hint: c.hint };
  else if (c.type === 'x509CertificateChain')
    vm.x509CertificateChain = { certificates: c.certificates.map((d) => ({ rawBytes: toBase64(d) })) };
  else vm.certificate = { rawBytes: toBase64(c.certificate) };
  vm.tlogEntries = b.verificationMaterial.tlogEntries.map(serializeTransparencyLogEntry);
  const ts = b.verificationMaterial.rfc3161Timestamps;
  vm.timestampVerificationData = ts.length === 0 ? {} : { rfc3161Timestamps: ts.map((t) => ({ signedTimestamp: toBase64(t) })) };
  const out: JsonObject = { mediaType: b.mediaType, verificationMaterial: vm };
  if (b.content.type === 'messageSignature') {
    const ms: JsonObject = {};
    if (b.content.messageDigest) {
      ms.messageDigest = { algorithm: HASH_ENUM[b.content.messageDigest.algorithm], digest: toBase64(b.content.messageDigest.digest) };
    }
    ms.signature = toBase64(b.content.signature);
    out.messageSignature = ms;
  } else {
    const env = b.content.envelope;
    out.dsseEnvelope = {
      payload: toBase64(env.payload),
      payloadType: env.payloadType,
      signatures: env.signatures.map((s) => (s.keyid === '' ? { sig: toBase64(s.sig) } : { sig: toBase64(s.sig), keyid: s.keyid })),
    };
  }
  return out;
}

/** The bundle as JSON text (compact), ready to write to a `.sigstore.json` file. */
export function serializeBundleJson(b: Bundle): string {
  return JSON.stringify(serializeBundle(b));
}

/** The leaf (signing) certificate DER of a bundle, if it has one. */
export function bundleLeafCertificate(b: Bundle): Uint8Array | undefined {
  const c = b.verificationMaterial.content;
  if (c.type === 'certificate') return c.certificate;
  if (c.type === 'x509CertificateChain') return c.certificates[0];
  return undefined;
}

/** The signature bytes an RFC 3161 timestamp in this bundle must cover. */
export function bundleSignatureBytes(b: Bundle): Uint8Array {
  return b.content.type === 'messageSignature' ? b.content.signature : b.content.envelope.signatures[0]!.sig;
}
