// Shared CA test fixtures.
import { GITHUB_ACTIONS_ISSUER_URL } from '../src/issuers.ts';

/** A realistic GitHub Actions ID token payload (shape as documented by GitHub). */
export const GITHUB_TOKEN_CLAIMS = {
  jti: 'example-id',
  sub: 'repo:octo-org/octo-repo:environment:prod',
  environment: 'prod',
  aud: 'sigstore',
  ref: 'refs/heads/main',
  sha: 'example-sha-0123456789abcdef0123456789abcdef',
  repository: 'octo-org/octo-repo',
  repository_owner: 'octo-org',
  actor_id: '12',
  repository_visibility: 'private',
  repository_id: '74',
  repository_owner_id: '65',
  run_id: '2002',
  run_number: '7',
  run_attempt: '1',
  runner_environment: 'github-hosted',
  actor: 'octocat',
  workflow: 'example-workflow',
  head_ref: '',
  base_ref: '',
  event_name: 'workflow_dispatch',
  ref_type: 'branch',
  job_workflow_ref: 'octo-org/octo-automation/.github/workflows/oidc.yml@refs/heads/main',
  job_workflow_sha: 'job-sha-fedcba9876543210fedcba9876543210fedc',
  workflow_ref: 'octo-org/octo-repo/.github/workflows/release.yml@refs/heads/main',
  workflow_sha: 'wf-sha-00112233445566778899aabbccddeeff0011',
  iss: GITHUB_ACTIONS_ISSUER_URL,
  nbf: 1632492967,
  exp: 1632493867,
  iat: 1632493567,
};

export const EXPECTED_GITHUB_EXTENSIONS = {
  githubWorkflowTrigger: 'workflow_dispatch',
  githubWorkflowSha: GITHUB_TOKEN_CLAIMS.sha,
  githubWorkflowName: 'example-workflow',
  githubWorkflowRepository: 'octo-org/octo-repo',
  githubWorkflowRef: 'refs/heads/main',
  buildSignerURI: 'https://github.com/octo-org/octo-automation/.github/workflows/oidc.yml@refs/heads/main',
  buildSignerDigest: GITHUB_TOKEN_CLAIMS.job_workflow_sha,
  runnerEnvironment: 'github-hosted',
  sourceRepositoryURI: 'https://github.com/octo-org/octo-repo',
  sourceRepositoryDigest: GITHUB_TOKEN_CLAIMS.sha,
  sourceRepositoryRef: 'refs/heads/main',
  sourceRepositoryIdentifier: '74',
  sourceRepositoryOwnerURI: 'https://github.com/octo-org',
  sourceRepositoryOwnerIdentifier: '65',
  buildConfigURI: 'https://github.com/octo-org/octo-repo/.github/workflows/release.yml@refs/heads/main',
  buildConfigDigest: GITHUB_TOKEN_CLAIMS.workflow_sha,
  buildTrigger: 'workflow_dispatch',
  runInvocationURI: 'https://github.com/octo-org/octo-repo/actions/runs/2002/attempts/1',
  sourceRepositoryVisibilityAtSigning: 'private',
};

/** An issuer as the CA's GET /api/v2/configuration lists it: Fulcio's defaults, then `fields`. */
export function configurationEntry(fields: Record<string, unknown>): Record<string, unknown> {
  return { audience: 'sigstore', spiffeTrustDomain: '', subjectDomain: '', skipEmailVerification: false, ...fields };
}
