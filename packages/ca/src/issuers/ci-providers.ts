// CI systems: the ci-provider type (SAN and extensions from templates over the claims), the legacy
// fixed mappings of github-workflow, gitlab-pipeline, buildkite-job and codefresh-workflow, and
// the built-in GitHub Actions configuration (ci-provider with public-good Fulcio's templates).
import { isWaxsealError, type FulcioExtensionName } from '@waxseal/core';
import { claimToString, TemplateExecError, type CompiledTemplate, type TemplateData } from '../gotemplate.ts';
import { claimsError, joinUrlPath, optionalString, requireAbsoluteUri, requireString, requireSubject, type Claims } from './claims.ts';
import { CI_EXTENSION_NAMES, issuerConfigFromObject, type CiProviderMetadata, type IssuerConfig } from './config.ts';
import type { Principal } from './principals.ts';

type Extensions = Partial<Record<FulcioExtensionName, string>>;

/** A CI job's principal: the job's URI as SAN, the proof of possession over `sub`, the non-empty extensions. */
function jobPrincipal(san: string, sub: string, iss: string, extensions: Extensions = {}): Principal {
  const kept: Extensions = {};
  for (const [k, v] of Object.entries(extensions) as [FulcioExtensionName, string | undefined][]) if (v) kept[k] = v;
  return { san: { type: 'uri', value: san }, challenge: sub, issuer: iss, subject: sub, extensions: kept };
}

const GITHUB_CLAIMS = [
  'job_workflow_ref',
  'sha',
  'event_name',
  'repository',
  'workflow',
  'ref',
  'job_workflow_sha',
  'runner_environment',
  'repository_id',
  'repository_owner',
  'repository_owner_id',
  'repository_visibility',
  'workflow_ref',
  'workflow_sha',
  'run_id',
  'run_attempt',
] as const;

/** Legacy `github-workflow` type: fixed claim mapping (deprecated upstream in favour of ci-provider). */
export function githubPrincipal(claims: Claims, iss: string): Principal {
  const sub = requireSubject(claims);
  // All missing claims in one refusal, so a hand-made token is fixed in one go.
  const missing = GITHUB_CLAIMS.filter((n) => claims[n] === undefined || claims[n] === null || claims[n] === '');
  if (missing.length > 1) claimsError(`identity token lacks the claims ${missing.join(', ')}`);
  const c = Object.fromEntries(GITHUB_CLAIMS.map((n) => [n, requireString(claims, n)])) as Record<(typeof GITHUB_CLAIMS)[number], string>;
  const base = 'https://github.com/';
  const signer = joinUrlPath(base, c.job_workflow_ref);
  requireAbsoluteUri(signer, 'subject alternative name');
  return jobPrincipal(signer, sub, iss, {
    githubWorkflowTrigger: c.event_name,
    githubWorkflowSha: c.sha,
    githubWorkflowName: c.workflow,
    githubWorkflowRepository: c.repository,
    githubWorkflowRef: c.ref,
    buildSignerURI: signer,
    buildSignerDigest: c.job_workflow_sha,
    runnerEnvironment: c.runner_environment,
    sourceRepositoryURI: joinUrlPath(base, c.repository),
    sourceRepositoryDigest: c.sha,
    sourceRepositoryRef: c.ref,
    sourceRepositoryIdentifier: c.repository_id,
    sourceRepositoryOwnerURI: joinUrlPath(base, c.repository_owner),
    sourceRepositoryOwnerIdentifier: c.repository_owner_id,
    buildConfigURI: joinUrlPath(base, c.workflow_ref),
    buildConfigDigest: c.workflow_sha,
    buildTrigger: c.event_name,
    runInvocationURI: joinUrlPath(base, c.repository, 'actions/runs', c.run_id, 'attempts', c.run_attempt),
    sourceRepositoryVisibilityAtSigning: c.repository_visibility,
  });
}

