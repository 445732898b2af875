// Validation refuses what policy-controller's webhook refuses, naming the resource and field.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import { throwsWithCode } from '@waxseal/testkit';
import { parseClusterImagePolicy, parseImagePolicy, parseTrustRoot } from './resources.ts';

const PEM = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
const keyless = { url: 'https://ca.example', identities: [{ issuer: 'https://idp.example', subject: 'me@example.com' }] };

function cip(spec: unknown, apiVersion = 'policy.sigstore.dev/v1beta1') {
  return { apiVersion, kind: 'ClusterImagePolicy', metadata: { name: 'pol' }, spec };
}

function refuses(spec: unknown, re: RegExp) {
  const e = throwsWithCode(() => parseClusterImagePolicy(cip(spec), 'p.yaml'), 'ERR_INVALID_INPUT', { check: 'policy.resource' });
  assert.match(e.message, /^p\.yaml: ClusterImagePolicy pol: /);
  assert.match(e.message, re);
}

test('a valid policy loads with policy-controller defaults, in both versions', () => {
  for (const v of ['policy.sigstore.dev/v1alpha1', 'policy.sigstore.dev/v1beta1']) {
    const p = parseClusterImagePolicy(
      cip({ images: [{ glob: 'ghcr.io/**' }], authorities: [{ keyless: { identities: keyless.identities } }, { key: { data: PEM } }] }, v),
    );
    assert.equal(p.spec.mode, 'enforce');
    assert.deepEqual(
      p.spec.authorities.map((a) => a.name),
      ['authority-0', 'authority-1'],
    );
    assert.equal(p.spec.authorities[0]!.keyless!.url, 'https://fulcio.sigstore.dev');
    assert.equal(p.spec.authorities[1]!.key!.hashAlgorithm, 'sha256');
  }
});

test('refusals name the field', () => {
  const img = [{ glob: '**' }];
  refuses({ authorities: [{ keyless }] }, /spec\.images: missing field/);
  refuses({ images: [{ glob: '[a-z]*' }], authorities: [{ keyless }] }, /spec\.images\[0\]\.glob: glob is invalid/);
  refuses({ images: img }, /spec\.authorities: missing field/);
  refuses({ images: img, authorities: [{}] }, /spec\.authorities\[0\]: expected exactly one, got neither: key, keyless, static/);
  refuses({ images: img, authorities: [{ key: { data: PEM }, keyless }] }, /got more than one: key, keyless, static/);
  refuses(
    { images: img, authorities: [{ key: { data: PEM, kms: 'gcpkms://x' } }] },
    /spec\.authorities\[0\]\.key: expected exactly one, got more than one: data, kms, secretRef/,
  );
  refuses({ images: img, authorities: [{ key: { data: 'not a key' } }] }, /key\.data: invalid value/);
  refuses({ images: img, authorities: [{ key: { kms: 'vault://x' } }] }, /key\.kms: malformed KMS format/);
  refuses({ images: img, authorities: [{ key: { data: PEM, hashAlgorithm: 'md5' } }] }, /key\.hashAlgorithm: unknown digest algorithm/);
  refuses({ images: img, authorities: [{ keyless: { ...keyless, identities: [] } }] }, /keyless\.identities: missing field/);
  refuses(
    { images: img, authorities: [{ keyless: { ...keyless, identities: [{ issuer: 'x' }] } }] },
    /identities\[0\]: missing field\(s\): subject, subjectRegExp/,
  );
  refuses(
    { images: img, authorities: [{ keyless: { ...keyless, identities: [{ issuer: 'x', subjectRegExp: '(a' }] } }] },
    /identities\[0\]\.subjectRegExp: regex is invalid/,
  );
  refuses(
    { images: img, authorities: [{ keyless: { ...keyless, identities: [{ issuer: 'x', subjectRegExp: '(a)\\1' }] } }] },
    /subjectRegExp: regex is invalid/,
  );
  refuses(
    { images: img, authorities: [{ keyless: { ...keyless, 'ca-cert': { data: PEM } } }] },
    /expected exactly one, got both: url, ca-cert/,
  );
  refuses({ images: img, authorities: [{ static: { action: 'maybe' } }] }, /static\.action: invalid value "maybe"/);
  refuses(
    { images: img, authorities: [{ static: { action: 'pass' }, ctlog: { url: 'https://rekor.example' } }] },
    /got both: static, ctlog/,
  );
  refuses(
    { images: img, authorities: [{ static: { action: 'pass' }, attestations: [{ name: 'a', predicateType: 'custom' }] }] },
    /got both: static, attestations/,
  );
  refuses({ images: img, authorities: [{ keyless, source: [{ oci: 'a.io/x' }, { oci: 'b.io/y' }] }] }, /only single source is supported/);
  refuses({ images: img, authorities: [{ keyless, source: [{ oci: 'UPPER CASE' }] }] }, /source\[0\]\.oci: invalid value/);
  refuses(
    { images: img, authorities: [{ keyless, attestations: [{ predicateType: 'custom' }] }] },
    /attestations\[0\]\.name: missing field/,
  );
  refuses({ images: img, authorities: [{ keyless }], mode: 'audit' }, /spec\.mode: invalid value "audit"/);
  refuses(
    { images: img, authorities: [{ keyless }], match: [{ resource: 'services' }] },
    /spec\.match\[0\]\.resource: invalid value "services"/,
  );
  refuses(
    { images: img, authorities: [{ keyless }], match: [{ selector: { matchLabels: { a: 'b' } } }] },
    /selector requires a resource type/,
  );
  refuses(
    {
      images: img,
      authorities: [{ keyless }],
      match: [{ resource: 'pods', version: 'v1', selector: { matchExpressions: [{ key: 'a', operator: 'Near' }] } }],
    },
    /operator: "Near" is not a valid label selector operator/,
  );
  refuses({ images: img, authorities: [{ keyless }], polcy: {} }, /spec\.polcy: unknown field/);
  refuses({ images: img, authorities: [{ keyless: { ...keyless, identity: [] } }] }, /keyless\.identity: unknown field/);
  refuses(
    { images: img, authorities: [{ keyless, signatureFormat: 'bundle', rfc3161timestamp: { trustRootRef: 'x' } }] },
    /must equal keyless\.trustRootRef/,
  );
});

