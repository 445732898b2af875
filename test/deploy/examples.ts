// Policies shaped like policy-controller's documentation and Chainguard Enforce Signing's example,
// written here as YAML (values are illustrative; the key was made for this file). Each is a valid
// ClusterImagePolicy spec for policy-controller; the tests apply them as v1alpha1, v1beta1 and as
// Waxseal's namespaced ImagePolicy.
import { type Obj, yamlDocs } from './k8s.ts';

const PUBLIC_KEY = `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE8WTTaZWltA3vegN9G8LyVN8KT8fC
iaIzLO70RzcFYRMdYzaAzWDcKY/0Fd/UUP2aLtQbynsV6IirH6XPdKzYuQ==
-----END PUBLIC KEY-----`;

const indent = (s: string, n: number): string => s.replaceAll('\n', `\n${' '.repeat(n)}`);

/** name -> the YAML of a spec (without apiVersion/kind/metadata). */
export const EXAMPLE_SPECS: Record<string, string> = {
  'keyless with regexp identities': `
images:
  - glob: "ghcr.io/example/**"
authorities:
  - keyless:
      url: https://fulcio.sigstore.dev
      identities:
        - issuerRegExp: "^https://token\\\\.actions\\\\.githubusercontent\\\\.com$"
          subjectRegExp: "^https://github\\\\.com/example/.+/\\\\.github/workflows/release\\\\.yaml@refs/tags/v.*$"
        - issuer: https://accounts.google.com
          subject: release@example.com
    ctlog:
      url: https://rekor.sigstore.dev
`,
  'key with data and a hash algorithm': `
images:
  - glob: "registry.example.com/team/*"
authorities:
  - name: team-key
    key:
      hashAlgorithm: sha384
      data: |
        ${indent(PUBLIC_KEY, 8)}
`,
  'key from a KMS and from a Secret, sources with pull secrets': `
images:
  - glob: "**"
authorities:
  - key:
      kms: awskms:///arn:aws:kms:us-east-2:111122223333:alias/release
    source:
      - oci: registry.example.com/signatures
        signaturePullSecrets:
          - name: signature-pull
        tagPrefix: prod-
  - key:
      secretRef:
        name: release-key
`,
  'static pass': `
images:
  - glob: "registry.k8s.io/pause*"
authorities:
  - static:
      action: pass
`,
  'static fail with a message': `
images:
  - glob: "docker.io/**"
authorities:
  - static:
      action: fail
      message: images from Docker Hub are not allowed here
`,
  'attestations with a predicate policy (CEL, CUE and Rego)': `
images:
  - glob: "**"
authorities:
  - name: builder
    keyless:
      ca-cert:
        data: |
          -----BEGIN CERTIFICATE-----
          MIIB
          -----END CERTIFICATE-----
      identities:
        - issuer: https://token.actions.githubusercontent.com
          subjectRegExp: "^https://github\\\\.com/example/"
    attestations:
      - name: provenance
        predicateType: https://slsa.dev/provenance/v1
        policy:
          type: cel
          data: predicate.buildDefinition.buildType.startsWith("https://actions.github.io/")
      - name: vulns
        predicateType: https://cosign.sigstore.dev/attestation/vuln/v1
        policy:
          type: cue
          data: |
            predicate: scanner: uri: "trivy"
      - name: sbom
        predicateType: https://spdx.dev/Document
        policy:
          type: rego
          configMapRef:
            name: sbom-policy
            namespace: waxseal-system
            key: policy.rego
      - name: deprecated-alias
        predicateType: slsaprovenance
`,
  'ClusterImagePolicy-level k-of-n policy': `
images:
  - glob: "registry.example.com/**"
authorities:
  - name: alice
    key:
      data: |
        ${indent(PUBLIC_KEY, 8)}
  - name: bob
    keyless:
      url: https://fulcio.example.com
      identities:
        - issuer: https://dex.example.com
          subject: bob@example.com
  - name: carol
    keyless:
      url: https://fulcio.example.com
      identities:
        - issuer: https://dex.example.com
          subject: carol@example.com
policy:
  type: cel
  fetchConfigFile: true
  includeSpec: true
  includeObjectMeta: true
  includeTypeMeta: true
  # authorityMatches holds the authorities that matched: any two of the three.
  data: size(authorityMatches) >= 2
`,
  'remote policy pinned by digest': `
images:
  - glob: "**"
authorities:
  - keyless:
      url: https://fulcio.sigstore.dev
      identities:
        - issuer: https://accounts.google.com
          subjectRegExp: ".*@example\\\\.com$"
policy:
  type: rego
  remote:
    url: https://policies.example.com/two-signers.rego
    sha256sum: 3b1f8a4a7b3b2b0e1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b
`,
  'warn mode': `
images:
  - glob: "**"
mode: warn
authorities:
  - keyless:
      identities:
        - issuerRegExp: ".*"
          subjectRegExp: ".*"
`,
  'match selectors': `
images:
  - glob: "**"
match:
  - resource: pods
    version: v1
    selector:
      matchLabels:
        app.kubernetes.io/part-of: payments
  - group: apps
    version: v1
    resource: deployments
    selector:
      matchExpressions:
        - key: tier
          operator: In
          values: [frontend, backend]
        - key: canary
          operator: DoesNotExist
  - resource: cronjobs
authorities:
  - static:
      action: pass
`,
  'signatureFormat bundle and legacy': `
images:
  - glob: "**"
authorities:
  - name: bundle
    signatureFormat: bundle
    keyless:
      trustRootRef: private-sigstore
      identities:
        - issuer: https://issuer.example.com
          subject: builder@example.com
    ctlog:
      trustRootRef: private-sigstore
    rfc3161timestamp:
      trustRootRef: private-sigstore
  - name: legacy
    signatureFormat: legacy
    key:
      data: |
        ${indent(PUBLIC_KEY, 8)}
`,
};

