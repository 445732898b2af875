// policy-controller's resources (policy.sigstore.dev ClusterImagePolicy v1alpha1/v1beta1 and
// TrustRoot v1alpha1) and Waxseal's namespaced ImagePolicy (policy.waxseal.dev/v1alpha1, the
// ClusterImagePolicy spec in a namespace), parsed and validated as policy-controller's webhook
// validates them (pkg/apis/policy/*/..._validation.go), with its defaults (mode enforce,
// authority-<i> names, keyless url https://fulcio.sigstore.dev). Every problem is collected and
// reported at once, each with the field path (`spec.authorities[0].keyless.identities[0]`).
//
// Beyond policy-controller: unknown fields in a spec are refused (as its policy-tester does), CEL
// (`type: cel`) is a policy language, and policies in CUE or Rego are refused at load time since
// no evaluator for them runs here (never passed silently).
import {
  basicConstraints,
  compileRegexp,
  decodePem,
  decodePemAll,
  fromBase64,
  fromUtf8,
  parseCertificate,
  publicKeyFromSpki,
  WaxsealError,
  type Certificate,
} from '@waxseal/core';
import { parseRepository } from '@waxseal/oci';
import { compileCel, type CelProgram } from './cel.ts';
import { compileGlob, globError, type ImageGlob } from './glob.ts';

export const POLICY_GROUP = 'policy.sigstore.dev';
export const WAXSEAL_POLICY_GROUP = 'policy.waxseal.dev';
export const CIP_VERSIONS = ['v1alpha1', 'v1beta1'] as const;
/** The resources a `match` may name (policy-controller's webhook registers exactly these). */
export const MATCH_RESOURCES = ['replicasets', 'deployments', 'pods', 'cronjobs', 'jobs', 'statefulsets', 'daemonsets'] as const;
/** cosign's short predicate type names, accepted with a deprecation warning. */
export const PREDICATE_ALIASES = ['custom', 'slsaprovenance', 'spdx', 'spdxjson', 'cyclonedx', 'link', 'vuln'] as const;
const KMS_SCHEMES = ['awskms://', 'azurekms://', 'hashivault://', 'gcpkms://'];
/** KMS providers whose public keys the admission engine fetches (through @waxseal/keys-awskms, -gcpkms). */
export const FETCHED_KMS_SCHEMES = ['awskms://', 'gcpkms://'] as const;
const HASHES = ['sha224', 'sha256', 'sha384', 'sha512'] as const;
export type HashAlgorithm = (typeof HASHES)[number];

export interface SecretReference {
  name: string;
  namespace?: string;
}

export interface KeyRef {
  /** A PEM public key. */
  data?: string;
  kms?: string;
  secretRef?: SecretReference;
  hashAlgorithm: HashAlgorithm;
}

export interface Identity {
  issuer?: string;
  subject?: string;
  issuerRegExp?: string;
  subjectRegExp?: string;
}

export interface KeylessRef {
  url?: string;
  caCert?: KeyRef;
  identities: Identity[];
  trustRootRef?: string;
  insecureIgnoreSCT: boolean;
}

export interface StaticRef {
  action: 'pass' | 'fail';
  message?: string;
}

export interface Source {
  oci?: string;
  signaturePullSecrets: string[];
  tagPrefix?: string;
}

export type PolicyLanguage = 'cel' | 'cue' | 'rego';

/** A `policy` block (CIP-level or per attestation). Only CEL policies load; see compilePolicy. */
export interface PolicyBlock {
  type: 'cel';
  /** The expression (inline data, or the ConfigMap value it was resolved from); '' for `remote`. */
  data: string;
  /** The compiled expression; absent for `remote` (the app layer fetches, checks and compiles it). */
  program?: CelProgram;
  configMapRef?: { name: string; namespace?: string; key: string };
  /** A policy fetched from `url` whose body must hash to `sha256sum` (lowercase hex). */
  remote?: RemotePolicyRef;
  fetchConfigFile: boolean;
  includeSpec: boolean;
  includeObjectMeta: boolean;
  includeTypeMeta: boolean;
}

export interface RemotePolicyRef {
  url: string;
  sha256sum: string;
}

/** Is `host` (URL.hostname) the loopback interface? Plain http is allowed there only. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export interface AttestationRef {
  name: string;
  predicateType: string;
  policy?: PolicyBlock;
}

export interface Authority {
  name: string;
  key?: KeyRef;
  keyless?: KeylessRef;
  static?: StaticRef;
  source?: Source;
  ctlog?: { url?: string; trustRootRef?: string };
  rfc3161timestamp?: { trustRootRef?: string };
  attestations: AttestationRef[];
  /** Unset: both formats, bundles first, as cosign v3 verifies. */
  signatureFormat?: 'legacy' | 'bundle';
}

export type LabelSelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
export interface LabelSelector {
  matchLabels: Record<string, string>;
  matchExpressions: { key: string; operator: LabelSelectorOperator; values: string[] }[];
}

export interface MatchResource {
  group: string;
  version: string;
  resource: string;
  selector?: LabelSelector;
}

export interface ImagePolicySpec {
  images: ImageGlob[];
  authorities: Authority[];
  policy?: PolicyBlock;
  mode: 'enforce' | 'warn';
  match: MatchResource[];
}

interface ObjectMeta {
  name: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels: Record<string, string>;
}

export interface ClusterImagePolicy extends ObjectMeta {
  kind: 'ClusterImagePolicy';
  apiVersion: string;
  spec: ImagePolicySpec;
  /** Deprecation warnings found while validating (predicate type aliases...). */
  warnings: string[];
}

/** Waxseal's namespaced policy: the ClusterImagePolicy spec, applying in its namespace only. */
export interface ImagePolicy extends ObjectMeta {
  kind: 'ImagePolicy';
  apiVersion: string;
  namespace: string;
  spec: ImagePolicySpec;
  warnings: string[];
}

