import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { WaxsealError } from '@waxseal/core';
import {
  ADMISSION_MAX_BODY,
  allowResponse,
  boundWarnings,
  denyResponse,
  labelsSatisfy,
  mutationResponse,
  parseAdmissionReview,
  parseLabelRequirement,
  pinPatch,
  pinnedReference,
  planReview,
  referenceProblem,
  reviewIdentity,
  validationResponse,
  type AdmissionReview,
  type ContainerImage,
} from './review.ts';

const D1 = `sha256:${'a'.repeat(64)}`;
const D2 = `sha256:${'b'.repeat(64)}`;

/** A review shaped as kube-apiserver 1.30 sends it for `kubectl apply` of the object. */
function review(object: Record<string, unknown>, over: Record<string, unknown> = {}): Record<string, unknown> {
  const kind = object.kind as string;
  const [group, version] = String(object.apiVersion).includes('/') ? String(object.apiVersion).split('/') : ['', object.apiVersion];
  const resource = `${kind.toLowerCase()}s`;
  return {
    kind: 'AdmissionReview',
    apiVersion: 'admission.k8s.io/v1',
    request: {
      uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
      kind: { group, version, kind },
      resource: { group, version, resource },
      requestKind: { group, version, kind },
      requestResource: { group, version, resource },
      name: (object.metadata as { name?: string }).name,
      namespace: 'team-a',
      operation: 'CREATE',
      userInfo: { username: 'kubernetes-admin', groups: ['system:masters', 'system:authenticated'] },
      object,
      oldObject: null,
      dryRun: false,
      options: { kind: 'CreateOptions', apiVersion: 'meta.k8s.io/v1', fieldManager: 'kubectl-client-side-apply' },
      ...over,
    },
  };
}

const podSpec = {
  initContainers: [{ name: 'init', image: 'registry.example/init:1' }],
  containers: [
    { name: 'app', image: 'registry.example/app:v1' },
    { name: 'side', image: `registry.example/side@${D1}` },
  ],
  ephemeralContainers: [{ name: 'debugger', image: 'busybox' }],
  volumes: [
    { name: 'data', image: { reference: 'registry.example/data:v2', pullPolicy: 'IfNotPresent' } },
    { name: 'tmp', emptyDir: {} },
  ],
  imagePullSecrets: [{ name: 'regcred' }, { name: 'regcred' }],
  serviceAccountName: 'builder',
};

const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', namespace: 'team-a', labels: { app: 'web' } }, spec: podSpec };
const deployment = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web', namespace: 'team-a', labels: { tier: 'front' } },
  spec: { replicas: 3, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: podSpec } },
};
const cronJob = {
  apiVersion: 'batch/v1',
  kind: 'CronJob',
  metadata: { name: 'nightly' },
  spec: {
    schedule: '0 0 * * *',
    jobTemplate: { spec: { template: { spec: { containers: [{ name: 'c', image: 'registry.example/job:1' }] } } } },
  },
};

const parse = (v: unknown) => parseAdmissionReview(Buffer.from(JSON.stringify(v)));
const judge = (v: unknown) => {
  const p = planReview(parse(v));
  assert.equal(p.action, 'judge', JSON.stringify(p));
  return (p as Extract<typeof p, { action: 'judge' }>).workload;
};

