// waxseal env: the environment that points every client at an instance, as shell exports, plus
// commands that use it. With no URL it reads the local dev instance's files; with a URL it reads
// any instance's published trust documents (through its TUF repository when it has one) into a
// folder of their own, like `chainctl sigstore env <instance>`.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodePem, WaxsealError } from '@waxseal/core';
import { parseSigningConfigJson, parseTrustedRootJson, type SigningConfig, type TimeRange, type TrustedRoot } from '@waxseal/bundle';
import { DEFAULT_DEV_DATA, readDevInstance } from '@waxseal/instance';
import { loadTrustFromTuf } from '@waxseal/trust';
import { configDir } from '@waxseal/sign';
import { parse, helpText, UsageError, type Ui } from '../ui.ts';

export const envSpec = {
  usage: 'waxseal env [<instance-url>] [--data <dir>] [--shell sh|fish|powershell]',
  summary: 'Print shell exports that point waxseal, cosign, gitsign and sigstore-js at an instance.',
  options: {
    data: { type: 'string' },
    shell: { type: 'string' },
    out: { type: 'string' },
    'tuf-root': { type: 'string' },
    'no-tuf': { type: 'boolean' },
    'allow-http': { type: 'boolean' },
  },
  positionals: [0, 1] as [number, number],
  help: `Without <instance-url>: the dev instance running from --data on this machine.
With <instance-url> (e.g. https://signing.example.com): any running instance. Its trusted root and
signing config are read through its TUF repository (<url>/tuf) when it serves one, verified from
a pinned TUF root, else from <url>/trusted_root.json and <url>/signing_config.json; they are
saved with the certificates and keys cosign and gitsign read into --out.

Options:
  --data <dir>          the dev instance's data folder (default ${DEFAULT_DEV_DATA})
  --shell <name>        sh (default: bash, zsh, ...), fish or powershell
  --out <dir>           where an instance's documents are saved (default
                        $WAXSEAL_CONFIG_DIR/instances/<host>, i.e. ~/.config/waxseal/instances/<host>)
  --tuf-root <file>     the TUF root.json you got out of band; without it the instance's
                        1.root.json is pinned on first use (and the pinned one used afterwards)
  --no-tuf              read the plain documents even when the instance serves TUF
  --allow-http          allow http:// to a host other than this machine without a pinned TUF
                        root (the documents are then unauthenticated)

Use it as:  eval "$(waxseal env [<instance-url>])"        (fish: waxseal env --shell fish | source)
The comment lines at the end are commands that work once the exports are in place.`,
} as const;

/** Everything the printed settings are made of. */
export interface EnvSettings {
  /** What the settings come from, for the header line. */
  source: string;
  url: string;
  caUrl: string;
  tsaUrl: string;
  logUrl: string | undefined;
  issuer: string | undefined;
  /** The dev instance's simulated CI provider (`waxseal dev token --claims`). */
  devCiIssuer?: string;
  trustedRootPath: string;
  signingConfigPath: string;
  tufUrl: string | undefined;
  tufRootPath: string | undefined;
  /** Folder for sigstore-js's TUF cache, per instance so that a re-created instance starts clean. */
  sigstoreJsCache: string | undefined;
  /** PEM: the CA chain (issuing certificate first, root last). */
  caCertsPath: string;
  /** PEM: the TSA chain (leaf first, root last). */
  tsaChainPath: string;
  /** PEM public key of the transparency log, when there is one. */
  logKeyPath: string | undefined;
}

type Shell = 'sh' | 'fish' | 'powershell';

const quote: Record<Shell, (s: string) => string> = {
  sh: (s) => `'${s.replace(/'/g, `'\\''`)}'`,
  fish: (s) => `'${s.replace(/[\\']/g, (c) => `\\${c}`)}'`,
  powershell: (s) => `'${s.replace(/'/g, "''")}'`,
};

const assign: Record<Shell, (k: string, v: string) => string> = {
  sh: (k, v) => `export ${k}=${quote.sh(v)}`,
  fish: (k, v) => `set -gx ${k} ${quote.fish(v)}`,
  powershell: (k, v) => `$env:${k} = ${quote.powershell(v)}`,
};