export type AnyImagePolicy = ClusterImagePolicy | ImagePolicy;

export interface TrustRootAuthority {
  subject: { organization: string; commonName: string };
  uri: string;
  /** The chain as PEM text (the base64 in the resource, decoded). */
  certChainPem: string;
  certificates: Certificate[];
}

export interface TrustRootLog {
  baseURL: string;
  hashAlgorithm: string;
  /** PEM "PUBLIC KEY". */
  publicKeyPem: string;
}

export interface SigstoreKeys {
  certificateAuthorities: TrustRootAuthority[];
  timestampAuthorities: TrustRootAuthority[];
  tLogs: TrustRootLog[];
  ctLogs: TrustRootLog[];
}

export interface TrustRoot extends ObjectMeta {
  kind: 'TrustRoot';
  apiVersion: string;
  spec: {
    sigstoreKeys?: SigstoreKeys;
    /** A TUF repository to follow (fetched by the app layer). */
    remote?: { root: Uint8Array; mirror: string; targets?: string; trustedRootTarget?: string };
    /** An air-gapped TUF repository: `mirrorFS` is a tar.gz of it (read by the app layer). */
    repository?: { root: Uint8Array; mirrorFS: Uint8Array; targets: string; trustedRootTarget?: string };
  };
}

/** Lookups for references resolved while loading (Secrets for secretRef, ConfigMaps for configMapRef). */
export interface ResourceContext {
  secret?(name: string, namespace: string | undefined): Record<string, string> | undefined;
  configMap?(name: string, namespace: string | undefined): Record<string, string> | undefined;
}

// ------------------------------------------------------------------------------------ errors

