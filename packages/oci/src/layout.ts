// A local OCI image layout (image-spec "image-layout": oci-layout, index.json, blobs/sha256/<hex>)
// as a store with the registry client's operations, so signing and verification run unchanged on
// `oci:<path>[:<tag>|@<digest>]` references and cosign's `--local-image <path>`.
// - Tags are index.json entries annotated org.opencontainers.image.ref.name (as skopeo and umoci
//   write them); cosign's legacy tags (sha256-<hex>.sig/.att) are tags like any other.
// - Referrers are the manifests in blobs/ whose `subject` is the digest (what cosign's
//   GetLocalBundles scans for); a manifest stored by digest with a subject is also listed in
//   index.json, untagged (as oras does), so that garbage collection keeps it.
// - `cosign save` layouts are read too: the image is the entry annotated
//   kind=dev.cosignproject.cosign/image (or imageIndex), its signatures the one annotated
//   kind=dev.cosignproject.cosign/sigs (atts for attestations).
// Every manifest and blob read is bounded and checked against its digest and size, as over HTTP.
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  statSync,
  writeFileSync,
  fsyncSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { WaxsealError, parseJsonBounded, utf8 } from '@waxseal/core';
import {
  MAX_INDEX_ENTRIES,
  MAX_MANIFEST_BYTES,
  MEDIA_TYPES,
  checkDigest,
  digestOf,
  parseDescriptor,
  parseManifest,
  type Descriptor,
} from './manifest.ts';
import { isDigest, type ImageReference } from './reference.ts';
import type { FetchedManifest, ReferrersResult, RegistryClient, Repo } from './registry.ts';

/** What image signing and verification need from where images live: a registry or a layout. */
export type ImageStore = Pick<
  RegistryClient,
  'getManifest' | 'getManifestIfExists' | 'getBlob' | 'putBlob' | 'putManifest' | 'referrers' | 'addToReferrersTag'
> & {
  /** How this store names `image` (a layout's own reference); undefined: a registry reference. */
  reference?(image: string): ImageReference | undefined;
};

export const REF_NAME = 'org.opencontainers.image.ref.name';
/** cosign save's index.json annotation (pkg/oci/layout/index.go) and its values. */
export const COSIGN_KIND = 'kind';
export const COSIGN_KINDS = {
  image: 'dev.cosignproject.cosign/image',
  imageIndex: 'dev.cosignproject.cosign/imageIndex',
  sigs: 'dev.cosignproject.cosign/sigs',
  atts: 'dev.cosignproject.cosign/atts',
} as const;

const LEGACY_TAG = /^sha256-([0-9a-f]{64})(?:\.(sig|att|sbom))?$/;
/** Most blobs examined when scanning for referrers (a layout of one image has a few dozen). */
const MAX_SCANNED_BLOBS = 100_000;