test('policies: CEL compiles at load; cue, rego and unknown types are refused, never passed silently', () => {
  const img = [{ glob: '**' }];
  const ok = parseClusterImagePolicy(
    cip({ images: img, authorities: [{ keyless }], policy: { type: 'cel', data: 'size(authorityMatches) > 0' } }),
  );
  assert.equal(ok.spec.policy?.type, 'cel');
  refuses({ images: img, authorities: [{ keyless }], policy: { type: 'cel', data: 'size(' } }, /spec\.policy: invalid CEL expression/);
  refuses(
    { images: img, authorities: [{ keyless }], policy: { type: 'cue', data: 'x: 1' } },
    /spec\.policy\.type: cue policies cannot be evaluated by Waxseal .*CEL/,
  );
  refuses(
    { images: img, authorities: [{ keyless }], policy: { type: 'rego', data: 'package sigstore' } },
    /spec\.policy\.type: rego policies cannot be evaluated/,
  );
  refuses({ images: img, authorities: [{ keyless }], policy: { type: 'js', data: '1' } }, /spec\.policy\.type: invalid value "js"/);
  refuses(
    { images: img, authorities: [{ keyless }], policy: { type: 'cel' } },
    /spec\.policy: missing field\(s\): data, configMapRef, remote/,
  );
  refuses(
    {
      images: img,
      authorities: [
        { keyless, attestations: [{ name: 'a', predicateType: 'https://x', policy: { type: 'cel', data: 'true', includeSpec: true } }] },
      ],
    },
    /attestations\[0\]\.policy\.includeSpec: must not set the field/,
  );
  // configMapRef resolves against the loaded ConfigMaps.
  const viaCm = parseClusterImagePolicy(
    cip({ images: img, authorities: [{ keyless }], policy: { type: 'cel', configMapRef: { name: 'cm', key: 'p' } } }),
    'x',
    {
      configMap: (n) => (n === 'cm' ? { p: 'true' } : undefined),
    },
  );
  assert.equal(viaCm.spec.policy?.data, 'true');
});

test('deprecated predicate type aliases load with a warning', () => {
  const p = parseClusterImagePolicy(
    cip({ images: [{ glob: '**' }], authorities: [{ keyless, attestations: [{ name: 'a', predicateType: 'vuln' }] }] }),
  );
  assert.match(p.warnings[0]!, /predicateType: deprecated value "vuln"/);
});

