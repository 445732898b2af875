// waxseal verify-blob / verify-blob-attestation: cosign-compatible flags over the pure verifier.
import { readFileSync, existsSync, statSync } from 'node:fs';
import { WaxsealError, fromHex } from '@waxseal/core';
import { parseBundleJson, parseTrustedRootJson, parseClientTrustConfigJson, type TrustedRoot } from '@waxseal/bundle';
import { Verifier, type VerificationPolicy, type VerificationResult, type Artifact, type CertificateIdentity } from '@waxseal/verify';
import { parse, helpText, UsageError, type Ui } from '../ui.ts';
import { explicitTrustedRootPath } from '../trusted-root-source.ts';
// Verifying loads only the verifier's packages: @waxseal/sign (the signing client, for hashing
// files over 64 MiB) and ../config.ts (which brings it, for the installed trusted root) are
// imported when a run needs them.

// cosign's flags for the deprecated GitHub extensions, plus a generic one for every other.
const GITHUB_FLAGS = {
  'certificate-github-workflow-trigger': 'githubWorkflowTrigger',
  'certificate-github-workflow-sha': 'githubWorkflowSha',
  'certificate-github-workflow-name': 'githubWorkflowName',
  'certificate-github-workflow-repository': 'githubWorkflowRepository',
  'certificate-github-workflow-ref': 'githubWorkflowRef',
} as const;

const VERIFY_OPTIONS = {
  bundle: { type: 'string' },
  'trusted-root': { type: 'string' },
  key: { type: 'string' },
  'certificate-identity': { type: 'string' },
  'certificate-identity-regexp': { type: 'string' },
  'certificate-oidc-issuer': { type: 'string' },
  'certificate-oidc-issuer-regexp': { type: 'string' },
  'certificate-extension': { type: 'string', multiple: true },
  'certificate-github-workflow-trigger': { type: 'string' },
  'certificate-github-workflow-sha': { type: 'string' },
  'certificate-github-workflow-name': { type: 'string' },
  'certificate-github-workflow-repository': { type: 'string' },
  'certificate-github-workflow-ref': { type: 'string' },
  'insecure-ignore-tlog': { type: 'boolean' },
  'insecure-ignore-sct': { type: 'boolean' },
  'insecure-skip-identity': { type: 'boolean' },
} as const;

const VERIFY_HELP = `
  --bundle <file>                        the Sigstore bundle; required
  --trusted-root <file>                  TrustedRoot or ClientTrustConfig JSON (else
                                         WAXSEAL_TRUSTED_ROOT or \`waxseal trust init\`)
  --key <file>                           PEM public key, for bundles signed with a key
  --certificate-identity <san>           the signer's identity (e-mail, URI), exactly
  --certificate-identity-regexp <re>     ... or a regular expression (unanchored; write ^...$)
  --certificate-oidc-issuer <url>        the OIDC issuer, exactly
  --certificate-oidc-issuer-regexp <re>  ... or a regular expression
  --certificate-extension <name>=<value> a Fulcio extension that must match exactly, by name
                                         (e.g. sourceRepositoryURI) or OID; repeatable
  --certificate-github-workflow-{trigger,sha,name,repository,ref} <value>
                                         the deprecated GitHub extensions (cosign's flags)

Time and logs: the certificate chain is checked at each verified signing time (RFC 3161
timestamps, and log entries' integrated times). When the trusted root lists transparency logs
or CT logs, one verified entry / SCT is required; --insecure-ignore-tlog / --insecure-ignore-sct
drop that requirement. --insecure-skip-identity accepts any certified identity (unsafe).

Exit codes: 0 verified, 1 verification failed (the message names the check), 2 usage,
3 unreadable input.`;

export const verifyBlobSpec = {
  usage:
    'waxseal verify-blob <file|sha256:<hex>> --bundle <bundle> [--certificate-identity <san> --certificate-oidc-issuer <url>] [options]',
  summary: 'Verify a file (or its digest) against a Sigstore bundle and an identity policy.',
  options: VERIFY_OPTIONS,
  positionals: [1, 1] as [number, number],
  help: `Options:${VERIFY_HELP}`,
};

