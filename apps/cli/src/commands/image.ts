// waxseal sign / attest / verify / verify-attestation: container images in OCI registries, with
// cosign's flags and both of its storage formats (Sigstore bundle referrers by default, the legacy
// sha256-<hex>.sig/.att tags with --new-bundle-format=false). Signing goes through the same
// identity, CA, TSA and log path as sign-blob; verification through the same verifier as verify-blob.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WaxsealError, sha256 } from '@waxseal/core';
import {
  COSIGN,
  RegistryClient,
  attachBundle,
  attachLegacy,
  attestationStatement,
  dockerReference,
  findBundles,
  findLegacy,
  layoutStoreFor,
  legacyAnnotations,
  legacyAttestationLayer,
  legacyMaterialFromBundle,
  parseReference,
  parseRepository,
  resolveChildren,
  resolveImage,
  signStatement as cosignSignStatement,
  signatureRepo,
  simpleSigningPayload,
  verifyImageAttachments,
  type AttachResult,
  type Attachment,
  type ImageStore,
  type ImageVerification,
  type ResolvedImage,
} from '@waxseal/oci';
import { signDigest, signStatement } from '@waxseal/sign';
import { keySigning, loadCelPolicy, applyCelPolicy, KEY_SIGNING_HELP, POLICY_HELP } from './image-key.ts';
import { parse, helpText, UsageError, type Ui } from '../ui.ts';
import { SIGNING_OPTIONS, SIGNING_HELP, services } from './sign.ts';
import { VERIFY_OPTIONS, VERIFY_HELP, describe, loadTrustedRoot, policyFrom, verifierFor } from './verify.ts';
import { expandPredicateType } from '../predicate-type.ts';
import { explicitTrustedRootPath } from '../trusted-root-source.ts';

export const REGISTRY_OPTIONS = {
  'allow-http-registry': { type: 'boolean' },
  'registry-cacert': { type: 'string' },
  'local-image': { type: 'boolean' },
} as const;

export const REGISTRY_HELP = `
Registry access: credentials from ~/.docker/config.json (auths, credHelpers, credsStore),
REGISTRY_AUTH_FILE or $XDG_RUNTIME_DIR/containers/auth.json. Plain HTTP only for localhost,
127.0.0.1 and with:
  --allow-http-registry           talk plain HTTP to the image's (and COSIGN_REPOSITORY's) registry
  --registry-cacert <file>        extra CA certificates (PEM) for the registry's TLS
COSIGN_REPOSITORY=<registry/repo> stores and looks up signatures in another repository.
Local OCI image layouts: oci:<dir>[:<tag>|@<digest>] (skopeo's syntax), or
  --local-image                   the image argument is a layout directory (cosign's flag)`;

const { bundle: _bundle, ...VERIFY_IMAGE_OPTIONS } = VERIFY_OPTIONS;
const { bundle: _signBundle, ...SIGN_IMAGE_OPTIONS } = SIGNING_OPTIONS;

const FORMAT_OPTIONS = {
  'new-bundle-format': { type: 'boolean', default: true },
} as const;

export const signSpec = {
  usage: 'waxseal sign <image> [options]',
  summary: 'Sign a container image in its registry (keyless, or with --key), as cosign sign does.',
  options: {
    ...SIGN_IMAGE_OPTIONS,
    ...REGISTRY_OPTIONS,
    ...FORMAT_OPTIONS,
    annotations: { type: 'string', short: 'a', multiple: true },
    recursive: { type: 'boolean', short: 'r' },
    key: { type: 'string' },
  } as const,
  positionals: [1, 1] as [number, number],
  envPrefixes: ['COSIGN'],
  help: `Options:
  -a, --annotations <key=value>   annotation to sign with the image (repeatable)${KEY_SIGNING_HELP}
  -r, --recursive                 for an index, also sign each platform manifest
  --new-bundle-format=false       write cosign's legacy format (tag sha256-<hex>.sig) instead of a
                                  Sigstore bundle attached as an OCI 1.1 referrer${SIGNING_HELP}
${REGISTRY_HELP}

A tag is resolved to its digest first, and the digest is what gets signed.`,
};