describe('parseAdmissionReview', () => {
  test('reads every request field the API server sends', () => {
    const r = parse(review(pod));
    assert.equal(r.apiVersion, 'admission.k8s.io/v1');
    assert.equal(r.request.uid, '705ab4f5-6393-11e8-b7cc-42010a800002');
    assert.deepEqual(r.request.kind, { group: '', version: 'v1', kind: 'Pod' });
    assert.deepEqual(r.request.resource, { group: '', version: 'v1', resource: 'pods' });
    assert.equal(r.request.namespace, 'team-a');
    assert.equal(r.request.operation, 'CREATE');
    assert.equal(r.request.dryRun, false);
    assert.equal(r.request.oldObject, undefined, 'null oldObject reads as absent');
    assert.deepEqual(r.request.userInfo.groups, ['system:masters', 'system:authenticated']);
  });

  test('malformed reviews are refused with a clear message; the uid is kept once known', () => {
    const cases: [unknown, RegExp, boolean][] = [
      ['not json', /not valid JSON/, false],
      [[], /must be a JSON object/, false],
      [{ kind: 'Pod' }, /kind must be "AdmissionReview"/, false],
      [{ kind: 'AdmissionReview', apiVersion: 'v1' }, /apiVersion must be admission.k8s.io\/v1/, false],
      [{ kind: 'AdmissionReview', apiVersion: 'admission.k8s.io/v1' }, /request is missing/, false],
      [{ kind: 'AdmissionReview', apiVersion: 'admission.k8s.io/v1', request: { uid: 7 } }, /request.uid/, false],
      [review(pod, { operation: 'PATCH' }), /operation "PATCH"/, true],
      [review(pod, { kind: 'Pod' }), /request.kind must be an object/, true],
      [review(pod, { resource: { group: '' } }), /request.resource.version must be a string/, true],
      [review(pod, { object: [1] }), /request.object must be an object/, true],
      [review(pod, { dryRun: 'yes' }), /dryRun must be a boolean/, true],
    ];
    for (const [input, re, hasUid] of cases) {
      const text = typeof input === 'string' ? input : JSON.stringify(input);
      assert.throws(
        () => parseAdmissionReview(Buffer.from(text)),
        (e: unknown) => {
          assert.ok(e instanceof WaxsealError, String(e));
          assert.match(e.message, re);
          assert.equal(reviewIdentity(e) !== undefined, hasUid, `${e.message}: uid known`);
          return true;
        },
      );
    }
  });

  test('over-deep, over-large and over-many-valued bodies are refused before JSON.parse', () => {
    assert.throws(() => parseAdmissionReview(`${'['.repeat(100_000)}`), /nest|deep/i);
    assert.throws(
      () => parseAdmissionReview(Buffer.alloc(ADMISSION_MAX_BODY + 1, 0x20)),
      (e: unknown) => (e as WaxsealError).code === 'ERR_BODY_TOO_LARGE',
    );
    assert.throws(
      () => parseAdmissionReview(`[${'0,'.repeat(300_000)}0]`),
      (e: unknown) => (e as WaxsealError).code === 'ERR_INVALID_INPUT',
    );
  });
});

