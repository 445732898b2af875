// What is attached to an image, for `tree` and `download` (cosign's commands of those names): the
// referrers (Sigstore bundles by predicate type, SBOMs and other artifacts), the legacy
// .sig/.att/.sbom tags, and the signatures and attestations themselves in the JSON shapes cosign
// prints. Reading only: nothing here verifies (what it lists is what the store claims).
import { WaxsealError, decodePemAll, parseJsonBounded, toBase64 } from '@waxseal/core';
import { serializeBundleJson } from '@waxseal/bundle';
import { COSIGN, envelopePredicateType, legacyTag, parseDsseEnvelope, type LegacySuffix } from './cosign.ts';
import { MAX_ATTACHMENTS, MAX_SIGNATURE_BLOB_BYTES, findBundles, listAttached, type Attachment } from './image.ts';
import type { ImageStore } from './layout.ts';
import type { Descriptor } from './manifest.ts';
import type { Repo } from './registry.ts';

/** What a referrer is, from its artifact type and (for bundles) its predicate type. */
export type AttachedKind = 'signature' | 'attestation' | 'sbom' | 'other';

export interface TreeReferrer {
  digest: string;
  artifactType?: string;
  kind: AttachedKind;
  /** For Sigstore bundles: the predicate type the manifest annotations claim. */
  predicateType?: string;
  annotations?: Record<string, string>;
  layers: Pick<Descriptor, 'mediaType' | 'digest' | 'size'>[];
  /** Why the referrer manifest could not be read (it is listed anyway). */
  error?: string;
}

export interface TreeLegacyTag {
  tag: string;
  kind: 'signatures' | 'attestations' | 'sboms';
  layers: (Pick<Descriptor, 'mediaType' | 'digest' | 'size'> & { predicateType?: string })[];
}

export interface AttachedTree {
  digest: string;
  /** How referrers were found: the referrers API (or a layout's scan), the tag schema, or neither exists. */
  via: 'api' | 'tag' | 'none';
  referrers: TreeReferrer[];
  legacy: TreeLegacyTag[];
  /** Referrers listed but not fetched (over the limit). */
  skipped: number;
}

const SBOM_TYPES = [
  'application/spdx+json',
  'text/spdx',
  'application/vnd.cyclonedx+json',
  'application/vnd.cyclonedx+xml',
  'application/vnd.syft+json',
];
const SBOM_PREDICATES = /^https:\/\/(spdx\.dev\/Document|cyclonedx\.org\/bom)/;

function isBundleType(t: string | undefined): boolean {
  return t?.startsWith('application/vnd.dev.sigstore.bundle') ?? false;
}

/** Classifies a referrer (sigstore bundles by the predicate type, others by artifact type). */
export function referrerKind(artifactType: string | undefined, predicateType: string | undefined): AttachedKind {
  if (isBundleType(artifactType) || artifactType === 'application/vnd.in-toto+json') {
    if (predicateType === COSIGN.signPredicateType) return 'signature';
    if (predicateType && SBOM_PREDICATES.test(predicateType)) return 'sbom';
    return predicateType || artifactType === 'application/vnd.in-toto+json' ? 'attestation' : 'signature';
  }
  if (artifactType === 'application/vnd.dev.cosign.artifact.sig.v1+json') return 'signature';
  if (artifactType === 'application/vnd.dev.cosign.artifact.att.v1+json') return 'attestation';
  if (artifactType && (SBOM_TYPES.includes(artifactType) || artifactType.startsWith('application/vnd.dev.cosign.artifact.sbom'))) {
    return 'sbom';
  }
  return 'other';
}

const LEGACY_KINDS: Record<LegacySuffix, TreeLegacyTag['kind']> = { sig: 'signatures', att: 'attestations', sbom: 'sboms' };