export const attestSpec = {
  usage: 'waxseal attest <image> --predicate <file> [--type <uri|alias>] [options]',
  summary: 'Sign an in-toto attestation about a container image and attach it in its registry.',
  options: {
    ...SIGN_IMAGE_OPTIONS,
    ...REGISTRY_OPTIONS,
    ...FORMAT_OPTIONS,
    predicate: { type: 'string' },
    type: { type: 'string', default: 'custom' },
    recursive: { type: 'boolean', short: 'r' },
    key: { type: 'string' },
  } as const,
  positionals: [1, 1] as [number, number],
  envPrefixes: ['COSIGN'],
  help: `Options:
  --predicate <file>              the predicate (JSON); required
  --type <uri|alias>              predicate type (default custom); aliases as attest-blob's
  -r, --recursive                 for an index, also attest each platform manifest${KEY_SIGNING_HELP}
  --new-bundle-format=false       write cosign's legacy format (tag sha256-<hex>.att)${SIGNING_HELP}
${REGISTRY_HELP}`,
};

export const verifySpec = {
  usage: 'waxseal verify <image> (--certificate-identity <san> --certificate-oidc-issuer <url> | --key <pub.pem>) [options]',
  summary: "Verify a container image's signatures from its registry (bundle referrers first, then the legacy .sig tag).",
  options: { ...VERIFY_IMAGE_OPTIONS, ...REGISTRY_OPTIONS, output: { type: 'string' } } as const,
  positionals: [1, 1] as [number, number],
  help: `Options:
  --output <text|json>                   json: list what was verified on stdout (as --json)${VERIFY_HELP.replace(/\n\s*--bundle <file>[^\n]*/, '')}
${REGISTRY_HELP}

Each signature must be for the digest the reference resolves to: a signature made for another
digest, or a tag moved to another image, fails the check image.digest / dsse.subject.`,
};

export const verifyAttestationSpec = {
  usage:
    'waxseal verify-attestation <image> [--type <uri|alias>] [--policy <file.cel>] (--certificate-identity <san> --certificate-oidc-issuer <url> | --key <pub.pem>) [options]',
  summary: "Verify a container image's attestations from its registry (bundle referrers first, then the legacy .att tag).",
  options: {
    ...VERIFY_IMAGE_OPTIONS,
    ...REGISTRY_OPTIONS,
    type: { type: 'string' },
    policy: { type: 'string' },
    output: { type: 'string' },
  } as const,
  positionals: [1, 1] as [number, number],
  help: `Options:
  --type <uri|alias>                     only attestations of this predicate type (default: any)${POLICY_HELP}
  --output <text|json>                   json: list what was verified on stdout (as --json)${VERIFY_HELP.replace(/\n\s*--bundle <file>[^\n]*/, '')}
${REGISTRY_HELP}`,
};

// ------------------------------------------------------------------------------ shared

export interface RegistryValues {
  'allow-http-registry'?: boolean;
  'registry-cacert'?: string;
  'local-image'?: boolean;
}

/** Where the image lives: a local OCI layout (oci:<dir>, --local-image), else its registry. */
export function registryClient(v: RegistryValues, image: string): ImageStore {
  const layout = layoutStoreFor(image, v['local-image']);
  if (layout) return layout;
  const insecure: string[] = [];
  if (v['allow-http-registry']) {
    insecure.push(parseReference(image).registry);
    const repo = process.env.COSIGN_REPOSITORY;
    if (repo) insecure.push(parseRepository(repo).registry);
  }
  let ca: string | undefined;
  if (v['registry-cacert']) {
    try {
      ca = readFileSync(v['registry-cacert'], 'utf8');
    } catch (e) {
      throw new WaxsealError('ERR_IO', `cannot read --registry-cacert ${v['registry-cacert']}: ${(e as NodeJS.ErrnoException).code ?? e}`);
    }
  }
  return new RegistryClient({ insecureRegistries: insecure, ...(ca ? { ca } : {}) });
}

