// Writes the CustomResourceDefinitions of deploy/crds/ and deploy/helm/waxseal-admission/crds/ from
// the one schema below, so ClusterImagePolicy v1alpha1, v1beta1 and Waxseal's ImagePolicy cannot
// drift apart. Run `node deploy/crds/generate.ts` after editing; test/deploy checks the files match.
//
// The schemas are structural (every node typed, logic junctors only over `required`/`properties`/
// `not`), so the API server prunes unknown fields and rejects wrong types, unknown enum values,
// missing required fields and the exclusive-field combinations policy-controller's webhook
// rejects. What needs code (glob and RE2 syntax, PEM parsing, KMS URI shapes, CEL/CUE/Rego
// compilation) is left to the policy loader, as policy-controller leaves it to its webhook.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';

type Schema = Record<string, unknown>;

const str = (description: string, extra: Schema = {}): Schema => ({ type: 'string', description, ...extra });
const nonEmpty = (description: string, extra: Schema = {}): Schema => str(description, { minLength: 1, ...extra });
const bool = (description: string): Schema => ({ type: 'boolean', description });
const obj = (description: string, properties: Record<string, Schema>, extra: Schema = {}): Schema => ({
  type: 'object',
  description,
  properties,
  ...extra,
});
const arr = (description: string, items: Schema, extra: Schema = {}): Schema => ({ type: 'array', description, items, ...extra });
/** Exactly one of `names` is set. */
const exactlyOne = (names: string[]): Schema => ({ oneOf: names.map((n) => ({ required: [n] })) });
/** At most one of `names` is set. */
const atMostOne = (names: string[]): Schema => ({
  not: { anyOf: names.flatMap((a, i) => names.slice(i + 1).map((b) => ({ required: [a, b] }))) },
});
/** When `when` is set, none of `forbidden` may be. */
const excludes = (when: string, forbidden: string[]): Schema => ({
  anyOf: [{ not: { required: [when] } }, { not: { anyOf: forbidden.map((f) => ({ required: [f] })) } }],
});

// policy-controller's signaturealgo.HashAlgorithm lower-cases and trims before its lookup.
const HASH_ALGORITHM = '^\\s*[sS][hH][aA](224|256|384|512)\\s*$';
// common.SupportedKMSProviders; the AWS ARN shape is checked by the loader.
const KMS = '^(gcpkms|awskms|azurekms|hashivault|openbao)://';
// cmd/webhook/main.go's ValidResourceNames: the kinds the webhook reviews.
const RESOURCES = ['pods', 'deployments', 'replicasets', 'statefulsets', 'daemonsets', 'jobs', 'cronjobs'];
// CEL is Waxseal's first-class policy language; cue and rego are policy-controller's.
const POLICY_TYPES = ['cel', 'cue', 'rego'];

const secretRef = obj(
  'A Secret in the admission controller namespace; its first key holds the PEM public key.',
  {
    name: nonEmpty('The Secret name.'),
    namespace: str('Must be empty or the controller namespace (policy-controller rejects other namespaces).'),
  },
  { required: ['name'] },
);

const keyRef = (what: string): Schema =>
  obj(
    what,
    {
      data: nonEmpty('The PEM public key (or, for ca-cert, the PEM certificate chain), inline.'),
      kms: nonEmpty('A KMS key URI: gcpkms://, awskms://[endpoint]/{id|alias|ARN}, azurekms://, hashivault://, openbao://.', {
        pattern: KMS,
      }),
      secretRef,
      hashAlgorithm: str('sha224, sha256 (default), sha384 or sha512.', { pattern: HASH_ALGORITHM }),
    },
    exactlyOne(['data', 'kms', 'secretRef']),
  );

const identity = obj(
  'One accepted signer: an issuer form and a subject form, each exact or an RE2 regular expression.',
  {
    issuer: nonEmpty('The OIDC issuer, exactly.'),
    issuerRegExp: nonEmpty('An RE2 regular expression the OIDC issuer must match.'),
    subject: nonEmpty('The certificate subject (SAN), exactly.'),
    subjectRegExp: nonEmpty('An RE2 regular expression the certificate subject must match.'),
  },
  { allOf: [exactlyOne(['issuer', 'issuerRegExp']), exactlyOne(['subject', 'subjectRegExp'])] },
);

const keyless = obj(
  'Verify Fulcio-style certificates: the CA from `url` (a Fulcio URL) or `ca-cert`, or from trustRootRef.',
  {
    url: nonEmpty('The CA (Fulcio) URL; policy-controller defaults it to the public Fulcio when neither url nor ca-cert is set.'),
    'ca-cert': keyRef('The CA certificate chain, inline (data) or from a Secret.'),
    identities: arr('The accepted signers (any one).', identity, { minItems: 1 }),
    trustRootRef: nonEmpty('Take the CA (and CT log) material from this TrustRoot.'),
    insecureIgnoreSCT: bool('Skip the embedded-SCT check (private CAs without a CT log).'),
  },
  { required: ['identities'], ...atMostOne(['url', 'ca-cert']) },
);