test('ImagePolicy: namespaced, same spec', () => {
  const p = parseImagePolicy({
    apiVersion: 'policy.waxseal.dev/v1alpha1',
    kind: 'ImagePolicy',
    metadata: { name: 'a', namespace: 'team' },
    spec: { images: [{ glob: '**' }], authorities: [{ keyless }] },
  });
  assert.equal(p.namespace, 'team');
  throwsWithCode(
    () =>
      parseImagePolicy({
        apiVersion: 'policy.waxseal.dev/v1alpha1',
        kind: 'ImagePolicy',
        metadata: { name: 'a' },
        spec: { images: [{ glob: '**' }], authorities: [{ keyless }] },
      }),
    'ERR_INVALID_INPUT',
    /metadata\.namespace: missing field/,
  );
});

test('TrustRoot repository: targets defaults to "targets" (policy-controller SetDefaults); paths stay inside', () => {
  const tr = (repository: unknown) => ({
    apiVersion: 'policy.sigstore.dev/v1alpha1',
    kind: 'TrustRoot',
    metadata: { name: 'gap' },
    spec: { repository },
  });
  const root = Buffer.from('{"signatures":[],"signed":{}}').toString('base64');
  const mirrorFS = Buffer.from([0x1f, 0x8b, 0]).toString('base64');
  const r = parseTrustRoot(tr({ root, mirrorFS }));
  assert.equal(r.spec.repository?.targets, 'targets');
  assert.deepEqual([...r.spec.repository!.mirrorFS], [0x1f, 0x8b, 0]);
  throwsWithCode(
    () => parseTrustRoot(tr({ root, mirrorFS, targets: '../x' })),
    'ERR_INVALID_INPUT',
    /spec\.repository\.targets: invalid value/,
  );
  throwsWithCode(() => parseTrustRoot(tr({ root })), 'ERR_INVALID_INPUT', /spec\.repository\.mirrorFS: missing field/);
});

test('TrustRoot: exactly one of remote, repository, sigstoreKeys; base64 PEM chains', () => {
  const tr = (spec: unknown) => ({ apiVersion: 'policy.sigstore.dev/v1alpha1', kind: 'TrustRoot', metadata: { name: 'keys' }, spec });
  throwsWithCode(() => parseTrustRoot(tr({})), 'ERR_INVALID_INPUT', /got neither: repository, remote, sigstoreKeys/);
  throwsWithCode(
    () => parseTrustRoot(tr({ sigstoreKeys: {} })),
    'ERR_INVALID_INPUT',
    /got neither: certificateAuthorities, timestampAuthorities/,
  );
  const ca = {
    subject: { organization: 'o', commonName: 'c' },
    uri: 'https://ca.example',
    certChain: Buffer.from('not pem').toString('base64'),
  };
  throwsWithCode(
    () => parseTrustRoot(tr({ sigstoreKeys: { certificateAuthorities: [ca] } })),
    'ERR_INVALID_INPUT',
    /certificateAuthorities\[0\]\.certChain: failed to decode certificate chain PEM/,
  );
  throwsWithCode(
    () => parseTrustRoot(tr({ sigstoreKeys: { certificateAuthorities: [{ ...ca, subject: {} }] } })),
    'ERR_INVALID_INPUT',
    /subject\.organization: missing field/,
  );
  throwsWithCode(
    () => parseTrustRoot(tr({ remote: { mirror: 'https://tuf.example', root: Buffer.from('{}').toString('base64') } })),
    'ERR_INVALID_INPUT',
    /spec\.remote\.root: invalid value: missing signatures/,
  );
  const remote = parseTrustRoot(
    tr({ remote: { mirror: 'https://tuf.example', root: Buffer.from('{"signatures":[],"signed":{}}').toString('base64') } }),
  );
  assert.equal(remote.spec.remote?.mirror, 'https://tuf.example');
  throwsWithCode(
    () =>
      parseTrustRoot(
        tr({
          sigstoreKeys: {
            certificateAuthorities: [],
            tLogs: [{ baseURL: 'https://r', hashAlgorithm: 'sha-256', publicKey: Buffer.from(PEM).toString('base64') }],
            timestampAuthorities: [],
          },
        }),
      ),
    'ERR_INVALID_INPUT',
    /got neither/,
  );
});