/** The variables, each with the client it is for (printed as a comment before the first of a group). */
export function envVariables(s: EnvSettings): [name: string, value: string, group?: string][] {
  const vars: [string, string, string?][] = [
    ['WAXSEAL_URL', s.url, 'waxseal'],
    ['WAXSEAL_TRUSTED_ROOT', s.trustedRootPath],
    ['WAXSEAL_SIGNING_CONFIG', s.signingConfigPath],
  ];
  if (s.issuer) vars.push(['WAXSEAL_OIDC_ISSUER', s.issuer]);
  if (s.devCiIssuer) vars.push(['WAXSEAL_DEV_CI_ISSUER', s.devCiIssuer]);
  if (s.tufUrl && s.tufRootPath) vars.push(['WAXSEAL_TUF_MIRROR', s.tufUrl], ['WAXSEAL_TUF_ROOT', s.tufRootPath]);
  vars.push(
    ['SIGSTORE_FULCIO_URL', s.caUrl, 'Sigstore clients (cosign reads the certificate and key files when given no trusted root)'],
    ['SIGSTORE_TIMESTAMP_SERVER_URL', s.tsaUrl],
    ['SIGSTORE_ROOT_FILE', s.caCertsPath],
    ['SIGSTORE_TSA_CERTIFICATE_FILE', s.tsaChainPath],
  );
  if (s.issuer) vars.push(['SIGSTORE_OIDC_ISSUER', s.issuer], ['SIGSTORE_OIDC_CLIENT_ID', 'sigstore']);
  if (s.logUrl && s.logKeyPath) vars.push(['SIGSTORE_REKOR_URL', s.logUrl], ['SIGSTORE_REKOR_PUBLIC_KEY', s.logKeyPath]);
  // cosign 2.5+ and 3 take the services from the signing config and refuse explicit service URLs
  // (or --tlog-upload=false) next to it, so only documents and verification settings are set.
  vars.push(
    ['COSIGN_TRUSTED_ROOT', s.trustedRootPath, 'cosign (flags bound to COSIGN_*)'],
    ['COSIGN_SIGNING_CONFIG', s.signingConfigPath],
    ['COSIGN_NEW_BUNDLE_FORMAT', 'true'],
    ['COSIGN_YES', 'true'],
  );
  if (s.issuer) vars.push(['COSIGN_CERTIFICATE_OIDC_ISSUER', s.issuer]);
  // Private instances have no CT log; without a transparency log the RFC 3161 timestamp dates signatures.
  vars.push(['COSIGN_INSECURE_IGNORE_SCT', 'true']);
  if (!s.logUrl) vars.push(['COSIGN_INSECURE_IGNORE_TLOG', 'true'], ['COSIGN_USE_SIGNED_TIMESTAMPS', 'true']);
  vars.push(['GITSIGN_FULCIO_URL', s.caUrl, 'gitsign']);
  if (s.issuer) vars.push(['GITSIGN_OIDC_ISSUER', s.issuer], ['GITSIGN_OIDC_CLIENT_ID', 'sigstore']);
  vars.push(
    ['GITSIGN_TIMESTAMP_SERVER_URL', s.tsaUrl],
    ['GITSIGN_TIMESTAMP_CERT_CHAIN', s.tsaChainPath],
    ['GITSIGN_FULCIO_ROOT', s.caCertsPath],
  );
  if (s.logUrl) vars.push(['GITSIGN_REKOR_URL', s.logUrl]);
  return vars;
}

/**
 * Commands that work once the exports are in place, over shell variables the reader sets: $FILE
 * (a file), $EMAIL (who signs), $TOKEN (an ID token for $EMAIL) and, when the instance names no
 * OIDC provider, $ISSUER (the token's issuer). `cli` is how to call waxseal.
 */