const configMapRef = obj(
  'A ConfigMap key holding the policy.',
  {
    name: nonEmpty('The ConfigMap name.'),
    namespace: str('The ConfigMap namespace.'),
    key: nonEmpty('The key holding the policy text.'),
  },
  { required: ['name', 'key'] },
);

const remotePolicy = obj(
  'A policy fetched over HTTPS and pinned by digest.',
  {
    url: nonEmpty('An https:// URL.', { pattern: '^https://[^/?#]+' }),
    sha256sum: nonEmpty('The hex SHA-256 of the response body.'),
  },
  { required: ['url', 'sha256sum'] },
);

const policySource = {
  type: str('The policy language: cel (Waxseal), cue or rego (policy-controller).', { enum: POLICY_TYPES }),
  data: nonEmpty('The policy text, inline.'),
  configMapRef,
  remote: remotePolicy,
};

// Only the CIP-level policy may ask for the config file, spec and metadata (policy-controller
// rejects these fields on an attestation's policy rather than ignoring them).
const CIP_ONLY = ['fetchConfigFile', 'includeSpec', 'includeObjectMeta', 'includeTypeMeta'];

const attestationPolicy = obj(
  "A policy evaluated against each verified in-toto statement of this attestation's predicate type.",
  {
    ...policySource,
    ...Object.fromEntries(CIP_ONLY.map((f) => [f, bool('Only valid on the ClusterImagePolicy-level policy; rejected here.')])),
  },
  {
    required: ['type'],
    allOf: [exactlyOne(['data', 'configMapRef', 'remote']), { not: { anyOf: CIP_ONLY.map((f) => ({ required: [f] })) } }],
  },
);

const cipPolicy = obj(
  'Evaluated over {authorityMatches, config, spec, metadata, typemeta} once at least one authority matched (k-of-n, signature and attestation).',
  {
    ...policySource,
    fetchConfigFile: bool("Fetch the image's OCI config file into `config` (keyed by os/arch)."),
    includeSpec: bool("Include the reviewed resource's spec."),
    includeObjectMeta: bool("Include the reviewed resource's metadata."),
    includeTypeMeta: bool("Include the reviewed resource's apiVersion and kind."),
  },
  { required: ['type'], ...exactlyOne(['data', 'configMapRef', 'remote']) },
);

const authority = obj(
  'One way to satisfy the policy; any one authority passing satisfies it (subject to spec.policy).',
  {
    name: nonEmpty('Referenced by spec.policy as authorityMatches.<name>; defaults to authority-<index>.'),
    key: keyRef('Verify signatures with a public key.'),
    keyless,
    static: obj(
      'Pass or fail every matching image without cryptography.',
      {
        action: str('pass or fail.', { enum: ['pass', 'fail'] }),
        message: str('The denial message of a fail action.'),
      },
      { required: ['action'] },
    ),
    source: arr(
      'Where signatures and attestations live (one source only).',
      obj('A signature repository.', {
        oci: nonEmpty('The repository holding the signatures (the COSIGN_REPOSITORY equivalent).'),
        signaturePullSecrets: arr(
          "dockerconfigjson Secrets in the reviewed resource's namespace for pulling the signatures.",
          obj('A Secret reference.', { name: nonEmpty('The Secret name.') }, { required: ['name'] }),
        ),
        tagPrefix: str('A prefix of the signature and attestation tags.'),
      }),
      { maxItems: 1 },
    ),
    ctlog: obj('The transparency log (Rekor, despite the name).', {
      url: nonEmpty('The Rekor URL.'),
      trustRootRef: nonEmpty("Take the log's public key from this TrustRoot's tLogs."),
    }),
    rfc3161timestamp: obj('Verify RFC 3161 timestamps instead of the transparency log.', {
      trustRootRef: nonEmpty("Take the timestamp authorities from this TrustRoot's timestampAuthorities."),
    }),
    attestations: arr(
      'Verify attestations (instead of signatures) of these predicate types.',
      obj(
        'An attestation requirement.',
        {
          name: nonEmpty('Referenced by spec.policy as authorityMatches.<authority>.attestations.<name>.'),
          predicateType: nonEmpty('An RFC 3986 URI (short aliases such as slsaprovenance are deprecated).'),
          policy: attestationPolicy,
        },
        { required: ['name', 'predicateType'] },
      ),
    ),
    signatureFormat: str('legacy (cosign .sig tags) or bundle (Sigstore bundles as OCI referrers); both when unset.', {
      enum: ['legacy', 'bundle'],
    }),
  },
  {
    allOf: [exactlyOne(['key', 'keyless', 'static']), excludes('static', ['attestations', 'source', 'ctlog', 'rfc3161timestamp'])],
  },
);

