// Image signatures and attestations in a registry, in both of cosign's formats: resolve an image,
// attach a bundle as a referrer or a layer to a legacy tag, and collect what is attached for the
// (pure) verification in verify-image.ts. A broken attachment is reported, never fatal to the rest.
import { WaxsealError, fromUtf8 } from '@waxseal/core';
import { BUNDLE_MEDIA_TYPE_V03, parseBundleJson, serializeBundleJson, type Bundle } from '@waxseal/bundle';
import {
  COSIGN,
  bundleReferrerManifest,
  legacyLayerToBundle,
  legacySignatureImage,
  legacyTag,
  sameLegacyLayer,
  type BundleContentKind,
  type LegacyLayer,
  type LegacySuffix,
} from './cosign.ts';
import { EMPTY_JSON, MEDIA_TYPES, digestOf, type Descriptor } from './manifest.ts';
import { parseReference, parseRepository, type ImageReference } from './reference.ts';
import type { FetchedManifest, Repo } from './registry.ts';
import type { ImageStore } from './layout.ts';

/** Largest bundle or signature payload read (a bundle is a few KiB; generous for large chains). */
export const MAX_SIGNATURE_BLOB_BYTES = 4 << 20;
/** Most attachments examined per subject: more are reported, not fetched. */
export const MAX_ATTACHMENTS = 64;

export interface ResolvedImage {
  ref: ImageReference;
  repo: Repo;
  /** The manifest's digest (for a tag: what the tag pointed at when resolved). */
  digest: string;
  descriptor: Descriptor;
  manifest: FetchedManifest;
}

/** Resolves an image reference to its manifest and digest (checked when the reference pins one). */
export async function resolveImage(client: ImageStore, image: string | ImageReference): Promise<ResolvedImage> {
  // A layout store names its own image (oci:<path>, --local-image); otherwise a registry reference.
  const ref = typeof image === 'string' ? (client.reference?.(image) ?? parseReference(image)) : image;
  const repo = { registry: ref.registry, repository: ref.repository };
  const manifest = await client.getManifest(repo, ref.digest ?? ref.tag!);
  return {
    ref,
    repo,
    digest: manifest.digest,
    descriptor: { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.bytes.length },
    manifest,
  };
}

/** The platform manifests of an index (for --recursive), resolved by digest; [] for a single manifest. */
export async function resolveChildren(client: ImageStore, image: ResolvedImage): Promise<ResolvedImage[]> {
  if (image.manifest.parsed.kind !== 'index') return [];
  const out: ResolvedImage[] = [];
  for (const d of image.manifest.parsed.index.manifests) {
    const ref: ImageReference = { registry: image.ref.registry, repository: image.ref.repository, digest: d.digest };
    const child = await resolveImage(client, ref);
    out.push(child, ...(await resolveChildren(client, child)));
  }
  return out;
}

/** Where signatures live: the image's repository, or COSIGN_REPOSITORY's. */
export function signatureRepo(image: ResolvedImage, cosignRepository?: string): Repo {
  return cosignRepository ? parseRepository(cosignRepository) : image.repo;
}

/** The name cosign puts in payloads and statements: registry/repository. */
export function dockerReference(image: ResolvedImage): string {
  return `${image.ref.registry}/${image.ref.repository}`;
}

export interface AttachResult {
  format: 'bundle' | 'legacy';
  /** Where it went: the referrer manifest digest, or the legacy tag. */
  location: string;
  repo: Repo;
  /** How the referrer was indexed: by the registry (OCI 1.1), or in the tag-schema index. */
  indexedBy?: 'registry' | 'tag-schema';
}

/** Stores a bundle as an OCI 1.1 referrer of `subject` (cosign v3's format). */
export async function attachBundle(
  client: ImageStore,
  sigRepo: Repo,
  subject: Descriptor,
  bundle: Bundle,
  o: { predicateType?: string; created?: Date } = {},
): Promise<AttachResult> {
  const bytes = new TextEncoder().encode(serializeBundleJson(bundle));
  const content: BundleContentKind = bundle.content.type === 'dsseEnvelope' ? 'dsse-envelope' : 'message-signature';
  const { manifest, annotations } = bundleReferrerManifest(subject, bytes, {
    content,
    created: o.created ?? new Date(),
    ...(o.predicateType ? { predicateType: o.predicateType } : {}),
  });
  await client.putBlob(sigRepo, EMPTY_JSON);
  await client.putBlob(sigRepo, bytes);
  const put = await client.putManifest(sigRepo, digestOf(manifest), manifest, MEDIA_TYPES.ociManifest);
  let indexedBy: AttachResult['indexedBy'] = 'registry';
  if (!put.subjectIndexed) {
    // No referrers API: keep the tag-schema index (tag sha256-<hex>) up to date instead.
    await client.addToReferrersTag(sigRepo, subject.digest, {
      mediaType: MEDIA_TYPES.ociManifest,
      digest: put.digest,
      size: manifest.length,
      artifactType: COSIGN.bundleArtifactType,
      annotations,
    });
    indexedBy = 'tag-schema';
  }
  return { format: 'bundle', location: put.digest, repo: sigRepo, indexedBy };
}

