// The sigstore-conformance client entrypoint (docs/cli_protocol.md of sigstore/sigstore-conformance):
//
//   sign-bundle   [--staging] [--in-toto] --identity-token TOKEN --bundle FILE
//                 [--trusted-root FILE] [--signing-config FILE] FILE
//   verify-bundle [--staging] --bundle FILE
//                 (--certificate-identity IDENTITY --certificate-oidc-issuer URL | --key PEM_FILE)
//                 [--trusted-root FILE] FILE_OR_DIGEST
//
// FILE_OR_DIGEST is "sha256:<64 hex>" (when no such file exists) or a path. Exit status 0 means
// success; any failure prints "<code>: <message>" on stderr and exits 1.
//
// Trust material: --trusted-root (or, without it, the file named by WAXSEAL_TRUSTED_ROOT /
// WAXSEAL_STAGING_TRUSTED_ROOT with --staging). There is no network fetch of the public-good
// TUF repository here.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { WaxsealError } from '../packages/core/src/errors.ts';
import {
  parseBundleJson,
  parseTrustedRootJson,
  parseSigningConfigJson,
  selectServices,
  serializeBundleJson,
} from '../packages/bundle/src/index.ts';
import { Verifier, type Artifact, type VerificationPolicy } from '../packages/verify/src/index.ts';

export interface ParsedArgs {
  command: string;
  flags: Map<string, string | true>;
  positional: string[];
}

const BOOLEAN_FLAGS = new Set(['--staging', '--in-toto']);

export function parseArgs(argv: readonly string[]): ParsedArgs {
  const [command = '', ...rest] = argv;
  const flags = new Map<string, string | true>();
  const positional: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      if (eq > 0) flags.set(a.slice(0, eq), a.slice(eq + 1));
      else if (BOOLEAN_FLAGS.has(a)) flags.set(a, true);
      else {
        const v = rest[i + 1];
        if (v === undefined) throw new WaxsealError('ERR_INVALID_INPUT', `${a} needs a value`);
        flags.set(a, v);
        i++;
      }
    } else positional.push(a);
  }
  return { command, flags, positional };
}

function str(a: ParsedArgs, name: string): string | undefined {
  const v = a.flags.get(name);
  return typeof v === 'string' ? v : undefined;
}

function required(a: ParsedArgs, name: string): string {
  const v = str(a, name);
  if (v === undefined) throw new WaxsealError('ERR_INVALID_INPUT', `missing ${name}`);
  return v;
}

