// OCI image manifests and indexes (and Docker v2 schema 2 manifests and manifest lists): media
// types, bounded parsing with the fields checked, and canonical serialisation. Pure.
import { WaxsealError, parseJsonBounded, sha256, toHex, utf8 } from '@waxseal/core';
import { isDigest } from './reference.ts';

export const MEDIA_TYPES = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  ociLayerTar: 'application/vnd.oci.image.layer.v1.tar',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
} as const;

export const MANIFEST_MEDIA_TYPES: readonly string[] = [MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifest];
export const INDEX_MEDIA_TYPES: readonly string[] = [MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerManifestList];
/** The Accept header for manifest GET/HEAD: every kind this client reads. */
export const MANIFEST_ACCEPT = [...MANIFEST_MEDIA_TYPES, ...INDEX_MEDIA_TYPES].join(', ');

/** The OCI empty descriptor's content `{}` (OCI image-spec 1.1, "Guidance for an empty descriptor"). */
export const EMPTY_JSON = utf8('{}');

/** Largest manifest or index read (distribution's own limit is 4 MiB). */
export const MAX_MANIFEST_BYTES = 4 << 20;
/** Most descriptors accepted in one index (referrers lists included). */
export const MAX_INDEX_ENTRIES = 1000;
/** Most layers accepted in one manifest (cosign's limit for a signature manifest). */
export const MAX_LAYERS = 1000;

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  artifactType?: string;
  platform?: Platform;
  urls?: string[];
  data?: string;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** `sha256:<hex>` of bytes. */
export function digestOf(bytes: Uint8Array): string {
  return `sha256:${toHex(sha256(bytes))}`;
}

/** Throws unless `bytes` hash to `expected` (the check every fetched manifest and blob passes). */
export function checkDigest(bytes: Uint8Array, expected: string, what: string): void {
  const got = digestOf(bytes);
  if (got !== expected) {
    throw new WaxsealError(
      'ERR_VERIFY_ARTIFACT',
      `${what}: the registry sent content whose digest ${got} is not the requested ${expected}`,
      {
        check: 'oci.digest',
        detail: { expected, got },
      },
    );
  }
}

function invalid(what: string, why: string): never {
  throw new WaxsealError('ERR_INVALID_INPUT', `${what} is not a valid manifest: ${why}`, { check: 'oci.manifest' });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stringMap(v: unknown, what: string, field: string): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v) || Object.values(v).some((x) => typeof x !== 'string')) invalid(what, `${field} must map strings to strings`);
  return v as Record<string, string>;
}

export function parseDescriptor(v: unknown, what: string, field: string): Descriptor {
  if (!isObject(v)) invalid(what, `${field} must be an object`);
  const { mediaType, digest, size } = v;
  if (typeof mediaType !== 'string' || mediaType.length === 0 || mediaType.length > 255) invalid(what, `${field}.mediaType is missing`);
  if (typeof digest !== 'string' || !isDigest(digest)) invalid(what, `${field}.digest must be sha256:<64 hex>`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) invalid(what, `${field}.size must be a non-negative integer`);
  const d: Descriptor = { mediaType, digest, size };
  const annotations = stringMap(v.annotations, what, `${field}.annotations`);
  if (annotations) d.annotations = annotations;
  if (typeof v.artifactType === 'string') d.artifactType = v.artifactType;
  if (isObject(v.platform) && typeof v.platform.architecture === 'string' && typeof v.platform.os === 'string') {
    d.platform = v.platform as unknown as Platform;
  }
  if (Array.isArray(v.urls)) d.urls = v.urls.filter((u): u is string => typeof u === 'string');
  if (typeof v.data === 'string') d.data = v.data;
  return d;
}

export type ParsedManifest = { kind: 'manifest'; manifest: ImageManifest } | { kind: 'index'; index: ImageIndex };

/**
 * Parses a manifest or an index; `contentType` is what the registry declared (the body's own
 * mediaType field wins when both are present and must then agree).
 */
