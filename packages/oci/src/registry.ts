// The registry client (OCI distribution spec 1.1): manifests, blobs (monolithic, chunked and
// cross-repository mount uploads), tags and referrers (with the tag-schema fallback).
// Authentication as docker does it: anonymous first, then the challenge's scheme (Basic, or a
// Bearer token from the realm for the repository scope). Every manifest and blob read is bounded
// and checked against its digest; credentials go only to the registry's own origin (and to the
// token realm it names), never to a redirect target elsewhere.
import { WaxsealError, fromUtf8, parseJsonBounded, toBase64, utf8 } from '@waxseal/core';
import { parseChallenge, type Challenge } from './challenge.ts';
import { defaultCredentials, type CredentialSource } from './credentials.ts';
import { header, send, type HttpResponse } from './http.ts';
import {
  INDEX_MEDIA_TYPES,
  MANIFEST_ACCEPT,
  MAX_MANIFEST_BYTES,
  MEDIA_TYPES,
  checkDigest,
  digestOf,
  parseManifest,
  serializeIndex,
  type Descriptor,
  type ImageIndex,
  type ParsedManifest,
} from './manifest.ts';
import { apiHost, isDigest, isLoopbackRegistry } from './reference.ts';

export interface RegistryOptions {
  /** Where credentials come from; default: docker's config.json, REGISTRY_AUTH_FILE, containers' auth.json. */
  credentials?: CredentialSource;
  /** Registries (host[:port]) that may be reached over plain HTTP (loopback ones always may). */
  insecureRegistries?: readonly string[];
  /** Extra CA certificates (PEM) trusted for registry TLS. */
  ca?: string;
  /** Deadline of one HTTP exchange (default 30 s). */
  timeoutMs?: number;
  /** Retries on 429, 5xx and network errors (default 3). */
  retries?: number;
  /** First retry delay in ms, doubled each time (default 250). */
  backoffMs?: number;
  /** Largest blob read into memory (default 64 MiB). */
  maxBlobBytes?: number;
  /** Uploads larger than this go in PATCH chunks of this size (default 8 MiB). */
  chunkBytes?: number;
  /** Called before every HTTP request (for counting in tests and benchmarks). */
  onRequest?: (method: string, url: string) => void;
}

/** A repository in a registry, as the client addresses it. */
export interface Repo {
  registry: string;
  repository: string;
}

export interface FetchedManifest {
  digest: string;
  mediaType: string;
  bytes: Uint8Array;
  parsed: ParsedManifest;
}

export interface ReferrersResult {
  descriptors: Descriptor[];
  /** How they were found: the referrers API, the tag-schema index, or neither exists. */
  via: 'api' | 'tag' | 'none';
}

type Method = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
type Access = 'pull' | 'push';

interface Call {
  method: Method;
  repo: Repo;
  access: Access;
  /** Path and query after the origin, or an absolute URL (upload locations). */
  path: string;
  headers?: Record<string, string>;
  body?: Uint8Array;
  maxBytes?: number;
  what: string;
  /** Statuses handed back instead of thrown (e.g. 404 for "absent"). */
  allow?: number[];
  /** Scopes beyond the repository's own (cross-repository mounts). */
  extraScopes?: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MAX_REDIRECTS = 5;
const REFERRERS_TAG = (digest: string) => digest.replace(':', '-');

export class RegistryClient {
  readonly #opts: Required<Omit<RegistryOptions, 'ca' | 'onRequest'>> & Pick<RegistryOptions, 'ca' | 'onRequest'>;
  /** Authorization header values by registry and scope. */
  readonly #auth = new Map<string, string>();
  /** The challenge each registry answered with. */
  readonly #challenges = new Map<string, Challenge>();

  constructor(opts: RegistryOptions = {}) {
    this.#opts = {
      credentials: opts.credentials ?? defaultCredentials(),
      insecureRegistries: opts.insecureRegistries ?? [],
      timeoutMs: opts.timeoutMs ?? 30_000,
      retries: opts.retries ?? 3,
      backoffMs: opts.backoffMs ?? 250,
      maxBlobBytes: opts.maxBlobBytes ?? 64 << 20,
      chunkBytes: opts.chunkBytes ?? 8 << 20,
      ca: opts.ca,
      onRequest: opts.onRequest,
    };
  }