const labelSelector = obj('A label selector over the reviewed resource.', {
  matchLabels: { type: 'object', description: 'Labels that must all be equal.', additionalProperties: { type: 'string' } },
  matchExpressions: arr(
    'Requirements that must all hold.',
    obj(
      'A label requirement.',
      {
        key: nonEmpty('The label key.'),
        operator: str('In, NotIn, Exists or DoesNotExist.', { enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'] }),
        values: arr('The values for In and NotIn.', { type: 'string' }),
      },
      { required: ['key', 'operator'] },
    ),
  ),
});

const matchResource = obj(
  'A resource kind (and optionally labels) this policy applies to.',
  {
    group: str('The API group ("" for core, apps, batch).'),
    version: str('The API version.'),
    resource: str('The resource.', { enum: RESOURCES }),
    selector: labelSelector,
  },
  // policy-controller: "selector requires a resource type to match the labels".
  { anyOf: [{ not: { required: ['selector'] } }, { required: ['resource'] }, { required: ['version'] }, { required: ['group'] }] },
);

function policySpec(description: string): Schema {
  return obj(
    description,
    {
      images: arr(
        'The image patterns this policy applies to.',
        obj(
          'An image pattern.',
          {
            glob: nonEmpty('filepath.Match syntax plus **; a host-less glob means index.docker.io, a single path element gets library/.'),
          },
          { required: ['glob'] },
        ),
        { minItems: 1 },
      ),
      authorities: arr('The authorities; any one passing satisfies the policy (OR).', authority),
      policy: cipPolicy,
      mode: str('enforce (default) denies on failure; warn admits with warnings.', { enum: ['enforce', 'warn'], default: 'enforce' }),
      match: arr('Restrict the policy to these resource kinds and labels (all kinds when empty).', matchResource),
    },
    { required: ['images'] },
  );
}

const status = obj('The reconciler-observed state.', {
  observedGeneration: { type: 'integer', format: 'int64', description: 'The generation last processed.' },
  conditions: arr(
    'Ready, KeysInlined, PoliciesInlined, ConfigMapUpdated.',
    obj(
      'A condition.',
      {
        type: nonEmpty('The condition type.'),
        status: str('True, False or Unknown.', { enum: ['True', 'False', 'Unknown'] }),
        severity: str('Error (default), Warning or Info.'),
        lastTransitionTime: str('When the status last changed (RFC 3339).'),
        reason: str('A CamelCase reason.'),
        message: str('A human-readable message.'),
      },
      { required: ['type', 'status'] },
    ),
  ),
  annotations: { type: 'object', description: 'Extra state.', additionalProperties: { type: 'string' } },
});

function root(kind: string, spec: Schema): Schema {
  return {
    type: 'object',
    description: kind,
    required: ['spec'],
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: { type: 'object' },
      spec,
      status,
    },
  };
}

const b64 = (description: string): Schema => str(description, { format: 'byte', minLength: 1 });

const certificateAuthority = (what: string): Schema =>
  obj(
    what,
    {
      subject: obj(
        'The distinguished name.',
        { organization: nonEmpty('O.'), commonName: nonEmpty('CN.') },
        { required: ['organization', 'commonName'] },
      ),
      uri: nonEmpty('The service URL.'),
      certChain: b64('The PEM chain, base64: leaf or intermediates first, the root last.'),
    },
    { required: ['subject', 'uri', 'certChain'] },
  );

const tlog = (what: string): Schema =>
  obj(
    what,
    {
      baseURL: nonEmpty('The log URL.'),
      hashAlgorithm: nonEmpty('The Merkle tree hash algorithm (sha-256).'),
      publicKey: b64("The log's PEM public key, base64."),
    },
    { required: ['baseURL', 'hashAlgorithm', 'publicKey'] },
  );

const tufRoot = b64('The trusted TUF root.json, base64.');
const trustRootSpec = obj(
  'Exactly one of remote, repository or sigstoreKeys.',
  {
    remote: obj(
      'A TUF mirror kept up to date (key rotation).',
      {
        root: tufRoot,
        mirror: nonEmpty('The TUF mirror URL.'),
        targets: str('The targets directory (default targets).'),
        trustedRootTarget: str('The trusted root target name (default trusted_root.json).'),
      },
      { required: ['root', 'mirror'] },
    ),
    repository: obj(
      'An air-gapped TUF repository: no outbound calls, manual updates.',
      {
        root: tufRoot,
        mirrorFS: b64('A tar.gz of the TUF repository (metadata and targets), base64.'),
        targets: str('The targets directory (default targets).'),
        trustedRootTarget: str('The trusted root target name (default trusted_root.json).'),
      },
      { required: ['root', 'mirrorFS'] },
    ),
    sigstoreKeys: obj(
      'Bring your own keys: certificate authorities and/or timestamp authorities, logs optional.',
      {
        certificateAuthorities: arr('Fulcio-style CAs.', certificateAuthority('A certificate authority.')),
        timestampAuthorities: arr('RFC 3161 timestamp authorities.', certificateAuthority('A timestamp authority (at most one leaf).')),
        tLogs: arr('Transparency logs (Rekor).', tlog('A transparency log.')),
        ctLogs: arr('Certificate transparency logs.', tlog('A CT log.')),
      },
      {
        anyOf: [
          { required: ['certificateAuthorities'], properties: { certificateAuthorities: { minItems: 1 } } },
          { required: ['timestampAuthorities'], properties: { timestampAuthorities: { minItems: 1 } } },
        ],
      },
    ),
  },
  exactlyOne(['remote', 'repository', 'sigstoreKeys']),
);

interface CrdInput {
  group: string;
  kind: string;
  plural: string;
  singular: string;
  scope: 'Cluster' | 'Namespaced';
  shortNames: string[];
  versions: string[];
  schema: Schema;
}

const HEADER = '# Generated by deploy/crds/generate.ts from one schema: edit that file, then run `node deploy/crds/generate.ts`.\n';

function crd(c: CrdInput): Schema {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${c.plural}.${c.group}`, labels: { 'app.kubernetes.io/part-of': 'waxseal' } },
    spec: {
      group: c.group,
      names: {
        kind: c.kind,
        listKind: `${c.kind}List`,
        plural: c.plural,
        singular: c.singular,
        ...(c.shortNames.length > 0 ? { shortNames: c.shortNames } : {}),
        categories: ['sigstore'],
      },
      scope: c.scope,
      // The versions share one schema, so the API server converts between them by rewriting
      // apiVersion alone: no conversion webhook to run.
      conversion: { strategy: 'None' },
      versions: c.versions.map((name, i) => ({
        name,
        served: true,
        storage: i === 0,
        subresources: { status: {} },
        schema: { openAPIV3Schema: c.schema },
        additionalPrinterColumns: [
          { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
          { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
        ],
      })),
    },
  };
}

/** The three CRDs, by file name. */
export function crds(): Record<string, Schema> {
  return {
    'clusterimagepolicies.policy.sigstore.dev.yaml': crd({
      group: 'policy.sigstore.dev',
      kind: 'ClusterImagePolicy',
      plural: 'clusterimagepolicies',
      singular: 'clusterimagepolicy',
      scope: 'Cluster',
      shortNames: ['cip'],
      versions: ['v1alpha1', 'v1beta1'],
      schema: root('ClusterImagePolicy: which signatures and attestations images must carry, cluster-wide.', policySpec('The policy.')),
    }),
    'trustroots.policy.sigstore.dev.yaml': crd({
      group: 'policy.sigstore.dev',
      kind: 'TrustRoot',
      plural: 'trustroots',
      singular: 'trustroot',
      scope: 'Cluster',
      shortNames: [],
      versions: ['v1alpha1'],
      schema: root('TrustRoot: the CAs, timestamp authorities and logs that authorities refer to by trustRootRef.', trustRootSpec),
    }),
    'imagepolicies.policy.waxseal.dev.yaml': crd({
      group: 'policy.waxseal.dev',
      kind: 'ImagePolicy',
      plural: 'imagepolicies',
      singular: 'imagepolicy',
      scope: 'Namespaced',
      shortNames: [],
      versions: ['v1alpha1'],
      schema: root(
        'ImagePolicy: a ClusterImagePolicy that applies within its own namespace only, in addition to the cluster policies.',
        policySpec('The policy (the ClusterImagePolicy spec).'),
      ),
    }),
  };
}

/** The YAML text of each CRD file. */
export function crdFiles(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [file, doc] of Object.entries(crds())) out[file] = HEADER + stringify(doc, { lineWidth: 0, aliasDuplicateObjects: false });
  return out;
}

export const CRD_DIRS = ['deploy/crds', 'deploy/helm/waxseal-admission/crds'];

if (import.meta.main) {
  const repo = join(import.meta.dirname, '../..');
  for (const dir of CRD_DIRS) for (const [file, text] of Object.entries(crdFiles())) writeFileSync(join(repo, dir, file), text);
}