class Errors {
  readonly list: string[] = [];
  readonly warnings: string[] = [];
  add(path: string, msg: string): void {
    this.list.push(`${path}: ${msg}`);
  }
  warn(path: string, msg: string): void {
    this.warnings.push(`${path}: ${msg}`);
  }
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describeValue(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 80)}…` : s;
}

/** Reads an object field; refuses fields not in `known`. */
function obj(v: unknown, path: string, e: Errors, known: readonly string[]): Json | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) {
    e.add(path, `must be an object, got ${describeValue(v)}`);
    return undefined;
  }
  for (const k of Object.keys(v)) if (!known.includes(k)) e.add(`${path}.${k}`, 'unknown field');
  return v;
}

function str(v: unknown, path: string, e: Errors): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') {
    e.add(path, `must be a string, got ${describeValue(v)}`);
    return undefined;
  }
  return v === '' ? undefined : v;
}

function bool(v: unknown, path: string, e: Errors): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') {
    e.add(path, `must be a boolean, got ${describeValue(v)}`);
    return undefined;
  }
  return v;
}

function arr(v: unknown, path: string, e: Errors): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) {
    e.add(path, `must be a list, got ${describeValue(v)}`);
    return [];
  }
  return v;
}

function url(v: unknown, path: string, e: Errors): string | undefined {
  const s = str(v, path, e);
  if (s === undefined) return undefined;
  if (!URL.canParse(s)) {
    e.add(path, `invalid URL ${JSON.stringify(s)}`);
    return undefined;
  }
  return s;
}

function regexpOk(pattern: string, path: string, e: Errors): void {
  try {
    compileRegexp(pattern);
  } catch (err) {
    e.add(path, `regex is invalid: ${(err as Error).message}`);
  }
}

// ------------------------------------------------------------------------ ClusterImagePolicy

function publicKeyOk(pem: string): boolean {
  try {
    publicKeyFromSpki(decodePem(pem, ['PUBLIC KEY']).der);
    return true;
  } catch {
    return false;
  }
}

function keyRef(v: unknown, path: string, e: Errors, ctx: ResourceContext): KeyRef | undefined {
  const o = obj(v, path, e, ['data', 'kms', 'secretRef', 'hashAlgorithm']);
  if (!o) return undefined;
  const data = str(o.data, `${path}.data`, e);
  const kms = str(o.kms, `${path}.kms`, e);
  const sr = obj(o.secretRef, `${path}.secretRef`, e, ['name', 'namespace']);
  const hash = str(o.hashAlgorithm, `${path}.hashAlgorithm`, e);
  const out: KeyRef = { hashAlgorithm: 'sha256' };
  if (!data && !kms && !sr) e.add(path, 'expected exactly one, got neither: data, kms, secretRef');
  if ([data, kms, sr].filter((x) => x !== undefined).length > 1)
    e.add(path, 'expected exactly one, got more than one: data, kms, secretRef');
  if (hash !== undefined) {
    const h = hash.trim().toLowerCase();
    if ((HASHES as readonly string[]).includes(h)) out.hashAlgorithm = h as HashAlgorithm;
    else e.add(`${path}.hashAlgorithm`, `unknown digest algorithm ${JSON.stringify(hash)} (sha224, sha256, sha384 or sha512)`);
  }
  if (data !== undefined) {
    if (!publicKeyOk(data)) e.add(`${path}.data`, 'invalid value: not a PEM public key');
    out.data = data;
  }
  if (kms !== undefined) {
    if (!KMS_SCHEMES.some((s) => kms.startsWith(s))) {
      e.add(`${path}.kms`, `malformed KMS format, should be prefixed by any of the supported providers: ${KMS_SCHEMES.join(', ')}`);
    } else if (kms.startsWith('awskms://') && kms.split('/').length < 4) {
      e.add(`${path}.kms`, "malformed AWS KMS format 'awskms://$ENDPOINT/$KEYID'");
    } else if (!FETCHED_KMS_SCHEMES.some((s) => kms.startsWith(s))) {
      // Refused when loaded, never failed (or passed) at admission time.
      e.add(
        `${path}.kms`,
        `${kms.slice(0, kms.indexOf('://') + 3)} keys are not supported by Waxseal admission (${FETCHED_KMS_SCHEMES.join(' and ')} are); ` +
          'put the PEM public key in key.data',
      );
    }
    out.kms = kms;
  }
  if (sr) {
    const name = str(sr.name, `${path}.secretRef.name`, e);
    const namespace = str(sr.namespace, `${path}.secretRef.namespace`, e);
    if (!name) e.add(`${path}.secretRef.name`, 'missing field');
    else {
      out.secretRef = { name, ...(namespace ? { namespace } : {}) };
      // Inline the key when the Secret was loaded beside the policy (policy-controller inlines it on reconcile).
      const secret = ctx.secret?.(name, namespace);
      if (secret) {
        const values = Object.values(secret);
        if (values.length !== 1) e.add(`${path}.secretRef`, `secret ${name} must hold exactly one key, it holds ${values.length}`);
        else if (!publicKeyOk(values[0]!)) e.add(`${path}.secretRef`, `secret ${name} does not hold a PEM public key`);
        else out.data = values[0]!;
      }
    }
  }
  return out;
}

function identity(v: unknown, path: string, e: Errors): Identity | undefined {
  const o = obj(v, path, e, ['issuer', 'subject', 'issuerRegExp', 'subjectRegExp']);
  if (!o) {
    if (v === undefined || v === null) e.add(path, 'missing identity');
    return undefined;
  }
  const id: Identity = {};
  const issuer = str(o.issuer, `${path}.issuer`, e);
  const subject = str(o.subject, `${path}.subject`, e);
  const issuerRegExp = str(o.issuerRegExp, `${path}.issuerRegExp`, e);
  const subjectRegExp = str(o.subjectRegExp, `${path}.subjectRegExp`, e);
  if (issuer && issuerRegExp) e.add(path, 'expected exactly one, got both: issuer, issuerRegExp');
  if (subject && subjectRegExp) e.add(path, 'expected exactly one, got both: subject, subjectRegExp');
  if (issuerRegExp) regexpOk(issuerRegExp, `${path}.issuerRegExp`, e);
  if (subjectRegExp) regexpOk(subjectRegExp, `${path}.subjectRegExp`, e);
  if (!subject && !subjectRegExp) e.add(path, 'missing field(s): subject, subjectRegExp');
  if (!issuer && !issuerRegExp) e.add(path, 'missing field(s): issuer, issuerRegExp');
  if (issuer) id.issuer = issuer;
  if (subject) id.subject = subject;
  if (issuerRegExp) id.issuerRegExp = issuerRegExp;
  if (subjectRegExp) id.subjectRegExp = subjectRegExp;
  return id;
}

function keyless(v: unknown, path: string, e: Errors, ctx: ResourceContext): KeylessRef | undefined {
  const o = obj(v, path, e, ['url', 'ca-cert', 'identities', 'trustRootRef', 'insecureIgnoreSCT']);
  if (!o) return undefined;
  const u = url(o.url, `${path}.url`, e);
  const caCertGiven = o['ca-cert'] !== undefined && o['ca-cert'] !== null;
  const out: KeylessRef = { identities: [], insecureIgnoreSCT: bool(o.insecureIgnoreSCT, `${path}.insecureIgnoreSCT`, e) ?? false };
  if (u && caCertGiven) e.add(path, 'expected exactly one, got both: url, ca-cert');
  if (caCertGiven) {
    const ca = keyRef(o['ca-cert'], `${path}.ca-cert`, e, ctx);
    if (ca) out.caCert = ca;
  } else {
    // policy-controller's default: the public Fulcio.
    out.url = u ?? 'https://fulcio.sigstore.dev';
  }
  const ids = arr(o.identities, `${path}.identities`, e);
  if (ids.length === 0) e.add(`${path}.identities`, 'missing field');
  ids.forEach((id, i) => {
    const x = identity(id, `${path}.identities[${i}]`, e);
    if (x) out.identities.push(x);
  });
  const tr = str(o.trustRootRef, `${path}.trustRootRef`, e);
  if (tr) out.trustRootRef = tr;
  return out;
}

function policyBlock(v: unknown, path: string, e: Errors, inSpec: boolean, ctx: ResourceContext): PolicyBlock | undefined {
  const known = ['type', 'data', 'remote', 'configMapRef', 'fetchConfigFile', 'includeSpec', 'includeObjectMeta', 'includeTypeMeta'];
  const o = obj(v, path, e, known);
  if (!o) return undefined;
  const type = str(o.type, `${path}.type`, e);
  let data = str(o.data, `${path}.data`, e);
  const remote = obj(o.remote, `${path}.remote`, e, ['url', 'sha256sum']);
  const cmr = obj(o.configMapRef, `${path}.configMapRef`, e, ['name', 'namespace', 'key']);
  const flags = {
    fetchConfigFile: bool(o.fetchConfigFile, `${path}.fetchConfigFile`, e),
    includeSpec: bool(o.includeSpec, `${path}.includeSpec`, e),
    includeObjectMeta: bool(o.includeObjectMeta, `${path}.includeObjectMeta`, e),
    includeTypeMeta: bool(o.includeTypeMeta, `${path}.includeTypeMeta`, e),
  };
  if (!inSpec) for (const [k, val] of Object.entries(flags)) if (val !== undefined) e.add(`${path}.${k}`, 'must not set the field(s)');
  const sources = [data, remote, cmr].filter((x) => x !== undefined).length;
  if (sources === 0) e.add(path, 'missing field(s): data, configMapRef, remote');
  if (sources > 1) e.add(path, 'expected exactly one, got more than one: data, configMapRef, remote');
  let remoteRef: RemotePolicyRef | undefined;
  if (remote) {
    const ru = str(remote.url, `${path}.remote.url`, e);
    const u = ru && URL.canParse(ru) ? new URL(ru) : undefined;
    // policy-controller: https only. Beyond it: plain http to the loopback interface (a sidecar, tests).
    const schemeOk = u && (u.protocol === 'https:' || (u.protocol === 'http:' && isLoopbackHost(u.hostname)));
    if (!u || !schemeOk || !u.host) e.add(`${path}.remote.url`, 'url valid is invalid. host and https scheme are expected');
    const sum = str(remote.sha256sum, `${path}.remote.sha256sum`, e);
    if (!sum) e.add(`${path}.remote.sha256sum`, 'missing field');
    else if (!/^[0-9a-fA-F]{64}$/.test(sum))
      e.add(`${path}.remote.sha256sum`, `invalid value ${JSON.stringify(sum)}: 64 hex digits expected`);
    if (u && schemeOk && u.host && sum && /^[0-9a-fA-F]{64}$/.test(sum)) remoteRef = { url: ru!, sha256sum: sum.toLowerCase() };
  }
  let configMapRef: PolicyBlock['configMapRef'];
  if (cmr) {
    const name = str(cmr.name, `${path}.configMapRef.name`, e);
    const key = str(cmr.key, `${path}.configMapRef.key`, e);
    const namespace = str(cmr.namespace, `${path}.configMapRef.namespace`, e);
    if (!name) e.add(`${path}.configMapRef.name`, 'missing field');
    if (!key) e.add(`${path}.configMapRef.key`, 'missing field');
    if (name && key) {
      configMapRef = { name, key, ...(namespace ? { namespace } : {}) };
      const cm = ctx.configMap?.(name, namespace);
      if (!cm)
        e.add(`${path}.configMapRef`, `ConfigMap ${namespace ? `${namespace}/` : ''}${name} was not found among the loaded resources`);
      else if (typeof cm[key] !== 'string') e.add(`${path}.configMapRef`, `ConfigMap ${name} has no key ${JSON.stringify(key)}`);
      else data = cm[key];
    }
  }
  if (type === undefined) {
    e.add(`${path}.type`, 'missing field (cel; cue and rego cannot be evaluated here)');
    return undefined;
  }
  if (type === 'cue' || type === 'rego') {
    e.add(
      `${path}.type`,
      `${type} policies cannot be evaluated by Waxseal (no ${type === 'cue' ? 'CUE' : 'Rego'} evaluator runs in Node here); ` +
        'write the policy in CEL (type: cel) instead',
    );
    return undefined;
  }
  if (type !== 'cel') {
    e.add(`${path}.type`, `invalid value ${JSON.stringify(type)}: only cel is supported (policy-controller's cue and rego are refused)`);
    return undefined;
  }
  const flagsOut = {
    fetchConfigFile: flags.fetchConfigFile ?? false,
    includeSpec: flags.includeSpec ?? false,
    includeObjectMeta: flags.includeObjectMeta ?? false,
    includeTypeMeta: flags.includeTypeMeta ?? false,
  };
  if (remoteRef) return { type: 'cel', data: '', remote: remoteRef, ...flagsOut };
  if (data === undefined) return undefined;
  let program: CelProgram;
  try {
    program = compileCel(data, path);
  } catch (err) {
    e.list.push((err as Error).message);
    return undefined;
  }
  return {
    type: 'cel',
    data,
    program,
    ...(configMapRef ? { configMapRef } : {}),
    ...flagsOut,
  };
}

