// The decision for one image under the policies that match it, over evidence already fetched
// (pure, synchronous). Semantics of policy-controller's ValidatePolicy:
//   - each authority is checked on its own: static pass/fail; signatures; or, when it lists
//     attestations, each named attestation (by predicate type, with its own policy) must be
//     found among the attestations that verified with the authority's trust;
//   - a policy passes when at least one authority matched (OR), and then its CIP-level
//     `policy` (CEL here) must allow the authorityMatches document (k-of-n, "A and B"...);
//   - the errors of failed authorities are reported only when no authority matched;
//   - mode warn turns a policy's failures into warnings; every matching policy must pass (AND).
// Trust per authority follows policy-controller's checkOptsFromAuthority: keyless CAs (and CT
// logs) from `trustRootRef`, `ca-cert` or the default trusted root; SCTs skipped with
// insecureIgnoreSCT; an `rfc3161timestamp` authority requires a verified RFC 3161 timestamp from
// the TrustRoot's TSAs and turns the transparency log off; otherwise a log is required when the
// authority names one (`ctlog`) or uses the default (public) trust.
import { concat, decodePemAll, encodePem, sha256, toHex, utf8, WaxsealError } from '@waxseal/core';
import { bundleSignatureBytes, type TrustedRoot, type CertificateAuthority } from '@waxseal/bundle';
import { Verifier, type VerificationPolicy, type VerifierOptions, type CertificateIdentity } from '@waxseal/verify';
import { verifyImageAttachments, type Attachment, type VerifiedAttachment } from '@waxseal/oci';
import { celAllows, type CelProgram } from './cel.ts';
import type { AnyImagePolicy, Authority, PolicyBlock, RemotePolicyRef, TrustRoot } from './resources.ts';
import { trustRootMaterial } from './trustroot.ts';

/** cosign's predicate type aliases. */
export const PREDICATE_TYPE_ALIASES: Readonly<Record<string, string>> = {
  custom: 'https://cosign.sigstore.dev/attestation/v1',
  slsaprovenance: 'https://slsa.dev/provenance/v0.2',
  slsaprovenance02: 'https://slsa.dev/provenance/v0.2',
  slsaprovenance1: 'https://slsa.dev/provenance/v1',
  spdx: 'https://spdx.dev/Document',
  spdxjson: 'https://spdx.dev/Document',
  cyclonedx: 'https://cyclonedx.org/bom',
  link: 'https://in-toto.io/Link/v1',
  vuln: 'https://cosign.sigstore.dev/attestation/vuln/v1',
  openvex: 'https://openvex.dev/ns',
};

export function expandPredicateType(t: string): string {
  return Object.hasOwn(PREDICATE_TYPE_ALIASES, t) ? PREDICATE_TYPE_ALIASES[t]! : t;
}

// ------------------------------------------------------------------------------- evidence

/** What the I/O layer must fetch for one authority. Authorities with the same request share it. */
export interface EvidenceRequest {
  key: string;
  kind: 'signature' | 'attestation';
  /** Repository holding the signatures (source.oci), instead of the image's own. */
  oci?: string;
  /** Prefix of legacy tags (source.tagPrefix). */
  tagPrefix?: string;
  /** dockerconfigjson Secrets (in the workload's namespace) with credentials for the signature repository. */
  signaturePullSecrets: string[];
  formats: ('bundle' | 'legacy')[];
}

/** What was fetched for a request: the attachments, or why fetching failed. */
export interface Evidence {
  attachments: Attachment[];
  error?: string;
}

export function evidenceRequest(a: Authority): EvidenceRequest | undefined {
  if (a.static) return undefined;
  const kind = a.attestations.length > 0 ? 'attestation' : 'signature';
  const formats: EvidenceRequest['formats'] = a.signatureFormat ? [a.signatureFormat] : ['bundle', 'legacy'];
  const r: EvidenceRequest = { key: '', kind, signaturePullSecrets: a.source?.signaturePullSecrets ?? [], formats };
  if (a.source?.oci) r.oci = a.source.oci;
  if (a.source?.tagPrefix) r.tagPrefix = a.source.tagPrefix;
  r.key = JSON.stringify([kind, r.oci ?? '', r.tagPrefix ?? '', formats, r.signaturePullSecrets]);
  return r;
}