/** base64 of a PEM-shaped text; the CRD checks the encoding, the loader the certificates. */
const b64 = (label: string): string =>
  Buffer.from(`-----BEGIN CERTIFICATE-----\n${Buffer.from(label).toString('base64')}\n-----END CERTIFICATE-----\n`).toString('base64');

/** Chainguard Enforce Signing's example, filled for a Waxseal instance: keyless with TSA, no log. */
export const SEED_POLICY = `
apiVersion: policy.sigstore.dev/v1beta1
kind: ClusterImagePolicy
metadata:
  name: waxseal-signed
spec:
  images:
    - glob: "registry.example.com/**"
  authorities:
    - keyless:
        trustRootRef: waxseal-dev
        url: https://waxseal.example.com
        identities:
          - issuer: https://waxseal.example.com/oidc
            subject: dev@waxseal.test
        insecureIgnoreSCT: true
      rfc3161timestamp:
        trustRootRef: waxseal-dev
---
apiVersion: policy.sigstore.dev/v1alpha1
kind: TrustRoot
metadata:
  name: waxseal-dev
spec:
  sigstoreKeys:
    certificateAuthorities:
      - subject:
          organization: Waxseal
          commonName: Waxseal dev CA
        uri: https://waxseal.example.com
        certChain: ${b64('ca chain')}
    timestampAuthorities:
      - subject:
          organization: Waxseal
          commonName: Waxseal dev TSA
        uri: https://waxseal.example.com
        certChain: ${b64('tsa chain')}
`;

