import { test } from 'node:test';
import assert from 'node:assert/strict';
import { throwsWithCode } from '@waxseal/testkit';
import {
  parseIssuerConfig,
  lookupIssuer,
  buildPrincipal,
  metaIssuerRegex,
  githubActionsIssuerConfig,
  mergeIssuerConfigs,
  configurationView,
  joinUrlPath,
  isEmailAddress,
  GITHUB_ACTIONS_ISSUER_URL,
  type IssuerConfig,
} from './issuers.ts';
import { GITHUB_TOKEN_CLAIMS, EXPECTED_GITHUB_EXTENSIONS, configurationEntry } from '../test/fixtures.ts';

test('JSON (PascalCase) and YAML (kebab-case) configurations load the same issuer', () => {
  const fromJson = parseIssuerConfig(
    JSON.stringify({
      OIDCIssuers: {
        'https://accounts.example.com': { IssuerURL: 'https://accounts.example.com', Type: 'email', SkipEmailVerification: true },
      },
    }),
  );
  const fromYaml = parseIssuerConfig(
    'oidc-issuers:\n  https://accounts.example.com:\n    issuer-url: https://accounts.example.com\n    type: email\n    skip-email-verification: true\n',
  );
  for (const c of [fromJson, fromYaml]) {
    const i = lookupIssuer(c, 'https://accounts.example.com')!;
    assert.equal(i.type, 'email');
    assert.equal(i.clientId, 'sigstore', 'ClientID defaults to sigstore');
    assert.equal(i.challengeClaim, 'email');
    assert.equal(i.skipEmailVerification, true);
  }
});

test('YAML anchors and Fulcio-style alias keys (*name:) are understood', () => {
  const c = parseIssuerConfig(`
define:
  - &ci "my-ci"
oidc-issuers:
  https://ci.example.com:
    issuer-url: https://ci.example.com
    client-id: waxseal
    type: ci-provider
    ci-provider: *ci
ci-issuer-metadata:
  *ci:
    default-template-values:
      url: "https://ci.example.com"
    extension-templates:
      build-signer-uri: "{{ .url }}/{{ .job }}"
      runner-environment: "runner"
    subject-alternative-name-template: "{{ .url }}/{{ .job }}"
`);
  const i = lookupIssuer(c, 'https://ci.example.com')!;
  assert.equal(i.clientId, 'waxseal');
  const p = buildPrincipal(c, i, { iss: 'https://ci.example.com', sub: 's', job: 'j1', runner: 'hosted' });
  assert.deepEqual(p.san, { type: 'uri', value: 'https://ci.example.com/j1' });
  assert.deepEqual(p.extensions, { buildSignerURI: 'https://ci.example.com/j1', runnerEnvironment: 'hosted' });
});