/** Legacy `gitlab-pipeline` type (gitlab.com only, as upstream). */
export function gitlabPrincipal(claims: Claims, iss: string): Principal {
  const sub = requireSubject(claims);
  const get = (n: string) => requireString(claims, n);
  const projectPath = get('project_path');
  const pipelineSource = get('pipeline_source');
  get('pipeline_id');
  const ciConfigRefUri = get('ci_config_ref_uri');
  const jobId = get('job_id');
  const refName = get('ref');
  const refType = get('ref_type');
  const namespacePath = get('namespace_path');
  const namespaceId = get('namespace_id');
  const projectId = get('project_id');
  const sha = get('sha');
  const runnerEnvironment = get('runner_environment');
  const runnerId = claims.runner_id;
  if (typeof runnerId !== 'number' || !Number.isInteger(runnerId) || runnerId === 0)
    claimsError('identity token lacks the runner_id claim');
  let ref: string;
  if (refType === 'branch') ref = `refs/heads/${refName}`;
  else if (refType === 'tag') ref = `refs/tags/${refName}`;
  else claimsError(`unexpected ref_type: ${refType}`);
  const base = 'https://gitlab.com/';
  const configUri = `https://${ciConfigRefUri.replace(/^\/+/, '')}`;
  requireAbsoluteUri(configUri, 'ci_config_ref_uri');
  const ciConfigSha = optionalString(claims, 'ci_config_sha');
  return jobPrincipal(configUri, sub, iss, {
    buildConfigURI: configUri,
    buildConfigDigest: ciConfigSha,
    buildSignerURI: configUri,
    buildSignerDigest: ciConfigSha,
    runnerEnvironment,
    sourceRepositoryURI: joinUrlPath(base, projectPath),
    sourceRepositoryDigest: sha,
    sourceRepositoryRef: ref,
    sourceRepositoryIdentifier: projectId,
    sourceRepositoryOwnerURI: joinUrlPath(base, namespacePath),
    sourceRepositoryOwnerIdentifier: namespaceId,
    buildTrigger: pipelineSource,
    runInvocationURI: joinUrlPath(base, projectPath, '/-/jobs/', jobId),
    sourceRepositoryVisibilityAtSigning: optionalString(claims, 'project_visibility'),
  });
}

export function buildkitePrincipal(claims: Claims, iss: string): Principal {
  const sub = requireSubject(claims);
  const org = requireString(claims, 'organization_slug');
  const pipeline = requireString(claims, 'pipeline_slug');
  const san = `https://buildkite.com/${org}/${pipeline}`;
  requireAbsoluteUri(san, 'subject alternative name');
  return jobPrincipal(san, sub, iss);
}

export function codefreshPrincipal(claims: Claims, iss: string): Principal {
  const sub = requireSubject(claims);
  const accountId = requireString(claims, 'account_id');
  const pipelineId = requireString(claims, 'pipeline_id');
  const workflowId = requireString(claims, 'workflow_id');
  const platform = optionalString(claims, 'platform_url') || 'https://g.codefresh.io';
  requireAbsoluteUri(platform, 'platform_url');
  const san = joinUrlPath(
    platform,
    optionalString(claims, 'account_name'),
    `${optionalString(claims, 'pipeline_name')}:${accountId}/${pipelineId}`,
  );
  requireAbsoluteUri(san, 'subject alternative name');
  return jobPrincipal(san, sub, iss, {
    buildSignerURI: joinUrlPath(platform, 'build', workflowId),
    runnerEnvironment: optionalString(claims, 'runner_environment'),
    sourceRepositoryURI: optionalString(claims, 'scm_repo_url'),
    sourceRepositoryRef: optionalString(claims, 'scm_ref'),
    buildConfigURI: joinUrlPath(platform, 'api', 'pipelines', pipelineId),
    runInvocationURI: joinUrlPath(platform, 'build', workflowId),
  });
}

/** Applies one template or bare claim name, as Fulcio's applyTemplateOrReplace. */
function applyTemplate(t: CompiledTemplate, data: TemplateData, what: string): string {
  if (!t.isTemplate) {
    const key = t.source;
    if (!Object.hasOwn(data, key)) claimsError(`${what}: value <${key}> not present in either claims or defaults`);
    return data[key]!;
  }
  try {
    return t.execute(data);
  } catch (e) {
    if (e instanceof TemplateExecError) claimsError(`${what}: ${e.message}`);
    throw e;
  }
}