function parseAnnotations(list: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list ?? []) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new UsageError(`--annotations expects <key>=<value>, got ${JSON.stringify(kv)}`);
    out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}

/** The image and, with --recursive, each manifest of its index; warns when a tag was resolved. */
async function targets(client: ImageStore, image: string, recursive: boolean, ui: Ui): Promise<ResolvedImage[]> {
  const img = await resolveImage(client, image);
  if (!img.ref.digest) {
    ui.warn(
      `${image} is a tag: signing its current digest ${img.digest}; refer to images by digest (…@${img.digest}) to be sure what you sign`,
    );
  }
  return [img, ...(recursive ? await resolveChildren(client, img) : [])];
}

function describeAttach(t: ResolvedImage, r: AttachResult): string {
  const where =
    r.format === 'bundle'
      ? `referrer ${r.location} (${r.indexedBy === 'tag-schema' ? 'referrers tag schema' : 'referrers API'})`
      : `tag ${r.location}`;
  return `  ${dockerReference(t)}@${t.digest}: ${where} in ${r.repo.registry}/${r.repo.repository}`;
}

// ------------------------------------------------------------------------------ sign / attest

export async function sign(argv: string[], ui: Ui): Promise<number> {
  const { values: v, positionals, helpWanted } = parse(argv, signSpec);
  if (helpWanted) return (ui.result({ help: helpText(signSpec) }, helpText(signSpec)), 0);
  const image = positionals[0]!;
  const annotations = parseAnnotations(v.annotations);
  const client = registryClient(v, image);
  const list = await targets(client, image, Boolean(v.recursive), ui);
  const sigRepo = signatureRepo(list[0]!, process.env.COSIGN_REPOSITORY || undefined);
  const withKey = v.key ? await keySigning(v['new-bundle-format'] === false ? await preferRekorV1(v) : v, v.key) : undefined;
  const s = withKey ?? (await services(v['new-bundle-format'] === false ? await preferRekorV1(v) : v, ui));
  const o = { token: s.token, services: s.services };
  const done: { digest: string; result: AttachResult }[] = [];
  for (const t of list) {
    let result: AttachResult;
    if (v['new-bundle-format'] !== false) {
      const statement = cosignSignStatement(t.digest, annotations);
      const bundle = withKey ? await withKey.signStatement(statement) : await signStatement(statement, o);
      result = await attachBundle(client, sigRepo, t.descriptor, bundle, { predicateType: COSIGN.signPredicateType });
    } else {
      const payload = simpleSigningPayload(dockerReference(t), t.digest, annotations);
      const bundle = withKey ? await withKey.signMessage(payload) : await signDigest(sha256(payload), o);
      warnIfUnloggable(bundle.verificationMaterial.tlogEntries, ui);
      const layer = { mediaType: COSIGN.simpleSigningMediaType, payload, annotations: legacyAnnotations(legacyMaterialFromBundle(bundle)) };
      result = await attachLegacy(client, sigRepo, t.digest, 'sig', layer);
    }
    done.push({ digest: t.digest, result });
  }
  ui.result({ ok: true, image, signatures: done.map((d) => ({ digest: d.digest, ...d.result })), ...s.summary }, [
    `Signed ${image} (${done.length} manifest${done.length > 1 ? 's' : ''}):`,
    ...list.map((t, i) => describeAttach(t, done[i]!.result)),
  ]);
  return 0;
}

/**
 * The legacy format carries a log entry only as cosign's Rekor v1 "bundle" (a signed entry
 * timestamp), so legacy signing picks the signing config's Rekor v1 log when it lists one.
 */
async function preferRekorV1<
  V extends { 'rekor-url'?: string | undefined; 'tlog-upload'?: boolean | undefined; 'signing-config'?: string | undefined },
