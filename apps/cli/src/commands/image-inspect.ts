// waxseal tree / download: what is attached to a container image, as cosign's commands of the same
// names show it. `tree` lists bundle referrers (by predicate type), other referrers (SBOMs, ...) and
// the legacy .sig/.att/.sbom tags; `download signature|attestation` prints each signature or
// attestation as one JSON line, in cosign's shapes. Reading only: nothing here is verified.
import {
  attachedTree,
  downloadAttestations,
  downloadSignatures,
  resolveImage,
  signatureRepo,
  type AttachedTree,
  type Downloaded,
} from '@waxseal/oci';
import { WaxsealError } from '@waxseal/core';
import { parse, helpText, UsageError, type Ui } from '../ui.ts';
import { expandPredicateType } from '../predicate-type.ts';
import { REGISTRY_HELP, REGISTRY_OPTIONS, registryClient } from './image.ts';

export const treeSpec = {
  usage: 'waxseal tree <image> [options]',
  summary: 'List the signatures, attestations, SBOMs and other artifacts attached to a container image (as cosign tree).',
  options: { ...REGISTRY_OPTIONS } as const,
  positionals: [1, 1] as [number, number],
  help: `Lists what is attached to the image's digest, in either of cosign's formats: referrers (OCI 1.1
API or the referrers tag schema; Sigstore bundles by predicate type), and the legacy tags
sha256-<hex>.sig, .att and .sbom. Nothing is verified: use verify / verify-attestation for that.
With --json: {image, digest, referrersVia, referrers[], legacy[]}.
${REGISTRY_HELP}`,
};

export const downloadSpec = {
  usage: 'waxseal download signature|attestation <image> [--predicate-type <uri|alias>] [options]',
  summary: "Print a container image's attached signatures or attestations, one JSON object per line (as cosign download).",
  options: { ...REGISTRY_OPTIONS, 'predicate-type': { type: 'string' } } as const,
  positionals: [2, 2] as [number, number],
  help: `waxseal download signature <image>
  The signature bundles (Sigstore bundle JSON) when any are attached; else each layer of the
  legacy sha256-<hex>.sig tag as cosign's {"Base64Signature","Payload","Cert","Chain","Bundle",
  "RFC3161Timestamp"} (Cert and Chain as {"Raw": <base64 DER>}).

waxseal download attestation <image> [--predicate-type <uri|alias>]
  Each attestation bundle (bundle JSON), then each legacy sha256-<hex>.att layer's DSSE envelope
  {"payloadType","payload","signatures"}.
  --predicate-type <uri|alias>    only attestations whose statement has this predicate type
                                  (an error when none has)

Nothing is verified: use verify / verify-attestation for that.
${REGISTRY_HELP}`,
};

// ------------------------------------------------------------------------------ tree

function treeText(label: string, t: AttachedTree): string[] {
  const lines = [`📦 Supply Chain Security Related artifacts for an image: ${label}@${t.digest}`];
  if (!t.referrers.length && !t.legacy.length) {
    lines.push(
      `No Supply Chain Security Related Artifacts found for image ${label}@${t.digest}; start creating one with: waxseal sign <image>`,
    );
    return lines;
  }
  const repo = label;
  const layers = (ls: { digest: string; predicateType?: string }[]) =>
    ls.map((l, i) => `   ${i === ls.length - 1 ? '└──' : '├──'} 🍒 ${l.digest}${l.predicateType ? ` (${l.predicateType})` : ''}`);
  const heading = { signatures: '🔐 Signatures', attestations: '💾 Attestations', sboms: '📦 SBOMs' } as const;
  for (const l of t.legacy) lines.push(`└── ${heading[l.kind]} for an image tag: ${repo}:${l.tag}`, ...layers(l.layers));
  for (const r of t.referrers) {
    const what = r.predicateType ?? r.artifactType ?? 'unknown';
    lines.push(`└── 🔗 ${what} ${r.kind === 'other' ? '' : `${r.kind} `}artifacts via OCI referrer: ${repo}@${r.digest}`);
    if (r.error) lines.push(`   └── (not readable: ${r.error})`);
    else lines.push(...layers(r.layers));
  }
  if (t.skipped) lines.push(`(${t.skipped} more referrers not shown)`);
  return lines;
}

export async function tree(argv: string[], ui: Ui): Promise<number> {
  const { values: v, positionals, helpWanted } = parse(argv, treeSpec);
  if (helpWanted) return (ui.result({ help: helpText(treeSpec) }, helpText(treeSpec)), 0);
  const image = positionals[0]!;
  const store = registryClient(v, image);
  const img = await resolveImage(store, image);
  const sigRepo = signatureRepo(img, process.env.COSIGN_REPOSITORY || undefined);
  const t = await attachedTree(store, sigRepo, img.digest);
  const label = `${img.ref.registry}/${img.ref.repository}`;
  ui.result(
    { ok: true, image: label, digest: img.digest, referrersVia: t.via, referrers: t.referrers, legacy: t.legacy, skipped: t.skipped },
    treeText(label, t),
  );
  return 0;
}

// ------------------------------------------------------------------------------ download

export async function download(argv: string[], ui: Ui): Promise<number> {
  const { values: v, positionals, helpWanted } = parse(argv, downloadSpec);
  if (helpWanted) return (ui.result({ help: helpText(downloadSpec) }, helpText(downloadSpec)), 0);
  const [kind, image] = positionals as [string, string];
  if (kind !== 'signature' && kind !== 'attestation') {
    throw new UsageError(`download what? ${JSON.stringify(kind)}: expected signature or attestation; usage: ${downloadSpec.usage}`);
  }
  if (kind === 'signature' && v['predicate-type']) throw new UsageError('--predicate-type applies to download attestation only');
  const predicateType = v['predicate-type'] ? expandPredicateType(v['predicate-type']) : undefined;
  const store = registryClient(v, image);
  const img = await resolveImage(store, image);
  const sigRepo = signatureRepo(img, process.env.COSIGN_REPOSITORY || undefined);
  const got =
    kind === 'signature'
      ? await downloadSignatures(store, sigRepo, img.digest)
      : await downloadAttestations(store, sigRepo, img.digest, predicateType ? { predicateType } : {});
  for (const e of got.errors) ui.warn(`${e.location}: ${e.error.code}: ${e.error.message}`);
  const label = `${img.ref.registry}/${img.ref.repository}@${img.digest}`;
  if (!got.items.length) {
    const what = kind === 'signature' ? 'signatures' : predicateType ? `attestations with predicate type ${predicateType}` : 'attestations';
    // cosign: an error for a predicate type nobody attested; an empty listing otherwise.
    if (kind === 'attestation' && !predicateType) return 0;
    throw new WaxsealError('ERR_NOT_FOUND', `no ${what} attached to ${label}`);
  }
  // One JSON object per line on stdout, as cosign prints them (with --json too: it already is JSON).
  process.stdout.write(got.items.map((d: Downloaded) => `${JSON.stringify(d.json)}\n`).join(''));
  return 0;
}