  /** The registry's base URL: https, or http for loopback and named-insecure registries. */
  baseUrl(registry: string): URL {
    const insecure = isLoopbackRegistry(registry) || this.#opts.insecureRegistries.includes(registry);
    return new URL(`${insecure ? 'http' : 'https'}://${apiHost(registry)}/`);
  }

  #mayUseHttp(host: string): boolean {
    return isLoopbackRegistry(host) || this.#opts.insecureRegistries.includes(host);
  }

  #scope(c: Call): string[] {
    return [`repository:${c.repo.repository}:${c.access === 'push' ? 'pull,push' : 'pull'}`, ...(c.extraScopes ?? [])];
  }

  async #call(c: Call): Promise<HttpResponse> {
    const origin = this.baseUrl(c.repo.registry);
    let url = /^https?:\/\//.test(c.path) ? new URL(c.path) : new URL(c.path, origin);
    const scopeKey = `${c.repo.registry} ${this.#scope(c).join(' ')}`;
    let authTried = false;
    for (let redirects = 0; ; ) {
      const sameOrigin = url.origin === origin.origin;
      const headers: Record<string, string> = { 'user-agent': 'waxseal', ...c.headers };
      const authz = this.#auth.get(scopeKey);
      if (sameOrigin && authz) headers.authorization = authz;
      const res = await this.#withRetries(c, url, headers);
      if (res.status === 401 && sameOrigin && !authTried) {
        authTried = true;
        await this.#authenticate(c, res, scopeKey);
        continue;
      }
      if ([301, 302, 303, 307, 308].includes(res.status) && (c.method === 'GET' || c.method === 'HEAD')) {
        const loc = header(res.headers, 'location');
        if (!loc || ++redirects > MAX_REDIRECTS) throw new WaxsealError('ERR_UNAVAILABLE', `${c.what}: too many or empty redirects`);
        const next = new URL(loc, url);
        if (next.protocol === 'http:' && url.protocol === 'https:' && !this.#mayUseHttp(next.host)) {
          throw new WaxsealError('ERR_UNAVAILABLE', `${c.what}: refusing a redirect from HTTPS to plain HTTP (${next.host})`);
        }
        if (next.protocol !== 'http:' && next.protocol !== 'https:') throw new WaxsealError('ERR_UNAVAILABLE', `${c.what}: bad redirect`);
        url = next;
        continue;
      }
      if (res.status >= 200 && res.status < 300) return res;
      if (c.allow?.includes(res.status)) return res;
      throw this.#httpError(c, res);
    }
  }

  async #withRetries(c: Call, url: URL, headers: Record<string, string>): Promise<HttpResponse> {
    for (let attempt = 0; ; attempt++) {
      this.#opts.onRequest?.(c.method, url.href);
      let res: HttpResponse | undefined;
      let err: unknown;
      try {
        res = await send({
          method: c.method,
          url,
          headers,
          ...(c.body ? { body: c.body } : {}),
          maxBytes: c.maxBytes ?? MAX_MANIFEST_BYTES,
          timeoutMs: this.#opts.timeoutMs,
          ca: this.#opts.ca,
          what: c.what,
        });
      } catch (e) {
        if (!(e instanceof WaxsealError) || e.code !== 'ERR_UNAVAILABLE') throw e;
        err = e;
      }
      const retryable = !res || res.status === 429 || res.status >= 500;
      if (!retryable) return res!;
      if (attempt >= this.#opts.retries) {
        if (res) return res;
        throw err;
      }
      const after = res ? Number(header(res.headers, 'retry-after')) : Number.NaN;
      const delay = Number.isFinite(after) && after >= 0 ? Math.min(after * 1000, 10_000) : this.#opts.backoffMs * 2 ** attempt;
      await sleep(delay);
    }
  }

  async #authenticate(c: Call, res: HttpResponse, scopeKey: string): Promise<void> {
    const registry = c.repo.registry;
    const challenge = parseChallenge(header(res.headers, 'www-authenticate')) ?? this.#challenges.get(registry);
    if (!challenge) {
      throw new WaxsealError('ERR_REGISTRY_AUTH', `${c.what}: ${registry} answered 401 without a usable WWW-Authenticate challenge`, {
        check: 'oci.auth',
      });
    }
    this.#challenges.set(registry, challenge);
    const cred = this.#opts.credentials(registry);
    if (challenge.scheme === 'basic') {
      if (!cred)
        throw new WaxsealError('ERR_REGISTRY_AUTH', `${c.what}: ${registry} requires credentials and none are configured`, {
          check: 'oci.auth',
        });
      this.#auth.set(scopeKey, `Basic ${toBase64(utf8(`${cred.username}:${cred.password}`))}`);
      return;
    }
    const realm = new URL(challenge.params.realm!);
    if (realm.protocol === 'http:' && !this.#mayUseHttp(realm.host)) {
      throw new WaxsealError('ERR_REGISTRY_AUTH', `${c.what}: the token realm ${realm.href} is plain HTTP`, { check: 'oci.auth' });
    }
    if (challenge.params.service) realm.searchParams.set('service', challenge.params.service);
    for (const s of this.#scope(c)) realm.searchParams.append('scope', s);
    const headers: Record<string, string> = { 'user-agent': 'waxseal' };
    if (cred) headers.authorization = `Basic ${toBase64(utf8(`${cred.username}:${cred.password}`))}`;
    this.#opts.onRequest?.('GET', realm.href);
    const tok = await send({
      method: 'GET',
      url: realm,
      headers,
      maxBytes: 1 << 20,
      timeoutMs: this.#opts.timeoutMs,
      ca: this.#opts.ca,
      what: `token for ${registry}`,
    });
    if (tok.status !== 200) {
      throw new WaxsealError(
        'ERR_REGISTRY_AUTH',
        `${c.what}: the token service of ${registry} refused (HTTP ${tok.status})${cred ? '' : '; no credentials are configured'}`,
        {
          check: 'oci.auth',
        },
      );
    }
    const j = parseJsonBounded(tok.body, { maxBytes: 1 << 20, what: 'token answer', code: 'ERR_REGISTRY_AUTH' }) as {
      token?: unknown;
      access_token?: unknown;
    };
    const token = typeof j.token === 'string' ? j.token : typeof j.access_token === 'string' ? j.access_token : undefined;
    if (!token)
      throw new WaxsealError('ERR_REGISTRY_AUTH', `${c.what}: the token service of ${registry} sent no token`, { check: 'oci.auth' });
    this.#auth.set(scopeKey, `Bearer ${token}`);
  }

  #httpError(c: Call, res: HttpResponse): WaxsealError {
    let message = fromUtf8(res.body.subarray(0, 300), 'error body').replace(/\s+/g, ' ');
    try {
      const j = JSON.parse(fromUtf8(res.body)) as { errors?: { code?: string; message?: string }[] };
      if (j.errors?.length) message = j.errors.map((e) => `${e.code ?? ''} ${e.message ?? ''}`.trim()).join('; ');
    } catch {
      // not the registry's JSON error format
    }
    const text = `${c.what}: ${c.repo.registry} answered HTTP ${res.status}${message ? `: ${message}` : ''}`;
    if (res.status === 401 || res.status === 403)
      return new WaxsealError('ERR_REGISTRY_AUTH', text, { check: 'oci.auth', detail: { status: res.status } });
    if (res.status === 404) return new WaxsealError('ERR_NOT_FOUND', text, { detail: { status: 404 } });
    if (res.status === 429 || res.status >= 500) return new WaxsealError('ERR_UNAVAILABLE', text, { detail: { status: res.status } });
    return new WaxsealError('ERR_INVALID_INPUT', text, { detail: { status: res.status } });
  }

  #repoPath(repo: Repo, rest: string): string {
    return `/v2/${repo.repository}/${rest}`;
  }

  // ------------------------------------------------------------------------------ manifests

  /**
   * GETs a manifest or index by tag or digest. By digest, the bytes must hash to it; by tag,
   * the digest is computed from the bytes (and must agree with Docker-Content-Digest when sent).
   */
  async getManifest(repo: Repo, reference: string, accept = MANIFEST_ACCEPT): Promise<FetchedManifest> {
    const what = `manifest ${repo.registry}/${repo.repository}${isDigest(reference) ? '@' : ':'}${reference}`;
    const res = await this.#call({
      method: 'GET',
      repo,
      access: 'pull',
      path: this.#repoPath(repo, `manifests/${reference}`),
      headers: { accept },
      what,
    });
    const digest = digestOf(res.body);
    if (isDigest(reference)) checkDigest(res.body, reference, what);
    else {
      const claimed = header(res.headers, 'docker-content-digest');
      if (claimed && isDigest(claimed)) checkDigest(res.body, claimed, what);
    }
    const contentType = header(res.headers, 'content-type');
    const parsed = parseManifest(res.body, contentType, what);
    const mediaType =
      (parsed.kind === 'index' ? parsed.index.mediaType : parsed.manifest.mediaType) ??
      (contentType?.split(';')[0]?.trim() || (parsed.kind === 'index' ? MEDIA_TYPES.ociIndex : MEDIA_TYPES.ociManifest));
    return { digest, mediaType, bytes: res.body, parsed };
  }

  /** GET a manifest, or undefined when the registry has no such manifest (404). */
  async getManifestIfExists(repo: Repo, reference: string, accept = MANIFEST_ACCEPT): Promise<FetchedManifest | undefined> {
    try {
      return await this.getManifest(repo, reference, accept);
    } catch (e) {
      if (e instanceof WaxsealError && e.code === 'ERR_NOT_FOUND') return undefined;
      throw e;
    }
  }

  /** HEAD a manifest: its descriptor as the registry reports it (digest unverified), or undefined on 404. */
  async headManifest(repo: Repo, reference: string): Promise<Descriptor | undefined> {
    const what = `manifest ${repo.registry}/${repo.repository}:${reference}`;
    const res = await this.#call({
      method: 'HEAD',
      repo,
      access: 'pull',
      path: this.#repoPath(repo, `manifests/${reference}`),
      headers: { accept: MANIFEST_ACCEPT },
      what,
      allow: [404],
    });
    if (res.status === 404) return undefined;
    const digest = header(res.headers, 'docker-content-digest');
    if (!digest || !isDigest(digest)) return undefined;
    return {
      mediaType: header(res.headers, 'content-type')?.split(';')[0] ?? '',
      digest,
      size: Number(header(res.headers, 'content-length') ?? 0),
    };
  }

  /** PUTs a manifest under a tag or its digest; returns its digest and whether the registry indexed its subject. */
  async putManifest(
    repo: Repo,
    reference: string,
    bytes: Uint8Array,
    mediaType: string,
  ): Promise<{ digest: string; subjectIndexed: boolean }> {
    const digest = digestOf(bytes);
    if (isDigest(reference) && reference !== digest) throw new TypeError('putManifest: reference digest does not match the bytes');
    const res = await this.#call({
      method: 'PUT',
      repo,
      access: 'push',
      path: this.#repoPath(repo, `manifests/${reference}`),
      headers: { 'content-type': mediaType },
      body: bytes,
      what: `pushing manifest ${repo.registry}/${repo.repository}:${reference}`,
    });
    // OCI 1.1: a registry that processed `subject` says so with OCI-Subject.
    return { digest, subjectIndexed: Boolean(header(res.headers, 'oci-subject')) };
  }

  // ------------------------------------------------------------------------------ blobs

  /** GETs a blob (following redirects without credentials), bounded by its size and checked against its digest. */
  async getBlob(repo: Repo, desc: Pick<Descriptor, 'digest' | 'size'>, maxBytes = this.#opts.maxBlobBytes): Promise<Uint8Array> {
    const what = `blob ${repo.registry}/${repo.repository}@${desc.digest}`;
    if (desc.size > maxBytes) {
      throw new WaxsealError('ERR_BODY_TOO_LARGE', `${what} is ${desc.size} bytes, more than the ${maxBytes} accepted`, {
        check: 'oci.size',
      });
    }
    const res = await this.#call({
      method: 'GET',
      repo,
      access: 'pull',
      path: this.#repoPath(repo, `blobs/${desc.digest}`),
      maxBytes: desc.size,
      what,
    });
    if (res.body.length !== desc.size) {
      throw new WaxsealError('ERR_VERIFY_ARTIFACT', `${what}: ${res.body.length} bytes where the descriptor says ${desc.size}`, {
        check: 'oci.digest',
      });
    }
    checkDigest(res.body, desc.digest, what);
    return res.body;
  }

  async hasBlob(repo: Repo, digest: string): Promise<boolean> {
    const res = await this.#call({
      method: 'HEAD',
      repo,
      access: 'pull',
      path: this.#repoPath(repo, `blobs/${digest}`),
      what: `blob ${repo.repository}@${digest}`,
      allow: [404],
    });
    return res.status !== 404;
  }

  /**
   * Uploads a blob unless the repository has it: mounted from `mountFrom` when the registry
   * offers it, else in one PUT, or in PATCH chunks when larger than the chunk size.
   */
  async putBlob(
    repo: Repo,
    bytes: Uint8Array,
    opts: { mountFrom?: string; chunked?: boolean } = {},
  ): Promise<Descriptor & { how: 'exists' | 'mounted' | 'monolithic' | 'chunked' }> {
    const digest = digestOf(bytes);
    const base = { mediaType: 'application/octet-stream', digest, size: bytes.length };
    if (await this.hasBlob(repo, digest)) return { ...base, how: 'exists' };
    const what = `uploading blob ${digest} to ${repo.registry}/${repo.repository}`;
    let query = '';
    const extraScopes: string[] = [];
    if (opts.mountFrom && opts.mountFrom !== repo.repository) {
      query = `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(opts.mountFrom)}`;
      extraScopes.push(`repository:${opts.mountFrom}:pull`);
    }
    const start = await this.#call({
      method: 'POST',
      repo,
      access: 'push',
      path: this.#repoPath(repo, `blobs/uploads/${query}`),
      what,
      extraScopes,
    });
    if (start.status === 201) return { ...base, how: 'mounted' };
    let location = this.#location(start, repo, what);
    const chunked = opts.chunked ?? bytes.length > this.#opts.chunkBytes;
    if (chunked) {
      const size = Math.min(this.#opts.chunkBytes, Math.max(1, bytes.length));
      for (let off = 0; off < bytes.length; off += size) {
        const chunk = bytes.subarray(off, Math.min(off + size, bytes.length));
        const res = await this.#call({
          method: 'PATCH',
          repo,
          access: 'push',
          path: location,
          headers: { 'content-type': 'application/octet-stream', 'content-range': `${off}-${off + chunk.length - 1}` },
          body: chunk,
          what,
          extraScopes,
        });
        location = this.#location(res, repo, what);
      }
    }
    const put = new URL(location, this.baseUrl(repo.registry));
    put.searchParams.set('digest', digest);
    await this.#call({
      method: 'PUT',
      repo,
      access: 'push',
      path: put.href,
      headers: { 'content-type': 'application/octet-stream' },
      body: chunked ? new Uint8Array(0) : bytes,
      what,
      extraScopes,
    });
    return { ...base, how: chunked ? 'chunked' : 'monolithic' };
  }

  #location(res: HttpResponse, repo: Repo, what: string): string {
    const loc = header(res.headers, 'location');
    if (!loc) throw new WaxsealError('ERR_UNAVAILABLE', `${what}: the registry gave no upload location`);
    const url = new URL(loc, this.baseUrl(repo.registry));
    // Uploads carry the registry's credentials: they must stay on the registry's origin.
    if (url.origin !== this.baseUrl(repo.registry).origin) {
      throw new WaxsealError('ERR_UNAVAILABLE', `${what}: the registry sent the upload to another host (${url.host})`);
    }
    return url.href;
  }

  // ------------------------------------------------------------------------------ tags

  /** Lists a repository's tags (following Link pagination, at most `max`). */
  async listTags(repo: Repo, max = 10_000): Promise<string[]> {
    const tags: string[] = [];
    let path: string | undefined = this.#repoPath(repo, 'tags/list?n=1000');
    while (path && tags.length < max) {
      const res: HttpResponse = await this.#call({
        method: 'GET',
        repo,
        access: 'pull',
        path,
        what: `tags of ${repo.registry}/${repo.repository}`,
      });
      const j = parseJsonBounded(res.body, { maxBytes: MAX_MANIFEST_BYTES, what: 'tag list', code: 'ERR_INVALID_INPUT' }) as {
        tags?: unknown;
      };
      if (Array.isArray(j.tags)) for (const t of j.tags) if (typeof t === 'string') tags.push(t);
      const link = /<([^>]+)>\s*;\s*rel="?next"?/.exec(header(res.headers, 'link') ?? '')?.[1];
      path = link ? new URL(link, this.baseUrl(repo.registry)).href : undefined;
      if (path && new URL(path).origin !== this.baseUrl(repo.registry).origin) path = undefined;
    }
    return tags.slice(0, max);
  }

  // ------------------------------------------------------------------------------ referrers

  /**
   * The manifests whose subject is `digest`: the referrers API, or the referrers tag schema
   * (an index at tag `sha256-<hex>`) when the registry answers 404. Filtered by artifactType
   * here too, since a registry may ignore the filter.
   */
  async referrers(repo: Repo, digest: string, artifactType?: string): Promise<ReferrersResult> {
    const what = `referrers of ${repo.registry}/${repo.repository}@${digest}`;
    const q = artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : '';
    const res = await this.#call({
      method: 'GET',
      repo,
      access: 'pull',
      path: this.#repoPath(repo, `referrers/${digest}${q}`),
      headers: { accept: MEDIA_TYPES.ociIndex },
      what,
      allow: [404],
    });
    let index: ImageIndex | undefined;
    let via: ReferrersResult['via'] = 'api';
    if (res.status === 404) {
      const fallback = await this.getManifestIfExists(repo, REFERRERS_TAG(digest), INDEX_MEDIA_TYPES.join(', '));
      if (!fallback) return { descriptors: [], via: 'none' };
      if (fallback.parsed.kind !== 'index') {
        throw new WaxsealError('ERR_INVALID_INPUT', `${what}: the referrers tag ${REFERRERS_TAG(digest)} is not an index`, {
          check: 'oci.referrers',
        });
      }
      index = fallback.parsed.index;
      via = 'tag';
    } else {
      const parsed = parseManifest(res.body, header(res.headers, 'content-type') ?? MEDIA_TYPES.ociIndex, what);
      if (parsed.kind !== 'index')
        throw new WaxsealError('ERR_INVALID_INPUT', `${what}: the referrers answer is not an index`, { check: 'oci.referrers' });
      index = parsed.index;
    }
    const descriptors = artifactType ? index.manifests.filter((d) => d.artifactType === artifactType) : index.manifests;
    return { descriptors, via };
  }

  /**
   * Adds a referrer to the tag-schema index of `subject` (for registries without the referrers
   * API): read-modify-write of tag `sha256-<hex>`, keeping every entry already there.
   */
  async addToReferrersTag(repo: Repo, subject: string, entry: Descriptor): Promise<void> {
    const tag = REFERRERS_TAG(subject);
    const existing = await this.getManifestIfExists(repo, tag, INDEX_MEDIA_TYPES.join(', '));
    let manifests: Descriptor[] = [];
    if (existing) {
      if (existing.parsed.kind !== 'index') {
        throw new WaxsealError('ERR_CONFLICT', `the referrers tag ${tag} in ${repo.repository} holds something other than an index`);
      }
      manifests = existing.parsed.index.manifests.filter((d) => d.digest !== entry.digest);
    }
    manifests.push(entry);
    await this.putManifest(
      repo,
      tag,
      serializeIndex({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests }),
      MEDIA_TYPES.ociIndex,
    );
  }
}