/** Every distinct fetch the policies need (deduplicated by key). */
export function evidenceRequests(policies: readonly AnyImagePolicy[]): EvidenceRequest[] {
  const out = new Map<string, EvidenceRequest>();
  for (const p of policies) {
    for (const a of p.spec.authorities) {
      const r = evidenceRequest(a);
      if (r && !out.has(r.key)) out.set(r.key, r);
    }
  }
  return [...out.values()];
}

// -------------------------------------------------------------------- authorityMatches JSON

/** policy-controller's PolicySignature, as JSON (empty fields omitted). */
export interface PolicySignature {
  id?: string;
  subject?: string;
  issuer?: string;
  githubWorkflowTrigger?: string;
  githubWorkflowSha?: string;
  githubWorkflowName?: string;
  githubWorkflowRepo?: string;
  githubWorkflowRef?: string;
}
export interface PolicyAttestation extends PolicySignature {
  predicateType?: string;
  digest?: string;
}
export interface AuthorityMatch {
  signatures?: PolicySignature[];
  attestations?: Record<string, PolicyAttestation[]>;
  static?: boolean;
}

// ------------------------------------------------------------------------------ decisions

export interface EvaluationInput {
  /** The image as written (for messages). */
  image: string;
  /** The digest it resolved to: every signature must be for it. */
  digest: string;
  /** Fetched evidence by EvidenceRequest.key. */
  evidence: ReadonlyMap<string, Evidence>;
  trustRoots: ReadonlyMap<string, TrustRoot>;
  /** Trusted roots the app layer fetched through TUF for `remote`/`repository` TrustRoots, by name. */
  fetchedTrustRoots?: ReadonlyMap<string, TrustedRoot>;
  /** Why a remote TrustRoot's trusted root could not be loaded, by name. */
  trustRootErrors?: ReadonlyMap<string, string>;
  /** Trust for authorities without trustRootRef (policy-controller: the public Sigstore TUF root). */
  defaultTrustedRoot?: TrustedRoot;
  /** The resource under review, for includeSpec / includeObjectMeta / includeTypeMeta. */
  resource?: { spec?: unknown; metadata?: unknown; typemeta?: unknown };
  /** Image config files by platform, for fetchConfigFile (fetched by the app layer). */
  config?: Record<string, unknown>;
  /** Why the image config files could not be fetched. */
  configError?: string;
  /** PEM public keys of `key.kms` authorities, by KMS URI (fetched by the app layer). */
  kmsKeys?: ReadonlyMap<string, string>;
  /** Why a KMS key could not be fetched, by KMS URI. */
  kmsErrors?: ReadonlyMap<string, string>;
  /** Compiled `remote` policies, by remotePolicyKey (fetched, hash-checked and compiled by the app layer). */
  remotePolicies?: ReadonlyMap<string, CelProgram>;
  /** Why a remote policy could not be fetched or compiled, by remotePolicyKey. */
  remotePolicyErrors?: ReadonlyMap<string, string>;
}

// ------------------------------------------------------------------ what the app layer fetches

/** The key of a remote policy in EvaluationInput.remotePolicies: its content hash and URL. */
export function remotePolicyKey(r: RemotePolicyRef): string {
  return `${r.sha256sum} ${r.url}`;
}

/** Every `remote` policy the policies use (CIP-level and per attestation), deduplicated. */
export function remotePolicyRefs(policies: readonly AnyImagePolicy[]): RemotePolicyRef[] {
  const out = new Map<string, RemotePolicyRef>();
  const add = (b: PolicyBlock | undefined) => {
    if (b?.remote) out.set(remotePolicyKey(b.remote), b.remote);
  };
  for (const p of policies) {
    add(p.spec.policy);
    for (const a of p.spec.authorities) for (const at of a.attestations) add(at.policy);
  }
  return [...out.values()];
}

/** Every KMS key URI the policies' `key` authorities name, deduplicated. */
export function kmsKeyUris(policies: readonly AnyImagePolicy[]): string[] {
  const out = new Set<string>();
  for (const p of policies) for (const a of p.spec.authorities) if (a.key?.kms && !a.key.data) out.add(a.key.kms);
  return [...out];
}

