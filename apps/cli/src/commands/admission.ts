// waxseal admission serve: the Kubernetes admission webhook (AdmissionReview v1 over TLS), with
// policies from a folder (a mounted ConfigMap) or the Kubernetes API.
import { readFileSync } from 'node:fs';
import { WaxsealError } from '@waxseal/core';
import { parseTrustedRootJson } from '@waxseal/bundle';
import { parseLabelRequirement } from '@waxseal/policy';
import { startAdmissionServer, type ReviewLog } from '@waxseal/admission';
import { helpText, parse, stopSignal, UsageError, type Ui } from '../ui.ts';

export const admissionSpec = {
  usage: 'waxseal admission serve (--policy-dir <dir> | --kube) --tls-cert <pem> --tls-key <pem> [options]',
  summary: 'Run the Kubernetes admission webhook: ClusterImagePolicy, TrustRoot and ImagePolicy enforced at admission.',
  options: {
    'policy-dir': { type: 'string' },
    kube: { type: 'boolean' },
    kubeconfig: { type: 'string' },
    namespace: { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    port: { type: 'string' },
    host: { type: 'string' },
    'no-match': { type: 'string' },
    deadline: { type: 'string' },
    'require-namespace-label': { type: 'boolean' },
    'include-label': { type: 'string' },
    'allow-tags': { type: 'boolean' },
    'max-images': { type: 'string' },
    'insecure-registry': { type: 'string', multiple: true },
    'registry-cacert': { type: 'string' },
    'trusted-root': { type: 'string' },
    'cache-size': { type: 'string' },
    'tuf-cache': { type: 'string' },
    quiet: { type: 'boolean' },
  },
  positionals: [1, 1] as [number, number],
  help: `  waxseal admission serve (--policy-dir <dir> | --kube) --tls-cert <pem> --tls-key <pem>
      Serves AdmissionReview v1 over HTTPS: POST /validate (also /validations) judges every image of
      a Pod, ReplicaSet, Deployment, StatefulSet, DaemonSet, Job or CronJob; POST /mutate (also
      /mutations) pins tags to digests (the tag kept: repo:tag@sha256:...) with a JSON patch.
      GET /healthz answers while the process runs; GET /readyz once policies are loaded.
        --policy-dir <dir>          YAML files of ClusterImagePolicy, TrustRoot, ImagePolicy, Secret
                                    and ConfigMap documents (a mounted ConfigMap); re-read on change
        --kube                      policies from the Kubernetes API instead (watched; status written
                                    back); in-cluster credentials, or --kubeconfig
        --kubeconfig <file>         kubeconfig for --kube (default: in-cluster, then ~/.kube/config)
        --namespace <ns>            the webhook's namespace, where key.secretRef Secrets live
                                    (default $POD_NAMESPACE, else waxseal-system)
        --tls-cert <pem>            certificate (chain) for the webhook; reloaded when it changes
        --tls-key <pem>             its private key
        --port <n>                  default 8443
        --host <addr>               default 0.0.0.0
        --no-match deny|allow|warn  an image no policy matches (default deny, as policy-controller)
        --deadline <duration>       time to judge one review, e.g. 8s or 2500ms (default 8s; keep it
                                    below the webhook configuration's timeoutSeconds)
        --require-namespace-label   judge only namespaces with the opt-in label (needs --kube; the
                                    webhook configuration's namespaceSelector normally does this)
        --include-label <k=v>       the opt-in label (default policy.sigstore.dev/include=true)
        --allow-tags                /validate resolves tags itself instead of denying them (without
                                    the mutating webhook; a tag can then move after admission)
        --max-images <n>            most images judged in one object (default 256)
        --insecure-registry <host>  a registry reached over plain HTTP (repeatable; loopback always)
        --registry-cacert <file>    extra CA certificates (PEM) for registries' TLS
        --trusted-root <file>       trust for keyless authorities without trustRootRef
        --cache-size <n>            cached verification results (default 10000)
        --tuf-cache <dir>           TUF metadata of TrustRoots with spec.remote (default a folder
                                    in the system temp dir)
        --quiet                     no line per review on stderr
      One JSON line per review on stderr (uid, kind, namespace, name, allowed, detail, ms).
      Stops on SIGINT or SIGTERM.`,
} as const;

/** A Go-style duration with ms, s or m units (cosign's flags use Go durations). */
export function parseDuration(s: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(s.trim());
  if (!m) throw new UsageError(`${flag} takes a duration such as 8s or 2500ms, not ${JSON.stringify(s)}`);
  const ms = Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 's' ? 1000 : 60_000);
  if (ms < 100 || ms > 300_000) throw new UsageError(`${flag} must be between 100ms and 5m`);
  return Math.round(ms);
}