test('invalid configurations fail closed with a precise ERR_CONFIG', () => {
  const cases: [string, unknown, RegExp][] = [
    ['unknown type', { OIDCIssuers: { 'https://a.example.com': { Type: 'magic' } } }, /unknown issuer type/],
    ['missing type', { OIDCIssuers: { 'https://a.example.com': {} } }, /Type is required/],
    ['unknown field', { OIDCIssuers: { 'https://a.example.com': { Type: 'email', SubjectDomian: 'x' } } }, /unknown field/],
    ['unknown top-level', { Issuers: {} }, /unknown field/],
    [
      'IssuerURL differs from key',
      { OIDCIssuers: { 'https://a.example.com': { IssuerURL: 'https://b.example.com', Type: 'email' } } },
      /differs/,
    ],
    [
      'issuer claim on a non-email issuer',
      { OIDCIssuers: { 'https://a.example.com': { Type: 'uri', SubjectDomain: 'https://a.example.com', IssuerClaim: '$.x' } } },
      /only email issuers/,
    ],
    ['uri without SubjectDomain', { OIDCIssuers: { 'https://a.example.com': { Type: 'uri' } } }, /SubjectDomain/],
    [
      'uri SubjectDomain without scheme',
      { OIDCIssuers: { 'https://a.example.com': { Type: 'uri', SubjectDomain: 'example.com' } } },
      /scheme/,
    ],
    [
      'uri SubjectDomain in another domain',
      { OIDCIssuers: { 'https://a.example.com': { Type: 'uri', SubjectDomain: 'https://example.org' } } },
      /top- and second-level/,
    ],
    ['uri scheme mismatch', { OIDCIssuers: { 'https://a.example.com': { Type: 'uri', SubjectDomain: 'http://a.example.com' } } }, /scheme/],
    [
      'username SubjectDomain with scheme',
      { OIDCIssuers: { 'https://a.example.com': { Type: 'username', SubjectDomain: 'https://example.com' } } },
      /must not contain a scheme/,
    ],
    [
      'username SubjectDomain in another domain',
      { OIDCIssuers: { 'https://a.example.com': { Type: 'username', SubjectDomain: 'evil.com' } } },
      /top- and second-level/,
    ],
    ['spiffe without trust domain', { OIDCIssuers: { 'https://a.example.com': { Type: 'spiffe' } } }, /SPIFFETrustDomain/],
    [
      'spiffe bad trust domain',
      { OIDCIssuers: { 'https://a.example.com': { Type: 'spiffe', SPIFFETrustDomain: 'Bad Domain' } } },
      /invalid/,
    ],
    [
      'spiffe as meta-issuer',
      { MetaIssuers: { 'https://*.example.com': { Type: 'spiffe', SPIFFETrustDomain: 'example.com' } } },
      /SPIFFE meta-issuers/,
    ],
    [
      'ci-provider without metadata',
      { OIDCIssuers: { 'https://a.example.com': { Type: 'ci-provider', CIProvider: 'nope' } } },
      /no ci-issuer-metadata/,
    ],
    ['ci-provider without CIProvider', { OIDCIssuers: { 'https://a.example.com': { Type: 'ci-provider' } } }, /needs CIProvider/],
    ['bad template', { CIIssuerMetadata: { x: { SubjectAlternativeNameTemplate: '{{ .a ' } } }, /unclosed action/],
    [
      'templated issuer extension',
      { CIIssuerMetadata: { x: { SubjectAlternativeNameTemplate: 'a', ExtensionTemplates: { Issuer: 'x' } } } },
      /comes from the token/,
    ],
    ['challenge claim', { OIDCIssuers: { 'https://a.example.com': { Type: 'email', ChallengeClaim: 'name' } } }, /ChallengeClaim/],
    ['non-http issuer', { OIDCIssuers: { 'ftp://a.example.com': { Type: 'email' } } }, /http/],
    ['meta-issuer without *', { MetaIssuers: { 'https://a.example.com': { Type: 'kubernetes' } } }, /must contain/],
    [
      'wildcard registered domain for uri',
      { MetaIssuers: { 'https://a.*': { Type: 'uri', SubjectDomain: 'https://a.example.com' } } },
      /registered domain/,
    ],
  ];
  for (const [name, doc, re] of cases) {
    throwsWithCode(() => parseIssuerConfig(JSON.stringify(doc)), 'ERR_CONFIG', re, name);
  }
  throwsWithCode(() => parseIssuerConfig('oidc-issuers: [unclosed'), 'ERR_CONFIG');
});