/** Everything attached to `digest` (cosign tree): each referrer's manifest is read for its layers and annotations. */
export async function attachedTree(
  store: ImageStore,
  sigRepo: Repo,
  digest: string,
  o: { maxAttachments?: number } = {},
): Promise<AttachedTree> {
  const listed = await listAttached(store, sigRepo, digest);
  const max = o.maxAttachments ?? MAX_ATTACHMENTS;
  const referrers: TreeReferrer[] = [];
  for (const d of listed.referrers.slice(0, max)) {
    const r: TreeReferrer = { digest: d.digest, kind: 'other', layers: [] };
    let artifactType = d.artifactType;
    let annotations = d.annotations;
    try {
      const m = await store.getManifest(sigRepo, d.digest);
      if (m.parsed.kind === 'manifest') {
        const man = m.parsed.manifest;
        artifactType = man.artifactType ?? artifactType ?? man.config.mediaType;
        annotations = { ...annotations, ...man.annotations };
        r.layers = man.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size }));
      } else {
        artifactType = m.parsed.index.artifactType ?? artifactType;
        annotations = { ...annotations, ...m.parsed.index.annotations };
        r.layers = m.parsed.index.manifests.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size }));
      }
    } catch (e) {
      r.error = e instanceof Error ? e.message : String(e);
    }
    if (artifactType) r.artifactType = artifactType;
    const predicateType = annotations?.[COSIGN.annotations.bundlePredicateType] ?? annotations?.['dev.sigstore.bundle/predicateType'];
    if (predicateType) r.predicateType = predicateType;
    if (annotations && Object.keys(annotations).length) r.annotations = annotations;
    r.kind = referrerKind(artifactType, predicateType);
    referrers.push(r);
  }
  const legacy = listed.legacy.map(({ tag, layers }) => {
    const suffix = tag.slice(tag.lastIndexOf('.') + 1) as LegacySuffix;
    return {
      tag,
      kind: LEGACY_KINDS[suffix],
      layers: layers.map((l) => ({
        mediaType: l.mediaType,
        digest: l.digest,
        size: l.size,
        ...(l.annotations?.[COSIGN.annotations.predicateType] ? { predicateType: l.annotations[COSIGN.annotations.predicateType] } : {}),
      })),
    };
  });
  return { digest, via: listed.via, referrers, legacy, skipped: Math.max(0, listed.referrers.length - max) };
}

// ------------------------------------------------------------------------------ download

/** cosign's SignedPayload (pkg/cosign/fetch.go), as `cosign download signature` prints it for the legacy format. */
export interface CosignSignedPayload {
  Base64Signature: string;
  /** The simple-signing payload, base64 (Go's []byte). */
  Payload: string;
  /** The certificate: its DER, base64, as Go's x509.Certificate `Raw` (the rest of Go's struct is not reproduced). */
  Cert: { Raw: string } | null;
  Chain: { Raw: string }[] | null;
  /** The Rekor bundle annotation ({SignedEntryTimestamp, Payload{body, integratedTime, logIndex, logID}}). */
  Bundle: unknown;
  /** The RFC 3161 annotation ({SignedRFC3161Timestamp}). */
  RFC3161Timestamp: unknown;
}

/** cosign's AttestationPayload: a legacy attestation layer's DSSE envelope. */
export interface CosignAttestationPayload {
  payloadType: string;
  payload: string;
  signatures: { keyid: string; sig: string }[];
}

export interface Downloaded {
  format: 'bundle' | 'legacy';
  /** Where it came from: the referrer manifest digest, or `<tag>#<layer>`. */
  location: string;
  /** The JSON cosign prints for it (one line each). */
  json: unknown;
  predicateType?: string;
}

function annotationJson(v: string | undefined, what: string): unknown {
  if (!v) return null;
  return parseJsonBounded(v, { maxBytes: 1 << 20, what, code: 'ERR_INVALID_INPUT' });
}

function pemToRaw(pem: string | undefined): { Raw: string }[] | null {
  if (!pem) return null;
  const certs = decodePemAll(pem).filter((b) => b.label === 'CERTIFICATE');
  return certs.length ? certs.map((b) => ({ Raw: toBase64(b.der) })) : null;
}

async function legacyLayers(store: ImageStore, sigRepo: Repo, digest: string, suffix: LegacySuffix, max: number) {
  const tag = legacyTag(digest, suffix);
  const m = await store.getManifestIfExists(sigRepo, tag);
  if (!m) return [];
  if (m.parsed.kind !== 'manifest') {
    throw new WaxsealError('ERR_INVALID_INPUT', `${sigRepo.repository}:${tag} is an index, not a signature manifest`, {
      check: 'image.layer',
    });
  }
  const out: { location: string; layer: Descriptor; payload: Uint8Array }[] = [];
  for (const [i, layer] of m.parsed.manifest.layers.slice(0, max).entries()) {
    out.push({ location: `${tag}#${i}`, layer, payload: await store.getBlob(sigRepo, layer, MAX_SIGNATURE_BLOB_BYTES) });
  }
  return out;
}

