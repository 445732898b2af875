// waxseal policy: policy-controller's policy-tester (`policy test`: one image against a
// ClusterImagePolicy file, with the webhook's engine and decision code) and the TrustRoot +
// ClusterImagePolicy an instance's users deploy (`policy trustroot`, the equivalent of
// `chainctl sigstore ca describe` and its example policy).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WaxsealError } from '@waxseal/core';
import { parseTrustedRootJson, type TrustedRoot } from '@waxseal/bundle';
import { parseReference } from '@waxseal/oci';
import {
  formatYamlDocuments,
  keylessClusterImagePolicy,
  loadPolicyStore,
  parseYamlObject,
  trustRootFromTrustedRoot,
  type PolicyDocument,
} from '@waxseal/policy';
import { PolicyEngine, tufTrustRootLoader } from '@waxseal/admission';
import { explicitTrustedRootPath } from '../trusted-root-source.ts';
import { EXIT, helpText, parse, UsageError, type Ui } from '../ui.ts';

export const policySpec = {
  usage: 'waxseal policy test|trustroot [options]',
  summary: 'Test an image against a ClusterImagePolicy; print the TrustRoot and policy for an instance.',
  options: {
    policy: { type: 'string' },
    image: { type: 'string' },
    trustroot: { type: 'string', multiple: true },
    resource: { type: 'string' },
    'allow-http-registry': { type: 'boolean' },
    'registry-cacert': { type: 'string' },
    timeout: { type: 'string' },
    'trusted-root': { type: 'string' },
    instance: { type: 'string' },
    data: { type: 'string' },
    name: { type: 'string' },
    organization: { type: 'string' },
    'with-logs': { type: 'boolean' },
    'cluster-image-policy': { type: 'boolean' },
    'policy-name': { type: 'string' },
    glob: { type: 'string' },
    identity: { type: 'string' },
    'identity-regexp': { type: 'string' },
    issuer: { type: 'string' },
    'issuer-regexp': { type: 'string' },
  },
  positionals: [1, 1] as [number, number],
  help: `  waxseal policy test --policy <cip.yaml|url> --image <ref> [--trustroot <file>]... [--resource <k8s.yaml>]
      Checks one image against the policies of a file (ClusterImagePolicy, TrustRoot, ImagePolicy,
      Secret and ConfigMap documents), exactly as the admission webhook decides, with
      no-match-policy deny. Prints policy-tester's JSON ({"errors": [...], "warnings": [...]},
      with "result", "image", "digest" and "policies" beside them) with --json, else lines.
      Exit 0 admitted, 1 denied, 3 invalid policy.
        --policy <file|url>       the policy file (or an http(s) URL to fetch it from)
        --image <ref>             the image (a tag is resolved to its digest)
        --trustroot <file>        TrustRoot YAML referenced by trustRootRef (repeatable); sigstoreKeys,
                                  remote (read through TUF) or repository (an air-gapped TUF tarball)
        --trusted-root <file>     trusted_root.json for authorities without trustRootRef (where
                                  policy-controller uses the public Sigstore root; without it such
                                  authorities fail: Waxseal does not fetch the public-good root)
        --resource <file>         a Kubernetes object (Pod, Deployment...): its kind and labels for
                                  \`match\`, its spec/metadata for includeSpec/includeObjectMeta
        --allow-http-registry     plain HTTP to the image's registry (loopback registries always)
        --registry-cacert <file>  extra CA certificates (PEM) for the registry's TLS
        --timeout <seconds>       give up after this long (default 30)

  waxseal policy trustroot [--trusted-root <file> | --instance <url> | --data <dir>] [--name <n>]
                           [--cluster-image-policy --identity <email|uri> --issuer <url> [--glob <glob>]]
      Prints a TrustRoot (policy.sigstore.dev/v1alpha1, sigstoreKeys) with the instance's CA and
      TSA chains as base64 PEM, and with --cluster-image-policy the ClusterImagePolicy that admits
      images the identity signed keylessly there (keyless with insecureIgnoreSCT plus
      rfc3161timestamp, both on that TrustRoot). The trusted root comes from --trusted-root, the
      instance's published trusted_root.json (--instance), WAXSEAL_TRUSTED_ROOT /
      SIGSTORE_TRUSTED_ROOT, or the local dev instance (--data, default .waxseal/dev).
        --name <n>                the TrustRoot's name (default waxseal-keys)
        --organization <o>        subject organization for authorities whose certificate has none
        --with-logs               also list the transparency and CT log keys (tLogs, ctLogs)
        --policy-name <n>         the ClusterImagePolicy's name (default waxseal-signed-keyless)
        --glob <glob>             images it covers (default **)
        --identity / --identity-regexp, --issuer / --issuer-regexp   who must have signed`,
} as const;