/** Does any policy's CIP-level policy ask for the image config files (fetchConfigFile)? */
export function needsConfigFiles(policies: readonly AnyImagePolicy[]): boolean {
  return policies.some((p) => p.spec.policy?.fetchConfigFile === true);
}

function programOf(b: PolicyBlock, input: EvaluationInput, what: string): CelProgram {
  if (b.program) return b.program;
  const r = b.remote!;
  const k = remotePolicyKey(r);
  const hit = input.remotePolicies?.get(k);
  if (hit) return hit;
  const why = input.remotePolicyErrors?.get(k);
  throw new AuthorityFailure(`${what}: remote policy ${r.url}: ${why ?? 'it has not been fetched'}`);
}

export interface PolicyDecision {
  /** `ClusterImagePolicy <name>` or `ImagePolicy <ns>/<name>`. */
  policy: string;
  mode: 'enforce' | 'warn';
  /** Matched (an authority passed and the CIP-level policy allowed). */
  passed: boolean;
  authorityMatches: Record<string, AuthorityMatch>;
  /** Why it did not pass (enforce mode). */
  errors: string[];
  /** Warn mode: why it did not pass; and validation warnings. */
  warnings: string[];
}

export function policyLabel(p: AnyImagePolicy): string {
  return p.kind === 'ClusterImagePolicy' ? `ClusterImagePolicy ${p.name}` : `ImagePolicy ${p.namespace}/${p.name}`;
}

class AuthorityFailure extends Error {}
const failA = (msg: string): never => {
  throw new AuthorityFailure(msg);
};

function material(ref: string, input: EvaluationInput): TrustedRoot {
  const tr = input.trustRoots.get(ref);
  if (!tr) return failA(`trustRootRef ${ref} not found`);
  const loadError = input.trustRootErrors?.get(ref);
  if (loadError && !input.fetchedTrustRoots?.has(ref)) return failA(`TrustRoot ${ref}: ${loadError}`);
  try {
    return trustRootMaterial(tr, input.fetchedTrustRoots?.get(ref));
  } catch (e) {
    return failA((e as Error).message);
  }
}

function defaultRoot(input: EvaluationInput, what: string): TrustedRoot {
  // policy-controller falls back to the public Sigstore root; Waxseal never fetches it on its own.
  if (!input.defaultTrustedRoot)
    return failA(
      `${what} without trustRootRef uses the default trusted root, and none is configured ` +
        '(name a TrustRoot in trustRootRef, or pass --trusted-root to waxseal admission serve / waxseal policy test)',
    );
  return input.defaultTrustedRoot;
}

function caCertAuthority(pem: string): CertificateAuthority[] {
  // A ca-cert holds a chain (roots and intermediates) as PEM; one authority holds it all.
  let ders: Uint8Array[];
  try {
    ders = decodePemAll(pem)
      .filter((b) => b.label === 'CERTIFICATE')
      .map((b) => b.der);
  } catch (e) {
    return failA(`keyless.ca-cert: ${(e as Error).message}`);
  }
  if (ders.length === 0) return failA('keyless.ca-cert holds no PEM certificate');
  return [{ subject: {}, uri: 'ca-cert', certChain: ders, validFor: { start: new Date(0) } }];
}

interface AuthorityTrust {
  verifier: Verifier;
  policy: VerificationPolicy;
}

const trustCache = new WeakMap<Authority, { deps: unknown[]; trust: AuthorityTrust }>();