export const verifyAttestationSpec = {
  usage: 'waxseal verify-blob-attestation <file|sha256:<hex>> --bundle <bundle> [--type <uri>] [identity options]',
  summary: 'Verify an in-toto attestation bundle (DSSE) about a file: signature, identity, subject digest and predicate type.',
  options: { ...VERIFY_OPTIONS, type: { type: 'string' as const } },
  positionals: [1, 1] as [number, number],
  help: `Options:
  --type <uri|alias>                     the predicate type the attestation must carry
                                         (aliases: slsaprovenance, slsaprovenance02, slsaprovenance1,
                                         spdxjson, cyclonedx, vuln, openvex, custom)${VERIFY_HELP}`,
};

const PREDICATE_ALIASES: Record<string, string> = {
  slsaprovenance: 'https://slsa.dev/provenance/v0.2',
  slsaprovenance02: 'https://slsa.dev/provenance/v0.2',
  slsaprovenance1: 'https://slsa.dev/provenance/v1',
  spdx: 'https://spdx.dev/Document',
  spdxjson: 'https://spdx.dev/Document',
  cyclonedx: 'https://cyclonedx.org/bom',
  vuln: 'https://cosign.sigstore.dev/attestation/vuln/v1',
  openvex: 'https://openvex.dev/ns',
  custom: 'https://cosign.sigstore.dev/attestation/v1',
};

type Values = {
  [K in keyof typeof VERIFY_OPTIONS]?: (typeof VERIFY_OPTIONS)[K] extends { type: 'boolean' }
    ? boolean
    : (typeof VERIFY_OPTIONS)[K] extends { multiple: true }
      ? string[]
      : string;
};

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new WaxsealError('ERR_IO', `cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
}

export function loadTrustedRoot(path: string): TrustedRoot {
  const text = readText(path, 'trusted root');
  if (text.includes('clienttrustconfig')) return parseClientTrustConfigJson(text).trustedRoot;
  return parseTrustedRootJson(text);
}

/** The artifact: a file, or `sha256:<hex>` (as cosign and the conformance suite pass digests). */
async function artifactFor(arg: string): Promise<{ artifact: Artifact; label: string }> {
  const m = /^(sha256|sha384|sha512):([0-9a-fA-F]+)$/.exec(arg);
  if (m && !existsSync(arg)) {
    const alg = m[1] as 'sha256' | 'sha384' | 'sha512';
    const value = fromHex(m[2]!.toLowerCase(), 'artifact digest');
    if (value.length !== { sha256: 32, sha384: 48, sha512: 64 }[alg]) throw new UsageError(`${alg} digest has the wrong length`);
    return { artifact: { digest: { algorithm: alg, value } }, label: arg };
  }
  // Small files are read whole so every digest the bundle might use can be computed; large ones
  // are hashed once with SHA-256 (what waxseal, cosign and sigstore-js sign with).
  let size: number;
  try {
    size = statSync(arg).size;
  } catch (e) {
    throw new WaxsealError('ERR_IO', `cannot read artifact ${arg}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  if (size <= 64 << 20) return { artifact: { bytes: readFileSync(arg) }, label: arg };
  const { hashFile } = await import('@waxseal/sign');
  return { artifact: { digest: { algorithm: 'sha256', value: hashFile(arg).digest } }, label: arg };
}

