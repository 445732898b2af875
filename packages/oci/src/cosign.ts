// cosign's two storage formats, as pure builders and parsers (no registry I/O here):
// - legacy (SIGNATURE_SPEC.md, ATTESTATION_SPEC.md): one image manifest per subject at tag
//   sha256-<hex>.sig / .att, one layer per signature, the signature material in layer annotations;
// - bundle (BUNDLE_SPEC.md, cosign v3's default): a Sigstore bundle v0.3 as the one layer of an
//   OCI 1.1 referrer manifest whose subject is the signed manifest.
import {
  INTOTO_PAYLOAD_TYPE,
  INTOTO_STATEMENT_V1,
  WaxsealError,
  decodePemAll,
  encodePem,
  fromBase64,
  fromHex,
  fromUtf8,
  parseJsonBounded,
  sha256,
  toBase64,
  toHex,
  utf8,
  type InTotoStatement,
} from '@waxseal/core';
import {
  BUNDLE_MEDIA_TYPE_V01,
  BUNDLE_MEDIA_TYPE_V03,
  type Bundle,
  type DsseEnvelope,
  type TransparencyLogEntry,
  type VerificationMaterialContent,
} from '@waxseal/bundle';
import { EMPTY_JSON, MAX_LAYERS, MEDIA_TYPES, digestOf, serializeManifest, type Descriptor, type ImageManifest } from './manifest.ts';

export const COSIGN = {
  simpleSigningMediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
  dsseMediaType: 'application/vnd.dsse.envelope.v1+json',
  signatureType: 'cosign container image signature',
  signPredicateType: 'https://sigstore.dev/cosign/sign/v1',
  bundleArtifactType: BUNDLE_MEDIA_TYPE_V03,
  annotations: {
    signature: 'dev.cosignproject.cosign/signature',
    certificate: 'dev.sigstore.cosign/certificate',
    chain: 'dev.sigstore.cosign/chain',
    bundle: 'dev.sigstore.cosign/bundle',
    rfc3161: 'dev.sigstore.cosign/rfc3161timestamp',
    predicateType: 'predicateType',
    bundleContent: 'dev.sigstore.bundle.content',
    bundlePredicateType: 'dev.sigstore.bundle.predicateType',
    created: 'org.opencontainers.image.created',
  },
} as const;

export type LegacySuffix = 'sig' | 'att' | 'sbom';

/** The legacy tag of a subject digest: `sha256-<hex>.<suffix>`. */
export function legacyTag(digest: string, suffix: LegacySuffix): string {
  return `${digest.replace(':', '-')}.${suffix}`;
}

// ------------------------------------------------------------------------- simple signing

export interface SimpleSigning {
  dockerReference: string;
  dockerManifestDigest: string;
  type: string;
  optional: Record<string, unknown> | null;
}

/** The simple-signing payload cosign signs (Go's encoding: fixed field order, optional null when empty). */
export function simpleSigningPayload(dockerReference: string, digest: string, optional?: Record<string, string>): Uint8Array {
  const opt =
    optional && Object.keys(optional).length
      ? Object.fromEntries(
          Object.keys(optional)
            .sort()
            .map((k) => [k, optional[k]]),
        )
      : null;
  return utf8(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': dockerReference },
        image: { 'docker-manifest-digest': digest },
        type: COSIGN.signatureType,
      },
      optional: opt,
    }),
  );
}

/** Go's encoding/json matches field names case-insensitively; so does this (exact name first). */
function field(o: Record<string, unknown>, name: string): unknown {
  if (name in o) return o[name];
  const k = Object.keys(o).find((x) => x.toLowerCase() === name);
  return k === undefined ? undefined : o[k];
}

const obj = (v: unknown): Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};

export function parseSimpleSigning(bytes: Uint8Array): SimpleSigning {
  const j = obj(parseJsonBounded(bytes, { maxBytes: 1 << 20, what: 'simple-signing payload', code: 'ERR_INVALID_INPUT' }));
  const critical = obj(field(j, 'critical'));
  const digest = field(obj(field(critical, 'image')), 'docker-manifest-digest');
  const type = field(critical, 'type');
  if (typeof digest !== 'string' || typeof type !== 'string') {
    throw new WaxsealError('ERR_INVALID_INPUT', 'the simple-signing payload lacks critical.image.docker-manifest-digest or critical.type', {
      check: 'image.payload',
    });
  }
  const ref = field(obj(field(critical, 'identity')), 'docker-reference');
  const optional = field(j, 'optional');
  return {
    dockerReference: typeof ref === 'string' ? ref : '',
    dockerManifestDigest: digest,
    type,
    optional: typeof optional === 'object' && optional !== null ? (optional as Record<string, unknown>) : null,
  };
}

// ------------------------------------------------------------------------- in-toto statements