describe('planReview: which images, at which paths', () => {
  test('a Pod: init, regular and ephemeral containers and image volumes, in that order', () => {
    const w = judge(review(pod));
    assert.equal(w.kind, 'Pod');
    assert.equal(w.podSpecPath, 'spec');
    assert.deepEqual(
      w.images.map((i) => [i.path, i.pointer, i.image]),
      [
        ['spec.initContainers[0].image', '/spec/initContainers/0/image', 'registry.example/init:1'],
        ['spec.containers[0].image', '/spec/containers/0/image', 'registry.example/app:v1'],
        ['spec.containers[1].image', '/spec/containers/1/image', `registry.example/side@${D1}`],
        ['spec.ephemeralContainers[0].image', '/spec/ephemeralContainers/0/image', 'busybox'],
        ['spec.volumes[0].image.reference', '/spec/volumes/0/image/reference', 'registry.example/data:v2'],
      ],
    );
    assert.deepEqual(w.labels, { app: 'web' });
    assert.deepEqual(w.imagePullSecrets, ['regcred']);
    assert.equal(w.serviceAccountName, 'builder');
    assert.equal(w.namespace, 'team-a');
  });

  test('a Deployment is judged like its pods, with its own labels; every workload kind finds its pod spec', () => {
    const w = judge(review(deployment));
    assert.equal(w.podSpecPath, 'spec.template.spec');
    assert.equal(w.images[1]!.path, 'spec.template.spec.containers[0].image');
    assert.equal(w.images[1]!.pointer, '/spec/template/spec/containers/0/image');
    assert.deepEqual(w.labels, { tier: 'front' });
    for (const [apiVersion, kind] of [
      ['apps/v1', 'ReplicaSet'],
      ['apps/v1', 'StatefulSet'],
      ['apps/v1', 'DaemonSet'],
      ['batch/v1', 'Job'],
    ]) {
      const x = judge(review({ ...deployment, apiVersion, kind }));
      assert.equal(x.kind, kind);
      assert.equal(x.images.length, 5);
    }
    for (const apiVersion of ['batch/v1', 'batch/v1beta1']) {
      const c = judge(review({ ...cronJob, apiVersion }));
      assert.deepEqual(
        c.images.map((i) => i.path),
        ['spec.jobTemplate.spec.template.spec.containers[0].image'],
      );
      assert.equal(c.serviceAccountName, 'default');
      assert.equal(c.namespace, 'team-a', 'request.namespace wins');
    }
  });

  test('deletes, connects, status and scale updates, deleted objects and pure scale-downs are skipped', () => {
    const skip = (v: unknown) => {
      const p = planReview(parse(v));
      assert.equal(p.action, 'skip', JSON.stringify(p));
      return (p as { reason: string }).reason;
    };
    assert.match(skip(review(pod, { operation: 'DELETE', object: null, oldObject: pod })), /DELETE/);
    assert.match(skip(review(pod, { operation: 'CONNECT', subResource: 'exec', object: { kind: 'PodExecOptions' } })), /CONNECT/);
    assert.match(skip(review(pod, { operation: 'UPDATE', subResource: 'status' })), /status/);
    assert.match(skip(review(deployment, { operation: 'UPDATE', subResource: 'scale' })), /scale/);
    assert.match(
      skip(review({ ...pod, metadata: { ...pod.metadata, deletionTimestamp: '2024-01-01T00:00:00Z' } }, { operation: 'UPDATE' })),
      /deleted/,
    );
    const fewer = { ...deployment, spec: { ...deployment.spec, replicas: 1 } };
    assert.match(skip(review(fewer, { operation: 'UPDATE', oldObject: deployment })), /scaling down from 3 to 1/);
    // Scaling down while changing the template is judged.
    const sneaky = { ...fewer, spec: { ...fewer.spec, template: { spec: { containers: [{ name: 'x', image: 'evil/x:1' }] } } } };
    assert.equal(judge(review(sneaky, { operation: 'UPDATE', oldObject: deployment })).images[0]!.image, 'evil/x:1');
    // Ephemeral containers added with kubectl debug (the pods/ephemeralcontainers subresource) are judged.
    assert.equal(judge(review(pod, { operation: 'UPDATE', subResource: 'ephemeralcontainers' })).images.length, 5);
  });

  test('unknown kinds, missing or malformed objects and huge pod specs are denied with a clear reason', () => {
    const deny = (v: unknown, opts = {}) => {
      const p = planReview(parse(v), opts);
      assert.equal(p.action, 'deny', JSON.stringify(p).slice(0, 300));
      return p as Extract<typeof p, { action: 'deny' }>;
    };
    const cm = deny(review({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } }));
    assert.equal(cm.code, 400);
    assert.match(cm.message, /unsupported kind v1 ConfigMap: this webhook judges Pod, ReplicaSet, Deployment/);
    assert.match(deny(review({ ...deployment, apiVersion: 'apps/v1beta2' })).message, /unsupported kind apps\/v1beta2 Deployment/);
    assert.match(deny(review(pod, { object: null })).message, /request.object is missing/);
    assert.match(deny(review({ ...pod, spec: { containers: 'nginx' } })).message, /spec.containers must be a list/);
    assert.match(
      deny(review({ ...pod, spec: { containers: [{ name: 'a', image: 42 }] } })).message,
      /spec.containers\[0\].image must be a string/,
    );
    assert.match(
      deny(review({ ...deployment, spec: { template: { spec: [] } } })).message,
      /spec.template.spec of the Deployment must be an object/,
    );
    const many = { ...pod, spec: { containers: Array.from({ length: 3000 }, (_, i) => ({ name: `c${i}`, image: `r.example/i${i}:1` })) } };
    assert.match(deny(review(many)).message, /more than 256 container images/);
    assert.match(
      deny(review({ ...pod, spec: { containers: [{ image: 'a' }, { image: 'b' }, { image: 'c' }] } }), { maxImages: 2 }).message,
      /more than 2/,
    );
  });

  test('containers without an image and pods without volumes have nothing to judge', () => {
    const w = judge(review({ ...pod, spec: { containers: [{ name: 'a' }, { name: 'b', image: '' }] } }));
    assert.deepEqual(w.images, []);
  });
});