test('meta-issuer patterns: * matches one [-_a-zA-Z0-9]+ label, anchored, never . / ? or :', () => {
  const re = metaIssuerRegex('https://*.example.com');
  assert.ok(re.test('https://tenant-1.example.com'));
  for (const bad of [
    'https://evil.com/x',
    'https://a.b.example.com',
    'https://a.example.com/x',
    'https://a.example.com.evil.com',
    'http://localhost:3000?https://a.example.com',
    'https://evil.com?https://a.example.com',
    'https://evil.com#.example.com',
    'https://a:1.example.com',
    'https://.example.com',
    'xhttps://a.example.com',
  ]) {
    assert.ok(!re.test(bad), bad);
  }
  const eks = metaIssuerRegex('https://oidc.eks.*.amazonaws.com/id/*');
  assert.ok(eks.test('https://oidc.eks.us-west-2.amazonaws.com/id/B02C93B6A2D30341AD01E1B6D48164CB'));
  for (const bad of [
    'https://oidc.eks.us-west-2.amazonaws.com/id/ABC/../../evil',
    'https://oidc.eks.us-west-2.amazonaws.com/id/ABC.evil.com',
    'https://oidc.eks.evil.com/x.amazonaws.com/id/ABC',
    'https://oidc.eksXus-west-2.amazonaws.com/id/ABC',
    'https://oidc.eks.us-west-2.amazonawsXcom/id/ABC',
  ]) {
    assert.ok(!eks.test(bad), bad);
  }
});

test('lookup: exact match first, then meta-issuers with the concrete iss as the issuer URL', () => {
  const c = parseIssuerConfig(
    JSON.stringify({
      OIDCIssuers: { 'https://k8s.example.com': { Type: 'email' } },
      MetaIssuers: { 'https://*.example.com': { Type: 'kubernetes', ClientID: 'cluster' } },
    }),
  );
  assert.equal(lookupIssuer(c, 'https://k8s.example.com')!.type, 'email');
  const m = lookupIssuer(c, 'https://east.example.com')!;
  assert.equal(m.type, 'kubernetes');
  assert.equal(m.issuerUrl, 'https://east.example.com');
  assert.equal(m.wildcardIssuerUrl, 'https://*.example.com');
  assert.equal(m.clientId, 'cluster');
  assert.equal(lookupIssuer(c, 'https://a.b.example.com'), undefined);
  assert.equal(lookupIssuer(c, 'https://evil.com/x'), undefined);
  assert.equal(lookupIssuer(c, '__proto__'), undefined);
  assert.equal(lookupIssuer(c, 'constructor'), undefined);
});

const one = (doc: unknown): IssuerConfig => parseIssuerConfig(JSON.stringify(doc));

test('email principal: verified address, IssuerClaim mapping, skip flag, bad addresses', () => {
  const c = one({
    OIDCIssuers: {
      'https://dex.example.com/auth': { Type: 'email', IssuerClaim: '$.federated_claims.connector_id' },
      'https://entra.example.com': { Type: 'email', SkipEmailVerification: true },
    },
  });
  const dex = lookupIssuer(c, 'https://dex.example.com/auth')!;
  const claims = {
    iss: 'https://dex.example.com/auth',
    sub: 'CgQ',
    email: 'dev@example.com',
    email_verified: true,
    federated_claims: { connector_id: 'https://github.com/login/oauth', user_id: '1' },
  };
  const p = buildPrincipal(c, dex, claims);
  assert.deepEqual(p.san, { type: 'email', value: 'dev@example.com' });
  assert.equal(p.challenge, 'dev@example.com');
  assert.equal(p.issuer, 'https://github.com/login/oauth');
  assert.equal(p.subject, 'CgQ');
  assert.equal(buildPrincipal(c, dex, { ...claims, email_verified: 'true' }).challenge, 'dev@example.com');
  throwsWithCode(() => buildPrincipal(c, dex, { ...claims, email_verified: false }), 'ERR_IDENTITY_CLAIMS', /email_verified/);
  throwsWithCode(() => buildPrincipal(c, dex, { ...claims, email_verified: undefined }), 'ERR_IDENTITY_CLAIMS');
  throwsWithCode(() => buildPrincipal(c, dex, { ...claims, federated_claims: {} }), 'ERR_IDENTITY_CLAIMS');
  throwsWithCode(() => buildPrincipal(c, dex, { ...claims, email: undefined }), 'ERR_IDENTITY_CLAIMS', /email claim/);
  for (const bad of ['not-an-email', 'a@b', 'a b@example.com', 'ü@example.com', 'a@@example.com', '.a@example.com']) {
    throwsWithCode(() => buildPrincipal(c, dex, { ...claims, email: bad }), 'ERR_IDENTITY_CLAIMS', undefined, bad);
  }
  const entra = lookupIssuer(c, 'https://entra.example.com')!;
  assert.equal(buildPrincipal(c, entra, { iss: 'https://entra.example.com', email: 'x@example.com' }).issuer, 'https://entra.example.com');
});

