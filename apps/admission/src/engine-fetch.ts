// Fetching an authority's evidence from the registry: bundles (OCI 1.1 referrers or the tag
// schema) and legacy tags (`[tagPrefix]sha256-<hex>.sig|.att`), from the image's repository or
// from `source.oci`. A fetch failure becomes the evidence's `error` (the authority fails with it),
// never an exception, so one unreachable signature repository cannot hide another authority.
//
// A cache miss waits on these round trips, so they run concurrently wherever they are independent:
// the bundle and legacy lookups, the referrer manifests and layers of one lookup (a few at a time),
// and the lookups of several authorities. Within one check, identical reads (same credentials,
// repository and reference: a signature and an attestation authority both reading the bundle
// referrers, two authorities reading the same legacy tag) share one request.
import { WaxsealError } from '@waxseal/core';
import {
  INDEX_MEDIA_TYPES,
  MAX_ATTACHMENTS,
  isBundleMediaType,
  legacyTag,
  parseRepository,
  readBundleReferrers,
  readLegacyLayers,
  type Attachment,
  type Descriptor,
  type RegistryClient,
  type Repo,
} from '@waxseal/oci';
import type { Evidence, EvidenceRequest } from '@waxseal/policy';

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Repositories whose registry answered the referrers API with 404 while serving the referrers
 * tag-schema index: such a registry does not have the API (OCI distribution 1.1: "Assuming a
 * repository is found, this request MUST return a 200 OK"), so for `ttlMs` their referrers are
 * read from the tag schema directly, one round trip less per cold check. Learned per repository
 * (a proxy may route repositories to different backends) and forgotten after `ttlMs`, so a
 * registry that gains the API is asked again soon; bounded in size.
 */
export class ReferrersApiMemo {
  readonly #absent = new Map<string, number>();
  readonly #ttlMs: number;
  readonly #max: number;
  readonly #now: () => number;

  constructor(o: { ttlMs?: number; max?: number; now?: () => number } = {}) {
    this.#ttlMs = o.ttlMs ?? 5 * 60_000;
    this.#max = o.max ?? 1024;
    this.#now = o.now ?? Date.now;
  }

  static #key(repo: Repo): string {
    return `${repo.registry}/${repo.repository}`;
  }

  /** Whether `repo` is known (recently) to have referrers only in the tag schema. */
  tagSchemaOnly(repo: Repo): boolean {
    const k = ReferrersApiMemo.#key(repo);
    const until = this.#absent.get(k);
    if (until === undefined) return false;
    if (until > this.#now()) return true;
    this.#absent.delete(k);
    return false;
  }

  /** What a full referrers lookup showed: 'api' (the API answered), 'tag' (404, then the tag index), 'none'. */
  learn(repo: Repo, via: 'api' | 'tag' | 'none'): void {
    const k = ReferrersApiMemo.#key(repo);
    this.#absent.delete(k);
    // 'none' proves nothing: the repository itself may be missing.
    if (via !== 'tag') return;
    this.#absent.set(k, this.#now() + this.#ttlMs);
    if (this.#absent.size > this.#max) this.#absent.delete(this.#absent.keys().next().value!);
  }

  get size(): number {
    return this.#absent.size;
  }
}

/** The referrers of `digest`: the API (falling back to the tag schema), or the tag schema alone when the memo says so. */
async function referrers(client: RegistryClient, repo: Repo, digest: string, memo: ReferrersApiMemo): Promise<Descriptor[]> {
  if (memo.tagSchemaOnly(repo)) {
    const tag = digest.replace(':', '-');
    const m = await client.getManifestIfExists(repo, tag, INDEX_MEDIA_TYPES.join(', '));
    if (!m) return [];
    if (m.parsed.kind !== 'index') {
      throw new WaxsealError(
        'ERR_INVALID_INPUT',
        `referrers of ${repo.registry}/${repo.repository}@${digest}: the referrers tag ${tag} is not an index`,
        {
          check: 'oci.referrers',
        },
      );
    }
    return m.parsed.index.manifests;
  }
  const r = await client.referrers(repo, digest);
  memo.learn(repo, r.via);
  return r.descriptors;
}

/** The Sigstore bundles attached to `digest` as referrers (as findBundles reads them), their reads concurrent. */
async function findBundlesConcurrently(client: RegistryClient, repo: Repo, digest: string, memo: ReferrersApiMemo): Promise<Attachment[]> {
  // Every bundle media-type version (actions/attest pushes v0.2, cosign v0.3); all predicate
  // types, since a signature and an attestation authority share this read.
  const candidates = (await referrers(client, repo, digest, memo)).filter((d) => isBundleMediaType(d.artifactType));
  return readBundleReferrers(client, repo, candidates.slice(0, MAX_ATTACHMENTS));
}

/** Legacy layers at `<prefix>sha256-<hex>.<suffix>` (as findLegacy reads them), their layers read concurrently. */
async function findLegacyConcurrently(
  client: RegistryClient,
  repo: Repo,
  digest: string,
  suffix: 'sig' | 'att',
  prefix: string,
): Promise<Attachment[]> {
  const tag = `${prefix}${legacyTag(digest, suffix)}`;
  const m = await client.getManifestIfExists(repo, tag);
  if (!m) return [];
  if (m.parsed.kind !== 'manifest')
    throw new WaxsealError('ERR_INVALID_INPUT', `${repo.repository}:${tag} is an index, not a signature manifest`, {
      check: 'image.layer',
    });
  return readLegacyLayers(client, repo, tag, m.parsed.manifest.layers.slice(0, MAX_ATTACHMENTS), suffix);
}

/**
 * The evidence reads of one check. Reads are shared by client (credentials), repository and
 * reference, so authorities asking for the same thing cost one set of requests.
 */
/**
 * Registry reads in progress, shared by every check of an engine: a rollout's pods (same image,
 * same credentials, so the same client) make one set of requests, not one per pod. An entry
 * lives only while its read runs; what it found is kept by the decision cache, not here.
 */
export type InflightReads = WeakMap<RegistryClient, Map<string, Promise<Attachment[]>>>;

export class EvidenceFetcher {
  readonly #reads = new Map<RegistryClient, Map<string, Promise<Attachment[]>>>();
  readonly #memo: ReferrersApiMemo;
  readonly #inflight: InflightReads;

  constructor(memo: ReferrersApiMemo, inflight: InflightReads = new WeakMap()) {
    this.#memo = memo;
    this.#inflight = inflight;
  }

  /** One read per (client, key) in this check, joined with the same read of another check when one runs. */
  #once(client: RegistryClient, key: string, read: () => Promise<Attachment[]>): Promise<Attachment[]> {
    let reads = this.#reads.get(client);
    if (!reads) this.#reads.set(client, (reads = new Map()));
    let p = reads.get(key);
    if (p) return p;
    let running = this.#inflight.get(client);
    if (!running) this.#inflight.set(client, (running = new Map()));
    p = running.get(key);
    if (!p) {
      const started = read();
      const done = () => {
        if (running.get(key) === started) running.delete(key);
      };
      started.then(done, done);
      running.set(key, (p = started));
    }
    reads.set(key, p);
    return p;
  }

  /** Fetches what one EvidenceRequest asks for, for the image `imageRepo`@`digest`. */
  async fetch(client: RegistryClient, imageRepo: Repo, digest: string, req: EvidenceRequest): Promise<Evidence> {
    let repo = imageRepo;
    try {
      if (req.oci) repo = parseRepository(req.oci);
    } catch (e) {
      return { attachments: [], error: `source.oci ${req.oci}: ${describe(e)}` };
    }
    const where = `${repo.registry}/${repo.repository}`;
    const tasks: Promise<Attachment[]>[] = [];
    if (req.formats.includes('bundle'))
      tasks.push(this.#once(client, `bundles ${where}@${digest}`, () => findBundlesConcurrently(client, repo, digest, this.#memo)));
    if (req.formats.includes('legacy')) {
      const suffix = req.kind === 'signature' ? 'sig' : 'att';
      const prefix = req.tagPrefix ?? '';
      tasks.push(
        this.#once(client, `legacy ${where}:${prefix}${legacyTag(digest, suffix)}`, () =>
          findLegacyConcurrently(client, repo, digest, suffix, prefix),
        ),
      );
    }
    try {
      return { attachments: (await Promise.all(tasks)).flat() };
    } catch (e) {
      return {
        attachments: [],
        error: `fetching ${req.kind === 'signature' ? 'signatures' : 'attestations'} from ${where}: ${describe(e)}`,
      };
    }
  }
}