function authorityTrust(a: Authority, input: EvaluationInput): AuthorityTrust {
  const refs = [a.keyless?.trustRootRef, a.ctlog?.trustRootRef, a.rfc3161timestamp?.trustRootRef];
  const deps: unknown[] = [
    ...refs.map((r) => (r ? input.trustRoots.get(r) : undefined)),
    ...refs.map((r) => (r ? input.fetchedTrustRoots?.get(r) : undefined)),
    input.defaultTrustedRoot,
    a.key?.kms ? input.kmsKeys?.get(a.key.kms) : undefined,
  ];
  const hit = trustCache.get(a);
  if (hit && hit.deps.length === deps.length && hit.deps.every((d, i) => d === deps[i])) return hit.trust;

  const root: TrustedRoot = {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    certificateAuthorities: [],
    timestampAuthorities: [],
    tlogs: [],
    ctlogs: [],
  };
  const policy: VerificationPolicy = {};
  let requireSct = false;
  if (a.keyless) {
    const k = a.keyless;
    if (k.caCert) {
      if (!k.caCert.data) failA('keyless.ca-cert: only inline data (or a loaded Secret) is supported');
      root.certificateAuthorities = caCertAuthority(k.caCert.data!);
    } else if (k.trustRootRef) root.certificateAuthorities = material(k.trustRootRef, input).certificateAuthorities;
    else root.certificateAuthorities = defaultRoot(input, 'a keyless authority').certificateAuthorities;
    if (!k.insecureIgnoreSCT) {
      requireSct = true;
      root.ctlogs = k.trustRootRef ? material(k.trustRootRef, input).ctlogs : defaultRoot(input, 'SCT verification').ctlogs;
    }
    policy.identities = k.identities.map((id) => {
      const c: CertificateIdentity = {};
      if (id.issuer) c.issuer = id.issuer;
      if (id.issuerRegExp) c.issuerRegExp = id.issuerRegExp;
      if (id.subject) c.subjectAlternativeName = id.subject;
      if (id.subjectRegExp) c.subjectAlternativeNameRegExp = id.subjectRegExp;
      return c;
    });
  } else if (a.key) {
    let pem = a.key.data;
    if (!pem && a.key.kms) {
      pem = input.kmsKeys?.get(a.key.kms);
      if (!pem) failA(`key.kms ${a.key.kms}: ${input.kmsErrors?.get(a.key.kms) ?? 'the public key has not been fetched'}`);
    }
    if (!pem) failA(`key.secretRef ${a.key.secretRef?.name}: the Secret was not loaded with the policies`);
    policy.publicKey = { publicKey: pem! };
  }
  const useTsa = a.rfc3161timestamp?.trustRootRef !== undefined;
  if (useTsa) root.timestampAuthorities = material(a.rfc3161timestamp!.trustRootRef!, input).timestampAuthorities;
  // The default root is used whole, as cosign uses the public-good root: its TSAs may supply the
  // signing time (a Rekor v2 entry carries none), without being required.
  else if (a.keyless && !a.keyless.trustRootRef && !a.keyless.caCert)
    root.timestampAuthorities = defaultRoot(input, 'a keyless authority').timestampAuthorities;
  let requireTlog = false;
  if (!a.rfc3161timestamp) {
    if (a.ctlog) {
      requireTlog = true;
      root.tlogs = a.ctlog.trustRootRef ? material(a.ctlog.trustRootRef, input).tlogs : defaultRoot(input, 'ctlog').tlogs;
    } else if (a.keyless && !a.keyless.trustRootRef) {
      requireTlog = true;
      root.tlogs = defaultRoot(input, 'a keyless authority').tlogs;
    }
    if (requireTlog && root.tlogs.length === 0) failA('a transparency log is required but its trust root lists no log keys (tLogs)');
  }
  if (useTsa && root.timestampAuthorities.length === 0)
    failA(`TrustRoot ${a.rfc3161timestamp!.trustRootRef} lists no timestamp authorities`);
  if (a.keyless && root.certificateAuthorities.length === 0) failA('the trust root lists no certificate authorities');
  const options: VerifierOptions = {
    tlogThreshold: requireTlog ? 1 : 0,
    timestampThreshold: useTsa ? 1 : 0,
    ...(requireSct ? { ctlogThreshold: 1 } : { ctlogThreshold: 0, skipSctUnsafe: true }),
    observerTimestampThreshold: a.keyless || useTsa || requireTlog ? 1 : 0,
  };
  let verifier: Verifier;
  try {
    verifier = new Verifier(root, options);
  } catch (e) {
    return failA(`invalid trust material: ${(e as Error).message}`);
  }
  const trust = { verifier, policy };
  trustCache.set(a, { deps, trust });
  return trust;
}

