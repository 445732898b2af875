// waxseal env: the environment that points every client at an instance, as shell exports.
import { parse, helpText, type Ui } from '../ui.ts';
import { DEFAULT_DEV_DATA, readDevInstance } from '@waxseal/instance';
import { join } from 'node:path';

export const envSpec = {
  usage: 'waxseal env [--data <dir>]',
  summary: 'Print shell exports that point waxseal, cosign, gitsign and sigstore-js at an instance.',
  options: { data: { type: 'string' } },
  help: `Options:
  --data <dir>    the dev instance's data folder (default ${DEFAULT_DEV_DATA})

Use it as:  eval "$(waxseal env)"`,
} as const;

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export async function env(argv: string[], ui: Ui): Promise<number> {
  const { values, helpWanted } = parse(argv, envSpec);
  if (helpWanted) return (ui.result({ help: helpText(envSpec) }, helpText(envSpec)), 0);
  const inst = readDevInstance(values.data ?? DEFAULT_DEV_DATA);
  const caRoot = join(inst.dataDir, 'ca', 'root.pem');
  const tsaChain = join(inst.dataDir, 'tsa', 'chain.pem');
  const vars: [string, string, string?][] = [
    ['WAXSEAL_URL', inst.url, 'waxseal'],
    ['WAXSEAL_TRUSTED_ROOT', inst.trustedRootPath],
    ['WAXSEAL_SIGNING_CONFIG', inst.signingConfigPath],
    ['WAXSEAL_OIDC_ISSUER', inst.issuer],
    ['WAXSEAL_TUF_MIRROR', inst.tufUrl],
    ['WAXSEAL_TUF_ROOT', inst.tufRootPath],
    ['SIGSTORE_OIDC_ISSUER', inst.issuer, 'shared by cosign (SIGSTORE_*), gitsign and sigstore-js tooling'],
    ['SIGSTORE_OIDC_CLIENT_ID', 'sigstore'],
    ['SIGSTORE_FULCIO_URL', inst.caUrl],
    ['SIGSTORE_TIMESTAMP_SERVER_URL', inst.tsaUrl],
    ['SIGSTORE_ROOT_FILE', caRoot],
    ['COSIGN_FULCIO_URL', inst.caUrl, 'cosign (flags bound to COSIGN_*)'],
    ['COSIGN_TIMESTAMP_SERVER_URL', inst.tsaUrl],
    ['COSIGN_TIMESTAMP_CERTIFICATE_CHAIN', tsaChain],
    ['COSIGN_TRUSTED_ROOT', inst.trustedRootPath],
    ['COSIGN_SIGNING_CONFIG', inst.signingConfigPath],
    ['COSIGN_OIDC_ISSUER', inst.issuer],
    ['COSIGN_OIDC_CLIENT_ID', 'sigstore'],
    ['COSIGN_CERTIFICATE_OIDC_ISSUER', inst.issuer],
    ['COSIGN_INSECURE_IGNORE_SCT', 'true'],
    ...(inst.logUrl
      ? []
      : ([
          ['COSIGN_TLOG_UPLOAD', 'false'],
          ['COSIGN_INSECURE_IGNORE_TLOG', 'true'],
        ] as [string, string][])),
    ['GITSIGN_FULCIO_URL', inst.caUrl, 'gitsign'],
    ['GITSIGN_OIDC_ISSUER', inst.issuer],
    ['GITSIGN_OIDC_CLIENT_ID', 'sigstore'],
    ['GITSIGN_TIMESTAMP_SERVER_URL', inst.tsaUrl],
    ['GITSIGN_TIMESTAMP_CERT_CHAIN', tsaChain],
    ['GITSIGN_FULCIO_ROOT', caRoot],
    ...(inst.logUrl ? ([['GITSIGN_REKOR_URL', inst.logUrl]] as [string, string][]) : []),
  ];
  const lines: string[] = [];
  for (const [k, v, comment] of vars) {
    if (comment) lines.push(`# ${comment}`);
    lines.push(`export ${k}=${q(v)}`);
  }
  lines.push(`# sigstore-js CLI: sigstore verify <bundle> --tuf-mirror-url ${inst.tufUrl} --tuf-root-path ${inst.tufRootPath}`);
  lines.push(`# clients with TUF: waxseal trust init --mirror ${inst.tufUrl} --root ${inst.tufRootPath}`);
  ui.result(Object.fromEntries(vars.map(([k, v]) => [k, v])), lines);
  return 0;
}