function positiveInt(v: string | undefined, flag: string, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) > max) throw new UsageError(`${flag} takes a whole number up to ${max}, not ${JSON.stringify(v)}`);
  return Number(v);
}

export async function admission(argv: string[], ui: Ui): Promise<number> {
  const { values: v, positionals, helpWanted } = parse(argv, admissionSpec);
  if (helpWanted) return (ui.result({ help: helpText(admissionSpec) }, helpText(admissionSpec)), 0);
  if (positionals[0] !== 'serve')
    throw new UsageError(`unknown subcommand ${JSON.stringify(positionals[0])}; usage: ${admissionSpec.usage}`);
  if (!v['policy-dir'] === !v.kube) throw new UsageError('give exactly one of --policy-dir <dir> or --kube');
  if (!v['tls-cert'] || !v['tls-key']) throw new UsageError('--tls-cert <pem> and --tls-key <pem> are required');
  const noMatch = v['no-match'] ?? 'deny';
  if (noMatch !== 'deny' && noMatch !== 'allow' && noMatch !== 'warn')
    throw new UsageError(`--no-match takes deny, allow or warn, not ${JSON.stringify(noMatch)}`);
  if (v['require-namespace-label'] && !v.kube)
    throw new UsageError('--require-namespace-label needs --kube (namespace labels are not in an AdmissionReview)');
  if (v['include-label'] && !v['require-namespace-label']) throw new UsageError('--include-label goes with --require-namespace-label');
  if (v['include-label']) {
    try {
      parseLabelRequirement(v['include-label']);
    } catch (e) {
      throw new UsageError(`--include-label: ${(e as Error).message}`);
    }
  }
  const port = positiveInt(v.port, '--port', 65535) ?? 8443;
  const readText = (file: string, what: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch (e) {
      throw new WaxsealError('ERR_CONFIG', `cannot read ${what} ${file}: ${(e as Error).message}`);
    }
  };
  let kubeConfig: import('@kubernetes/client-node').KubeConfig | undefined;
  if (v.kube && v.kubeconfig) {
    const { KubeConfig } = await import('@kubernetes/client-node');
    kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(v.kubeconfig);
  }
  const quiet = Boolean(v.quiet);
  const line = (o: Record<string, unknown>) => process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...o })}\n`);
  const server = await startAdmissionServer({
    ...(v['policy-dir'] ? { policyDir: v['policy-dir'] } : {}),
    ...(v.kube ? { kube: { ...(kubeConfig ? { kubeConfig } : {}), ...(v.namespace ? { namespace: v.namespace } : {}) } } : {}),
    tlsCert: v['tls-cert'],
    tlsKey: v['tls-key'],
    port,
    host: v.host ?? '0.0.0.0',
    noMatch,
    ...(v.deadline ? { deadlineMs: parseDuration(v.deadline, '--deadline') } : {}),
    ...(v['require-namespace-label'] ? { requireNamespaceLabel: true } : {}),
    ...(v['include-label'] ? { includeLabel: v['include-label'] } : {}),
    ...(v['allow-tags'] ? { requireDigest: false } : {}),
    ...(v['max-images'] ? { maxImages: positiveInt(v['max-images'], '--max-images', 10_000)! } : {}),
    ...(v['cache-size'] ? { cacheSize: positiveInt(v['cache-size'], '--cache-size', 10_000_000)! } : {}),
    registry: {
      ...(v['insecure-registry']?.length ? { insecureRegistries: v['insecure-registry'] } : {}),
      ...(v['registry-cacert'] ? { ca: readText(v['registry-cacert'], 'the registry CA file') } : {}),
    },
    ...(v['trusted-root'] ? { defaultTrustedRoot: parseTrustedRootJson(readText(v['trusted-root'], 'the trusted root')) } : {}),
    ...(v['tuf-cache'] ? { tufCacheDir: v['tuf-cache'] } : {}),
    ...(quiet ? {} : { onReview: (e: ReviewLog) => line({ level: e.allowed ? 'info' : 'warn', msg: 'review', ...e }) }),
    log: (message) => line({ level: /error|not loaded|not reloaded|could not/.test(message) ? 'warn' : 'info', msg: message }),
  });
  const stopRequested = stopSignal();
  const ready = server.source.status().ready;
  ui.result({ ok: true, url: server.url, port: server.port, ready, validate: '/validate', mutate: '/mutate', noMatch }, [
    `Waxseal admission webhook at ${server.url}`,
    `  validate  POST /validate  (policy-controller's /validations too)`,
    `  mutate    POST /mutate    (/mutations)`,
    `  policies  ${v['policy-dir'] ? v['policy-dir'] : 'the Kubernetes API'}${ready ? '' : ' (not loaded yet: /readyz answers 503)'}`,
  ]);
  await stopRequested;
  await server.close();
  return 0;
}