function policySignature(v: VerifiedAttachment, bundleSig: Uint8Array): PolicySignature {
  const s = v.result.signer;
  const out: PolicySignature = {};
  const certPem = s.type === 'certificate' ? encodePem('CERTIFICATE', s.certificate.der) : '';
  out.id = toHex(sha256(concat(bundleSig, utf8(certPem))));
  if (s.type === 'certificate') {
    // policy-controller: the first SAN, and the issuer.
    const san = s.subjectAlternativeNames[0]?.value ?? s.san;
    if (san) out.subject = san;
    if (s.issuer) out.issuer = s.issuer;
    const x = s.extensions as Record<string, string | undefined>;
    const gh: [keyof PolicySignature, string][] = [
      ['githubWorkflowTrigger', 'githubWorkflowTrigger'],
      ['githubWorkflowSha', 'githubWorkflowSha'],
      ['githubWorkflowName', 'githubWorkflowName'],
      ['githubWorkflowRepo', 'githubWorkflowRepository'],
      ['githubWorkflowRef', 'githubWorkflowRef'],
    ];
    for (const [field, ext] of gh) if (x[ext]) out[field] = x[ext];
  }
  return out;
}

function withFormats(ev: Evidence, formats: EvidenceRequest['formats']): Attachment[] {
  return ev.attachments.filter((a) => formats.includes(a.format));
}

function sigBytes(att: Attachment): Uint8Array {
  try {
    return att.bundle ? bundleSignatureBytes(att.bundle) : new Uint8Array();
  } catch {
    return new Uint8Array();
  }
}

function checkAuthority(a: Authority, input: EvaluationInput): AuthorityMatch {
  if (a.static) {
    if (a.static.action === 'fail') failA(`disallowed by static policy${a.static.message ? `: ${a.static.message}` : ''}`);
    return { static: true };
  }
  const req = evidenceRequest(a)!;
  const ev = input.evidence.get(req.key);
  if (!ev) return failA('no evidence was fetched for this authority');
  if (ev.error) return failA(ev.error);
  const trust = authorityTrust(a, input);
  const attachments = withFormats(ev, req.formats);
  const bySig = new Map(attachments.map((x) => [x.location, sigBytes(x)]));
  const kindWord = a.key ? 'key' : a.keyless ? 'keyless' : 'TSA';
  if (req.kind === 'signature') {
    let verified: VerifiedAttachment[];
    try {
      verified = verifyImageAttachments(trust.verifier, attachments, {
        digest: input.digest,
        policy: trust.policy,
        kind: 'signature',
        image: input.image,
      }).verified;
    } catch (e) {
      return failA(`signature ${kindWord} validation failed: ${(e as Error).message}`);
    }
    return { signatures: verified.map((v) => policySignature(v, bySig.get(v.location) ?? new Uint8Array())) };
  }
  let verified: VerifiedAttachment[];
  try {
    verified = verifyImageAttachments(trust.verifier, attachments, {
      digest: input.digest,
      policy: trust.policy,
      kind: 'attestation',
      image: input.image,
    }).verified;
  } catch (e) {
    const msg =
      (e as WaxsealError).check === 'image.signatures' ? `no matching attestations: ${(e as Error).message}` : (e as Error).message;
    return failA(`attestation ${kindWord} validation failed: ${msg}`);
  }
  const out: Record<string, PolicyAttestation[]> = {};
  for (const want of a.attestations) {
    const type = expandPredicateType(want.predicateType);
    const seen = new Set<string>();
    let firstError: string | undefined;
    const passed: PolicyAttestation[] = [];
    for (const v of verified) {
      const st = v.result.statement;
      if (!st) continue;
      seen.add(st.predicateType);
      if (st.predicateType !== type) continue;
      if (want.policy) {
        const r = celAllows(programOf(want.policy, input, `attestation ${want.name}`), st as unknown as Record<string, unknown>);
        if (!r.ok) {
          firstError ??= `attestation ${want.name}: policy failed: ${r.reason}`;
          continue;
        }
      }
      const sig = policySignature(v, bySig.get(v.location) ?? new Uint8Array());
      passed.push({
        ...sig,
        predicateType: want.predicateType,
        digest: v.location.startsWith('sha256:') ? v.location : `sha256:${toHex(sha256(bySig.get(v.location) ?? new Uint8Array()))}`,
      });
    }
    if (passed.length === 0) {
      if (firstError) failA(firstError);
      failA(
        `no matching attestations with type ${want.predicateType}, checked the following predicateTypes: ${JSON.stringify([...seen].join(','))}`,
      );
    }
    out[want.name] = passed;
  }
  return { attestations: out };
}