function isRequestUri(s: string): boolean {
  // Go's url.ParseRequestURI: an absolute URI or an absolute path.
  return s.startsWith('/') || /^[A-Za-z][A-Za-z0-9+.-]*:/.test(s);
}

function attestation(v: unknown, path: string, e: Errors, ctx: ResourceContext): AttestationRef | undefined {
  const o = obj(v, path, e, ['name', 'predicateType', 'policy']);
  if (!o) return undefined;
  const name = str(o.name, `${path}.name`, e);
  const predicateType = str(o.predicateType, `${path}.predicateType`, e);
  if (!name) e.add(`${path}.name`, 'missing field');
  if (!predicateType) e.add(`${path}.predicateType`, 'missing field');
  else if ((PREDICATE_ALIASES as readonly string[]).includes(predicateType) || !isRequestUri(predicateType)) {
    e.warn(`${path}.predicateType`, `deprecated value ${JSON.stringify(predicateType)}, please use RFC 3986 conformant values`);
  }
  const policy = o.policy === undefined || o.policy === null ? undefined : policyBlock(o.policy, `${path}.policy`, e, false, ctx);
  if (!name || !predicateType) return undefined;
  return { name, predicateType, ...(policy ? { policy } : {}) };
}

function source(v: unknown, path: string, e: Errors): Source | undefined {
  const o = obj(v, path, e, ['oci', 'signaturePullSecrets', 'tagPrefix']);
  if (!o) return undefined;
  const out: Source = { signaturePullSecrets: [] };
  const oci = str(o.oci, `${path}.oci`, e);
  if (oci) {
    try {
      parseRepository(oci);
      out.oci = oci;
    } catch (err) {
      e.add(`${path}.oci`, `invalid value ${JSON.stringify(oci)}: ${(err as Error).message}`);
    }
  }
  arr(o.signaturePullSecrets, `${path}.signaturePullSecrets`, e).forEach((s, i) => {
    const p = `${path}.signaturePullSecrets[${i}]`;
    const so = obj(s, p, e, ['name']);
    const name = so ? str(so.name, `${p}.name`, e) : undefined;
    if (!name) e.add(`${p}.name`, 'missing field');
    else out.signaturePullSecrets.push(name);
  });
  if (o.tagPrefix !== undefined && o.tagPrefix !== null) {
    if (typeof o.tagPrefix !== 'string') e.add(`${path}.tagPrefix`, 'must be a string');
    else if (o.tagPrefix !== '' && !/^[\w][\w.-]{0,63}$/.test(o.tagPrefix)) e.add(`${path}.tagPrefix`, 'not a valid tag prefix');
    else out.tagPrefix = o.tagPrefix;
  }
  return out;
}

