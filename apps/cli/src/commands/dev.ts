// waxseal dev: the all-in-one dev instance; `waxseal dev token --email <addr>` mints a dev ID token.
import { parse, helpText, stopSignal, UsageError, type Ui } from '../ui.ts';
import { DEFAULT_DEV_DATA, DEFAULT_DEV_PORT, readDevInstance, startDevStack } from '@waxseal/instance';
import { existsSync, readFileSync } from 'node:fs';
import { fetchDevToken, fetchDevCiToken } from '@waxseal/dev-idp';

export const devSpec = {
  usage: 'waxseal dev [--data <dir>] [--port <port>]',
  summary: 'Run the all-in-one dev instance on localhost: dev OIDC provider, CA, timestamp authority.',
  options: { data: { type: 'string' }, port: { type: 'string' }, 'no-log': { type: 'boolean' } },
  help: `Options:
  --data <dir>     data folder for keys, trust documents and state (default ${DEFAULT_DEV_DATA})
  --port <port>    port on 127.0.0.1 (default ${DEFAULT_DEV_PORT}; 0 picks a free one)
  --no-log         do not run the transparency log

Writes <dir>/trusted_root.json and <dir>/signing_config.json. Keys persist in <dir> (files of
mode 0600), and so do the log's data and tree ID (in <dir>/log), so bundles signed earlier keep
verifying after a restart; a key file found without its chain is never overwritten. The dev
identity providers exist only in this mode.

Subcommand:
  waxseal dev token --email <addr> [--data <dir>]   print a signed ID token from the running instance`,
  positionals: [0, 0] as [number, number],
} as const;

export const devTokenSpec = {
  usage: 'waxseal dev token --email <addr> [--data <dir>]',
  summary: 'Print a real, signed ID token for <addr> from the running dev instance (for scripts and tests).',
  options: { email: { type: 'string' }, claims: { type: 'string' }, data: { type: 'string' } },
  help: `Options:
  --email <addr>         a person's identity (from the dev IdP, an e-mail issuer)
  --claims <json|file>   a CI job's identity instead: the token claims (with "sub"), from the dev
                         CI provider, which the CA maps like GitHub Actions tokens (repository,
                         job_workflow_ref, ref, sha, ...)
  --data <dir>           the dev instance's data folder (default ${DEFAULT_DEV_DATA})`,
} as const;

export async function dev(argv: string[], ui: Ui): Promise<number> {
  if (argv[0] === 'token') return devToken(argv.slice(1), ui);
  const { values, helpWanted } = parse(argv, devSpec);
  if (helpWanted) return (ui.result({ help: helpText(devSpec) }, helpText(devSpec)), 0);
  const port = values.port === undefined ? DEFAULT_DEV_PORT : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError('--port must be an integer between 0 and 65535');
  const dataDir = values.data ?? DEFAULT_DEV_DATA;
  const stack = await startDevStack({ dataDir, port, log: !values['no-log'] });
  // Listen for the stop signal before saying we are up: whoever reads the report may signal at once.
  const stopRequested = stopSignal();
  ui.result({ ok: true, ...stack, trustedRoot: undefined, signingConfig: undefined }, [
    `Waxseal dev instance running at ${stack.url}/  (open it: what runs where, how to sign; data: ${stack.dataDir})`,
    `  OIDC issuer    ${stack.issuer}  (dev login page; any e-mail address)`,
    `  CI issuer      ${stack.ciIssuer}  (simulated CI tokens: waxseal dev token --claims)`,
    `  CA             ${stack.caUrl}/api/v2/signingCert`,
    `  TSA            ${stack.tsaUrl}`,
    ...(stack.logUrl ? [`  log            ${stack.logUrl}`] : []),
    `  trusted root   ${stack.trustedRootPath}`,
    `  signing config ${stack.signingConfigPath}`,
    '',
    'Sign and verify a file (in another terminal):',
    `  eval "$(npx waxseal env --data ${dataDir})"`,
    `  npx waxseal sign-blob README.md --bundle README.md.sigstore.json --identity-token "$(npx waxseal dev token --email you@example.com --data ${dataDir})"`,
    `  npx waxseal verify-blob README.md --bundle README.md.sigstore.json --certificate-identity you@example.com --certificate-oidc-issuer ${stack.issuer}`,
    '',
    'Press Ctrl-C to stop.',
  ]);
  await stopRequested;
  await stack.close();
  ui.info('stopped');
  return 0;
}

async function devToken(argv: string[], ui: Ui): Promise<number> {
  const { values, helpWanted } = parse(argv, devTokenSpec);
  if (helpWanted) return (ui.result({ help: helpText(devTokenSpec) }, helpText(devTokenSpec)), 0);
  if (!values.email === !values.claims) throw new UsageError('pass exactly one of --email <addr> or --claims <json|file>');
  let claims: Record<string, unknown> | undefined;
  if (values.claims) {
    const text = existsSync(values.claims) ? readFileSync(values.claims, 'utf8') : values.claims;
    try {
      claims = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new UsageError('--claims must be a JSON object or a file holding one');
    }
  }
  const inst = readDevInstance(values.data ?? DEFAULT_DEV_DATA);
  let token: string;
  try {
    token = claims ? await fetchDevCiToken(inst.ciIssuer, claims) : await fetchDevToken(inst.issuer, values.email!);
  } catch (e) {
    if ((e as Error).name === 'WaxsealError') throw e;
    const { WaxsealError } = await import('@waxseal/core');
    throw new WaxsealError('ERR_UNAVAILABLE', `the dev instance at ${inst.url} is not answering (is \`waxseal dev\` running?)`);
  }
  ui.result({ token, issuer: claims ? inst.ciIssuer : inst.issuer }, token);
  return 0;
}
