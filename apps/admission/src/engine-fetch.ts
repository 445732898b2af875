// Fetching an authority's evidence from the registry: bundles (OCI 1.1 referrers or the tag
// schema) and legacy tags (`[tagPrefix]sha256-<hex>.sig|.att`), from the image's repository or
// from `source.oci`. A fetch failure becomes the evidence's `error` (the authority fails with it),
// never an exception, so one unreachable signature repository cannot hide another authority.
import { WaxsealError } from '@waxseal/core';
import {
  COSIGN,
  MAX_ATTACHMENTS,
  MAX_SIGNATURE_BLOB_BYTES,
  findBundles,
  findLegacy,
  legacyLayerToBundle,
  legacyTag,
  parseRepository,
  type Attachment,
  type RegistryClient,
  type Repo,
} from '@waxseal/oci';
import type { Evidence, EvidenceRequest } from '@waxseal/policy';

/** Legacy layers at `<prefix>sha256-<hex>.<suffix>` (findLegacy without a prefix). */
async function findLegacyPrefixed(
  client: RegistryClient,
  repo: Repo,
  digest: string,
  suffix: 'sig' | 'att',
  prefix: string,
): Promise<Attachment[]> {
  if (!prefix) return (await findLegacy(client, repo, digest, suffix)).attachments;
  const tag = `${prefix}${legacyTag(digest, suffix)}`;
  const m = await client.getManifestIfExists(repo, tag);
  if (!m) return [];
  if (m.parsed.kind !== 'manifest')
    throw new WaxsealError('ERR_INVALID_INPUT', `${repo.repository}:${tag} is an index, not a signature manifest`, {
      check: 'image.layer',
    });
  const out: Attachment[] = [];
  for (const [i, d] of m.parsed.manifest.layers.slice(0, MAX_ATTACHMENTS).entries()) {
    const location = `${tag}#${i}`;
    const a: Attachment = { format: 'legacy', location };
    try {
      const expected = suffix === 'sig' ? COSIGN.simpleSigningMediaType : COSIGN.dsseMediaType;
      if (d.mediaType !== expected)
        throw new WaxsealError('ERR_INVALID_INPUT', `${location}: layer media type ${d.mediaType} is not ${expected}`, {
          check: 'image.layer',
        });
      const payload = await client.getBlob(repo, d, MAX_SIGNATURE_BLOB_BYTES);
      a.bundle = legacyLayerToBundle({ mediaType: d.mediaType, payload, annotations: d.annotations ?? {} }, location);
      if (suffix === 'sig') a.payload = payload;
    } catch (e) {
      a.error = e instanceof WaxsealError ? e : new WaxsealError('ERR_INVALID_INPUT', (e as Error).message);
    }
    out.push(a);
  }
  return out;
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Fetches what one EvidenceRequest asks for, for the image `repo`@`digest`. */
export async function fetchEvidence(client: RegistryClient, imageRepo: Repo, digest: string, req: EvidenceRequest): Promise<Evidence> {
  let repo = imageRepo;
  try {
    if (req.oci) repo = parseRepository(req.oci);
  } catch (e) {
    return { attachments: [], error: `source.oci ${req.oci}: ${describe(e)}` };
  }
  const where = `${repo.registry}/${repo.repository}`;
  const attachments: Attachment[] = [];
  try {
    const tasks: Promise<Attachment[]>[] = [];
    if (req.formats.includes('bundle')) tasks.push(findBundles(client, repo, digest).then((r) => r.attachments));
    if (req.formats.includes('legacy'))
      tasks.push(findLegacyPrefixed(client, repo, digest, req.kind === 'signature' ? 'sig' : 'att', req.tagPrefix ?? ''));
    for (const list of await Promise.all(tasks)) attachments.push(...list);
  } catch (e) {
    return { attachments, error: `fetching ${req.kind === 'signature' ? 'signatures' : 'attestations'} from ${where}: ${describe(e)}` };
  }
  return { attachments };
}