function authority(v: unknown, i: number, path: string, e: Errors, ctx: ResourceContext): Authority | undefined {
  const known = ['name', 'key', 'keyless', 'static', 'source', 'ctlog', 'attestations', 'rfc3161timestamp', 'signatureFormat'];
  const o = obj(v, path, e, known);
  if (!o) {
    if (v === undefined || v === null) e.add(path, 'missing authority');
    return undefined;
  }
  const out: Authority = { name: str(o.name, `${path}.name`, e) ?? `authority-${i}`, attestations: [] };
  const has = (k: string) => o[k] !== undefined && o[k] !== null;
  const kinds = ['key', 'keyless', 'static'].filter(has);
  if (kinds.length === 0) {
    e.add(path, 'expected exactly one, got neither: key, keyless, static');
    return undefined;
  }
  if (kinds.length > 1) {
    e.add(path, 'expected exactly one, got more than one: key, keyless, static');
    return undefined;
  }
  if (has('key')) {
    const k = keyRef(o.key, `${path}.key`, e, ctx);
    if (k) out.key = k;
  }
  if (has('keyless')) {
    const k = keyless(o.keyless, `${path}.keyless`, e, ctx);
    if (k) out.keyless = k;
  }
  if (has('static')) {
    const so = obj(o.static, `${path}.static`, e, ['action', 'message']);
    const action = so ? str(so.action, `${path}.static.action`, e) : undefined;
    const message = so ? str(so.message, `${path}.static.message`, e) : undefined;
    if (!action) e.add(`${path}.static.action`, 'missing field');
    else if (action !== 'pass' && action !== 'fail')
      e.add(`${path}.static.action`, `invalid value ${JSON.stringify(action)}: unsupported action`);
    else out.static = { action, ...(message ? { message } : {}) };
    for (const k of ['attestations', 'source', 'ctlog', 'rfc3161timestamp']) {
      const given = k === 'attestations' || k === 'source' ? arr(o[k], `${path}.${k}`, e).length > 0 : has(k);
      if (given) e.add(path, `expected exactly one, got both: static, ${k}`);
    }
  }
  const sources = arr(o.source, `${path}.source`, e);
  if (sources.length > 1) e.add(`${path}.source`, 'invalid value: only single source is supported');
  else if (sources.length === 1) {
    const s = source(sources[0], `${path}.source[0]`, e);
    if (s) out.source = s;
  }
  if (has('ctlog')) {
    const c = obj(o.ctlog, `${path}.ctlog`, e, ['url', 'trustRootRef']);
    if (c) {
      const u = url(c.url, `${path}.ctlog.url`, e);
      const tr = str(c.trustRootRef, `${path}.ctlog.trustRootRef`, e);
      out.ctlog = { ...(u ? { url: u } : {}), ...(tr ? { trustRootRef: tr } : {}) };
    }
  }
  if (has('rfc3161timestamp')) {
    const t = obj(o.rfc3161timestamp, `${path}.rfc3161timestamp`, e, ['trustRootRef']);
    if (t) {
      const tr = str(t.trustRootRef, `${path}.rfc3161timestamp.trustRootRef`, e);
      out.rfc3161timestamp = tr ? { trustRootRef: tr } : {};
    }
  }
  arr(o.attestations, `${path}.attestations`, e).forEach((a, j) => {
    const x = attestation(a, `${path}.attestations[${j}]`, e, ctx);
    if (x) out.attestations.push(x);
  });
  const names = out.attestations.map((a) => a.name);
  for (const [j, n] of names.entries())
    if (names.indexOf(n) !== j) e.add(`${path}.attestations[${j}].name`, `duplicate name ${JSON.stringify(n)}`);
  const fmt = str(o.signatureFormat, `${path}.signatureFormat`, e);
  if (fmt !== undefined) {
    if (fmt !== 'legacy' && fmt !== 'bundle') e.add(`${path}.signatureFormat`, `invalid value ${JSON.stringify(fmt)}: legacy or bundle`);
    else out.signatureFormat = fmt;
  }
  if (fmt === 'bundle' && out.keyless) {
    // policy-controller refuses these when verifying; we refuse them when loading.
    const ref = out.keyless.trustRootRef;
    if (out.rfc3161timestamp && out.rfc3161timestamp.trustRootRef !== ref) {
      e.add(`${path}.rfc3161timestamp.trustRootRef`, 'with signatureFormat bundle it must equal keyless.trustRootRef');
    }
    if (out.ctlog && out.ctlog.trustRootRef !== ref)
      e.add(`${path}.ctlog.trustRootRef`, 'with signatureFormat bundle it must equal keyless.trustRootRef');
  }
  return out;
}

const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;

function labelSelector(v: unknown, path: string, e: Errors): LabelSelector | undefined {
  const o = obj(v, path, e, ['matchLabels', 'matchExpressions']);
  if (!o) return undefined;
  const out: LabelSelector = { matchLabels: {}, matchExpressions: [] };
  const ml = obj(o.matchLabels, `${path}.matchLabels`, e, Object.keys(isObject(o.matchLabels) ? o.matchLabels : {}));
  for (const [k, val] of Object.entries(ml ?? {})) {
    if (!LABEL_KEY.test(k)) e.add(`${path}.matchLabels`, `invalid label key ${JSON.stringify(k)}`);
    if (typeof val !== 'string' || !LABEL_VALUE.test(val)) e.add(`${path}.matchLabels.${k}`, `invalid label value ${describeValue(val)}`);
    else out.matchLabels[k] = val;
  }
  arr(o.matchExpressions, `${path}.matchExpressions`, e).forEach((x, i) => {
    const p = `${path}.matchExpressions[${i}]`;
    const xo = obj(x, p, e, ['key', 'operator', 'values']);
    if (!xo) return;
    const key = str(xo.key, `${p}.key`, e);
    const op = str(xo.operator, `${p}.operator`, e);
    const values = arr(xo.values, `${p}.values`, e);
    if (!key || !LABEL_KEY.test(key)) e.add(`${p}.key`, `invalid label key ${describeValue(xo.key)}`);
    if (op !== 'In' && op !== 'NotIn' && op !== 'Exists' && op !== 'DoesNotExist') {
      e.add(`${p}.operator`, `${describeValue(xo.operator)} is not a valid label selector operator (In, NotIn, Exists, DoesNotExist)`);
      return;
    }
    if ((op === 'In' || op === 'NotIn') && values.length === 0)
      e.add(`${p}.values`, `for 'in', 'notin' operators, values set can't be empty`);
    if ((op === 'Exists' || op === 'DoesNotExist') && values.length > 0)
      e.add(`${p}.values`, `values set must be empty for exists and does not exist`);
    const vs: string[] = [];
    for (const val of values) {
      if (typeof val !== 'string' || !LABEL_VALUE.test(val)) e.add(`${p}.values`, `invalid label value ${describeValue(val)}`);
      else vs.push(val);
    }
    if (key) out.matchExpressions.push({ key, operator: op, values: vs });
  });
  return out;
}