/** cosign v3's image signature: a statement about the digest with predicate type cosign/sign/v1. */
export function signStatement(digest: string, annotations?: Record<string, string>): InTotoStatement {
  const subject: InTotoStatement['subject'][number] & { annotations?: Record<string, string> } = { digest: digestMap(digest) };
  if (annotations && Object.keys(annotations).length) subject.annotations = annotations;
  return { _type: INTOTO_STATEMENT_V1, subject: [subject], predicateType: COSIGN.signPredicateType, predicate: {} };
}

/** An attestation about an image: the statement's subject is the image (name and digest). */
export function attestationStatement(name: string, digest: string, predicateType: string, predicate: unknown): InTotoStatement {
  return { _type: INTOTO_STATEMENT_V1, subject: [{ name, digest: digestMap(digest) }], predicateType, predicate };
}

function digestMap(digest: string): Record<string, string> {
  const [alg, hex] = digest.split(':');
  return { [alg!]: hex! };
}

// ------------------------------------------------------------------------- legacy layers

/** What a legacy signature layer carries, besides its payload. */
export interface LegacySignatureMaterial {
  signature: Uint8Array;
  /** DER leaf certificate (keyless or certificate-based signing). */
  certificate?: Uint8Array;
  /** DER intermediates and root. */
  chain?: Uint8Array[];
  /** A log entry with a signed entry timestamp, written as cosign's Rekor "bundle". */
  tlogEntry?: TransparencyLogEntry;
  /** DER RFC 3161 timestamp response over the signature. */
  rfc3161Timestamp?: Uint8Array;
}

export interface LegacyLayer {
  mediaType: string;
  payload: Uint8Array;
  annotations: Record<string, string>;
}

/** A legacy layer's annotations for signature material (cosign's names and encodings). */
export function legacyAnnotations(m: LegacySignatureMaterial, extra: Record<string, string> = {}): Record<string, string> {
  const a: Record<string, string> = { ...extra, [COSIGN.annotations.signature]: toBase64(m.signature) };
  if (m.certificate) a[COSIGN.annotations.certificate] = encodePem('CERTIFICATE', m.certificate);
  if (m.chain?.length) a[COSIGN.annotations.chain] = m.chain.map((c) => encodePem('CERTIFICATE', c)).join('');
  if (m.tlogEntry?.inclusionPromise) {
    const e = m.tlogEntry;
    a[COSIGN.annotations.bundle] = JSON.stringify({
      SignedEntryTimestamp: toBase64(e.inclusionPromise!.signedEntryTimestamp),
      Payload: { body: toBase64(e.canonicalizedBody), integratedTime: e.integratedTime, logIndex: e.logIndex, logID: toHex(e.logId) },
    });
  }
  if (m.rfc3161Timestamp) a[COSIGN.annotations.rfc3161] = JSON.stringify({ SignedRFC3161Timestamp: toBase64(m.rfc3161Timestamp) });
  return a;
}

/** Reads the signature material back from a legacy layer's annotations. */
export function parseLegacyAnnotations(
  a: Record<string, string>,
  what: string,
): Omit<LegacySignatureMaterial, 'signature'> & { signature?: Uint8Array } {
  const bad = (why: string): never => {
    throw new WaxsealError('ERR_INVALID_INPUT', `${what}: ${why}`, { check: 'image.annotations' });
  };
  const out: ReturnType<typeof parseLegacyAnnotations> = {};
  const sig = a[COSIGN.annotations.signature];
  if (sig) out.signature = fromBase64(sig, `${what} signature annotation`);
  const cert = a[COSIGN.annotations.certificate];
  if (cert) {
    const blocks = decodePemAll(cert).filter((b) => b.label === 'CERTIFICATE');
    if (blocks.length !== 1) bad('the certificate annotation must hold one PEM certificate');
    out.certificate = blocks[0]!.der;
  }
  const chain = a[COSIGN.annotations.chain];
  if (chain) out.chain = decodePemAll(chain).map((b) => b.der);
  const rekor = a[COSIGN.annotations.bundle];
  if (rekor) {
    const j = obj(parseJsonBounded(rekor, { maxBytes: 1 << 20, what: `${what} bundle annotation`, code: 'ERR_INVALID_INPUT' }));
    const p = obj(j.Payload);
    if (typeof j.SignedEntryTimestamp !== 'string' || typeof p.body !== 'string' || typeof p.logID !== 'string') {
      bad('the bundle annotation lacks SignedEntryTimestamp or Payload');
    }
    const body = fromBase64(p.body as string, 'log entry body');
    const kinds = obj(parseJsonBounded(body, { maxBytes: 1 << 20, what: 'log entry body', code: 'ERR_INVALID_INPUT' }));
    out.tlogEntry = {
      logIndex: Number(p.logIndex),
      logId: fromHex(p.logID as string, 'logID'),
      kindVersion: { kind: String(kinds.kind ?? ''), version: String(kinds.apiVersion ?? '') },
      integratedTime: Number(p.integratedTime),
      inclusionPromise: { signedEntryTimestamp: fromBase64(j.SignedEntryTimestamp as string, 'SignedEntryTimestamp') },
      canonicalizedBody: body,
    };
  }
  const ts = a[COSIGN.annotations.rfc3161];
  if (ts) {
    const j = obj(parseJsonBounded(ts, { maxBytes: 1 << 20, what: `${what} timestamp annotation`, code: 'ERR_INVALID_INPUT' }));
    if (typeof j.SignedRFC3161Timestamp !== 'string') bad('the timestamp annotation lacks SignedRFC3161Timestamp');
    out.rfc3161Timestamp = fromBase64(j.SignedRFC3161Timestamp as string, 'SignedRFC3161Timestamp');
  }
  return out;
}