function policyFrom(v: Values, predicateType?: string): VerificationPolicy {
  const policy: VerificationPolicy = {};
  if (predicateType) policy.predicateType = PREDICATE_ALIASES[predicateType] ?? predicateType;
  if (v.key) {
    policy.publicKey = { publicKey: readText(v.key, 'public key') };
    return policy;
  }
  if (v['insecure-skip-identity']) {
    policy.withoutIdentityUnsafe = true;
    return policy;
  }
  const san = v['certificate-identity'];
  const sanRe = v['certificate-identity-regexp'];
  const iss = v['certificate-oidc-issuer'];
  const issRe = v['certificate-oidc-issuer-regexp'];
  if (!san && !sanRe)
    throw new UsageError('--certificate-identity or --certificate-identity-regexp is required (or --key for key-signed bundles)');
  if (!iss && !issRe) throw new UsageError('--certificate-oidc-issuer or --certificate-oidc-issuer-regexp is required');
  const id: CertificateIdentity = {};
  if (san) id.subjectAlternativeName = san;
  else id.subjectAlternativeNameRegExp = sanRe!;
  if (iss) id.issuer = iss;
  else id.issuerRegExp = issRe!;
  const extensions: Record<string, string> = {};
  for (const [flag, name] of Object.entries(GITHUB_FLAGS)) {
    const val = v[flag as keyof typeof GITHUB_FLAGS];
    if (val) extensions[name] = val;
  }
  for (const kv of v['certificate-extension'] ?? []) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new UsageError(`--certificate-extension expects <name>=<value>, got ${JSON.stringify(kv)}`);
    extensions[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  if (Object.keys(extensions).length) id.extensions = extensions;
  policy.identities = [id];
  return policy;
}

function verifierFor(root: TrustedRoot, v: Values): Verifier {
  // Requirements follow what the trust root declares: a log or CT log it lists must have vouched
  // for the bundle unless the matching --insecure-ignore-* flag says otherwise. A private instance
  // without logs relies on RFC 3161 timestamps, of which at least one must verify.
  const hasTlogs = root.tlogs.length > 0 && !v['insecure-ignore-tlog'];
  const hasCtlogs = root.ctlogs.length > 0 && !v['insecure-ignore-sct'];
  return new Verifier(root, {
    tlogThreshold: hasTlogs ? 1 : 0,
    ...(hasCtlogs ? { ctlogThreshold: 1 } : { ctlogThreshold: 0, skipSctUnsafe: true }),
    timestampThreshold: hasTlogs ? 0 : 1,
    observerTimestampThreshold: 1,
  });
}

function describe(r: VerificationResult): string[] {
  const s = r.signer;
  const who = s.type === 'certificate' ? `${s.san ?? '?'} (issuer ${s.issuer ?? '?'})` : 'the given public key';
  return [
    `Verified OK: signed by ${who}`,
    ...r.timestamps.map(
      (t) => `  signed at ${t.time.toISOString()} (${t.source === 'rfc3161' ? 'RFC 3161 timestamp from' : 'log entry in'} ${t.authority})`,
    ),
    // Only what a signature or proof covers is stated as fact; the rest is named as unverified.
    ...r.tlogEntries.map(
      (e) =>
        `  logged ${e.logIndex !== undefined ? `at index ${e.logIndex} ` : ''}in ${e.baseUrl}${
          e.unverified.length ? ` (not covered by any signature, so not shown: ${e.unverified.join(', ')})` : ''
        }`,
    ),
  ];
}

async function run(argv: string[], ui: Ui, attestation: boolean): Promise<number> {
  const spec = attestation ? verifyAttestationSpec : verifyBlobSpec;
  const { values, positionals, helpWanted } = parse(argv, spec);
  if (helpWanted) return (ui.result({ help: helpText(spec) }, helpText(spec)), 0);
  const v = values as Values & { type?: string };
  if (!v.bundle) throw new UsageError('--bundle <file> is required');
  const policy = policyFrom(v, attestation ? v.type : undefined);
  // Only the installed root (no flag, no variable) needs config.ts and what it loads.
  const rootPath = explicitTrustedRootPath(v['trusted-root']) ?? (await import('../config.ts')).trustedRootPath(undefined);
  const root = loadTrustedRoot(rootPath);
  const bundle = parseBundleJson(readText(v.bundle, 'bundle'));
  const { artifact, label } = await artifactFor(positionals[0]!);
  const result = verifierFor(root, v).verify(bundle, artifact, policy);
  if (attestation && result.content !== 'dsseEnvelope') {
    throw new WaxsealError('ERR_VERIFY_DSSE', 'the bundle holds a message signature, not an attestation', { check: 'dsse.envelope' });
  }
  const signer =
    result.signer.type === 'certificate'
      ? { identity: result.signer.san, issuer: result.signer.issuer, extensions: result.signer.extensions }
      : { publicKey: true };
  ui.result(
    {
      ok: true,
      artifact: label,
      signer,
      timestamps: result.timestamps.map((t) => ({ ...t, time: t.time.toISOString() })),
      tlogEntries: result.tlogEntries,
      ...(result.statement ? { predicateType: result.statement.predicateType } : {}),
    },
    describe(result),
  );
  return 0;
}

export const verifyBlob = (argv: string[], ui: Ui) => run(argv, ui, false);
export const verifyBlobAttestation = (argv: string[], ui: Ui) => run(argv, ui, true);
