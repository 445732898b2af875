// Test helpers for the webhook: TLS material made with openssl (a CA and a server certificate
// for 127.0.0.1), an HTTPS client that trusts only that CA, and AdmissionReview requests shaped
// exactly as kube-apiserver sends them.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';

export interface TestTls {
  certFile: string;
  keyFile: string;
  caFile: string;
  /** The CA certificate (PEM): what the API server's caBundle holds. */
  ca: string;
}

const openssl = (args: string[], cwd: string) => execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });

/** A CA and a P-256 server certificate for 127.0.0.1 signed by it, written to `dir` under `name`-*.pem. */
export function writeTls(dir: string, name = 'webhook', caName = 'ca'): TestTls {
  const caKey = join(dir, `${caName}-key.pem`);
  const caFile = join(dir, `${caName}.pem`);
  try {
    readFileSync(caFile);
  } catch {
    openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', caKey], dir);
    openssl(['req', '-x509', '-new', '-key', caKey, '-subj', `/CN=${caName} test CA`, '-days', '2', '-out', caFile], dir);
  }
  const keyFile = join(dir, `${name}-key.pem`);
  const csr = join(dir, `${name}.csr`);
  const certFile = join(dir, `${name}.pem`);
  const ext = join(dir, `${name}.ext`);
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', keyFile], dir);
  openssl(['req', '-new', '-key', keyFile, '-subj', `/CN=${name}.waxseal-system.svc`, '-out', csr], dir);
  execFileSync('sh', ['-c', `printf 'subjectAltName=IP:127.0.0.1,DNS:${name}.waxseal-system.svc\\n' > '${ext}'`]);
  openssl(
    ['x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKey, '-CAcreateserial', '-days', '1', '-extfile', ext, '-out', certFile],
    dir,
  );
  return { certFile, keyFile, caFile, ca: readFileSync(caFile, 'utf8') };
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any;
  /** The subject CN of the certificate the server presented. */
  peerCN?: string;
}

/** One HTTPS exchange trusting only `ca` (a fresh connection each time, so the presented certificate is current). */
export function httpsCall(
  url: string,
  opts: { ca: string; method?: string; body?: string | Buffer; headers?: Record<string, string>; timeoutMs?: number },
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const body = opts.body === undefined ? undefined : Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(opts.body);
    const req = request(
      url,
      {
        method: opts.method ?? (body ? 'POST' : 'GET'),
        ca: opts.ca,
        agent: false,
        headers: { ...(body ? { 'content-type': 'application/json', 'content-length': String(body.length) } : {}), ...opts.headers },
        timeout: opts.timeoutMs ?? 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          const peer = (res.socket as unknown as { getPeerCertificate?: () => { subject?: { CN?: string } } }).getPeerCertificate?.();
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text,
            json,
            ...(peer?.subject?.CN ? { peerCN: peer.subject.CN } : {}),
          });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} in time`)));
    req.on('error', reject);
    req.end(body);
  });
}

export const postReview = (url: string, ca: string, review: unknown) => httpsCall(url, { ca, body: JSON.stringify(review) });

const RESOURCES: Record<string, string> = {
  Pod: 'pods',
  ReplicaSet: 'replicasets',
  Deployment: 'deployments',
  StatefulSet: 'statefulsets',
  DaemonSet: 'daemonsets',
  Job: 'jobs',
  CronJob: 'cronjobs',
};

/**
 * An AdmissionReview v1 request as kube-apiserver sends it for a create (or `over`'s operation)
 * of `object` in namespace `namespace`.
 */
export function admissionReview(
  object: Record<string, unknown>,
  over: Record<string, unknown> = {},
  namespace = 'team-a',
): Record<string, unknown> {
  const apiVersion = String(object.apiVersion);
  const [group, version] = apiVersion.includes('/') ? (apiVersion.split('/') as [string, string]) : ['', apiVersion];
  const kind = String(object.kind);
  const resource = RESOURCES[kind] ?? `${kind.toLowerCase()}s`;
  const meta = (object.metadata ?? {}) as { name?: string };
  const operation = (over.operation as string | undefined) ?? 'CREATE';
  return {
    kind: 'AdmissionReview',
    apiVersion: 'admission.k8s.io/v1',
    request: {
      uid: randomUUID(),
      kind: { group, version, kind },
      resource: { group, version, resource },
      requestKind: { group, version, kind },
      requestResource: { group, version, resource },
      ...(meta.name ? { name: meta.name } : {}),
      namespace,
      operation,
      userInfo: {
        username: 'system:serviceaccount:kube-system:replicaset-controller',
        uid: 'c0ffee00-0000-4000-8000-000000000001',
        groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'],
      },
      object: { ...object, metadata: { namespace, ...meta } },
      oldObject: null,
      dryRun: false,
      options: {
        kind: operation === 'UPDATE' ? 'UpdateOptions' : 'CreateOptions',
        apiVersion: 'meta.k8s.io/v1',
        fieldManager: 'kubectl-client-side-apply',
        fieldValidation: 'Strict',
      },
      ...over,
    },
  };
}

export function podObject(
  name: string,
  images: string[],
  labels: Record<string, string> = { app: name },
  extra: Record<string, unknown> = {},
) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels },
    spec: {
      containers: images.map((image, i) => ({ name: `c${i}`, image, imagePullPolicy: 'IfNotPresent', resources: {} })),
      restartPolicy: 'Always',
      serviceAccountName: 'default',
      dnsPolicy: 'ClusterFirst',
      ...extra,
    },
  };
}

export function deploymentObject(name: string, images: string[], labels: Record<string, string> = { app: name }) {
  const pod = podObject(name, images);
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, labels },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: pod.spec },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } },
    },
  };
}