/** TrustRoots in the other shapes policy-controller documents. */
export const EXAMPLE_TRUST_ROOTS = `
apiVersion: policy.sigstore.dev/v1alpha1
kind: TrustRoot
metadata:
  name: tuf-remote
spec:
  remote:
    mirror: https://tuf.example.com
    root: ${Buffer.from('{"signed":{},"signatures":[]}').toString('base64')}
---
apiVersion: policy.sigstore.dev/v1alpha1
kind: TrustRoot
metadata:
  name: air-gapped
spec:
  repository:
    root: ${Buffer.from('{"signed":{},"signatures":[]}').toString('base64')}
    mirrorFS: ${Buffer.from('not really a tarball').toString('base64')}
    targets: targets
    trustedRootTarget: trusted_root.json
---
apiVersion: policy.sigstore.dev/v1alpha1
kind: TrustRoot
metadata:
  name: byo-full
spec:
  sigstoreKeys:
    certificateAuthorities:
      - subject: {organization: fulcio-organization, commonName: fulcio-common-name}
        uri: https://fulcio.example.com
        certChain: ${b64('fulcio')}
    ctLogs:
      - baseURL: https://ctfe.example.com
        hashAlgorithm: sha-256
        publicKey: ${b64('ctfe key')}
    tLogs:
      - baseURL: https://rekor.example.com
        hashAlgorithm: sha-256
        publicKey: ${b64('rekor key')}
    timestampAuthorities:
      - subject: {organization: tsa-organization, commonName: tsa-common-name}
        uri: https://tsa.example.com
        certChain: ${b64('tsa')}
---
apiVersion: policy.sigstore.dev/v1alpha1
kind: TrustRoot
metadata:
  name: tsa-only
spec:
  sigstoreKeys:
    certificateAuthorities: []
    timestampAuthorities:
      - subject: {organization: example.dev, commonName: example-tsa}
        uri: https://tsa.example.dev
        certChain: ${b64('tsa')}
`;

/** A full resource around a spec. */
export function resource(apiVersion: string, kind: string, name: string, specYaml: string, namespace?: string): Obj {
  const [spec] = yamlDocs(specYaml, name);
  return { apiVersion, kind, metadata: namespace ? { name, namespace } : { name }, spec: spec! };
}

export const CIP_VERSIONS = ['policy.sigstore.dev/v1alpha1', 'policy.sigstore.dev/v1beta1'];
export const IMAGE_POLICY = 'policy.waxseal.dev/v1alpha1';

// ---- malformed resources: what the CRDs must reject ----