test('uri, username, spiffe and kubernetes principals enforce their rules', () => {
  const c = one({
    OIDCIssuers: {
      'https://accounts.example.com': { Type: 'uri', SubjectDomain: 'https://users.example.com' },
      'https://login.example.com': { Type: 'username', SubjectDomain: 'example.com' },
      'https://spire.example.org': { Type: 'spiffe', SPIFFETrustDomain: 'example.org' },
    },
    MetaIssuers: { 'https://oidc.eks.*.amazonaws.com/id/*': { Type: 'kubernetes' } },
  });
  const uri = lookupIssuer(c, 'https://accounts.example.com')!;
  const u = buildPrincipal(c, uri, { iss: uri.issuerUrl, sub: 'https://users.example.com/alice' });
  assert.deepEqual(u.san, { type: 'uri', value: 'https://users.example.com/alice' });
  assert.equal(u.challenge, 'https://users.example.com/alice');
  for (const bad of [
    'https://evil.com/alice',
    'http://users.example.com/alice',
    'alice@example.com',
    'https://users.example.com\\@evil.com',
    'https://users.example.com/a b',
  ]) {
    throwsWithCode(() => buildPrincipal(c, uri, { iss: uri.issuerUrl, sub: bad }), 'ERR_IDENTITY_CLAIMS', undefined, bad);
  }

  const un = lookupIssuer(c, 'https://login.example.com')!;
  const p = buildPrincipal(c, un, { iss: un.issuerUrl, sub: 'alice' });
  assert.deepEqual(p.san, { type: 'otherName', value: 'alice!example.com' });
  assert.equal(p.challenge, 'alice');
  throwsWithCode(() => buildPrincipal(c, un, { iss: un.issuerUrl, sub: 'alice!evil.com' }), 'ERR_IDENTITY_CLAIMS');
  throwsWithCode(() => buildPrincipal(c, un, { iss: un.issuerUrl, sub: 'alice@example.com' }), 'ERR_IDENTITY_CLAIMS');
  throwsWithCode(() => buildPrincipal(c, un, { iss: un.issuerUrl }), 'ERR_IDENTITY_CLAIMS');

  const sp = lookupIssuer(c, 'https://spire.example.org')!;
  assert.deepEqual(buildPrincipal(c, sp, { iss: sp.issuerUrl, sub: 'spiffe://example.org/ns/prod/sa/builder' }).san, {
    type: 'uri',
    value: 'spiffe://example.org/ns/prod/sa/builder',
  });
  for (const bad of [
    'spiffe://other.org/x',
    'spiffe://example.org/../x',
    'spiffe://example.org/x/',
    'https://example.org/x',
    'spiffe://Example.org/x',
  ]) {
    throwsWithCode(() => buildPrincipal(c, sp, { iss: sp.issuerUrl, sub: bad }), 'ERR_IDENTITY_CLAIMS', undefined, bad);
  }

  const k8sIss = 'https://oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF';
  const k8s = lookupIssuer(c, k8sIss)!;
  const k = buildPrincipal(c, k8s, {
    iss: k8sIss,
    sub: 'system:serviceaccount:build:signer',
    'kubernetes.io': { namespace: 'build', serviceaccount: { name: 'signer', uid: 'u' } },
  });
  assert.deepEqual(k.san, { type: 'uri', value: 'https://kubernetes.io/namespaces/build/serviceaccounts/signer' });
  assert.equal(k.challenge, 'system:serviceaccount:build:signer');
  assert.equal(k.issuer, k8sIss);
  throwsWithCode(
    () => buildPrincipal(c, k8s, { iss: k8sIss, sub: 's', 'kubernetes.io': { namespace: '../x', serviceaccount: { name: 'a' } } }),
    'ERR_IDENTITY_CLAIMS',
  );
  throwsWithCode(() => buildPrincipal(c, k8s, { iss: k8sIss, sub: 's' }), 'ERR_IDENTITY_CLAIMS');
});

