// A dev IdP (a real oidc-provider) on its own port, for instances started from a configuration
// file, which name their OIDC issuers in issuers.yaml.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DevIdentityProvider } from '../../../dev-idp/src/dev-idp.ts';
import { Router, requestListener, listen, type RunningServer } from '../../../../packages/server/src/http.ts';

/** Starts the IdP (its data in `dir`/idp) and writes `dir`/issuers.yaml naming it as an email issuer. */
export async function startIdp(dir: string): Promise<{ server: RunningServer; issuer: string }> {
  const router = new Router();
  const server = await listen(requestListener({ router }));
  const idp = await DevIdentityProvider.create({ devMode: true, issuer: `${server.url}/oidc`, dataDir: join(dir, 'idp') });
  idp.mount(router);
  const issuer = idp.issuer;
  writeFileSync(
    join(dir, 'issuers.yaml'),
    `oidc-issuers:\n  ${issuer}:\n    issuer-url: ${issuer}\n    client-id: sigstore\n    type: email\n`,
  );
  return { server, issuer };
}