/** Evaluates one policy for one image. Never throws for bad evidence: failures are in the decision. */
export function evaluatePolicy(p: AnyImagePolicy, input: EvaluationInput): PolicyDecision {
  const label = policyLabel(p);
  const d: PolicyDecision = { policy: label, mode: p.spec.mode, passed: false, authorityMatches: {}, errors: [], warnings: [] };
  const failures: string[] = [];
  for (const a of p.spec.authorities) {
    try {
      d.authorityMatches[a.name] = checkAuthority(a, input);
    } catch (e) {
      if (!(e instanceof AuthorityFailure) && !(e instanceof WaxsealError)) throw e;
      failures.push(`failed policy: ${label}: authority ${a.name}: ${e.message}`);
    }
  }
  const matched = Object.keys(d.authorityMatches).length > 0;
  if (matched && p.spec.policy) {
    const pol = p.spec.policy;
    const doc: Record<string, unknown> = { authorityMatches: d.authorityMatches };
    if (pol.includeSpec && input.resource?.spec !== undefined) doc.spec = input.resource.spec;
    if (pol.includeObjectMeta && input.resource?.metadata !== undefined) doc.metadata = input.resource.metadata;
    if (pol.includeTypeMeta && input.resource?.typemeta !== undefined) doc.typemeta = input.resource.typemeta;
    let program: CelProgram | undefined;
    try {
      program = programOf(pol, input, 'policy');
    } catch (e) {
      failures.push(`failed policy: ${label}: ${(e as Error).message}`);
    }
    if (program && pol.fetchConfigFile) {
      if (input.config) doc.config = input.config;
      else {
        failures.push(
          `failed policy: ${label}: policy: fetchConfigFile: ${input.configError ?? 'the image config files were not fetched'}`,
        );
        program = undefined;
      }
    }
    if (program) {
      // JSON round trip: the policy sees what policy-controller's policy sees (no undefined, plain values).
      const r = celAllows(program, JSON.parse(JSON.stringify(doc)) as Record<string, unknown>);
      if (!r.ok) failures.push(`failed policy: ${label}: policy: ${r.reason}`);
      else d.passed = true;
    }
  } else d.passed = matched;
  if (!d.passed) {
    if (failures.length === 0) failures.push(`failed policy: ${label}: no authority matched`);
    if (p.spec.mode === 'warn') d.warnings.push(...failures);
    else d.errors.push(...failures);
  }
  return d;
}

export interface ImageDecision {
  allowed: boolean;
  errors: string[];
  warnings: string[];
  policies: string[];
  decisions: PolicyDecision[];
}

/** `deny`: an image no policy covers is refused (policy-controller's default); `warn`: allowed with a warning. */
export type NoMatchPolicy = 'deny' | 'allow' | 'warn';

/**
 * ANDs every matching policy's decision; applies the no-match policy when no ClusterImagePolicy
 * matched. A namespaced ImagePolicy only adds requirements: it never counts as coverage, so a
 * namespace owner cannot admit, with a policy of their own, an image the cluster's policies do
 * not cover.
 */
export function decideImage(policies: readonly AnyImagePolicy[], input: EvaluationInput, noMatch: NoMatchPolicy = 'deny'): ImageDecision {
  const out: ImageDecision = { allowed: true, errors: [], warnings: [], policies: policies.map(policyLabel), decisions: [] };
  if (!policies.some((p) => p.kind === 'ClusterImagePolicy')) {
    const msg = `no matching policies: ${input.image} is uncovered by policy`;
    if (noMatch === 'deny') {
      out.allowed = false;
      out.errors.push(msg);
    } else if (noMatch === 'warn') out.warnings.push(msg);
  }
  for (const p of policies) {
    const d = evaluatePolicy(p, input);
    out.decisions.push(d);
    out.errors.push(...d.errors);
    out.warnings.push(...d.warnings);
    if (d.errors.length) out.allowed = false;
  }
  return out;
}