>(v: V): Promise<V> {
  if (v['rekor-url'] || v['tlog-upload'] === false || process.env.COSIGN_REKOR_URL || process.env.SIGSTORE_REKOR_URL) return v;
  const config = await import('../config.ts');
  let doc = await config.signingConfigFromTuf(v['signing-config']);
  if (!doc) {
    const path = config.explicitSigningConfigPath(v['signing-config']) ?? join(config.trustDir(), 'signing_config.json');
    if (!existsSync(path)) return v;
    doc = config.readSigningConfig(path);
  }
  const now = Date.now();
  const v1 = doc.rekorTlogUrls.find(
    (s) =>
      s.majorApiVersion === 1 &&
      (!s.validFor.start || s.validFor.start.getTime() <= now) &&
      (!s.validFor.end || s.validFor.end.getTime() > now),
  );
  return v1 ? { ...v, 'rekor-url': v1.url } : v;
}

function warnIfUnloggable(entries: { inclusionPromise?: unknown }[], ui: Ui): void {
  if (entries.length && !entries.some((e) => e.inclusionPromise)) {
    ui.warn('the log entry has no signed entry timestamp (Rekor v2): the legacy format cannot carry it; prefer the bundle format');
  }
}

export async function attest(argv: string[], ui: Ui): Promise<number> {
  const { values: v, positionals, helpWanted } = parse(argv, attestSpec);
  if (helpWanted) return (ui.result({ help: helpText(attestSpec) }, helpText(attestSpec)), 0);
  if (!v.predicate) throw new UsageError('--predicate <file> is required');
  const predicateType = expandPredicateType(v.type ?? 'custom');
  let predicate: unknown;
  try {
    predicate = JSON.parse(readFileSync(v.predicate, 'utf8'));
  } catch (e) {
    throw new WaxsealError(
      (e as NodeJS.ErrnoException).code ? 'ERR_IO' : 'ERR_JSON_PARSE',
      `cannot read predicate ${v.predicate}: ${(e as Error).message}`,
    );
  }
  const image = positionals[0]!;
  const client = registryClient(v, image);
  const list = await targets(client, image, Boolean(v.recursive), ui);
  const sigRepo = signatureRepo(list[0]!, process.env.COSIGN_REPOSITORY || undefined);
  const withKey = v.key ? await keySigning(v['new-bundle-format'] === false ? await preferRekorV1(v) : v, v.key) : undefined;
  const s = withKey ?? (await services(v['new-bundle-format'] === false ? await preferRekorV1(v) : v, ui));
  const o = { token: s.token, services: s.services };
  const done: { digest: string; result: AttachResult }[] = [];
  for (const t of list) {
    const statement = attestationStatement(dockerReference(t), t.digest, predicateType, predicate);
    const bundle = withKey ? await withKey.signStatement(statement) : await signStatement(statement, o);
    let result: AttachResult;
    if (v['new-bundle-format'] !== false) {
      result = await attachBundle(client, sigRepo, t.descriptor, bundle, { predicateType });
    } else {
      if (bundle.content.type !== 'dsseEnvelope') throw new WaxsealError('ERR_INTERNAL', 'attestation bundle without an envelope');
      warnIfUnloggable(bundle.verificationMaterial.tlogEntries, ui);
      const { signature: _s, ...material } = legacyMaterialFromBundle(bundle);
      result = await attachLegacy(
        client,
        sigRepo,
        t.digest,
        'att',
        legacyAttestationLayer(bundle.content.envelope, predicateType, material),
      );
    }
    done.push({ digest: t.digest, result });
  }
  ui.result({ ok: true, image, predicateType, attestations: done.map((d) => ({ digest: d.digest, ...d.result })), ...s.summary }, [
    `Attested ${image} (${predicateType}):`,
    ...list.map((t, i) => describeAttach(t, done[i]!.result)),
  ]);
  return 0;
}

// ------------------------------------------------------------------------------ verify