/**
 * The Sigstore bundle equivalent of a legacy layer, so one verifier checks both formats:
 * simple-signing layers become message signatures over the payload, DSSE layers envelopes.
 */
export function legacyLayerToBundle(layer: LegacyLayer, what: string): Bundle {
  const m = parseLegacyAnnotations(layer.annotations, what);
  // cosign's Rekor bundle has only a signed entry timestamp: a v0.1 bundle's rules.
  const v01 = m.tlogEntry !== undefined;
  let content: VerificationMaterialContent;
  if (m.certificate) {
    content = v01
      ? { type: 'x509CertificateChain', certificates: [m.certificate, ...(m.chain ?? [])] }
      : { type: 'certificate', certificate: m.certificate };
  } else content = { type: 'publicKey', hint: '' };
  const material = {
    content,
    tlogEntries: m.tlogEntry ? [m.tlogEntry] : [],
    rfc3161Timestamps: m.rfc3161Timestamp ? [m.rfc3161Timestamp] : [],
  };
  const mediaType = v01 ? BUNDLE_MEDIA_TYPE_V01 : BUNDLE_MEDIA_TYPE_V03;
  if (layer.mediaType === COSIGN.dsseMediaType) {
    return {
      mediaType,
      verificationMaterial: material,
      content: { type: 'dsseEnvelope', envelope: parseDsseEnvelope(layer.payload, what) },
    };
  }
  if (layer.mediaType !== COSIGN.simpleSigningMediaType) {
    throw new WaxsealError('ERR_INVALID_INPUT', `${what}: layer media type ${layer.mediaType} is not a cosign signature`, {
      check: 'image.layer',
    });
  }
  if (!m.signature)
    throw new WaxsealError('ERR_INVALID_INPUT', `${what}: the layer has no signature annotation`, { check: 'image.annotations' });
  return {
    mediaType,
    verificationMaterial: material,
    content: { type: 'messageSignature', messageDigest: { algorithm: 'sha256', digest: sha256(layer.payload) }, signature: m.signature },
  };
}

/** A DSSE envelope in its JSON form (payload and signatures base64). */
export function parseDsseEnvelope(bytes: Uint8Array, what: string): DsseEnvelope {
  const j = obj(parseJsonBounded(bytes, { maxBytes: 16 << 20, what: `${what} DSSE envelope`, code: 'ERR_INVALID_INPUT' }));
  if (typeof j.payload !== 'string' || typeof j.payloadType !== 'string' || !Array.isArray(j.signatures)) {
    throw new WaxsealError('ERR_INVALID_INPUT', `${what}: not a DSSE envelope (payload, payloadType, signatures)`, {
      check: 'image.layer',
    });
  }
  return {
    payload: fromBase64(j.payload, 'DSSE payload'),
    payloadType: j.payloadType,
    signatures: j.signatures.map((s) => ({
      sig: fromBase64(String(obj(s).sig ?? ''), 'DSSE signature'),
      keyid: String(obj(s).keyid ?? ''),
    })),
  };
}

export function serializeDsseEnvelope(e: DsseEnvelope): Uint8Array {
  return utf8(
    JSON.stringify({
      payloadType: e.payloadType,
      payload: toBase64(e.payload),
      signatures: e.signatures.map((s) => ({ keyid: s.keyid, sig: toBase64(s.sig) })),
    }),
  );
}

/** The legacy layer for an attestation: the DSSE envelope, with predicateType and signature material. */
export function legacyAttestationLayer(
  envelope: DsseEnvelope,
  predicateType: string,
  m: Omit<LegacySignatureMaterial, 'signature'>,
): LegacyLayer {
  const a = legacyAnnotations({ ...m, signature: envelope.signatures[0]!.sig }, { [COSIGN.annotations.predicateType]: predicateType });
  // cosign puts the signature inside the envelope and leaves the annotation empty.
  a[COSIGN.annotations.signature] = '';
  return { mediaType: COSIGN.dsseMediaType, payload: serializeDsseEnvelope(envelope), annotations: a };
}