export function envCommands(s: EnvSettings, cli: string, shell: Shell): { client: string; command: string }[] {
  const q = quote[shell];
  const issuer = s.issuer ? q(s.issuer) : '"$ISSUER"';
  const out = [
    { client: 'waxseal', command: `${cli} sign-blob "$FILE" --bundle "$FILE.sigstore.json" --identity-token "$TOKEN"` },
    {
      client: 'waxseal',
      command: `${cli} verify-blob "$FILE" --bundle "$FILE.sigstore.json" --certificate-identity "$EMAIL" --certificate-oidc-issuer ${issuer}`,
    },
  ];
  if (s.tufUrl && s.tufRootPath && s.sigstoreJsCache) {
    // sigstore-js reads trust only through TUF, and requires an SCT and a log entry unless told
    // otherwise: Waxseal issues no SCTs, and its log is optional (an RFC 3161 timestamp is always there).
    out.push({
      client: 'sigstore-js',
      command:
        `npx @sigstore/cli verify "$FILE.sigstore.json" --blob-file "$FILE" --certificate-identity-email "$EMAIL" --certificate-issuer ${issuer}` +
        ` --tuf-mirror-url ${q(s.tufUrl)} --tuf-root-path ${q(s.tufRootPath)} --tuf-cache-path ${q(s.sigstoreJsCache)}` +
        ` --ctlog-threshold 0 --tlog-threshold ${s.logUrl ? 1 : 0}`,
    });
  }
  // sigstore-js's signing command signs a DSSE envelope; in CI mode it takes the token from SIGSTORE_ID_TOKEN.
  out.push({
    client: 'sigstore-js',
    command:
      `env CI=true SIGSTORE_ID_TOKEN="$TOKEN" npx @sigstore/cli attest "$FILE" --output-file "$FILE.dsse.sigstore.json"` +
      ` --fulcio-url ${q(s.caUrl)} --tsa-server-url ${q(s.tsaUrl)} --no-tlog-upload`,
  });
  if (s.tufUrl && s.tufRootPath && s.sigstoreJsCache) {
    out.push({
      client: 'sigstore-js',
      command:
        `npx @sigstore/cli verify "$FILE.dsse.sigstore.json" --certificate-identity-email "$EMAIL" --certificate-issuer ${issuer}` +
        ` --tuf-mirror-url ${q(s.tufUrl)} --tuf-root-path ${q(s.tufRootPath)} --tuf-cache-path ${q(s.sigstoreJsCache)}` +
        ' --ctlog-threshold 0 --tlog-threshold 0',
    });
  }
  if (s.tufUrl && s.tufRootPath)
    out.push({ client: 'waxseal', command: `${cli} trust init --mirror ${q(s.tufUrl)} --root ${q(s.tufRootPath)}` });
  return out;
}

/** How the user ran us: through npx / npm run (so `npx waxseal` works here), or as an installed `waxseal`. */
function cliName(env: NodeJS.ProcessEnv): string {
  return env.npm_command === 'exec' || env.npm_command === 'run-script' ? 'npx waxseal' : 'waxseal';
}

export function renderEnv(s: EnvSettings, shell: Shell, cli: string): string[] {
  const lines = [`# Waxseal instance ${s.url}: ${s.source}`];
  for (const [k, v, group] of envVariables(s)) {
    if (group) lines.push(`# ${group}`);
    lines.push(assign[shell](k, v));
  }
  lines.push(
    `# Commands, with $FILE a file to sign, $EMAIL who signs and $TOKEN an ID token for $EMAIL${s.issuer ? '' : ' from $ISSUER'}:`,
  );
  for (const c of envCommands(s, cli, shell)) lines.push(`#   ${c.command}`);
  return lines;
}

const validNow = (r: TimeRange | undefined, now: Date) => !r || ((!r.start || r.start <= now) && (!r.end || now < r.end));

/** The settings derivable from an instance's two trust documents (pure). */
export function settingsFromDocuments(
  root: TrustedRoot,
  sc: SigningConfig,
  now: Date,
): {
  caUrl: string;
  tsaUrl: string;
  logUrl: string | undefined;
  issuer: string | undefined;
  caPem: string;
  tsaPem: string;
  logKeyPem: string | undefined;
} {
  const pick = <T extends { validFor?: TimeRange | undefined }>(list: T[]) => list.find((x) => validNow(x.validFor, now));
  const ca = pick(sc.caUrls);
  const tsa = pick(sc.tsaUrls);
  if (!ca) throw new WaxsealError('ERR_SIGNING_CONFIG_INVALID', 'the signing config names no CA valid now');
  if (!tsa) throw new WaxsealError('ERR_SIGNING_CONFIG_INVALID', 'the signing config names no timestamp authority valid now');
  const caAuth = pick(root.certificateAuthorities);
  const tsaAuth = pick(root.timestampAuthorities);
  if (!caAuth) throw new WaxsealError('ERR_TRUSTED_ROOT_INVALID', 'the trusted root has no certificate authority valid now');
  if (!tsaAuth) throw new WaxsealError('ERR_TRUSTED_ROOT_INVALID', 'the trusted root has no timestamp authority valid now');
  const pems = (certs: Uint8Array[]) => certs.map((c) => encodePem('CERTIFICATE', c)).join('');
  const log = root.tlogs.find((l) => l.publicKey.rawBytes && validNow(l.publicKey.validFor, now));
  const logService = pick(sc.rekorTlogUrls);
  return {
    caUrl: ca.url,
    tsaUrl: tsa.url,
    logUrl: logService?.url,
    issuer: pick(sc.oidcUrls)?.url,
    caPem: pems(caAuth.certChain),
    tsaPem: pems(tsaAuth.certChain),
    logKeyPem: logService && log?.publicKey.rawBytes ? encodePem('PUBLIC KEY', log.publicKey.rawBytes) : undefined,
  };
}

