// waxseal verify-blob / verify-blob-attestation: cosign's flags (and COSIGN_* variables) over the
// pure verifier. Detached material (--signature, --certificate, --rfc3161-timestamp) and loose trust
// files (--certificate-chain, --timestamp-certificate-chain, SIGSTORE_* variables) become a bundle
// and a trusted root first, so one verifier decides whichever way they came.
import { readFileSync, existsSync, statSync } from 'node:fs';
import { WaxsealError, fromHex, fromUtf8 } from '@waxseal/core';
import { parseBundleJson, parseTrustedRootJson, parseClientTrustConfigJson, type Bundle, type TrustedRoot } from '@waxseal/bundle';
import { Verifier, type VerificationPolicy, type VerificationResult, type Artifact, type CertificateIdentity } from '@waxseal/verify';
import { parse, helpText, UsageError, type Ui } from '../ui.ts';
import { explicitTrustedRootPath } from '../trusted-root-source.ts';
import { expandPredicateType, PREDICATE_TYPE_ALIASES } from '../predicate-type.ts';
import {
  bundleFromDetached,
  bundleHasCertificate,
  decodeCertificate,
  decodeRfc3161TimestampJson,
  decodeSignature,
  trustedRootFromLooseTrust,
  type LooseTrust,
} from '../detached.ts';
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