function matchResource(v: unknown, path: string, e: Errors): MatchResource | undefined {
  const o = obj(v, path, e, ['group', 'version', 'resource', 'selector']);
  if (!o) return undefined;
  const group = str(o.group, `${path}.group`, e) ?? '';
  const version = str(o.version, `${path}.version`, e) ?? '';
  const resource = str(o.resource, `${path}.resource`, e) ?? '';
  if (resource && !(MATCH_RESOURCES as readonly string[]).includes(resource)) {
    e.add(`${path}.resource`, `invalid value ${JSON.stringify(resource)}: unsupported resource name (${MATCH_RESOURCES.join(', ')})`);
  }
  const out: MatchResource = { group, version, resource };
  if (o.selector !== undefined && o.selector !== null) {
    if (!resource && !version && !group) e.add(`${path}.selector`, 'selector requires a resource type to match the labels');
    const s = labelSelector(o.selector, `${path}.selector`, e);
    if (s) out.selector = s;
  }
  return out;
}

function parseSpec(v: unknown, e: Errors, ctx: ResourceContext): ImagePolicySpec {
  const spec: ImagePolicySpec = { images: [], authorities: [], mode: 'enforce', match: [] };
  const o = obj(v, 'spec', e, ['images', 'authorities', 'policy', 'mode', 'match']);
  if (!o) {
    e.add('spec', 'missing field');
    return spec;
  }
  const images = arr(o.images, 'spec.images', e);
  if (images.length === 0) e.add('spec.images', 'missing field');
  images.forEach((im, i) => {
    const p = `spec.images[${i}]`;
    const io = obj(im, p, e, ['glob']);
    const glob = io ? str(io.glob, `${p}.glob`, e) : undefined;
    if (!glob) return e.add(`${p}.glob`, 'missing field');
    const why = globError(glob);
    if (why) return e.add(`${p}.glob`, `glob is invalid: ${why}`);
    spec.images.push(compileGlob(glob));
  });
  const auths = arr(o.authorities, 'spec.authorities', e);
  if (auths.length === 0) e.add('spec.authorities', 'missing field');
  auths.forEach((a, i) => {
    const x = authority(a, i, `spec.authorities[${i}]`, e, ctx);
    if (x) spec.authorities.push(x);
  });
  const names = spec.authorities.map((a) => a.name);
  for (const [i, n] of names.entries())
    if (names.indexOf(n) !== i) e.add(`spec.authorities[${i}].name`, `duplicate authority name ${JSON.stringify(n)}`);
  const mode = str(o.mode, 'spec.mode', e);
  if (mode !== undefined) {
    if (mode !== 'enforce' && mode !== 'warn')
      e.add('spec.mode', `invalid value ${JSON.stringify(mode)}: unsupported mode (enforce or warn)`);
    else spec.mode = mode;
  }
  arr(o.match, 'spec.match', e).forEach((m, i) => {
    const x = matchResource(m, `spec.match[${i}]`, e);
    if (x) spec.match.push(x);
  });
  if (o.policy !== undefined && o.policy !== null) {
    const p = policyBlock(o.policy, 'spec.policy', e, true, ctx);
    if (p) spec.policy = p;
  }
  return spec;
}

function meta(v: unknown, e: Errors, namespaced: boolean): ObjectMeta & { namespace?: string } {
  const m = isObject(v) ? v : {};
  if (!isObject(v)) e.add('metadata', 'missing field');
  const name = typeof m.name === 'string' ? m.name : '';
  if (!name) e.add('metadata.name', 'missing field');
  else if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name) || name.length > 253)
    e.add('metadata.name', `invalid name ${JSON.stringify(name)}`);
  const out: ObjectMeta & { namespace?: string } = { name, labels: {} };
  if (typeof m.uid === 'string') out.uid = m.uid;
  if (typeof m.resourceVersion === 'string') out.resourceVersion = m.resourceVersion;
  if (typeof m.generation === 'number') out.generation = m.generation;
  if (isObject(m.labels)) for (const [k, val] of Object.entries(m.labels)) if (typeof val === 'string') out.labels[k] = val;
  if (namespaced) {
    if (typeof m.namespace !== 'string' || m.namespace === '') e.add('metadata.namespace', 'missing field: an ImagePolicy is namespaced');
    else out.namespace = m.namespace;
  }
  return out;
}

function fail(what: string, e: Errors): never {
  throw new WaxsealError('ERR_INVALID_INPUT', `${what}: ${e.list.join('; ')}`, { check: 'policy.resource', detail: { errors: e.list } });
}

function nameOf(v: unknown): string {
  return isObject(v) && isObject(v.metadata) && typeof v.metadata.name === 'string' ? v.metadata.name : '(unnamed)';
}

/**
 * Parses and validates a ClusterImagePolicy (policy.sigstore.dev/v1alpha1 or v1beta1). Throws
 * ERR_INVALID_INPUT (check 'policy.resource') naming `where`, the policy and every bad field.
 */