export function parseManifest(bytes: Uint8Array, contentType: string | undefined, what = 'manifest'): ParsedManifest {
  const json = parseJsonBounded(bytes, { maxBytes: MAX_MANIFEST_BYTES, maxDepth: 16, what, code: 'ERR_INVALID_INPUT' });
  if (!isObject(json)) invalid(what, 'not a JSON object');
  if (json.schemaVersion !== 2) invalid(what, 'schemaVersion must be 2');
  const declared = contentType?.split(';')[0]?.trim();
  const mediaType = typeof json.mediaType === 'string' ? json.mediaType : undefined;
  if (mediaType && declared && declared !== mediaType && declared !== 'application/json' && declared !== 'application/octet-stream') {
    invalid(what, `the registry calls it ${declared} but it says ${mediaType}`);
  }
  const type = mediaType ?? declared;
  const looksIndex = Array.isArray(json.manifests);
  const isIndex = type ? INDEX_MEDIA_TYPES.includes(type) : looksIndex;
  const annotations = stringMap(json.annotations, what, 'annotations');
  const subject = json.subject === undefined ? undefined : parseDescriptor(json.subject, what, 'subject');
  const common = {
    schemaVersion: 2 as const,
    ...(mediaType ? { mediaType } : {}),
    ...(typeof json.artifactType === 'string' ? { artifactType: json.artifactType } : {}),
    ...(subject ? { subject } : {}),
    ...(annotations ? { annotations } : {}),
  };
  if (isIndex) {
    if (!looksIndex) invalid(what, 'an index needs a manifests array');
    const list = json.manifests as unknown[];
    if (list.length > MAX_INDEX_ENTRIES) {
      throw new WaxsealError('ERR_BODY_TOO_LARGE', `${what} lists ${list.length} manifests, more than the ${MAX_INDEX_ENTRIES} accepted`, {
        check: 'oci.index-size',
      });
    }
    return { kind: 'index', index: { ...common, manifests: list.map((m, i) => parseDescriptor(m, what, `manifests[${i}]`)) } };
  }
  if (type && !MANIFEST_MEDIA_TYPES.includes(type)) invalid(what, `unsupported media type ${type}`);
  if (!Array.isArray(json.layers)) invalid(what, 'layers must be an array');
  if (json.layers.length > MAX_LAYERS) {
    throw new WaxsealError('ERR_BODY_TOO_LARGE', `${what} has ${json.layers.length} layers, more than the ${MAX_LAYERS} accepted`, {
      check: 'oci.manifest-size',
    });
  }
  return {
    kind: 'manifest',
    manifest: {
      ...common,
      config: parseDescriptor(json.config, what, 'config'),
      layers: json.layers.map((l, i) => parseDescriptor(l, what, `layers[${i}]`)),
    },
  };
}

function descriptorJson(d: Descriptor): Record<string, unknown> {
  // go-containerregistry's field order, so manifests we write read like cosign's.
  const o: Record<string, unknown> = { mediaType: d.mediaType, size: d.size, digest: d.digest };
  if (d.data !== undefined) o.data = d.data;
  if (d.urls) o.urls = d.urls;
  if (d.annotations && Object.keys(d.annotations).length) o.annotations = sortedMap(d.annotations);
  if (d.platform) o.platform = d.platform;
  if (d.artifactType) o.artifactType = d.artifactType;
  return o;
}

/** Go's encoding/json writes map keys sorted; so do we. */
function sortedMap(m: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.keys(m)
      .sort()
      .map((k) => [k, m[k]!]),
  );
}

/** Serialises an image manifest (compact JSON, ggcr's field order). */
export function serializeManifest(m: ImageManifest): Uint8Array {
  const o: Record<string, unknown> = { schemaVersion: 2, mediaType: m.mediaType ?? MEDIA_TYPES.ociManifest };
  o.config = descriptorJson(m.config);
  o.layers = m.layers.map(descriptorJson);
  if (m.annotations && Object.keys(m.annotations).length) o.annotations = sortedMap(m.annotations);
  if (m.subject) o.subject = descriptorJson(m.subject);
  if (m.artifactType) o.artifactType = m.artifactType;
  return utf8(JSON.stringify(o));
}

/** Serialises an image index (compact JSON). */
export function serializeIndex(ix: ImageIndex): Uint8Array {
  const o: Record<string, unknown> = { schemaVersion: 2, mediaType: ix.mediaType ?? MEDIA_TYPES.ociIndex };
  if (ix.artifactType) o.artifactType = ix.artifactType;
  o.manifests = ix.manifests.map(descriptorJson);
  if (ix.annotations && Object.keys(ix.annotations).length) o.annotations = sortedMap(ix.annotations);
  if (ix.subject) o.subject = descriptorJson(ix.subject);
  return utf8(JSON.stringify(o));
}