/**
 * The legacy signature image: the layers already at the tag (kept as they are) plus the new
 * ones, as go-containerregistry's empty image with layers appended (config with one diff_id and
 * one history entry per layer), which is how cosign writes it.
 */
export function legacySignatureImage(existing: Descriptor[], added: LegacyLayer[]): { config: Uint8Array; manifest: Uint8Array } {
  const layers: Descriptor[] = [
    ...existing,
    ...added.map((l) => ({ mediaType: l.mediaType, size: l.payload.length, digest: digestOf(l.payload), annotations: l.annotations })),
  ];
  if (layers.length > MAX_LAYERS) {
    throw new WaxsealError('ERR_BODY_TOO_LARGE', `a signature manifest holds at most ${MAX_LAYERS} signatures`, {
      check: 'oci.manifest-size',
    });
  }
  const config = utf8(
    JSON.stringify({
      architecture: '',
      created: '0001-01-01T00:00:00Z',
      history: layers.map(() => ({ created: '0001-01-01T00:00:00Z' })),
      os: '',
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
      config: {},
    }),
  );
  const m: ImageManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    config: { mediaType: MEDIA_TYPES.ociConfig, size: config.length, digest: digestOf(config) },
    layers,
  };
  return { config, manifest: serializeManifest(m) };
}

/** A layer already in a legacy signature manifest is kept when the same payload and signature come again. */
export function sameLegacyLayer(a: Descriptor, b: LegacyLayer): boolean {
  return a.digest === digestOf(b.payload) && a.annotations?.[COSIGN.annotations.signature] === b.annotations[COSIGN.annotations.signature];
}

// ------------------------------------------------------------------------- bundle referrers

export type BundleContentKind = 'message-signature' | 'dsse-envelope';

/**
 * The referrer manifest for a bundle (cosign's WriteReferrer): empty config, the bundle as the
 * one layer, the signed manifest as subject, and the content/predicateType annotations.
 */
export function bundleReferrerManifest(
  subject: Descriptor,
  bundleBytes: Uint8Array,
  o: { content: BundleContentKind; predicateType?: string; created: Date },
): { manifest: Uint8Array; annotations: Record<string, string> } {
  const annotations: Record<string, string> = {
    [COSIGN.annotations.created]: o.created.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    [COSIGN.annotations.bundleContent]: o.content,
  };
  if (o.predicateType) annotations[COSIGN.annotations.bundlePredicateType] = o.predicateType;
  const m: ImageManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    config: {
      mediaType: MEDIA_TYPES.ociEmpty,
      size: EMPTY_JSON.length,
      digest: digestOf(EMPTY_JSON),
      artifactType: COSIGN.bundleArtifactType,
    },
    layers: [{ mediaType: BUNDLE_MEDIA_TYPE_V03, size: bundleBytes.length, digest: digestOf(bundleBytes) }],
    annotations,
    subject: { mediaType: subject.mediaType, size: subject.size, digest: subject.digest },
    artifactType: COSIGN.bundleArtifactType,
  };
  return { manifest: serializeManifest(m), annotations };
}

/** Is this envelope an in-toto statement (what both formats' attestations hold)? */
export function isInTotoEnvelope(e: DsseEnvelope): boolean {
  return e.payloadType === INTOTO_PAYLOAD_TYPE;
}

/** The predicate type of an in-toto envelope's statement (unverified: for filtering before verification). */
export function envelopePredicateType(e: DsseEnvelope): string | undefined {
  try {
    const s = JSON.parse(fromUtf8(e.payload)) as { predicateType?: unknown };
    return typeof s.predicateType === 'string' ? s.predicateType : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A signing client's bundle as legacy signature material (signature, certificate, log entry with
 * its signed entry timestamp, RFC 3161 timestamp), for the legacy layer annotations.
 */
export function legacyMaterialFromBundle(bundle: Bundle): LegacySignatureMaterial {
  const vm = bundle.verificationMaterial;
  const signature = bundle.content.type === 'messageSignature' ? bundle.content.signature : bundle.content.envelope.signatures[0]!.sig;
  const m: LegacySignatureMaterial = { signature };
  if (vm.content.type === 'certificate') m.certificate = vm.content.certificate;
  else if (vm.content.type === 'x509CertificateChain') {
    m.certificate = vm.content.certificates[0]!;
    if (vm.content.certificates.length > 1) m.chain = vm.content.certificates.slice(1);
  }
  const entry = vm.tlogEntries.find((e) => e.inclusionPromise);
  if (entry) m.tlogEntry = entry;
  if (vm.rfc3161Timestamps[0]) m.rfc3161Timestamp = vm.rfc3161Timestamps[0];
  return m;
}