export function parseClusterImagePolicy(v: unknown, where = 'ClusterImagePolicy', ctx: ResourceContext = {}): ClusterImagePolicy {
  const e = new Errors();
  const o = isObject(v) ? v : {};
  const apiVersion = String(o.apiVersion ?? '');
  if (!CIP_VERSIONS.some((ver) => apiVersion === `${POLICY_GROUP}/${ver}`))
    e.add('apiVersion', `must be ${POLICY_GROUP}/v1alpha1 or v1beta1, got ${describeValue(o.apiVersion)}`);
  if (o.kind !== 'ClusterImagePolicy') e.add('kind', `must be ClusterImagePolicy, got ${describeValue(o.kind)}`);
  const m = meta(o.metadata, e, false);
  const spec = parseSpec(o.spec, e, ctx);
  if (e.list.length) fail(`${where}: ClusterImagePolicy ${nameOf(v)}`, e);
  return { kind: 'ClusterImagePolicy', apiVersion, ...m, spec, warnings: e.warnings };
}

/** Parses and validates Waxseal's namespaced ImagePolicy (policy.waxseal.dev/v1alpha1). */
export function parseImagePolicy(v: unknown, where = 'ImagePolicy', ctx: ResourceContext = {}): ImagePolicy {
  const e = new Errors();
  const o = isObject(v) ? v : {};
  const apiVersion = String(o.apiVersion ?? '');
  if (apiVersion !== `${WAXSEAL_POLICY_GROUP}/v1alpha1`)
    e.add('apiVersion', `must be ${WAXSEAL_POLICY_GROUP}/v1alpha1, got ${describeValue(o.apiVersion)}`);
  if (o.kind !== 'ImagePolicy') e.add('kind', `must be ImagePolicy, got ${describeValue(o.kind)}`);
  const m = meta(o.metadata, e, true);
  const spec = parseSpec(o.spec, e, ctx);
  if (e.list.length) fail(`${where}: ImagePolicy ${nameOf(v)}`, e);
  return { kind: 'ImagePolicy', apiVersion, ...m, namespace: m.namespace!, spec, warnings: e.warnings };
}

// --------------------------------------------------------------------------------- TrustRoot

/** Go's []byte in JSON: base64 (standard alphabet, padding optional here). */
function bytesField(v: unknown, path: string, e: Errors): Uint8Array | undefined {
  const s = str(v, path, e);
  if (s === undefined) return undefined;
  try {
    return fromBase64(s.replace(/\s+/g, ''), path);
  } catch {
    e.add(path, 'must be base64 (a byte field)');
    return undefined;
  }
}

function pemText(bytes: Uint8Array, path: string, e: Errors): string | undefined {
  try {
    return fromUtf8(bytes, path);
  } catch {
    e.add(path, 'is not text (expected base64 of PEM)');
    return undefined;
  }
}

function trustAuthority(v: unknown, path: string, e: Errors, tsa: boolean): TrustRootAuthority | undefined {
  const o = obj(v, path, e, ['subject', 'uri', 'certChain']);
  if (!o) return undefined;
  const so = obj(o.subject, `${path}.subject`, e, ['organization', 'commonName']) ?? {};
  const organization = str(so.organization, `${path}.subject.organization`, e) ?? '';
  const commonName = str(so.commonName, `${path}.subject.commonName`, e) ?? '';
  if (!organization) e.add(`${path}.subject.organization`, 'missing field');
  if (!commonName) e.add(`${path}.subject.commonName`, 'missing field');
  const uri = str(o.uri, `${path}.uri`, e) ?? '';
  if (!uri) e.add(`${path}.uri`, 'missing field');
  const chainBytes = bytesField(o.certChain, `${path}.certChain`, e);
  if (!chainBytes || chainBytes.length === 0) {
    if (o.certChain === undefined || o.certChain === '') e.add(`${path}.certChain`, 'missing field');
    return undefined;
  }
  const certChainPem = pemText(chainBytes, `${path}.certChain`, e);
  if (certChainPem === undefined) return undefined;
  let certificates: Certificate[];
  try {
    const blocks = decodePemAll(certChainPem);
    if (blocks.length === 0 || blocks.some((b) => b.label !== 'CERTIFICATE')) throw new Error('no CERTIFICATE blocks');
    certificates = blocks.map((b) => parseCertificate(b.der));
  } catch (err) {
    e.add(`${path}.certChain`, `failed to decode certificate chain PEM: ${(err as Error).message}`);
    return undefined;
  }
  if (tsa && certificates.filter((c) => !isCaCert(c)).length > 1)
    e.add(`${path}.certChain`, 'certificate chain must contain at most one TSA certificate');
  return { subject: { organization, commonName }, uri, certChainPem, certificates };
}

function isCaCert(c: Certificate): boolean {
  try {
    return basicConstraints(c)?.ca === true;
  } catch {
    return false;
  }
}

function trustLog(v: unknown, path: string, e: Errors): TrustRootLog | undefined {
  const o = obj(v, path, e, ['baseURL', 'hashAlgorithm', 'publicKey']);
  if (!o) return undefined;
  const baseURL = str(o.baseURL, `${path}.baseURL`, e);
  const hashAlgorithm = str(o.hashAlgorithm, `${path}.hashAlgorithm`, e);
  if (!baseURL) e.add(`${path}.baseURL`, 'missing field');
  if (!hashAlgorithm) e.add(`${path}.hashAlgorithm`, 'missing field');
  const key = bytesField(o.publicKey, `${path}.publicKey`, e);
  if (!key || key.length === 0) {
    e.add(`${path}.publicKey`, 'missing field');
    return undefined;
  }
  const publicKeyPem = pemText(key, `${path}.publicKey`, e);
  if (publicKeyPem === undefined) return undefined;
  if (!publicKeyOk(publicKeyPem)) {
    e.add(`${path}.publicKey`, 'failed to decode public key (expected base64 of a PEM PUBLIC KEY)');
    return undefined;
  }
  if (!baseURL || !hashAlgorithm) return undefined;
  return { baseURL, hashAlgorithm, publicKeyPem };
}