function devSettings(dataDir: string): EnvSettings {
  const inst = readDevInstance(dataDir);
  // The log's public key is in the trusted root only; cosign and gitsign want it as a file.
  let logKeyPath: string | undefined;
  if (inst.logUrl) {
    const d = settingsFromDocuments(
      parseTrustedRootJson(readFileSync(inst.trustedRootPath)),
      parseSigningConfigJson(readFileSync(inst.signingConfigPath)),
      new Date(),
    );
    if (d.logKeyPem) writeFileSync((logKeyPath = join(inst.dataDir, 'log-key.pem')), d.logKeyPem);
  }
  return {
    source: `the dev instance in ${inst.dataDir}`,
    url: inst.url,
    caUrl: inst.caUrl,
    tsaUrl: inst.tsaUrl,
    logUrl: inst.logUrl,
    issuer: inst.issuer,
    devCiIssuer: inst.ciIssuer,
    trustedRootPath: inst.trustedRootPath,
    signingConfigPath: inst.signingConfigPath,
    tufUrl: inst.tufUrl,
    tufRootPath: inst.tufRootPath,
    sigstoreJsCache: join(inst.dataDir, 'sigstore-js-tuf'),
    caCertsPath: join(inst.dataDir, 'ca', 'chain.pem'),
    tsaChainPath: join(inst.dataDir, 'tsa', 'chain.pem'),
    logKeyPath,
  };
}

const FETCH_TIMEOUT_MS = 10_000;
const MAX_DOCUMENT_BYTES = 4 * 1024 * 1024;

/** GET `url`: the body on 200, undefined on 404; anything else (or no answer) is ERR_UNAVAILABLE. */
async function get(url: string): Promise<Uint8Array | undefined> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), redirect: 'error' });
  } catch (e) {
    const why = e instanceof Error ? ((e.cause as Error | undefined)?.message ?? e.message) : String(e);
    throw new WaxsealError('ERR_UNAVAILABLE', `cannot reach ${url}: ${why}`, { cause: e });
  }
  if (res.status === 404) return (await res.body?.cancel(), undefined);
  if (res.status !== 200) throw new WaxsealError('ERR_UNAVAILABLE', `${url} answered HTTP ${res.status}`);
  const body = new Uint8Array(await res.arrayBuffer());
  if (body.length > MAX_DOCUMENT_BYTES) throw new WaxsealError('ERR_BODY_TOO_LARGE', `${url} is larger than ${MAX_DOCUMENT_BYTES} bytes`);
  return body;
}

const isLoopback = (host: string) => host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);