describe('answers', () => {
  const r = parse(review(pod)) as AdmissionReview;
  const c = (path: string, image: string, pointer = '/x'): ContainerImage => ({ image, path, pointer, field: 'containers', index: 0 });

  test('allowed with warnings; denied naming each container path and what failed', () => {
    const ok = validationResponse(r, [
      {
        container: c('spec.containers[0].image', 'a@x'),
        outcome: { allowed: true, errors: [], warnings: ['failed policy: p (warn mode)'] },
      },
    ]);
    assert.deepEqual(ok, {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid: r.request.uid, allowed: true, warnings: ['spec.containers[0].image: a@x: failed policy: p (warn mode)'] },
    });
    const no = validationResponse(r, [
      { container: c('spec.initContainers[0].image', 'i@1'), outcome: { allowed: false, errors: ['no matching policies'], warnings: [] } },
      { container: c('spec.containers[0].image', 'a@2'), outcome: { allowed: true, errors: [], warnings: [] } },
      {
        container: c('spec.containers[1].image', 'b@3'),
        outcome: { allowed: false, errors: ['failed policy: signed: no matching signatures', 'x\ny'], warnings: [] },
      },
    ]);
    assert.equal(no.response.allowed, false);
    assert.equal(no.response.status?.code, 403);
    assert.equal(no.response.status?.reason, 'Forbidden');
    assert.equal(
      no.response.status?.message,
      'image policy denied 2 images:\nspec.initContainers[0].image: i@1: no matching policies\nspec.containers[1].image: b@3: failed policy: signed: no matching signatures; x y',
    );
  });

  test('a denial for a request that cannot be judged has 400 semantics', () => {
    const d = denyResponse({ uid: 'u', apiVersion: 'admission.k8s.io/v1' }, 'malformed', 400);
    assert.deepEqual(d.response, {
      uid: 'u',
      allowed: false,
      status: { status: 'Failure', code: 400, reason: 'BadRequest', message: 'malformed' },
    });
  });

  test('warnings are single lines, bounded and without repeats', () => {
    const w = boundWarnings(['a\nb', 'a\nb', 'x'.repeat(1000), ...Array.from({ length: 100 }, (_, i) => `w${i} ${'y'.repeat(100)}`)]);
    assert.equal(w[0], 'a b');
    assert.equal(w[1]!.length, 256);
    assert.ok(w.join('').length <= 4096 + 256);
    assert.match(w[w.length - 1]!, /more warnings not shown/);
    assert.deepEqual(allowResponse(r).response, { uid: r.request.uid, allowed: true });
  });

  test('tag pinning keeps the tag and appends the digest; pinned references are left alone', () => {
    assert.equal(pinnedReference('registry.example/app:v1', D1), `registry.example/app:v1@${D1}`);
    assert.equal(pinnedReference('busybox', D1), `busybox@${D1}`);
    assert.equal(pinnedReference('localhost:5000/a/b:1.0', D1), `localhost:5000/a/b:1.0@${D1}`);
    assert.equal(pinnedReference(`app:v1@${D2}`, D1), undefined);
    assert.equal(pinnedReference('app:v1', 'sha256:short'), undefined);
    assert.equal(pinnedReference('UPPER/case', D1), undefined);
    const ops = pinPatch([
      { container: c('spec.containers[0].image', 'app:v1', '/spec/containers/0/image'), digest: D1 },
      { container: c('spec.containers[1].image', `side@${D2}`, '/spec/containers/1/image'), digest: D2 },
      { container: c('spec.volumes[0].image.reference', 'data:v2', '/spec/volumes/0/image/reference'), digest: undefined },
    ]);
    assert.deepEqual(ops, [{ op: 'replace', path: '/spec/containers/0/image', value: `app:v1@${D1}` }]);
    const m = mutationResponse(r, ops);
    assert.equal(m.response.allowed, true);
    assert.equal(m.response.patchType, 'JSONPatch');
    assert.deepEqual(JSON.parse(Buffer.from(m.response.patch!, 'base64').toString()), ops);
    assert.equal(mutationResponse(r, []).response.patch, undefined);
  });

  test('references that cannot be judged: unparsable, or a tag where a digest is required', () => {
    assert.match(referenceProblem('Bad Ref', true)!, /invalid image reference/);
    assert.match(referenceProblem('app:v1', true)!, /must be an image digest/);
    assert.equal(referenceProblem('app:v1', false), undefined);
    assert.equal(referenceProblem(`app:v1@${D1}`, true), undefined);
  });

  test('namespace opt-in label requirements', () => {
    const req = parseLabelRequirement('policy.sigstore.dev/include=true');
    assert.deepEqual(req, { key: 'policy.sigstore.dev/include', value: 'true' });
    assert.equal(labelsSatisfy({ 'policy.sigstore.dev/include': 'true' }, req), true);
    assert.equal(labelsSatisfy({ 'policy.sigstore.dev/include': 'false' }, req), false);
    assert.equal(labelsSatisfy({}, req), false);
    assert.equal(labelsSatisfy({ team: 'x' }, parseLabelRequirement('team')), true);
    assert.throws(() => parseLabelRequirement('bad key=1'), /invalid label key/);
  });
});
