// waxseal sign-blob / attest-blob: keyless signing of files into Sigstore bundles.
import { writeFileSync, readFileSync } from 'node:fs';
import { WaxsealError } from '@waxseal/core';
import { serializeBundleJson, type Bundle } from '@waxseal/bundle';
import { resolveIdentityToken, signFile, attestFile, makeTlogUploader, type SigningServices } from '@waxseal/sign';
import { resolveSigning } from '../config.ts';
import { parse, helpText, type Ui } from '../ui.ts';

const SIGNING_OPTIONS = {
  bundle: { type: 'string' },
  'identity-token': { type: 'string' },
  'signing-config': { type: 'string' },
  'fulcio-url': { type: 'string' },
  'timestamp-server-url': { type: 'string' },
  'rekor-url': { type: 'string' },
  'no-tlog-upload': { type: 'boolean' },
} as const;

const SIGNING_HELP = `
  --bundle <file>                 where to write the Sigstore bundle (v0.3); required
  --identity-token <jwt|file>     OIDC ID token (else SIGSTORE_ID_TOKEN, the GitHub Actions
                                  ambient token, or the token cached by \`waxseal login\`)
  --signing-config <file>         SigningConfig v0.2 naming the CA, TSA and logs
                                  (else WAXSEAL_SIGNING_CONFIG or \`waxseal trust init\`)
  --fulcio-url <url>              override the CA base URL
  --timestamp-server-url <url>    override the TSA URL (full POST URL)
  --rekor-url <url>               record the signature in this Rekor v1 log
  --no-tlog-upload                do not record the signature in a transparency log`;

export const signBlobSpec = {
  usage: 'waxseal sign-blob <file> --bundle <out> [options]',
  summary: 'Sign a file with a short-lived certificate for your OIDC identity and a trusted timestamp.',
  options: SIGNING_OPTIONS,
  positionals: [1, 1] as [number, number],
  help: `Options:${SIGNING_HELP}\n\nThe ephemeral signing key lives only in memory. Exit codes: 0 signed, 3 bad input,\n4 identity refused, 5 service unavailable.`,
};

export const attestBlobSpec = {
  usage: 'waxseal attest-blob <file> --predicate <file> --type <uri> --bundle <out> [options]',
  summary: 'Sign an in-toto attestation (DSSE) about a file.',
  options: { ...SIGNING_OPTIONS, predicate: { type: 'string' as const }, type: { type: 'string' as const } },
  positionals: [1, 1] as [number, number],
  help: `Options:
  --predicate <file>              the predicate (JSON); required
  --type <uri>                    predicate type URI (e.g. https://slsa.dev/provenance/v1); required${SIGNING_HELP}`,
};

type SigningValues = { [K in keyof typeof SIGNING_OPTIONS]?: K extends 'no-tlog-upload' ? boolean : string };

async function services(v: SigningValues): Promise<{ token: string; services: SigningServices; summary: Record<string, string> }> {
  const r = resolveSigning({
    signingConfig: v['signing-config'],
    fulcioUrl: v['fulcio-url'],
    timestampServerUrl: v['timestamp-server-url'],
    rekorUrl: v['rekor-url'],
    tlogUpload: !v['no-tlog-upload'],
  });
  const { token, source } = await resolveIdentityToken({ explicit: v['identity-token'] });
  const svc: SigningServices = { caUrl: r.caUrl, tsaUrl: r.tsaUrl };
  if (r.rekor) svc.tlog = makeTlogUploader(r.rekor);
  return { token, services: svc, summary: { ca: r.caUrl, tsa: r.tsaUrl, tokenSource: source, ...(r.rekor ? { tlog: r.rekor.url } : {}) } };
}

function writeBundle(path: string, bundle: Bundle): void {
  try {
    writeFileSync(path, `${serializeBundleJson(bundle)}\n`);
  } catch (e) {
    throw new WaxsealError('ERR_IO', `cannot write bundle ${path}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
}

export async function signBlob(argv: string[], ui: Ui): Promise<number> {
  const { values, positionals, helpWanted } = parse(argv, signBlobSpec);
  if (helpWanted) return (ui.result({ help: helpText(signBlobSpec) }, helpText(signBlobSpec)), 0);
  if (!values.bundle) throw new (await import('../ui.ts')).UsageError('--bundle <file> is required');
  const file = positionals[0]!;
  const s = await services(values);
  const bundle = await signFile(file, { ...s, onProgress: (d, t) => ui.progress(`hashing ${file}`, d, t) });
  ui.progressDone();
  writeBundle(values.bundle, bundle);
  ui.result({ ok: true, bundle: values.bundle, ...s.summary }, `Signed ${file}; bundle written to ${values.bundle}`);
  return 0;
}

export async function attestBlob(argv: string[], ui: Ui): Promise<number> {
  const { values, positionals, helpWanted } = parse(argv, attestBlobSpec);
  if (helpWanted) return (ui.result({ help: helpText(attestBlobSpec) }, helpText(attestBlobSpec)), 0);
  const { UsageError } = await import('../ui.ts');
  if (!values.bundle) throw new UsageError('--bundle <file> is required');
  if (!values.predicate) throw new UsageError('--predicate <file> is required');
  if (!values.type) throw new UsageError('--type <uri> is required');
  let predicate: unknown;
  try {
    predicate = JSON.parse(readFileSync(values.predicate, 'utf8'));
  } catch (e) {
    throw new WaxsealError(
      (e as NodeJS.ErrnoException).code ? 'ERR_IO' : 'ERR_JSON_PARSE',
      `cannot read predicate ${values.predicate}: ${(e as Error).message}`,
    );
  }
  const file = positionals[0]!;
  const s = await services(values);
  const bundle = await attestFile(file, values.type, predicate, { ...s, onProgress: (d, t) => ui.progress(`hashing ${file}`, d, t) });
  ui.progressDone();
  writeBundle(values.bundle, bundle);
  ui.result(
    { ok: true, bundle: values.bundle, predicateType: values.type, ...s.summary },
    `Attested ${file} (${values.type}); bundle written to ${values.bundle}`,
  );
  return 0;
}