interface IndexJson {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/** Parses `oci:<path>[:<tag>|@sha256:<hex>]` (skopeo's syntax; the path cannot hold ':'). */
export function parseLayoutReference(image: string): { path: string; tag?: string; digest?: string } {
  if (!image.startsWith('oci:')) throw new WaxsealError('ERR_INVALID_INPUT', `${JSON.stringify(image)} is not an oci:<path> reference`);
  let rest = image.slice(4);
  let digest: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at >= 0 && rest.slice(at + 1).startsWith('sha256:')) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(digest))
      throw new WaxsealError('ERR_INVALID_INPUT', `invalid digest in ${JSON.stringify(image)}: sha256:<64 lowercase hex>`);
  }
  let tag: string | undefined;
  const colon = rest.indexOf(':');
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!/^[\w][\w.:/-]{0,254}$/.test(tag)) throw new WaxsealError('ERR_INVALID_INPUT', `invalid tag in ${JSON.stringify(image)}`);
  }
  if (!rest) throw new WaxsealError('ERR_INVALID_INPUT', `${JSON.stringify(image)} names no layout directory`);
  return { path: rest, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

/**
 * The layout store for `image` when it names a layout (`oci:<path>…`, or any path with cosign's
 * --local-image), else undefined (a registry reference).
 */
export function layoutStoreFor(image: string, localImage?: boolean): LayoutStore | undefined {
  if (image.startsWith('oci:')) {
    const r = parseLayoutReference(image);
    return new LayoutStore(r.path, { ...(r.tag ? { tag: r.tag } : {}), ...(r.digest ? { digest: r.digest } : {}) });
  }
  if (localImage) return new LayoutStore(image);
  return undefined;
}

function ioError(what: string, e: unknown): WaxsealError {
  return new WaxsealError('ERR_IO', `${what}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
}

export class LayoutStore implements ImageStore {
  readonly dir: string;
  readonly #tag: string | undefined;
  readonly #digest: string | undefined;

  constructor(dir: string, o: { tag?: string; digest?: string } = {}) {
    this.dir = resolve(dir);
    this.#tag = o.tag;
    this.#digest = o.digest;
  }

  /** Creates an empty layout (oci-layout and an empty index.json) unless one is there. */
  static init(dir: string): LayoutStore {
    const s = new LayoutStore(dir);
    mkdirSync(join(s.dir, 'blobs', 'sha256'), { recursive: true });
    if (!existsSync(join(s.dir, 'oci-layout'))) s.#atomicWrite(join(s.dir, 'oci-layout'), utf8('{"imageLayoutVersion":"1.0.0"}'));
    if (!existsSync(join(s.dir, 'index.json'))) s.#writeIndex({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: [] });
    return s;
  }

  /** The reference the image is known by (`oci:<dir>`, with the tag or digest asked for, else the layout's image). */
  reference(_image?: string): ImageReference {
    const ref: ImageReference = { registry: 'oci:', repository: this.dir.replace(/^\/+/, '') };
    if (this.#digest) ref.digest = this.#digest;
    else if (this.#tag) ref.tag = this.#tag;
    else ref.digest = this.#defaultImage().digest;
    return ref;
  }

  // ------------------------------------------------------------------------------ index.json

  #readIndex(): IndexJson {
    const what = `${this.dir}/index.json`;
    const layoutFile = join(this.dir, 'oci-layout');
    if (!existsSync(layoutFile)) {
      throw new WaxsealError('ERR_NOT_FOUND', `${this.dir} is not an OCI image layout (no oci-layout file)`);
    }
    let bytes: Uint8Array;
    try {
      if (statSync(join(this.dir, 'index.json')).size > MAX_MANIFEST_BYTES) {
        throw new WaxsealError('ERR_BODY_TOO_LARGE', `${what} is larger than ${MAX_MANIFEST_BYTES} bytes`, { check: 'oci.index-size' });
      }
      bytes = readFileSync(join(this.dir, 'index.json'));
    } catch (e) {
      if (e instanceof WaxsealError) throw e;
      throw ioError(`cannot read ${what}`, e);
    }
    const parsed = parseManifest(bytes, MEDIA_TYPES.ociIndex, what);
    if (parsed.kind !== 'index') throw new WaxsealError('ERR_INVALID_INPUT', `${what} is not an image index`, { check: 'oci.manifest' });
    return parsed.index as IndexJson;
  }

  #writeIndex(ix: IndexJson): void {
    if (ix.manifests.length > MAX_INDEX_ENTRIES) {
      throw new WaxsealError('ERR_BODY_TOO_LARGE', `${this.dir}/index.json would list more than ${MAX_INDEX_ENTRIES} manifests`, {
        check: 'oci.index-size',
      });
    }
    const o: Record<string, unknown> = { schemaVersion: 2, mediaType: ix.mediaType ?? MEDIA_TYPES.ociIndex, manifests: ix.manifests };
    if (ix.annotations) o.annotations = ix.annotations;
    this.#atomicWrite(join(this.dir, 'index.json'), utf8(JSON.stringify(o)));
  }

  /** Writes a file as a new temporary file renamed into place (readers never see half of it). */
  #atomicWrite(path: string, bytes: Uint8Array): void {
    const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    try {
      const fd = openSync(tmp, 'wx', 0o644);
      try {
        writeFileSync(fd, bytes);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, path);
    } catch (e) {
      throw ioError(`cannot write ${path}`, e);
    }
  }

  #blobPath(digest: string): string {
    // The digest is checked before it becomes a path: no traversal out of blobs/sha256.
    if (!isDigest(digest)) throw new WaxsealError('ERR_INVALID_INPUT', `invalid digest ${JSON.stringify(digest)}`, { check: 'oci.digest' });
    return join(this.dir, 'blobs', 'sha256', digest.slice('sha256:'.length));
  }

  #readBlob(desc: Pick<Descriptor, 'digest' | 'size'>, maxBytes: number, what: string): Uint8Array {
    const path = this.#blobPath(desc.digest);
    let size: number;
    try {
      size = statSync(path).size;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new WaxsealError('ERR_NOT_FOUND', `${what}: not in ${this.dir}`);
      throw ioError(`cannot read ${what}`, e);
    }
    if (desc.size > maxBytes || size > maxBytes) {
      throw new WaxsealError('ERR_BODY_TOO_LARGE', `${what} is ${Math.max(size, desc.size)} bytes, more than the ${maxBytes} accepted`, {
        check: 'oci.size',
      });
    }
    if (size !== desc.size) {
      throw new WaxsealError('ERR_VERIFY_ARTIFACT', `${what}: ${size} bytes where the descriptor says ${desc.size}`, {
        check: 'oci.digest',
      });
    }
    let bytes: Uint8Array;
    try {
      const b = readFileSync(path);
      bytes = new Uint8Array(b.buffer, b.byteOffset, b.byteLength); // a plain Uint8Array, as the registry client returns
    } catch (e) {
      throw ioError(`cannot read ${what}`, e);
    }
    checkDigest(bytes, desc.digest, what);
    return bytes;
  }

  /** The entry a tag names: ref.name, or for a cosign save layout its kind annotations. */
  #findTag(ix: IndexJson, tag: string): Descriptor | undefined {
    const named = ix.manifests.filter((d) => d.annotations?.[REF_NAME] === tag);
    if (named.length) return named[named.length - 1];
    const legacy = LEGACY_TAG.exec(tag);
    if (legacy?.[2] === 'sig' || legacy?.[2] === 'att') {
      const image = ix.manifests.find((d) => [COSIGN_KINDS.image, COSIGN_KINDS.imageIndex].includes(d.annotations?.[COSIGN_KIND] as never));
      if (image?.digest === `sha256:${legacy[1]}`) {
        const kind = legacy[2] === 'sig' ? COSIGN_KINDS.sigs : COSIGN_KINDS.atts;
        return ix.manifests.find((d) => d.annotations?.[COSIGN_KIND] === kind);
      }
    }
    return undefined;
  }

  /**
   * The layout's image when no tag or digest is given: cosign save's image entry, else the one
   * entry that is not an attachment (legacy tags, referrers).
   */
  #defaultImage(): Descriptor {
    const ix = this.#readIndex();
    const cosignImage = ix.manifests.find((d) =>
      [COSIGN_KINDS.image, COSIGN_KINDS.imageIndex].includes(d.annotations?.[COSIGN_KIND] as never),
    );
    if (cosignImage) return cosignImage;
    const candidates = ix.manifests.filter((d) => {
      const kind = d.annotations?.[COSIGN_KIND];
      if (kind === COSIGN_KINDS.sigs || kind === COSIGN_KINDS.atts) return false;
      if (LEGACY_TAG.test(d.annotations?.[REF_NAME] ?? '')) return false;
      if (d.artifactType) return false;
      try {
        const m = parseManifest(this.#readBlob(d, MAX_MANIFEST_BYTES, `manifest ${d.digest}`), d.mediaType);
        return !(m.kind === 'manifest' ? m.manifest.subject : m.index.subject);
      } catch {
        return true;
      }
    });
    if (candidates.length === 1) return candidates[0]!;
    if (candidates.length === 0) throw new WaxsealError('ERR_NOT_FOUND', `${this.dir} holds no image`);
    const names = candidates.map((d) => d.annotations?.[REF_NAME] ?? d.digest).join(', ');
    throw new WaxsealError(
      'ERR_INVALID_INPUT',
      `${this.dir} holds ${candidates.length} images (${names}): name one as oci:${this.dir}:<tag> or oci:${this.dir}@<digest>`,
    );
  }

  // ------------------------------------------------------------------------------ the store

  async getManifest(_repo: Repo, reference: string, _accept?: string): Promise<FetchedManifest> {
    const ix = this.#readIndex();
    let desc: Pick<Descriptor, 'digest' | 'size'> & { mediaType?: string };
    if (isDigest(reference)) {
      const listed = ix.manifests.find((d) => d.digest === reference);
      const path = this.#blobPath(reference);
      let size: number;
      try {
        size = statSync(path).size;
      } catch {
        throw new WaxsealError('ERR_NOT_FOUND', `manifest ${reference} is not in ${this.dir}`);
      }
      desc = listed ?? { digest: reference, size: Math.min(size, MAX_MANIFEST_BYTES + 1) };
    } else {
      const found = this.#findTag(ix, reference);
      if (!found) throw new WaxsealError('ERR_NOT_FOUND', `no tag ${reference} in ${this.dir}`);
      desc = found;
    }
    const what = `manifest ${reference} in ${this.dir}`;
    const bytes = this.#readBlob(desc, MAX_MANIFEST_BYTES, what);
    const parsed = parseManifest(bytes, desc.mediaType, what);
    const mediaType =
      (parsed.kind === 'index' ? parsed.index.mediaType : parsed.manifest.mediaType) ??
      desc.mediaType ??
      (parsed.kind === 'index' ? MEDIA_TYPES.ociIndex : MEDIA_TYPES.ociManifest);
    return { digest: desc.digest, mediaType, bytes, parsed };
  }

  async getManifestIfExists(repo: Repo, reference: string, accept?: string): Promise<FetchedManifest | undefined> {
    try {
      return await this.getManifest(repo, reference, accept);
    } catch (e) {
      if (e instanceof WaxsealError && e.code === 'ERR_NOT_FOUND') return undefined;
      throw e;
    }
  }

  async putManifest(
    _repo: Repo,
    reference: string,
    bytes: Uint8Array,
    mediaType: string,
  ): Promise<{ digest: string; subjectIndexed: boolean }> {
    const digest = digestOf(bytes);
    if (isDigest(reference) && reference !== digest) throw new TypeError('putManifest: reference digest does not match the bytes');
    const parsed = parseManifest(bytes, mediaType, `manifest ${digest}`);
    this.#writeBlob(bytes, digest);
    const ix = this.#readIndex();
    const entry: Descriptor = { mediaType, digest, size: bytes.length };
    const subject = parsed.kind === 'manifest' ? parsed.manifest.subject : parsed.index.subject;
    const artifactType = parsed.kind === 'manifest' ? parsed.manifest.artifactType : parsed.index.artifactType;
    if (artifactType) entry.artifactType = artifactType;
    if (!isDigest(reference)) {
      const annotations: Record<string, string> = { [REF_NAME]: reference };
      // A cosign save layout finds signatures by kind: keep that working for the image it saved.
      const legacy = LEGACY_TAG.exec(reference);
      const image = ix.manifests.find((d) => [COSIGN_KINDS.image, COSIGN_KINDS.imageIndex].includes(d.annotations?.[COSIGN_KIND] as never));
      const cosignKind = legacy?.[2] === 'sig' ? COSIGN_KINDS.sigs : legacy?.[2] === 'att' ? COSIGN_KINDS.atts : undefined;
      const forSavedImage = cosignKind && image?.digest === `sha256:${legacy![1]}`;
      if (forSavedImage) annotations[COSIGN_KIND] = cosignKind;
      entry.annotations = annotations;
      ix.manifests = ix.manifests.filter(
        (d) => d.annotations?.[REF_NAME] !== reference && !(forSavedImage && d.annotations?.[COSIGN_KIND] === cosignKind),
      );
      ix.manifests.push(entry);
      this.#writeIndex(ix);
    } else if (subject && !ix.manifests.some((d) => d.digest === digest)) {
      ix.manifests.push(entry);
      this.#writeIndex(ix);
    }
    // Referrers are found by their subject (a scan), so every subject is "indexed".
    return { digest, subjectIndexed: true };
  }

  #writeBlob(bytes: Uint8Array, digest = digestOf(bytes)): void {
    const path = this.#blobPath(digest);
    if (existsSync(path) && statSync(path).size === bytes.length) return;
    mkdirSync(join(this.dir, 'blobs', 'sha256'), { recursive: true });
    this.#atomicWrite(path, bytes);
  }

  async getBlob(_repo: Repo, desc: Pick<Descriptor, 'digest' | 'size'>, maxBytes = 64 << 20): Promise<Uint8Array> {
    return this.#readBlob(desc, maxBytes, `blob ${desc.digest} in ${this.dir}`);
  }

  async putBlob(
    _repo: Repo,
    bytes: Uint8Array,
    _opts: { mountFrom?: string; chunked?: boolean } = {},
  ): Promise<Descriptor & { how: 'exists' | 'mounted' | 'monolithic' | 'chunked' }> {
    this.#readIndex(); // only into an existing layout
    const digest = digestOf(bytes);
    const existed = existsSync(this.#blobPath(digest));
    this.#writeBlob(bytes, digest);
    return { mediaType: 'application/octet-stream', digest, size: bytes.length, how: existed ? 'exists' : 'monolithic' };
  }

  /** The manifests in blobs/ whose subject is `digest` (cosign's GetLocalBundles scan), and the tag-schema index if any. */
  async referrers(repo: Repo, digest: string, artifactType?: string): Promise<ReferrersResult> {
    if (!isDigest(digest)) throw new WaxsealError('ERR_INVALID_INPUT', `invalid digest ${JSON.stringify(digest)}`, { check: 'oci.digest' });
    const dir = join(this.dir, 'blobs', 'sha256');
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (e) {
      throw ioError(`cannot list ${dir}`, e);
    }
    const found = new Map<string, Descriptor>();
    for (const name of names.slice(0, MAX_SCANNED_BLOBS)) {
      if (!/^[0-9a-f]{64}$/.test(name)) continue;
      const path = join(dir, name);
      let st: ReturnType<typeof statSync>;
      try {
        st = statSync(path);
      } catch {
        continue;
      }
      // Only what could be a manifest is opened: layers are skipped by size and first byte.
      if (!st.isFile() || st.size > MAX_MANIFEST_BYTES || st.size < 2) continue;
      const bytes = readFileSync(path);
      if (bytes[0] !== 0x7b || !bytes.includes('"subject"')) continue;
      let m: Record<string, unknown>;
      try {
        m = parseJsonBounded(bytes, { maxBytes: MAX_MANIFEST_BYTES, maxDepth: 16, what: 'blob', code: 'ERR_INVALID_INPUT' }) as Record<
          string,
          unknown
        >;
        if (typeof m !== 'object' || m === null || m.schemaVersion !== 2) continue;
        const subject = parseDescriptor(m.subject, 'blob', 'subject');
        if (subject.digest !== digest) continue;
        checkDigest(bytes, `sha256:${name}`, `blob ${name}`);
      } catch {
        continue;
      }
      const config = m.config as { mediaType?: unknown } | undefined;
      const isIndex = Array.isArray(m.manifests);
      const d: Descriptor = {
        mediaType: typeof m.mediaType === 'string' ? m.mediaType : isIndex ? MEDIA_TYPES.ociIndex : MEDIA_TYPES.ociManifest,
        digest: `sha256:${name}`,
        size: bytes.length,
      };
      // image-spec: a referrer's artifactType, else its config's media type.
      const at = typeof m.artifactType === 'string' ? m.artifactType : typeof config?.mediaType === 'string' ? config.mediaType : undefined;
      if (at) d.artifactType = at;
      const ann = m.annotations;
      if (ann && typeof ann === 'object' && Object.values(ann).every((v) => typeof v === 'string'))
        d.annotations = ann as Record<string, string>;
      found.set(d.digest, d);
    }
    // A layout copied from a registry without the referrers API may carry the tag-schema index.
    const tagged = await this.getManifestIfExists(repo, digest.replace(':', '-'));
    if (tagged?.parsed.kind === 'index') for (const d of tagged.parsed.index.manifests) if (!found.has(d.digest)) found.set(d.digest, d);
    const all = [...found.values()].sort((a, b) => a.digest.localeCompare(b.digest));
    const descriptors = artifactType ? all.filter((d) => d.artifactType === artifactType) : all;
    return { descriptors, via: found.size ? 'api' : 'none' };
  }

  /** Nothing to do: a layout finds referrers by their subject. */
  async addToReferrersTag(_repo: Repo, _subject: string, _entry: Descriptor): Promise<void> {}
}