async function verifyRun(argv: string[], ui: Ui, kind: 'signature' | 'attestation'): Promise<number> {
  const spec = kind === 'signature' ? verifySpec : verifyAttestationSpec;
  const { values, positionals, helpWanted } = parse(argv, spec);
  if (helpWanted) return (ui.result({ help: helpText(spec) }, helpText(spec)), 0);
  const v = values as typeof values & { type?: string; policy?: string };
  const cel = kind === 'attestation' && v.policy ? loadCelPolicy(v.policy) : undefined;
  if (v.output !== undefined && v.output !== 'json' && v.output !== 'text') throw new UsageError('--output must be json or text');
  const predicateType = kind === 'attestation' && v.type ? expandPredicateType(v.type) : undefined;
  const policy = policyFrom(v as Parameters<typeof policyFrom>[0], predicateType);
  const rootPath = explicitTrustedRootPath(v['trusted-root']) ?? (await import('../config.ts')).trustedRootPath(undefined);
  const verifier = verifierFor(loadTrustedRoot(rootPath), v as Parameters<typeof verifierFor>[1]);
  const image = positionals[0]!;
  const client = registryClient(v, image);
  const img = await resolveImage(client, image);
  const sigRepo = signatureRepo(img, process.env.COSIGN_REPOSITORY || undefined);
  const wanted = kind === 'signature' ? COSIGN.signPredicateType : predicateType;
  // Bundles first; the legacy tag only when no bundle is attached (as cosign v3 does).
  const found = await findBundles(client, sigRepo, img.digest, wanted ? { predicateType: wanted } : {});
  let attachments: Attachment[] = found.attachments;
  let skipped = found.skipped;
  if (attachments.length === 0) {
    const legacy = await findLegacy(client, sigRepo, img.digest, kind === 'signature' ? 'sig' : 'att');
    attachments = legacy.attachments.filter(
      (a) => !wanted || kind === 'signature' || !a.claimedPredicateType || a.claimedPredicateType === wanted,
    );
    skipped = legacy.skipped;
  }
  if (skipped) ui.warn(`${skipped} more attachments were not examined (limit reached)`);
  const label = `${img.ref.registry}/${img.ref.repository}`;
  let out: ImageVerification = verifyImageAttachments(verifier, attachments, { digest: img.digest, policy, kind, image: label });
  if (cel) out = applyCelPolicy(cel, out, `${label}@${img.digest}`);
  const json = ui.json || v.output === 'json';
  const data = {
    ok: true,
    image: label,
    digest: img.digest,
    verified: out.verified.map((x) => ({
      format: x.format,
      location: x.location,
      signer:
        x.result.signer.type === 'certificate'
          ? { identity: x.result.signer.san, issuer: x.result.signer.issuer, extensions: x.result.signer.extensions }
          : { publicKey: true },
      timestamps: x.result.timestamps.map((t) => ({ ...t, time: t.time.toISOString() })),
      ...(x.result.statement ? { predicateType: x.result.statement.predicateType } : {}),
      ...(x.optional ? { annotations: x.optional } : {}),
    })),
    failed: out.failures.map((f) => ({ location: f.location, code: f.error.code, check: f.error.check, message: f.error.message })),
  };
  if (json && !ui.json) process.stdout.write(`${JSON.stringify(data)}\n`);
  else
    ui.result(data, [
      `Verified ${out.verified.length} ${kind === 'signature' ? 'signature' : 'attestation'}${out.verified.length > 1 ? 's' : ''} of ${label}@${img.digest}`,
      ...out.verified.flatMap((x) => [`${x.format} ${x.location}:`, ...describe(x.result).map((l) => `  ${l}`)]),
      ...out.failures.map((f) => `  not valid: ${f.location}: ${f.error.code}: ${f.error.message}`),
    ]);
  return 0;
}

export const verify = (argv: string[], ui: Ui) => verifyRun(argv, ui, 'signature');
export const verifyAttestation = (argv: string[], ui: Ui) => verifyRun(argv, ui, 'attestation');