// [what, spec YAML, a fragment of the expected error]
export const MALFORMED_CIPS: [string, string, string][] = [
  ['images missing', 'authorities: [{static: {action: pass}}]', "required property 'images'"],
  ['images empty', 'images: []\nauthorities: [{static: {action: pass}}]', 'fewer than 1'],
  ['images not a list', 'images: {glob: "**"}\nauthorities: [{static: {action: pass}}]', '/spec/images must be array'],
  ['glob missing', 'images: [{}]\nauthorities: [{static: {action: pass}}]', "required property 'glob'"],
  ['glob a number', 'images: [{glob: 42}]\nauthorities: [{static: {action: pass}}]', '/spec/images/0/glob must be string'],
  ['mode unknown', 'images: [{glob: "**"}]\nmode: audit\nauthorities: [{static: {action: pass}}]', '/spec/mode must be equal to one of'],
  ['static action unknown', 'images: [{glob: "**"}]\nauthorities: [{static: {action: allow}}]', '/static/action must be equal to one of'],
  ['static action missing', 'images: [{glob: "**"}]\nauthorities: [{static: {message: hi}}]', "required property 'action'"],
  ['authority with nothing', 'images: [{glob: "**"}]\nauthorities: [{name: empty}]', "required property 'key'"],
  [
    'authority with key and keyless',
    'images: [{glob: "**"}]\nauthorities: [{key: {kms: "gcpkms://k"}, keyless: {identities: [{issuer: i, subject: s}]}}]',
    'must match exactly one schema in oneOf',
  ],
  [
    'static with attestations',
    'images: [{glob: "**"}]\nauthorities: [{static: {action: pass}, attestations: [{name: a, predicateType: https://x}]}]',
    '/spec/authorities/0 must match a schema in anyOf',
  ],
  [
    'static with rfc3161timestamp',
    'images: [{glob: "**"}]\nauthorities: [{static: {action: pass}, rfc3161timestamp: {trustRootRef: t}}]',
    'must match a schema in anyOf',
  ],
  ['key with nothing', 'images: [{glob: "**"}]\nauthorities: [{key: {hashAlgorithm: sha256}}]', "required property 'data'"],
  [
    'key with data and kms',
    'images: [{glob: "**"}]\nauthorities: [{key: {data: pem, kms: "gcpkms://k"}}]',
    '/key must match exactly one schema in oneOf',
  ],
  [
    'key hashAlgorithm unknown',
    'images: [{glob: "**"}]\nauthorities: [{key: {data: pem, hashAlgorithm: md5}}]',
    '/key/hashAlgorithm must match pattern',
  ],
  ['kms provider unknown', 'images: [{glob: "**"}]\nauthorities: [{key: {kms: "vault://k"}}]', '/key/kms must match pattern'],
  ['secretRef without a name', 'images: [{glob: "**"}]\nauthorities: [{key: {secretRef: {namespace: x}}}]', "required property 'name'"],
  ['keyless identities missing', 'images: [{glob: "**"}]\nauthorities: [{keyless: {url: https://f}}]', "required property 'identities'"],
  ['keyless identities empty', 'images: [{glob: "**"}]\nauthorities: [{keyless: {url: https://f, identities: []}}]', 'fewer than 1'],
  [
    'keyless url and ca-cert',
    'images: [{glob: "**"}]\nauthorities: [{keyless: {url: https://f, ca-cert: {data: pem}, identities: [{issuer: i, subject: s}]}}]',
    '/keyless must NOT be valid',
  ],
  [
    'identity without a subject',
    'images: [{glob: "**"}]\nauthorities: [{keyless: {identities: [{issuer: i}]}}]',
    "required property 'subject'",
  ],
  [
    'identity with issuer and issuerRegExp',
    'images: [{glob: "**"}]\nauthorities: [{keyless: {identities: [{issuer: i, issuerRegExp: ".*", subject: s}]}}]',
    '/identities/0 must match exactly one schema in oneOf',
  ],
  [
    'insecureIgnoreSCT a string',
    'images: [{glob: "**"}]\nauthorities: [{keyless: {insecureIgnoreSCT: "yes", identities: [{issuer: i, subject: s}]}}]',
    '/insecureIgnoreSCT must be boolean',
  ],
  ['two sources', 'images: [{glob: "**"}]\nauthorities: [{key: {data: pem}, source: [{oci: a.io/x}, {oci: b.io/y}]}]', 'more than 1'],
  [
    'signaturePullSecrets without a name',
    'images: [{glob: "**"}]\nauthorities: [{key: {data: pem}, source: [{oci: a.io/x, signaturePullSecrets: [{}]}]}]',
    "required property 'name'",
  ],
  [
    'signatureFormat unknown',
    'images: [{glob: "**"}]\nauthorities: [{key: {data: pem}, signatureFormat: protobuf}]',
    '/signatureFormat must be equal to one of',
  ],
  [
    'attestation without predicateType',
    'images: [{glob: "**"}]\nauthorities: [{key: {data: pem}, attestations: [{name: a}]}]',
    "required property 'predicateType'",
  ],
  [
    'attestation policy asking for the spec',
    'images: [{glob: "**"}]\nauthorities: [{key: {data: pem}, attestations: [{name: a, predicateType: https://x, policy: {type: cel, data: "true", includeSpec: true}}]}]',
    '/attestations/0/policy must NOT be valid',
  ],
  [
    'policy type unknown',
    'images: [{glob: "**"}]\nauthorities: [{static: {action: pass}}]\npolicy: {type: python, data: x}',
    '/spec/policy/type must be equal to one of',
  ],
  ['policy type missing', 'images: [{glob: "**"}]\nauthorities: [{static: {action: pass}}]\npolicy: {data: x}', "required property 'type'"],
  [
    'policy without a source',
    'images: [{glob: "**"}]\nauthorities: [{static: {action: pass}}]\npolicy: {type: cel}',
    "required property 'data'",
  ],
  [
    'policy with data and remote',
    'images: [{glob: "**"}]\nauthorities: [{static: {action: pass}}]\npolicy: {type: cel, data: x, remote: {url: "https://p/x", sha256sum: ab}}',
    '/spec/policy must match exactly one schema in oneOf',
  ],
  [
    'remote policy over http',
    'images: [{glob: "**"}]\nauthorities: [{static: {action: pass}}]\npolicy: {type: rego, remote: {url: "http://p/x", sha256sum: ab}}',
    '/spec/policy/remote/url must match pattern',
  ],
  [
    'remote policy without sha256sum',
    'images: [{glob: "**"}]\nauthorities: [{static: {action: pass}}]\npolicy: {type: rego, remote: {url: "https://p/x"}}',
    "required property 'sha256sum'",
  ],
  [
    'configMapRef without a key',
    'images: [{glob: "**"}]\nauthorities: [{static: {action: pass}}]\npolicy: {type: cel, configMapRef: {name: p}}',
    "required property 'key'",
  ],
  [
    'match resource unknown',
    'images: [{glob: "**"}]\nauthorities: [{static: {action: pass}}]\nmatch: [{resource: apples}]',
    '/spec/match/0/resource must be equal to one of',
  ],
  [
    'match selector without a resource',
    'images: [{glob: "**"}]\nauthorities: [{static: {action: pass}}]\nmatch: [{selector: {matchLabels: {a: b}}}]',
    '/spec/match/0 must match a schema in anyOf',
  ],
  [
    'match selector operator unknown',
    'images: [{glob: "**"}]\nauthorities: [{static: {action: pass}}]\nmatch: [{resource: pods, selector: {matchExpressions: [{key: a, operator: Contains}]}}]',
    '/operator must be equal to one of',
  ],
  [
    'matchLabels value not a string',
    'images: [{glob: "**"}]\nauthorities: [{static: {action: pass}}]\nmatch: [{resource: pods, selector: {matchLabels: {a: [b]}}}]',
    '/matchLabels/a must be string',
  ],
];