export function ciProviderPrincipal(meta: CiProviderMetadata, claims: Claims, iss: string): Principal {
  const sub = requireSubject(claims);
  // Claims are flattened to strings and win over the configured defaults.
  const data: Record<string, string> = { ...meta.defaultTemplateValues };
  for (const [k, v] of Object.entries(claims)) data[k] = claimToString(v);
  // Every template is applied before refusing, so that all missing claims are named at once.
  const problems: string[] = [];
  const apply = (t: CompiledTemplate, what: string): string => {
    try {
      return applyTemplate(t, data, what);
    } catch (e) {
      if (!isWaxsealError(e, 'ERR_IDENTITY_CLAIMS')) throw e;
      problems.push(e.message);
      return '';
    }
  };
  const san = apply(meta.subjectAlternativeNameTemplate, 'subject alternative name template');
  const extensions: Extensions = {};
  for (const name of CI_EXTENSION_NAMES) {
    const t = meta.extensionTemplates[name];
    if (t) extensions[name] = apply(t, `extension ${name}`);
  }
  if (problems.length > 0) {
    const missing = [...new Set(problems.flatMap((m) => [...m.matchAll(/(?:no entry for key "|value <)([^">]+)/g)].map((x) => x[1]!)))];
    if (problems.length === 1) claimsError(problems[0]!);
    claimsError(missing.length > 0 ? `identity token lacks the claims ${missing.join(', ')}` : problems.join('; '));
  }
  if (san.trim() === '') claimsError('subject alternative name template produced an empty value');
  requireAbsoluteUri(san, 'subject alternative name');
  return jobPrincipal(san, sub, iss, extensions);
}

export const GITHUB_ACTIONS_ISSUER_URL = 'https://token.actions.githubusercontent.com';

/**
 * GitHub Actions through the ci-provider mechanism with the claim mapping public-good Fulcio
 * uses (SAN = https://github.com/<job_workflow_ref>, 1.9-1.23 and the deprecated 1.2-1.6).
 * Operators include it with `parseIssuerConfig(text, { include: [githubActionsIssuerConfig()] })`
 * or `mergeIssuerConfigs(githubActionsIssuerConfig(), theirs)`.
 */
export function githubActionsIssuerConfig(clientId = 'sigstore'): IssuerConfig {
  return issuerConfigFromObject(
    {
      'oidc-issuers': {
        [GITHUB_ACTIONS_ISSUER_URL]: {
          'issuer-url': GITHUB_ACTIONS_ISSUER_URL,
          'client-id': clientId,
          type: 'ci-provider',
          'ci-provider': 'github-workflow',
          description: 'GitHub Actions OIDC tokens',
        },
      },
      // GitHub Enterprise customers with a unique issuer URL (token.actions.githubusercontent.com/<slug>).
      'meta-issuers': {
        [`${GITHUB_ACTIONS_ISSUER_URL}/*`]: { 'client-id': clientId, type: 'ci-provider', 'ci-provider': 'github-workflow' },
      },
      'ci-issuer-metadata': { 'github-workflow': GITHUB_WORKFLOW_METADATA },
    },
    { source: 'built-in GitHub Actions configuration' },
  );
}

const GITHUB_WORKFLOW_METADATA = {
  'default-template-values': { url: 'https://github.com', environment: '' },
  'extension-templates': {
    'github-workflow-trigger': 'event_name',
    'github-workflow-sha': 'sha',
    'github-workflow-name': 'workflow',
    'github-workflow-repository': 'repository',
    'github-workflow-ref': 'ref',
    'build-signer-uri': '{{ .url }}/{{ .job_workflow_ref }}',
    'build-signer-digest': 'job_workflow_sha',
    'runner-environment': 'runner_environment',
    'source-repository-uri': '{{ .url }}/{{ .repository }}',
    'source-repository-digest': 'sha',
    'source-repository-ref': 'ref',
    'source-repository-identifier': 'repository_id',
    'source-repository-owner-uri': '{{ .url }}/{{ .repository_owner }}',
    'source-repository-owner-identifier': 'repository_owner_id',
    'build-config-uri': '{{ .url }}/{{ .workflow_ref }}',
    'build-config-digest': 'workflow_sha',
    'build-trigger': 'event_name',
    'run-invocation-uri': '{{ .url }}/{{ .repository }}/actions/runs/{{ .run_id }}/attempts/{{ .run_attempt }}',
    'source-repository-visibility-at-signing': 'repository_visibility',
    'deployment-environment': 'environment',
  },
  'subject-alternative-name-template': '{{ .url }}/{{ .job_workflow_ref }}',
};
