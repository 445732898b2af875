// Shared by the engine's and `waxseal policy test`'s end-to-end tests: a real docker-registry,
// the dev instance, images pushed with skopeo and signed by the real `waxseal sign` (keyless,
// RFC 3161 timestamp only, no log), and the seed policy as `waxseal policy trustroot` prints it.
import assert from 'node:assert/strict';
import { fetchDevToken } from '../../dev-idp/src/dev-idp.ts';
import type { DevStackFixture } from '../../instance/test/helpers.ts';
import { runCli, type CliResult } from '../../cli/test/helpers/cli.ts';

export { pushImage, registryToolsMissing, startRegistry, type TestRegistry } from '../../../packages/oci/test/registry-fixture.ts';
export { useDevStack } from '../../instance/test/helpers.ts';
export { runCli };

export const TRUST_ROOT_NAME = 'my-sigstore-keys';
export const POLICY_NAME = 'enforce-signed-keyless';

/** `waxseal sign` keylessly as `email`, with the TSA and without the log. */
export async function signImage(dev: DevStackFixture, image: string, email: string, ...extra: string[]): Promise<void> {
  const token = await fetchDevToken(dev.stack.issuer, email);
  const r = await runCli([
    'sign',
    image,
    '--signing-config',
    dev.stack.signingConfigPath,
    '--identity-token',
    token,
    '--tlog-upload=false',
    ...extra,
  ]);
  assert.equal(r.code, 0, `sign ${image}:\n${r.stderr}`);
}

/** The seed's TrustRoot + ClusterImagePolicy for the dev instance, printed by the CLI. */
export async function seedPolicy(dev: DevStackFixture, glob: string, identity: string): Promise<string> {
  const r: CliResult = await runCli([
    'policy',
    'trustroot',
    '--trusted-root',
    dev.stack.trustedRootPath,
    '--name',
    TRUST_ROOT_NAME,
    '--cluster-image-policy',
    '--policy-name',
    POLICY_NAME,
    '--glob',
    glob,
    '--identity',
    identity,
    '--issuer',
    dev.stack.issuer,
  ]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}