test('GitHub Actions through the built-in ci-provider templates gives public-good values', () => {
  const gh = githubActionsIssuerConfig();
  const issuer = lookupIssuer(gh, GITHUB_ACTIONS_ISSUER_URL)!;
  assert.equal(issuer.type, 'ci-provider');
  const p = buildPrincipal(gh, issuer, GITHUB_TOKEN_CLAIMS);
  assert.deepEqual(p.san, { type: 'uri', value: EXPECTED_GITHUB_EXTENSIONS.buildSignerURI });
  assert.equal(p.challenge, GITHUB_TOKEN_CLAIMS.sub);
  assert.equal(p.issuer, GITHUB_ACTIONS_ISSUER_URL);
  assert.equal(p.subject, GITHUB_TOKEN_CLAIMS.sub);
  assert.deepEqual(p.extensions, { ...EXPECTED_GITHUB_EXTENSIONS, deploymentEnvironment: 'prod' });
  // No environment claim: the "" default makes the extension absent, not an error.
  const { environment: _e, ...noEnv } = GITHUB_TOKEN_CLAIMS;
  assert.deepEqual(buildPrincipal(gh, issuer, noEnv).extensions, EXPECTED_GITHUB_EXTENSIONS);
  // A missing claim with no default is an error.
  const { job_workflow_ref: _j, ...noRef } = GITHUB_TOKEN_CLAIMS;
  throwsWithCode(() => buildPrincipal(gh, issuer, noRef), 'ERR_IDENTITY_CLAIMS', /job_workflow_ref/);
  // Numbers print as integers (run_id as a JSON number).
  assert.equal(
    buildPrincipal(gh, issuer, { ...GITHUB_TOKEN_CLAIMS, run_id: 2002, run_attempt: 1 }).extensions.runInvocationURI,
    EXPECTED_GITHUB_EXTENSIONS.runInvocationURI,
  );
  // GitHub Enterprise unique issuer URLs match the meta-issuer.
  const ghes = lookupIssuer(gh, `${GITHUB_ACTIONS_ISSUER_URL}/octo-enterprise`)!;
  assert.equal(ghes.type, 'ci-provider');
  assert.equal(lookupIssuer(gh, `${GITHUB_ACTIONS_ISSUER_URL}/a/b`), undefined);
});