/**
 * Adds a layer to the legacy tag (sha256-<hex>.sig / .att) of `subjectDigest`, keeping every
 * signature already there (read-modify-write, as cosign does; the same signature twice is kept once).
 */
export async function attachLegacy(
  client: ImageStore,
  sigRepo: Repo,
  subjectDigest: string,
  suffix: LegacySuffix,
  layer: LegacyLayer,
): Promise<AttachResult> {
  const tag = legacyTag(subjectDigest, suffix);
  const existing = await client.getManifestIfExists(sigRepo, tag);
  let kept: Descriptor[] = [];
  if (existing) {
    if (existing.parsed.kind !== 'manifest')
      throw new WaxsealError('ERR_CONFLICT', `${tag} in ${sigRepo.repository} is an index, not a signature manifest`);
    kept = existing.parsed.manifest.layers;
  }
  const added = kept.some((d) => sameLegacyLayer(d, layer)) ? [] : [layer];
  const { config, manifest } = legacySignatureImage(kept, added);
  for (const l of added) await client.putBlob(sigRepo, l.payload);
  await client.putBlob(sigRepo, config);
  await client.putManifest(sigRepo, tag, manifest, MEDIA_TYPES.ociManifest);
  return { format: 'legacy', location: tag, repo: sigRepo };
}

// ------------------------------------------------------------------------------ collecting

/** One attached signature or attestation, ready for verification (or why it could not be read). */
export interface Attachment {
  format: 'bundle' | 'legacy';
  /** The referrer manifest digest, or `<tag>#<layer index>`. */
  location: string;
  bundle?: Bundle;
  /** Legacy simple-signing payload (its digest claim is checked after the signature). */
  payload?: Uint8Array;
  /** The predicate type the registry annotations claim (unverified). */
  claimedPredicateType?: string;
  error?: WaxsealError;
}

function asError(e: unknown): WaxsealError {
  if (e instanceof WaxsealError) return e;
  return new WaxsealError('ERR_INVALID_INPUT', e instanceof Error ? e.message : String(e));
}

/** A Sigstore bundle's media type, of any published version (v0.1 to v0.3, both v0.3 spellings). */
export function isBundleMediaType(t: string | undefined): boolean {
  return t !== undefined && (/^application\/vnd\.dev\.sigstore\.bundle\+json;\s*version=0\.[123]$/.test(t) || t === BUNDLE_MEDIA_TYPE_V03);
}

/** Reads of one lookup (referrer manifests, bundle and signature layers) in flight at once. */
export const ATTACHMENT_READ_CONCURRENCY = 8;

/** Maps with at most `limit` calls in flight, results in order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (t: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/**
 * Bundle referrers (descriptors from the referrers API or index), each read as its manifest and
 * bundle layer, concurrently, in order; a referrer that cannot be read carries its error.
 */
export function readBundleReferrers(client: ImageStore, repo: Repo, referrers: readonly Descriptor[]): Promise<Attachment[]> {
  return mapLimit(referrers, ATTACHMENT_READ_CONCURRENCY, async (d) => {
    const a: Attachment = { format: 'bundle', location: d.digest };
    const claimed = d.annotations?.[COSIGN.annotations.bundlePredicateType];
    if (claimed) a.claimedPredicateType = claimed;
    try {
      const m = await client.getManifest(repo, d.digest, MEDIA_TYPES.ociManifest);
      if (m.parsed.kind !== 'manifest')
        throw new WaxsealError('ERR_INVALID_INPUT', `referrer ${d.digest} is not an image manifest`, { check: 'image.layer' });
      const layer = m.parsed.manifest.layers.find((l) => isBundleMediaType(l.mediaType));
      if (!layer) {
        throw new WaxsealError('ERR_INVALID_INPUT', `referrer ${d.digest} has no ${COSIGN.bundleArtifactType} layer`, {
          check: 'image.layer',
        });
      }
      const bytes = await client.getBlob(repo, layer, MAX_SIGNATURE_BLOB_BYTES);
      a.bundle = parseBundleJson(fromUtf8(bytes, 'bundle'));
    } catch (e) {
      a.error = asError(e);
    }
    return a;
  });
}