const MAX_POLICY_BYTES = 4 << 20;

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new WaxsealError('ERR_IO', `cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
}

async function fetchText(url: string, what: string): Promise<string> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(30_000), redirect: 'follow' });
  } catch (e) {
    throw new WaxsealError('ERR_UNAVAILABLE', `cannot fetch ${what} ${url}: ${(e as Error).message}`);
  }
  if (!res.ok) throw new WaxsealError('ERR_UNAVAILABLE', `cannot fetch ${what} ${url}: HTTP ${res.status}`);
  const text = await res.text();
  if (text.length > MAX_POLICY_BYTES)
    throw new WaxsealError('ERR_BODY_TOO_LARGE', `${what} ${url} is larger than ${MAX_POLICY_BYTES} bytes`);
  return text;
}

type Values = ReturnType<typeof parse<typeof policySpec.options>>['values'];

async function test(v: Values, ui: Ui): Promise<number> {
  if (!v.policy) throw new UsageError('--policy <file|url> is required');
  if (!v.image) throw new UsageError('--image <ref> is required');
  const docs: PolicyDocument[] = [];
  const remote = /^https?:\/\//.test(v.policy);
  docs.push({ name: v.policy, text: remote ? await fetchText(v.policy, 'policy') : readText(v.policy, 'policy') });
  for (const t of v.trustroot ?? []) docs.push({ name: t, text: readText(t, 'TrustRoot') });
  const store = loadPolicyStore(docs);
  const warnings = [...store.warnings];
  for (const p of store.clusterPolicies) warnings.push(...p.warnings.map((w) => `ClusterImagePolicy ${p.name}: ${w}`));

  let kind = 'Pod';
  let apiVersion: string | undefined;
  let labels: Record<string, string> = {};
  let resource: { spec?: unknown; metadata?: unknown; typemeta?: unknown } | undefined;
  if (v.resource) {
    const o = parseYamlObject(readText(v.resource, 'resource'), v.resource);
    for (const k of ['metadata', 'spec', 'kind', 'apiVersion']) {
      if (o[k] === undefined) throw new WaxsealError('ERR_INVALID_INPUT', `${v.resource}: kubernetes resource is missing ${k} key`);
    }
    kind = String(o.kind);
    apiVersion = String(o.apiVersion);
    const meta = o.metadata as { labels?: Record<string, string> };
    labels = meta?.labels && typeof meta.labels === 'object' ? meta.labels : {};
    resource = { spec: o.spec, metadata: o.metadata, typemeta: { kind: o.kind, apiVersion: o.apiVersion } };
  }

  const insecure = v['allow-http-registry'] ? [parseReference(v.image).registry] : [];
  const ca = v['registry-cacert'] ? readText(v['registry-cacert'], '--registry-cacert') : undefined;
  const seconds = v.timeout === undefined ? 30 : Number(v.timeout);
  if (!Number.isFinite(seconds) || seconds <= 0)
    throw new UsageError(`--timeout must be a positive number of seconds, not ${JSON.stringify(v.timeout)}`);
  // Authorities without trustRootRef use --trusted-root (policy-controller: the public Sigstore root).
  const defaultTrustedRoot = v['trusted-root'] ? parseTrustedRootJson(readText(v['trusted-root'], 'trusted root')) : undefined;
  // TrustRoots with remote (TUF mirror) or repository (air-gapped tarball): a scratch TUF cache for this run.
  const tufDir = mkdtempSync(join(tmpdir(), 'waxseal-policy-tuf-'));
  const engine = new PolicyEngine(store, {
    noMatch: 'deny',
    cacheSize: 0,
    registry: { insecureRegistries: insecure, ...(ca ? { ca } : {}), timeoutMs: Math.min(30_000, seconds * 1000) },
    loadTrustRoot: tufTrustRootLoader({ cacheDir: tufDir, timeoutMs: Math.min(10_000, seconds * 1000) }),
    ...(defaultTrustedRoot ? { defaultTrustedRoot } : {}),
  });
  const verdict = await engine
    .check(
      {
        image: v.image,
        namespace: (resource?.metadata as { namespace?: string } | undefined)?.namespace ?? 'default',
        kind,
        labels,
        ...(apiVersion ? { apiVersion } : {}),
        ...(resource ? { resource } : {}),
      },
      AbortSignal.timeout(seconds * 1000),
    )
    .finally(() => rmSync(tufDir, { recursive: true, force: true }));
  warnings.push(...verdict.warnings);
  const out: Record<string, unknown> = {
    result: verdict.allowed ? 'allowed' : 'denied',
    image: v.image,
    ...(verdict.digest ? { digest: verdict.digest } : {}),
    policies: verdict.policies,
  };
  // policy-tester's fields, omitted when empty.
  if (verdict.errors.length) out.errors = verdict.errors;
  if (warnings.length) out.warnings = warnings;
  const lines = [
    `${verdict.allowed ? ui.green('admitted') : ui.red('denied')}: ${v.image}${verdict.digest ? ` (${verdict.digest})` : ''}`,
    ...(verdict.policies.length ? [`  policies: ${verdict.policies.join(', ')}`] : []),
    ...verdict.errors.map((e) => `  error: ${e}`),
    ...warnings.map((w) => `  warning: ${w}`),
  ];
  ui.result(out, lines);
  return verdict.allowed ? EXIT.ok : EXIT.verifyFailed;
}

async function loadTrustedRoot(v: Values): Promise<{ root: TrustedRoot; source: string }> {
  const given = [v['trusted-root'], v.instance, v.data].filter(Boolean).length;
  if (given > 1) throw new UsageError('pass one of --trusted-root, --instance and --data');
  if (v.instance) {
    if (!URL.canParse(v.instance)) throw new UsageError(`--instance must be a URL, not ${JSON.stringify(v.instance)}`);
    const url = new URL('trusted_root.json', v.instance.endsWith('/') ? v.instance : `${v.instance}/`).href;
    return { root: parseTrustedRootJson(await fetchText(url, 'trusted root')), source: url };
  }
  const path = v['trusted-root'] ?? (v.data ? undefined : explicitTrustedRootPath(undefined));
  if (path) return { root: parseTrustedRootJson(readText(path, 'trusted root')), source: path };
  const { DEFAULT_DEV_DATA, readDevInstance } = await import('@waxseal/instance');
  const inst = readDevInstance(v.data ?? DEFAULT_DEV_DATA);
  return { root: parseTrustedRootJson(readText(inst.trustedRootPath, 'trusted root')), source: inst.trustedRootPath };
}

async function trustroot(v: Values, ui: Ui): Promise<number> {
  const { root } = await loadTrustedRoot(v);
  const name = v.name ?? 'waxseal-keys';
  const tr = trustRootFromTrustedRoot(root, name, {
    ...(v.organization ? { organization: v.organization } : {}),
    logs: Boolean(v['with-logs']),
  });
  const docs: Record<string, unknown>[] = [tr];
  if (v['cluster-image-policy']) {
    if (!v.identity && !v['identity-regexp']) throw new UsageError('--cluster-image-policy needs --identity or --identity-regexp');
    if (!v.issuer && !v['issuer-regexp']) throw new UsageError('--cluster-image-policy needs --issuer or --issuer-regexp');
    const now = Date.now();
    const ca = root.certificateAuthorities.find((a) => !a.validFor.end || a.validFor.end.getTime() > now);
    if (!ca) throw new WaxsealError('ERR_TRUSTED_ROOT_INVALID', 'the trusted root lists no current certificate authority');
    docs.push(
      keylessClusterImagePolicy({
        name: v['policy-name'] ?? 'waxseal-signed-keyless',
        trustRootName: name,
        url: ca.uri,
        glob: v.glob ?? '**',
        ...(v.identity ? { identity: v.identity } : {}),
        ...(v['identity-regexp'] ? { identityRegExp: v['identity-regexp'] } : {}),
        ...(v.issuer ? { issuer: v.issuer } : {}),
        ...(v['issuer-regexp'] ? { issuerRegExp: v['issuer-regexp'] } : {}),
      }),
    );
  }
  const yamlText = formatYamlDocuments(docs);
  ui.result(v['cluster-image-policy'] ? { trustRoot: docs[0], clusterImagePolicy: docs[1] } : { trustRoot: docs[0] }, yamlText.trimEnd());
  return EXIT.ok;
}

export async function policy(argv: string[], ui: Ui): Promise<number> {
  const { values, positionals, helpWanted } = parse(argv.length ? argv : ['--help'], policySpec);
  if (helpWanted) return (ui.result({ help: helpText(policySpec) }, helpText(policySpec)), EXIT.ok);
  const sub = positionals[0];
  if (sub === 'test') return test(values, ui);
  if (sub === 'trustroot') return trustroot(values, ui);
  throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}: policy test or policy trustroot`);
}