export const VERIFY_OPTIONS = {
  bundle: { type: 'string' },
  signature: { type: 'string' },
  certificate: { type: 'string' },
  'certificate-chain': { type: 'string' },
  'rfc3161-timestamp': { type: 'string' },
  'timestamp-certificate-chain': { type: 'string' },
  'use-signed-timestamps': { type: 'boolean' },
  'private-infrastructure': { type: 'boolean' },
  offline: { type: 'boolean' },
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

export const VERIFY_HELP = `
  --bundle <file>                        the Sigstore bundle (or the detached material below)
  --trusted-root <file>                  TrustedRoot or ClientTrustConfig JSON (else
                                         WAXSEAL_TRUSTED_ROOT, SIGSTORE_TRUSTED_ROOT, the loose
                                         trust files below, TUF_MIRROR with TUF_ROOT_JSON and
                                         TUF_ROOT, or \`waxseal trust init\`)
  --key <file>                           PEM public key, for bundles signed with a key
  --certificate-identity <san>           the signer's identity (e-mail, URI), exactly
  --certificate-identity-regexp <re>     ... or a regular expression (unanchored; write ^...$)
  --certificate-oidc-issuer <url>        the OIDC issuer, exactly
  --certificate-oidc-issuer-regexp <re>  ... or a regular expression
  --certificate-extension <name>=<value> a Fulcio extension that must match exactly, by name
                                         (e.g. sourceRepositoryURI) or OID; repeatable
  --certificate-github-workflow-trigger <value>, --certificate-github-workflow-sha <value>,
  --certificate-github-workflow-name <value>, --certificate-github-workflow-repository <value>,
  --certificate-github-workflow-ref <value>
                                         the deprecated GitHub extensions (cosign's flags)

Detached material, as cosign's sign-blob writes it (instead of --bundle):
  --signature <file|base64>              the signature (base64 or raw bytes)
  --certificate <file>                   the signing certificate (PEM or base64 PEM); with
                                         --bundle it must be the bundle's certificate
  --rfc3161-timestamp <file>             the RFC 3161 timestamp (cosign's JSON form)

Loose trust files, used when no trusted root is named (as cosign uses them):
  --certificate-chain <pem>              CA chain: intermediates, then the root (else
                                         SIGSTORE_ROOT_FILE)
  --timestamp-certificate-chain <pem>    TSA chain: leaf, intermediates, root (else
                                         SIGSTORE_TSA_CERTIFICATE_FILE); implies
                                         --use-signed-timestamps
  SIGSTORE_REKOR_PUBLIC_KEY=<pem file>   the transparency log's public key
  SIGSTORE_CT_LOG_PUBLIC_KEY_FILE=<pem>  the CT log's public key

  --use-signed-timestamps                require a verified RFC 3161 timestamp
  --private-infrastructure               same as --insecure-ignore-tlog (cosign's older name)
  --offline                              accepted: verification never asks a log anything

The artifact may be - (stdin).

Time and logs: the certificate chain is checked at each verified signing time (RFC 3161
timestamps, and log entries' integrated times). When the trusted root lists transparency logs
or CT logs, one verified entry / SCT is required; --insecure-ignore-tlog / --insecure-ignore-sct
drop that requirement. --insecure-skip-identity accepts any certified identity (unsafe).

Exit codes: 0 verified, 1 verification failed (the message names the check), 2 usage,
3 unreadable input.`;

export const verifyBlobSpec = {
  usage:
    'waxseal verify-blob <file|-|sha256:<hex>> --bundle <bundle> [--certificate-identity <san> --certificate-oidc-issuer <url>] [options]',
  summary: 'Verify a file (or its digest) against a Sigstore bundle and an identity policy.',
  options: VERIFY_OPTIONS,
  positionals: [1, 1] as [number, number],
  envPrefixes: ['COSIGN'],
  help: `Options:${VERIFY_HELP}`,
};

export const verifyAttestationSpec = {
  usage: 'waxseal verify-blob-attestation <file|-|sha256:<hex>> --bundle <bundle> [--type <uri|alias>] [identity options]',
  summary: 'Verify an in-toto attestation bundle (DSSE) about a file: signature, identity, subject digest and predicate type.',
  options: { ...VERIFY_OPTIONS, type: { type: 'string' as const } },
  positionals: [1, 1] as [number, number],
  envPrefixes: ['COSIGN'],
  help: `Options:
  --type <uri|alias>                     the predicate type the attestation must carry, or one of
                                         cosign's aliases: ${Object.keys(PREDICATE_TYPE_ALIASES).slice(0, 5).join(', ')},
                                         ${Object.keys(PREDICATE_TYPE_ALIASES).slice(5).join(', ')}
                                         (--signature is for verify-blob only)${VERIFY_HELP}`,
};

export type Values = {
  [K in keyof typeof VERIFY_OPTIONS]?: (typeof VERIFY_OPTIONS)[K] extends { type: 'boolean' }
    ? boolean
    : (typeof VERIFY_OPTIONS)[K] extends { multiple: true }
      ? string[]
      : string;
};

function readStdin(): Uint8Array {
  try {
    return readFileSync(0);
  } catch (e) {
    throw new WaxsealError('ERR_IO', `cannot read stdin: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
}

function readBytes(path: string, what: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new WaxsealError('ERR_IO', `cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
}

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
  if (arg === '-') return { artifact: { bytes: readStdin() }, label: 'stdin' };
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

export function policyFrom(v: Values, predicateType?: string): VerificationPolicy {
  const policy: VerificationPolicy = {};
  if (predicateType) policy.predicateType = expandPredicateType(predicateType);
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

export function verifierFor(root: TrustedRoot, v: Values): Verifier {
  // Requirements follow what the trust root declares: a log or CT log it lists must have vouched
  // for the bundle unless the matching --insecure-ignore-* flag says otherwise. A private instance
  // without logs relies on RFC 3161 timestamps, of which at least one must verify.
  const hasTlogs = root.tlogs.length > 0 && !v['insecure-ignore-tlog'] && !v['private-infrastructure'];
  const hasCtlogs = root.ctlogs.length > 0 && !v['insecure-ignore-sct'];
  // cosign: a TSA chain on the command line means timestamps are to be verified.
  const signedTimestamps = Boolean(v['use-signed-timestamps'] || v['timestamp-certificate-chain']);
  return new Verifier(root, {
    tlogThreshold: hasTlogs ? 1 : 0,
    ...(hasCtlogs ? { ctlogThreshold: 1 } : { ctlogThreshold: 0, skipSctUnsafe: true }),
    timestampThreshold: hasTlogs && !signedTimestamps ? 0 : 1,
    observerTimestampThreshold: 1,
  });
}

export function describe(r: VerificationResult): string[] {
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

/**
 * The trusted root, in cosign's order: one named (--trusted-root, COSIGN_TRUSTED_ROOT,
 * WAXSEAL_TRUSTED_ROOT, SIGSTORE_TRUSTED_ROOT); else loose trust files when any is given; else TUF
 * (TUF_MIRROR); else the one `waxseal trust init` installed.
 */
async function trustedRootFor(v: Values, env: NodeJS.ProcessEnv = process.env): Promise<TrustedRoot> {
  const named = explicitTrustedRootPath(v['trusted-root'], env);
  if (named) return loadTrustedRoot(named);
  const caFile = v['certificate-chain'] || env.SIGSTORE_ROOT_FILE;
  const tsaFile = v['timestamp-certificate-chain'] || env.SIGSTORE_TSA_CERTIFICATE_FILE;
  if (caFile || tsaFile || env.SIGSTORE_REKOR_PUBLIC_KEY || env.SIGSTORE_CT_LOG_PUBLIC_KEY_FILE) {
    const loose: LooseTrust = {};
    if (caFile) loose.caCertificates = readText(caFile, 'CA certificates');
    if (tsaFile) loose.tsaCertificates = readText(tsaFile, 'timestamp authority chain');
    if (env.SIGSTORE_REKOR_PUBLIC_KEY) loose.rekorPublicKeys = readText(env.SIGSTORE_REKOR_PUBLIC_KEY, 'SIGSTORE_REKOR_PUBLIC_KEY');
    if (env.SIGSTORE_CT_LOG_PUBLIC_KEY_FILE)
      loose.ctLogPublicKeys = readText(env.SIGSTORE_CT_LOG_PUBLIC_KEY_FILE, 'SIGSTORE_CT_LOG_PUBLIC_KEY_FILE');
    return trustedRootFromLooseTrust(loose);
  }
  // Only TUF and the installed root need config.ts and what it loads.
  const config = await import('../config.ts');
  const tuf = await config.trustFromTufEnv(env);
  if (tuf) return parseTrustedRootJson(fromUtf8(tuf.trustedRoot));
  return loadTrustedRoot(config.trustedRootPath(undefined, env));
}

/** The bundle: --bundle, or one built from cosign's detached --signature, --certificate and --rfc3161-timestamp. */
function bundleFor(v: Values): Bundle {
  const cert = v.certificate ? decodeCertificate(readBytes(v.certificate, 'certificate'), `certificate ${v.certificate}`) : undefined;
  if (v.bundle) {
    if (v.signature) throw new UsageError('--signature and --bundle exclude each other: the bundle holds the signature');
    if (v['rfc3161-timestamp'])
      throw new UsageError('--rfc3161-timestamp and --bundle exclude each other: the bundle holds its timestamps');
    const bundle = parseBundleJson(readText(v.bundle, 'bundle'));
    if (cert && !bundleHasCertificate(bundle, cert))
      throw new WaxsealError('ERR_VERIFY_CERT_CHAIN', 'the certificate passed in is not the certificate in the bundle', {
        check: 'certificate.match',
      });
    return bundle;
  }
  if (!v.signature) throw new UsageError('--bundle <file> is required (or --signature with --certificate or --key)');
  if (!cert && !v.key) throw new UsageError('--signature needs --certificate <file> (or --key <file>)');
  // A value that names no file is the signature itself, as cosign reads it.
  const sig = existsSync(v.signature) ? readBytes(v.signature, 'signature') : new TextEncoder().encode(v.signature);
  const timestamps = v['rfc3161-timestamp']
    ? [decodeRfc3161TimestampJson(readText(v['rfc3161-timestamp'], 'RFC 3161 timestamp'), `RFC 3161 timestamp ${v['rfc3161-timestamp']}`)]
    : [];
  return bundleFromDetached({ signature: decodeSignature(sig), ...(cert ? { certificate: cert } : {}), rfc3161Timestamps: timestamps });
}

async function run(argv: string[], ui: Ui, attestation: boolean): Promise<number> {
  const spec = attestation ? verifyAttestationSpec : verifyBlobSpec;
  const { values, positionals, helpWanted } = parse(argv, spec);
  if (helpWanted) return (ui.result({ help: helpText(spec) }, helpText(spec)), 0);
  const v = values as Values & { type?: string };
  if (attestation && (v.signature || v['rfc3161-timestamp']))
    throw new UsageError('verify-blob-attestation takes the attestation as --bundle');
  const policy = policyFrom(v, attestation ? v.type : undefined);
  const bundle = bundleFor(v);
  const root = await trustedRootFor(v);
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