/**
 * The layers of the legacy signature manifest at `tag` (`sha256-<hex>.sig|.att`, any prefix),
 * each turned into a bundle, read concurrently, in order; a bad layer carries its error.
 */
export function readLegacyLayers(
  client: ImageStore,
  repo: Repo,
  tag: string,
  layers: readonly Descriptor[],
  suffix: LegacySuffix,
): Promise<Attachment[]> {
  const expected = suffix === 'sig' ? COSIGN.simpleSigningMediaType : COSIGN.dsseMediaType;
  return mapLimit(layers, ATTACHMENT_READ_CONCURRENCY, async (d, i) => {
    const location = `${tag}#${i}`;
    const a: Attachment = { format: 'legacy', location };
    const claimed = d.annotations?.[COSIGN.annotations.predicateType];
    if (claimed) a.claimedPredicateType = claimed;
    try {
      if (d.mediaType !== expected)
        throw new WaxsealError('ERR_INVALID_INPUT', `${location}: layer media type ${d.mediaType} is not ${expected}`, {
          check: 'image.layer',
        });
      const payload = await client.getBlob(repo, d, MAX_SIGNATURE_BLOB_BYTES);
      a.bundle = legacyLayerToBundle({ mediaType: d.mediaType, payload, annotations: d.annotations ?? {} }, location);
      if (suffix === 'sig') a.payload = payload;
    } catch (e) {
      a.error = asError(e);
    }
    return a;
  });
}

/**
 * The Sigstore bundles attached to `digest` as referrers (API or tag schema), optionally only
 * those whose annotations claim `predicateType` (claims are only a filter: verification re-checks).
 */
export async function findBundles(
  client: ImageStore,
  sigRepo: Repo,
  digest: string,
  o: { predicateType?: string; maxAttachments?: number } = {},
): Promise<{ attachments: Attachment[]; via: 'api' | 'tag' | 'none'; skipped: number }> {
  // Every referrer, then the bundle media types of any version: actions/attest pushed v0.2
  // bundles, cosign pushes v0.3 (and cosign's GetBundles does not filter by version either).
  const found = await client.referrers(sigRepo, digest);
  let candidates = found.descriptors.filter((d) => isBundleMediaType(d.artifactType));
  if (o.predicateType) {
    candidates = candidates.filter((d) => {
      const claimed = d.annotations?.[COSIGN.annotations.bundlePredicateType];
      return claimed === undefined || claimed === o.predicateType;
    });
  }
  const max = o.maxAttachments ?? MAX_ATTACHMENTS;
  const skipped = Math.max(0, candidates.length - max);
  const attachments = await readBundleReferrers(client, sigRepo, candidates.slice(0, max));
  return { attachments, via: found.via, skipped };
}

/** The layers at a legacy tag (sha256-<hex>.sig or .att), each turned into a bundle. */
export async function findLegacy(
  client: ImageStore,
  sigRepo: Repo,
  digest: string,
  suffix: LegacySuffix,
  o: { maxAttachments?: number } = {},
): Promise<{ attachments: Attachment[]; skipped: number }> {
  const tag = legacyTag(digest, suffix);
  const m = await client.getManifestIfExists(sigRepo, tag);
  if (!m) return { attachments: [], skipped: 0 };
  if (m.parsed.kind !== 'manifest') {
    throw new WaxsealError('ERR_INVALID_INPUT', `${sigRepo.repository}:${tag} is an index, not a signature manifest`, {
      check: 'image.layer',
    });
  }
  const layers = m.parsed.manifest.layers;
  const max = o.maxAttachments ?? MAX_ATTACHMENTS;
  const attachments = await readLegacyLayers(client, sigRepo, tag, layers.slice(0, max), suffix);
  return { attachments, skipped: Math.max(0, layers.length - max) };
}

/** Everything attached to an image (for `tree`): referrers by artifact type and the legacy tags present. */
export async function listAttached(
  client: ImageStore,
  sigRepo: Repo,
  digest: string,
): Promise<{ referrers: Descriptor[]; via: 'api' | 'tag' | 'none'; legacy: { tag: string; layers: Descriptor[] }[] }> {
  const r = await client.referrers(sigRepo, digest);
  const legacy: { tag: string; layers: Descriptor[] }[] = [];
  for (const suffix of ['sig', 'att', 'sbom'] as const) {
    const tag = legacyTag(digest, suffix);
    const m = await client.getManifestIfExists(sigRepo, tag);
    if (m?.parsed.kind === 'manifest') legacy.push({ tag, layers: m.parsed.manifest.layers });
  }
  return { referrers: r.descriptors, via: r.via, legacy };
}