async function instanceSettings(
  rawUrl: string,
  o: { out: string | undefined; tufRoot: string | undefined; noTuf: boolean; allowHttp: boolean },
  ui: Ui,
): Promise<EnvSettings> {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw new UsageError(`${JSON.stringify(rawUrl)} is not a URL (e.g. https://signing.example.com)`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new UsageError('the instance URL must be https:// (or http://)');
  if (url.protocol === 'http:' && !isLoopback(url.hostname) && !o.tufRoot && !o.allowHttp)
    throw new WaxsealError(
      'ERR_CONFIG',
      `${url.origin} is plain http: pin its TUF root with --tuf-root <file>, use https://, or accept unauthenticated documents with --allow-http`,
    );
  const base = url.href.replace(/\/+$/, '');
  const out = o.out ?? join(configDir(), 'instances', `${url.host}${url.pathname}`.replace(/\/+$/, '').replace(/[^A-Za-z0-9.-]/g, '_'));
  mkdirSync(out, { recursive: true });
  const tufUrl = `${base}/tuf`;
  const pinnedRoot = join(out, 'tuf-root.json');

  let trustedRoot: Uint8Array;
  let signingConfig: Uint8Array;
  let source = '';
  let tuf = false;
  let initialRoot: Uint8Array | undefined;
  if (!o.noTuf) {
    if (o.tufRoot) {
      try {
        initialRoot = readFileSync(o.tufRoot);
      } catch (e) {
        throw new WaxsealError('ERR_IO', `cannot read TUF root ${o.tufRoot}: ${(e as NodeJS.ErrnoException).code ?? e}`);
      }
      source = `trust documents verified through TUF from the root in ${o.tufRoot}`;
    } else if (existsSync(pinnedRoot)) {
      initialRoot = readFileSync(pinnedRoot);
      source = `trust documents verified through TUF from the root pinned in ${pinnedRoot}`;
    } else {
      initialRoot = await get(`${tufUrl}/1.root.json`);
      if (initialRoot) {
        const digest = createHash('sha256').update(initialRoot).digest('hex');
        ui.warn(
          `pinned the TUF root ${tufUrl}/1.root.json on first use (sha256 ${digest}); pass --tuf-root <file> to pin one you got out of band`,
        );
      }
      source = 'trust documents verified through TUF from the root pinned on first use';
    }
  }
  if (initialRoot) {
    const t = await loadTrustFromTuf({ mirrorUrl: tufUrl, initialRoot, cacheDir: join(out, 'tuf-cache') }).catch((e: unknown) => {
      if (e instanceof WaxsealError && e.code === 'ERR_TUF' && !o.tufRoot)
        throw new WaxsealError('ERR_TUF', `${e.message} (if the instance was re-created, remove ${out} to pin its new root)`, { cause: e });
      throw e;
    });
    if (!t.signingConfig) throw new WaxsealError('ERR_TUF', `the TUF repository ${tufUrl} publishes no signing config`);
    trustedRoot = t.trustedRoot;
    signingConfig = t.signingConfig;
    tuf = true;
    if (!existsSync(pinnedRoot) || o.tufRoot) writeFileSync(pinnedRoot, initialRoot);
  } else {
    const r = await get(`${base}/trusted_root.json`);
    const s = await get(`${base}/signing_config.json`);
    if (!r || !s)
      throw new WaxsealError(
        'ERR_NOT_FOUND',
        `${base} publishes no /trusted_root.json and /signing_config.json: is it a Waxseal instance?`,
      );
    trustedRoot = r;
    signingConfig = s;
    source = `trust documents read from ${base}/trusted_root.json and /signing_config.json (not through TUF)`;
  }
  const d = settingsFromDocuments(parseTrustedRootJson(trustedRoot), parseSigningConfigJson(signingConfig), new Date());
  const file = (name: string, bytes: Uint8Array | string) => {
    const p = join(out, name);
    writeFileSync(p, bytes);
    return p;
  };
  return {
    source,
    url: base,
    caUrl: d.caUrl,
    tsaUrl: d.tsaUrl,
    logUrl: d.logUrl,
    issuer: d.issuer,
    trustedRootPath: file('trusted_root.json', trustedRoot),
    signingConfigPath: file('signing_config.json', signingConfig),
    tufUrl: tuf ? tufUrl : undefined,
    tufRootPath: tuf ? pinnedRoot : undefined,
    sigstoreJsCache: tuf ? join(out, 'sigstore-js-tuf') : undefined,
    caCertsPath: file('ca-chain.pem', d.caPem),
    tsaChainPath: file('tsa-chain.pem', d.tsaPem),
    logKeyPath: d.logKeyPem ? file('log-key.pem', d.logKeyPem) : undefined,
  };
}

export async function env(argv: string[], ui: Ui): Promise<number> {
  const { values, positionals, helpWanted } = parse(argv, envSpec);
  if (helpWanted) return (ui.result({ help: helpText(envSpec) }, helpText(envSpec)), 0);
  const shell = (values.shell ?? 'sh') as Shell;
  if (!(shell in quote)) throw new UsageError(`--shell must be sh, fish or powershell, not ${JSON.stringify(values.shell)}`);
  const instanceUrl = positionals[0];
  if (instanceUrl && values.data) throw new UsageError('pass either an instance URL or --data <dir>, not both');
  const settings = instanceUrl
    ? await instanceSettings(
        instanceUrl,
        { out: values.out, tufRoot: values['tuf-root'], noTuf: Boolean(values['no-tuf']), allowHttp: Boolean(values['allow-http']) },
        ui,
      )
    : devSettings(values.data ?? DEFAULT_DEV_DATA);
  const cli = cliName(process.env);
  ui.result(
    {
      ok: true,
      instance: settings.url,
      source: settings.source,
      env: Object.fromEntries(envVariables(settings).map(([k, v]) => [k, v])),
      commands: envCommands(settings, cli, shell),
    },
    renderEnv(settings, shell, cli),
  );
  return 0;
}