// [what, the TrustRoot's body (spec) YAML, a fragment of the expected error]
export const MALFORMED_TRUST_ROOTS: [string, string, string][] = [
  ['spec missing', '', "required property 'spec'"],
  ['none of remote, repository, sigstoreKeys', 'spec: {}', "required property 'remote'"],
  [
    'remote and sigstoreKeys',
    'spec: {remote: {mirror: https://m, root: e30=}, sigstoreKeys: {timestampAuthorities: []}}',
    'must match exactly one schema in oneOf',
  ],
  ['remote without a mirror', 'spec: {remote: {root: e30=}}', "required property 'mirror'"],
  ['repository without mirrorFS', 'spec: {repository: {root: e30=}}', "required property 'mirrorFS'"],
  ['root not base64', 'spec: {remote: {mirror: https://m, root: "{not base64}"}}', '/spec/remote/root must match format "byte"'],
  [
    'no certificate or timestamp authority',
    'spec: {sigstoreKeys: {certificateAuthorities: [], tLogs: []}}',
    'must match a schema in anyOf',
  ],
  [
    'CA without a subject',
    'spec: {sigstoreKeys: {certificateAuthorities: [{uri: https://f, certChain: QUJD}]}}',
    "required property 'subject'",
  ],
  [
    'CA subject without an organization',
    'spec: {sigstoreKeys: {certificateAuthorities: [{subject: {commonName: c}, uri: https://f, certChain: QUJD}]}}',
    "required property 'organization'",
  ],
  [
    'certChain not base64',
    'spec: {sigstoreKeys: {timestampAuthorities: [{subject: {organization: o, commonName: c}, uri: https://t, certChain: "-----BEGIN"}]}}',
    '/certChain must match format "byte"',
  ],
  [
    'tLog without a public key',
    'spec: {sigstoreKeys: {certificateAuthorities: [{subject: {organization: o, commonName: c}, uri: https://f, certChain: QUJD}], tLogs: [{baseURL: https://r, hashAlgorithm: sha-256}]}}',
    "required property 'publicKey'",
  ],
];