function readFile(path: string, what: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    throw new WaxsealError('ERR_IO', `cannot read ${what} ${path}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

function trustedRootPath(a: ParsedArgs, env: NodeJS.ProcessEnv): string {
  const p = str(a, '--trusted-root') ?? (a.flags.has('--staging') ? env.WAXSEAL_STAGING_TRUSTED_ROOT : env.WAXSEAL_TRUSTED_ROOT);
  if (!p) throw new WaxsealError('ERR_CONFIG', 'no trusted root: pass --trusted-root FILE (or set WAXSEAL_TRUSTED_ROOT)');
  return p;
}

/** FILE_OR_DIGEST: "sha256:<64 hex>" that is not a path on disk is a digest; anything else a file. */
export function artifactArgument(arg: string): Artifact {
  const m = /^sha256:([0-9a-fA-F]{64})$/.exec(arg);
  if (m && !existsSync(arg)) return { digest: { algorithm: 'sha256', value: m[1]!.toLowerCase() } };
  return { bytes: readFile(arg, 'artifact') };
}

export function verifyBundleCommand(a: ParsedArgs, env: NodeJS.ProcessEnv = process.env): string {
  if (a.positional.length !== 1) throw new WaxsealError('ERR_INVALID_INPUT', 'verify-bundle takes exactly one FILE_OR_DIGEST');
  const bundle = parseBundleJson(readFile(required(a, '--bundle'), 'bundle'));
  const root = parseTrustedRootJson(readFile(trustedRootPath(a, env), 'trusted root'));
  const keyPath = str(a, '--key');
  let policy: VerificationPolicy;
  if (keyPath !== undefined) {
    policy = { publicKey: { publicKey: new TextDecoder().decode(readFile(keyPath, 'public key')) } };
  } else {
    policy = {
      identities: [{ subjectAlternativeName: required(a, '--certificate-identity'), issuer: required(a, '--certificate-oidc-issuer') }],
    };
  }
  // A trusted root without CT logs describes a deployment without CT: SCTs cannot be required
  // there. Key-signed bundles never need SCTs.
  const verifier = new Verifier(root, root.ctlogs.length === 0 ? { skipSctUnsafe: true } : {});
  const result = verifier.verify(bundle, artifactArgument(a.positional[0]!), policy);
  const who =
    result.signer.type === 'certificate' ? `${result.signer.san ?? '?'} (${result.signer.issuer ?? '?'})` : 'the given public key';
  return `verified: signed by ${who}; ${result.timestamps.length} verified time(s), ${result.tlogEntries.length} log entr${result.tlogEntries.length === 1 ? 'y' : 'ies'}`;
}

/** The signing client the lead provides (src/sign). Imported lazily: verification must not depend on it. */
export async function signBundleCommand(a: ParsedArgs): Promise<string> {
  if (a.positional.length !== 1) throw new WaxsealError('ERR_INVALID_INPUT', 'sign-bundle takes exactly one FILE');
  const token = required(a, '--identity-token');
  const out = required(a, '--bundle');
  const configPath = str(a, '--signing-config');
  if (!configPath) throw new WaxsealError('ERR_CONFIG', 'signing client not available without --signing-config (no TUF access here)');
  const config = parseSigningConfigJson(readFile(configPath, 'signing config'));
  const services = selectServices(config, new Date());
  const tsa = services.tsas[0];
  if (!tsa) throw new WaxsealError('ERR_CONFIG', 'the signing config lists no timestamp authority valid now');
  let sign: typeof import('../packages/sign/src/sign.ts');
  let tlogClient: typeof import('../packages/sign/src/tlog-client.ts');
  try {
    sign = await import('../packages/sign/src/sign.ts');
    tlogClient = await import('../packages/sign/src/tlog-client.ts');
  } catch (e) {
    throw new WaxsealError('ERR_UNAVAILABLE', 'signing client not available', { cause: e });
  }
  const log = services.tlogs[0];
  const options = {
    token,
    services: {
      caUrl: services.ca.url,
      tsaUrl: tsa.url,
      ...(log ? { tlog: tlogClient.makeTlogUploader({ url: log.url, majorApiVersion: log.majorApiVersion }) } : {}),
    },
  };
  const input = a.positional[0]!;
  const bundle = a.flags.has('--in-toto')
    ? await sign.signStatement(JSON.parse(new TextDecoder().decode(readFile(input, 'statement'))), options)
    : await sign.signFile(input, options);
  writeFileSync(out, serializeBundleJson(bundle));
  return `wrote ${out}`;
}

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  try {
    const a = parseArgs(argv);
    let message: string;
    if (a.command === 'verify-bundle') message = verifyBundleCommand(a, env);
    else if (a.command === 'sign-bundle') message = await signBundleCommand(a);
    else
      throw new WaxsealError('ERR_INVALID_INPUT', `unknown command ${JSON.stringify(a.command)} (expected sign-bundle or verify-bundle)`);
    process.stdout.write(`${message}\n`);
    return 0;
  } catch (e) {
    const text = e instanceof WaxsealError ? `${e.code}: ${e.message}` : `ERR_INTERNAL: ${e instanceof Error ? e.stack : String(e)}`;
    process.stderr.write(`${text}\n`);
    return 1;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await main(process.argv.slice(2));
}