function tufRoot(v: unknown, path: string, e: Errors): Uint8Array | undefined {
  const root = bytesField(v, path, e);
  if (!root) {
    e.add(path, 'missing field');
    return undefined;
  }
  try {
    const j = JSON.parse(fromUtf8(root, path)) as unknown;
    if (!isObject(j) || j.signatures === undefined || j.signatures === null) {
      e.add(path, 'invalid value: missing signatures in root.json');
      return undefined;
    }
  } catch (err) {
    e.add(path, `invalid value: failed to unmarshal: ${(err as Error).message}`);
    return undefined;
  }
  return root;
}

/** A `targets` folder name: relative, no `..`; null when it would leave the repository. */
function cleanTargetsDir(t: string): string | null {
  const parts = t.split('/').filter((p) => p !== '' && p !== '.');
  return parts.length === 0 || parts.some((p) => p === '..' || p.includes('\\')) ? null : parts.join('/');
}

/** Parses and validates a TrustRoot (policy.sigstore.dev/v1alpha1). Byte fields are base64, as in the CRD. */
export function parseTrustRoot(v: unknown, where = 'TrustRoot'): TrustRoot {
  const e = new Errors();
  const o = isObject(v) ? v : {};
  const apiVersion = String(o.apiVersion ?? '');
  if (apiVersion !== `${POLICY_GROUP}/v1alpha1`)
    e.add('apiVersion', `must be ${POLICY_GROUP}/v1alpha1, got ${describeValue(o.apiVersion)}`);
  if (o.kind !== 'TrustRoot') e.add('kind', `must be TrustRoot, got ${describeValue(o.kind)}`);
  const m = meta(o.metadata, e, false);
  const spec: TrustRoot['spec'] = {};
  const s = obj(o.spec, 'spec', e, ['remote', 'repository', 'sigstoreKeys']);
  if (!s) e.add('spec', 'missing field');
  else {
    const given = ['repository', 'remote', 'sigstoreKeys'].filter((k) => s[k] !== undefined && s[k] !== null);
    if (given.length === 0) e.add('spec', 'expected exactly one, got neither: repository, remote, sigstoreKeys');
    else if (given.length > 1) e.add('spec', 'expected exactly one, got more than one: repository, remote, sigstoreKeys');
    else if (given[0] === 'remote') {
      const r = obj(s.remote, 'spec.remote', e, ['root', 'mirror', 'targets', 'trustedRootTarget']);
      if (r) {
        const mirror = url(r.mirror, 'spec.remote.mirror', e);
        if (!mirror) e.add('spec.remote.mirror', 'missing field');
        const root = tufRoot(r.root, 'spec.remote.root', e);
        const targets = str(r.targets, 'spec.remote.targets', e);
        const trt = str(r.trustedRootTarget, 'spec.remote.trustedRootTarget', e);
        if (mirror && root) spec.remote = { root, mirror, ...(targets ? { targets } : {}), ...(trt ? { trustedRootTarget: trt } : {}) };
      }
    } else if (given[0] === 'repository') {
      const r = obj(s.repository, 'spec.repository', e, ['root', 'mirrorFS', 'targets', 'trustedRootTarget']);
      if (r) {
        // policy-controller's SetDefaults: targets defaults to "targets".
        const targets = str(r.targets, 'spec.repository.targets', e) ?? 'targets';
        if (cleanTargetsDir(targets) === null)
          e.add('spec.repository.targets', `invalid value ${JSON.stringify(targets)}: a folder inside the repository`);
        const root = tufRoot(r.root, 'spec.repository.root', e);
        const mirrorFS = bytesField(r.mirrorFS, 'spec.repository.mirrorFS', e);
        if (!mirrorFS || mirrorFS.length === 0) e.add('spec.repository.mirrorFS', 'missing field');
        const trt = str(r.trustedRootTarget, 'spec.repository.trustedRootTarget', e);
        if (targets && root && mirrorFS?.length) spec.repository = { root, mirrorFS, targets, ...(trt ? { trustedRootTarget: trt } : {}) };
      }
    } else {
      const k = obj(s.sigstoreKeys, 'spec.sigstoreKeys', e, ['certificateAuthorities', 'timestampAuthorities', 'tLogs', 'ctLogs']);
      if (k) {
        const keys: SigstoreKeys = { certificateAuthorities: [], timestampAuthorities: [], tLogs: [], ctLogs: [] };
        const cas = arr(k.certificateAuthorities, 'spec.sigstoreKeys.certificateAuthorities', e);
        const tsas = arr(k.timestampAuthorities, 'spec.sigstoreKeys.timestampAuthorities', e);
        if (cas.length === 0 && tsas.length === 0)
          e.add('spec.sigstoreKeys', 'expected exactly one, got neither: certificateAuthorities, timestampAuthorities');
        cas.forEach((x, i) => {
          const a = trustAuthority(x, `spec.sigstoreKeys.certificateAuthorities[${i}]`, e, false);
          if (a) keys.certificateAuthorities.push(a);
        });
        tsas.forEach((x, i) => {
          const a = trustAuthority(x, `spec.sigstoreKeys.timestampAuthorities[${i}]`, e, true);
          if (a) keys.timestampAuthorities.push(a);
        });
        for (const [field, list] of [
          ['tLogs', keys.tLogs],
          ['ctLogs', keys.ctLogs],
        ] as const) {
          arr(k[field], `spec.sigstoreKeys.${field}`, e).forEach((x, i) => {
            const l = trustLog(x, `spec.sigstoreKeys.${field}[${i}]`, e);
            if (l) list.push(l);
          });
        }
        spec.sigstoreKeys = keys;
      }
    }
  }
  if (e.list.length) fail(`${where}: TrustRoot ${nameOf(v)}`, e);
  return { kind: 'TrustRoot', apiVersion, ...m, spec };
}
