// waxseal sign-blob / attest-blob: keyless signing of files into Sigstore bundles, with cosign's
// flags and their meaning (COSIGN_* variables included).
import { writeFileSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { WaxsealError, encodePem, toBase64 } from '@waxseal/core';
import { serializeBundleJson, type Bundle } from '@waxseal/bundle';
import {
  resolveIdentityToken,
  signFile,
  signDigest,
  signStatement,
  statementFor,
  attestFile,
  makeTlogUploader,
  type SigningServices,
} from '@waxseal/sign';
import { resolveSigning, signingConfigFromTuf } from '../config.ts';
import { parse, helpText, UsageError, type Ui } from '../ui.ts';
import { DEFAULT_PREDICATE_TYPE, PREDICATE_TYPE_ALIASES, expandPredicateType } from '../predicate-type.ts';

export const SIGNING_OPTIONS = {
  bundle: { type: 'string' },
  'identity-token': { type: 'string' },
  'signing-config': { type: 'string' },
  'fulcio-url': { type: 'string' },
  'timestamp-server-url': { type: 'string' },
  'rekor-url': { type: 'string' },
  'tlog-upload': { type: 'boolean', default: true },
  yes: { type: 'boolean', short: 'y' },
  'oidc-issuer': { type: 'string' },
  'oidc-client-id': { type: 'string' },
  'oidc-disable-ambient-providers': { type: 'boolean' },
  'fulcio-auth-flow': { type: 'string' },
} as const;

export const SIGNING_HELP = `
  --identity-token <jwt|file>     OIDC ID token, or a file holding one; else, in this order:
                                  SIGSTORE_ID_TOKEN (GitLab CI), the GitHub Actions token, the
                                  Buildkite agent's token (buildkite-agent oidc request-token),
                                  the token file /var/run/sigstore/cosign/oidc-token (Kubernetes),
                                  the token cached by \`waxseal login\`, and on a terminal the
                                  browser login, which starts by itself
  --oidc-issuer <url>             the OIDC provider to log in with (else the signing config's)
  --oidc-client-id <id>           OAuth client id for that login (default sigstore)
  --fulcio-auth-flow <flow>       normal (browser login), device (device flow), token (only a
                                  token at hand, never a login); default: normal on a terminal
  --oidc-disable-ambient-providers  skip the CI and token-file sources above
  --signing-config <file>         SigningConfig v0.2 naming the CA, TSA and logs
                                  (else WAXSEAL_SIGNING_CONFIG, TUF_MIRROR, \`waxseal trust init\`)
  --fulcio-url <url>              override the CA base URL
  --timestamp-server-url <url>    override the TSA URL (full POST URL)
  --rekor-url <url>               record the signature in this Rekor v1 log
  --tlog-upload=false             do not record the signature in a transparency log
                                  (also --no-tlog-upload)
  -y, --yes                       accepted for cosign's scripts; waxseal never asks`;

export const signBlobSpec = {
  usage: 'waxseal sign-blob <file|-> --bundle <out> [options]',
  summary: 'Sign a file (or stdin, as -) with a short-lived certificate for your OIDC identity and a trusted timestamp.',
  options: {
    ...SIGNING_OPTIONS,
    'output-signature': { type: 'string' },
    'output-certificate': { type: 'string' },
    'rfc3161-timestamp': { type: 'string' },
    b64: { type: 'boolean', default: true },
  } as const,
  positionals: [1, 1] as [number, number],
  envPrefixes: ['COSIGN'],
  help: `Options:
  --bundle <file>                 where to write the Sigstore bundle (v0.3)
  --output-signature <file>       also write the signature alone (base64), as cosign does
  --output-certificate <file>     also write the signing certificate (PEM, base64-encoded
                                  unless --b64=false), as cosign does
  --rfc3161-timestamp <file>      also write the RFC 3161 timestamp (cosign's JSON form)
  --b64=false                     write --output-signature/--output-certificate unencoded
                                  (one of --bundle and --output-signature is required)${SIGNING_HELP}

The ephemeral signing key lives only in memory. Exit codes: 0 signed, 2 usage, 3 bad input,
4 identity missing or refused, 5 service unavailable.`,
};

export const attestBlobSpec = {
  usage: 'waxseal attest-blob <file|-> --predicate <file> [--type <uri|alias>] --bundle <out> [options]',
  summary: 'Sign an in-toto attestation (DSSE) about a file.',
  options: { ...SIGNING_OPTIONS, predicate: { type: 'string' as const }, type: { type: 'string' as const } },
  positionals: [1, 1] as [number, number],
  envPrefixes: ['COSIGN'],
  help: `Options:
  --predicate <file|->            the predicate (JSON); required
  --type <uri|alias>              predicate type URI, or one of cosign's aliases:
                                  ${Object.keys(PREDICATE_TYPE_ALIASES).join(', ')}
                                  (default ${DEFAULT_PREDICATE_TYPE}: ${PREDICATE_TYPE_ALIASES[DEFAULT_PREDICATE_TYPE]})
  --bundle <file>                 where to write the Sigstore bundle (v0.3); required${SIGNING_HELP}`,
};

type SigningValues = {
  [K in keyof typeof SIGNING_OPTIONS]?: (typeof SIGNING_OPTIONS)[K] extends { type: 'boolean' } ? boolean : string;
};

const AUTH_FLOWS = ['normal', 'device', 'token', 'client_credentials'] as const;

/** A browser login may start by itself only where someone can answer it. */
const onTerminal = () => Boolean(process.stdin.isTTY && process.stderr.isTTY);

export async function services(
  v: SigningValues,
  ui: Ui,
): Promise<{ token: string; services: SigningServices; summary: Record<string, string> }> {
  const flow = v['fulcio-auth-flow'];
  if (flow !== undefined && !(AUTH_FLOWS as readonly string[]).includes(flow))
    throw new UsageError(`--fulcio-auth-flow must be one of normal, device, token (got ${JSON.stringify(flow)})`);
  if (flow === 'client_credentials') throw new UsageError('--fulcio-auth-flow=client_credentials is not supported: pass --identity-token');
  const r = resolveSigning({
    signingConfig: v['signing-config'],
    fulcioUrl: v['fulcio-url'],
    timestampServerUrl: v['timestamp-server-url'],
    rekorUrl: v['rekor-url'],
    tlogUpload: v['tlog-upload'] !== false,
    signingConfigDoc: await signingConfigFromTuf(v['signing-config']),
  });
  const interactive =
    flow === 'normal' || flow === 'device' || (flow === undefined && onTerminal())
      ? async () =>
          (await import('./login.ts')).interactiveLogin({
            issuer: v['oidc-issuer'] ?? r.oidcUrl,
            clientId: v['oidc-client-id'],
            signingConfig: v['signing-config'],
            ui,
            device: flow === 'device',
          })
      : undefined;
  const { token, source } = await resolveIdentityToken({
    explicit: v['identity-token'],
    noAmbient: Boolean(v['oidc-disable-ambient-providers']),
    ...(interactive ? { interactive } : {}),
  });
  const svc: SigningServices = { caUrl: r.caUrl, tsaUrl: r.tsaUrl };
  if (r.rekor) svc.tlog = makeTlogUploader(r.rekor);
  return { token, services: svc, summary: { ca: r.caUrl, tsa: r.tsaUrl, tokenSource: source, ...(r.rekor ? { tlog: r.rekor.url } : {}) } };
}

function writeOutput(path: string, data: string | Uint8Array, what: string): void {
  try {
    writeFileSync(path, data, { mode: 0o644 });
  } catch (e) {
    throw new WaxsealError('ERR_IO', `cannot write ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
}

const writeBundle = (path: string, bundle: Bundle) => writeOutput(path, `${serializeBundleJson(bundle)}\n`, 'bundle');

/** SHA-256 of stdin (`-` as the file, as cosign reads it). */
async function hashStdin(): Promise<Uint8Array> {
  const h = createHash('sha256');
  try {
    for await (const chunk of process.stdin) h.update(chunk as Buffer);
  } catch (e) {
    throw new WaxsealError('ERR_IO', `cannot read stdin: ${(e as Error).message}`);
  }
  return new Uint8Array(h.digest());
}

function readStdinText(): string {
  try {
    return readFileSync(0, 'utf8');
  } catch (e) {
    throw new WaxsealError('ERR_IO', `cannot read stdin: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
}

/** cosign's detached outputs, taken from the bundle: signature, certificate, RFC 3161 timestamp. */
function writeDetached(
  bundle: Bundle,
  v: { 'output-signature'?: string; 'output-certificate'?: string; 'rfc3161-timestamp'?: string; b64?: boolean },
): void {
  const b64 = v.b64 !== false;
  if (v['output-signature'] && bundle.content.type === 'messageSignature') {
    const sig = bundle.content.signature;
    writeOutput(v['output-signature'], b64 ? toBase64(sig) : sig, 'signature');
  }
  const material = bundle.verificationMaterial.content;
  if (v['output-certificate'] && material.type === 'certificate') {
    const pem = encodePem('CERTIFICATE', material.certificate);
    writeOutput(v['output-certificate'], b64 ? Buffer.from(pem).toString('base64') : pem, 'certificate');
  }
  const ts = bundle.verificationMaterial.rfc3161Timestamps?.[0];
  if (v['rfc3161-timestamp'] && ts) {
    writeOutput(v['rfc3161-timestamp'], JSON.stringify({ SignedRFC3161Timestamp: toBase64(ts) }), 'timestamp');
  }
}

export async function signBlob(argv: string[], ui: Ui): Promise<number> {
  const { values, positionals, helpWanted } = parse(argv, signBlobSpec);
  if (helpWanted) return (ui.result({ help: helpText(signBlobSpec) }, helpText(signBlobSpec)), 0);
  if (!values.bundle && !values['output-signature']) throw new UsageError('--bundle <file> is required (or --output-signature <file>)');
  const file = positionals[0]!;
  const s = await services(values, ui);
  const bundle =
    file === '-'
      ? await signDigest(await hashStdin(), s)
      : await signFile(file, { ...s, onProgress: (d, t) => ui.progress(`hashing ${file}`, d, t) });
  ui.progressDone();
  if (values.bundle) writeBundle(values.bundle, bundle);
  writeDetached(bundle, values);
  const outputs = [values.bundle, values['output-signature'], values['output-certificate'], values['rfc3161-timestamp']].filter(Boolean);
  ui.result(
    {
      ok: true,
      ...(values.bundle ? { bundle: values.bundle } : {}),
      ...(values['output-signature'] ? { signature: values['output-signature'] } : {}),
      ...(values['output-certificate'] ? { certificate: values['output-certificate'] } : {}),
      ...(values['rfc3161-timestamp'] ? { rfc3161Timestamp: values['rfc3161-timestamp'] } : {}),
      ...s.summary,
    },
    `Signed ${file === '-' ? 'stdin' : file}; written to ${outputs.join(', ')}`,
  );
  return 0;
}

export async function attestBlob(argv: string[], ui: Ui): Promise<number> {
  const { values, positionals, helpWanted } = parse(argv, attestBlobSpec);
  if (helpWanted) return (ui.result({ help: helpText(attestBlobSpec) }, helpText(attestBlobSpec)), 0);
  if (!values.bundle) throw new UsageError('--bundle <file> is required');
  if (!values.predicate) throw new UsageError('--predicate <file> is required');
  const predicateType = expandPredicateType(values.type ?? DEFAULT_PREDICATE_TYPE);
  const file = positionals[0]!;
  if (file === '-' && values.predicate === '-') throw new UsageError('stdin can be the file or the predicate, not both');
  let predicate: unknown;
  try {
    predicate = JSON.parse(values.predicate === '-' ? readStdinText() : readFileSync(values.predicate, 'utf8'));
  } catch (e) {
    if (e instanceof WaxsealError) throw e;
    throw new WaxsealError(
      (e as NodeJS.ErrnoException).code ? 'ERR_IO' : 'ERR_JSON_PARSE',
      `cannot read predicate ${values.predicate}: ${(e as Error).message}`,
    );
  }
  const s = await services(values, ui);
  const bundle =
    file === '-'
      ? await signStatement(statementFor('-', await hashStdin(), predicateType, predicate), s)
      : await attestFile(file, predicateType, predicate, { ...s, onProgress: (d, t) => ui.progress(`hashing ${file}`, d, t) });
  ui.progressDone();
  writeBundle(values.bundle, bundle);
  ui.result(
    { ok: true, bundle: values.bundle, predicateType, ...s.summary },
    `Attested ${file === '-' ? 'stdin' : file} (${predicateType}); bundle written to ${values.bundle}`,
  );
  return 0;
}