function bundleDownload(a: Attachment): Downloaded {
  const b = a.bundle!;
  const d: Downloaded = { format: 'bundle', location: a.location, json: JSON.parse(serializeBundleJson(b)) };
  if (b.content.type === 'dsseEnvelope') {
    const p = envelopePredicateType(b.content.envelope);
    if (p) d.predicateType = p;
  }
  return d;
}

function isSignatureBundle(a: Attachment): boolean {
  const b = a.bundle!;
  return b.content.type === 'messageSignature' || envelopePredicateType(b.content.envelope) === COSIGN.signPredicateType;
}

/**
 * The image's signatures as cosign prints them: the signature bundles when any are attached
 * (bundle JSON), else each layer of the legacy .sig tag as a SignedPayload. Unreadable
 * attachments are returned in `errors`, not thrown.
 */
export async function downloadSignatures(
  store: ImageStore,
  sigRepo: Repo,
  digest: string,
  o: { maxAttachments?: number } = {},
): Promise<{ items: Downloaded[]; errors: { location: string; error: WaxsealError }[] }> {
  const found = await findBundles(store, sigRepo, digest, o);
  const errors = found.attachments.filter((a) => a.error).map((a) => ({ location: a.location, error: a.error! }));
  const bundles = found.attachments.filter((a) => a.bundle && isSignatureBundle(a));
  if (bundles.length) return { items: bundles.map(bundleDownload), errors };
  const items: Downloaded[] = [];
  for (const { location, layer, payload } of await legacyLayers(store, sigRepo, digest, 'sig', o.maxAttachments ?? MAX_ATTACHMENTS)) {
    try {
      const a = layer.annotations ?? {};
      const chain = pemToRaw(a[COSIGN.annotations.chain]);
      const sp: CosignSignedPayload = {
        Base64Signature: a[COSIGN.annotations.signature] ?? '',
        Payload: toBase64(payload),
        Cert: pemToRaw(a[COSIGN.annotations.certificate])?.[0] ?? null,
        Chain: chain,
        Bundle: annotationJson(a[COSIGN.annotations.bundle], `${location} bundle annotation`),
        RFC3161Timestamp: annotationJson(a[COSIGN.annotations.rfc3161], `${location} timestamp annotation`),
      };
      items.push({ format: 'legacy', location, json: sp });
    } catch (e) {
      errors.push({ location, error: e instanceof WaxsealError ? e : new WaxsealError('ERR_INVALID_INPUT', String(e)) });
    }
  }
  return { items, errors };
}

/**
 * The image's attestations as cosign prints them: each attestation bundle (bundle JSON), then each
 * legacy .att layer's DSSE envelope; `predicateType` keeps those whose statement has that type.
 */
export async function downloadAttestations(
  store: ImageStore,
  sigRepo: Repo,
  digest: string,
  o: { predicateType?: string; maxAttachments?: number } = {},
): Promise<{ items: Downloaded[]; errors: { location: string; error: WaxsealError }[] }> {
  const found = await findBundles(store, sigRepo, digest, { ...(o.maxAttachments ? { maxAttachments: o.maxAttachments } : {}) });
  const errors = found.attachments.filter((a) => a.error).map((a) => ({ location: a.location, error: a.error! }));
  const items = found.attachments
    .filter((a) => a.bundle && a.bundle.content.type === 'dsseEnvelope' && !isSignatureBundle(a))
    .map(bundleDownload)
    .filter((d) => !o.predicateType || d.predicateType === o.predicateType);
  for (const { location, payload } of await legacyLayers(store, sigRepo, digest, 'att', o.maxAttachments ?? MAX_ATTACHMENTS)) {
    try {
      const env = parseDsseEnvelope(payload, location);
      const predicateType = envelopePredicateType(env);
      if (o.predicateType && predicateType !== o.predicateType) continue;
      const json: CosignAttestationPayload = {
        payloadType: env.payloadType,
        payload: toBase64(env.payload),
        signatures: env.signatures.map((s) => ({ keyid: s.keyid, sig: toBase64(s.sig) })),
      };
      items.push({ format: 'legacy', location, json, ...(predicateType ? { predicateType } : {}) });
    } catch (e) {
      errors.push({ location, error: e instanceof WaxsealError ? e : new WaxsealError('ERR_INVALID_INPUT', String(e)) });
    }
  }
  return { items, errors };
}