test('legacy github-workflow, gitlab-pipeline and buildkite-job types', () => {
  const c = one({
    OIDCIssuers: {
      [GITHUB_ACTIONS_ISSUER_URL]: { Type: 'github-workflow' },
      'https://gitlab.com': { Type: 'gitlab-pipeline' },
      'https://agent.buildkite.com': { Type: 'buildkite-job' },
    },
  });
  const gh = buildPrincipal(c, lookupIssuer(c, GITHUB_ACTIONS_ISSUER_URL)!, GITHUB_TOKEN_CLAIMS);
  assert.deepEqual(gh.extensions, EXPECTED_GITHUB_EXTENSIONS);
  assert.equal(gh.san.value, EXPECTED_GITHUB_EXTENSIONS.buildSignerURI);
  throwsWithCode(
    () => buildPrincipal(c, lookupIssuer(c, GITHUB_ACTIONS_ISSUER_URL)!, { ...GITHUB_TOKEN_CLAIMS, run_attempt: undefined }),
    'ERR_IDENTITY_CLAIMS',
  );

  const glClaims = {
    iss: 'https://gitlab.com',
    sub: 'project_path:g/p:ref_type:branch:ref:main',
    project_path: 'g/p',
    project_id: '1',
    pipeline_source: 'push',
    pipeline_id: '2',
    ci_config_ref_uri: 'gitlab.com/g/p//.gitlab-ci.yml@refs/heads/main',
    ci_config_sha: 'cfg',
    namespace_path: 'g',
    namespace_id: '3',
    job_id: '4',
    ref: 'main',
    ref_type: 'branch',
    sha: 'abc',
    runner_environment: 'gitlab-hosted',
    runner_id: 5,
    project_visibility: 'public',
  };
  const gl = buildPrincipal(c, lookupIssuer(c, 'https://gitlab.com')!, glClaims);
  assert.equal(gl.san.value, 'https://gitlab.com/g/p//.gitlab-ci.yml@refs/heads/main');
  assert.equal(gl.extensions.sourceRepositoryRef, 'refs/heads/main');
  assert.equal(gl.extensions.runInvocationURI, 'https://gitlab.com/g/p/-/jobs/4');
  throwsWithCode(
    () => buildPrincipal(c, lookupIssuer(c, 'https://gitlab.com')!, { ...glClaims, ref_type: 'weird' }),
    'ERR_IDENTITY_CLAIMS',
  );

  const bk = buildPrincipal(c, lookupIssuer(c, 'https://agent.buildkite.com')!, {
    iss: 'https://agent.buildkite.com',
    sub: 'organization:acme:pipeline:app',
    organization_slug: 'acme',
    pipeline_slug: 'app',
  });
  assert.deepEqual(bk.san, { type: 'uri', value: 'https://buildkite.com/acme/app' });
});

test('merging configurations and the /api/v2/configuration view', () => {
  const mine = one({
    OIDCIssuers: { 'https://idp.example.com': { Type: 'email' } },
    MetaIssuers: { 'https://*.k8s.example.com': { Type: 'kubernetes' } },
  });
  const merged = mergeIssuerConfigs(githubActionsIssuerConfig(), mine);
  assert.ok(lookupIssuer(merged, GITHUB_ACTIONS_ISSUER_URL));
  assert.ok(lookupIssuer(merged, 'https://idp.example.com'));
  // An operator file can name the built-in github-workflow metadata by including it.
  const inc = parseIssuerConfig(
    JSON.stringify({ OIDCIssuers: { 'https://ghes.example.com/_services/token': { Type: 'ci-provider', CIProvider: 'github-workflow' } } }),
    { include: [githubActionsIssuerConfig()] },
  );
  assert.ok(lookupIssuer(inc, 'https://ghes.example.com/_services/token'));
  const view = configurationView(mine);
  assert.deepEqual(view.issuers, [
    configurationEntry({ issuerUrl: 'https://idp.example.com', challengeClaim: 'email', issuerType: 'email' }),
    configurationEntry({ wildcardIssuerUrl: 'https://*.k8s.example.com', challengeClaim: 'sub', issuerType: 'kubernetes' }),
  ]);
});

test('helpers: joinUrlPath cleans like Go url.JoinPath; email syntax', () => {
  assert.equal(joinUrlPath('https://github.com/', 'o/r', 'actions/runs', '1'), 'https://github.com/o/r/actions/runs/1');
  assert.equal(joinUrlPath('https://github.com/', 'o/../../x'), 'https://github.com/x');
  assert.equal(joinUrlPath('https://github.com/', 'a b?c#d'), 'https://github.com/a%20b%3Fc%23d');
  assert.ok(isEmailAddress('first.last+tag@sub.example.co'));
  assert.ok(!isEmailAddress('first..last@example.com'));
});
