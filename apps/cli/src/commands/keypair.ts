// waxseal generate-key-pair / import-key-pair: cosign's encrypted key files (cosign.key, 0600, and
// cosign.pub), with cosign's flags and password sources: COSIGN_PASSWORD (an empty value is an
// empty password), else a prompt on the terminal; never a password on the command line.
import { existsSync, lstatSync, readFileSync, writeFileSync } from 'node:fs';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { WaxsealError } from '@waxseal/core';
import { checkSecretFileTarget, encryptCosignKey, importPrivateKeyPem, publicKeyPem, writeSecretFile } from '@waxseal/keys';
import { parse, helpText, UsageError, type Ui } from '../ui.ts';

const PASSWORD_HELP = `Password: COSIGN_PASSWORD (set and empty means no password), else asked on the terminal
(twice). Without either, the command stops with a usage error.`;

export const generateKeyPairSpec = {
  usage: 'waxseal generate-key-pair [--output-key-prefix <prefix>] [-y|--force]',
  summary: "Generate an ECDSA P-256 key pair in cosign's format: <prefix>.key (encrypted, mode 0600) and <prefix>.pub.",
  options: {
    'output-key-prefix': { type: 'string', default: 'cosign' },
    yes: { type: 'boolean', short: 'y' },
    force: { type: 'boolean', short: 'f' },
  } as const,
  positionals: [0, 0] as [number, number],
  envPrefixes: ['COSIGN'],
  help: `Options:
  --output-key-prefix <prefix>    file names: <prefix>.key and <prefix>.pub (default cosign)
  -y, --yes, -f, --force          replace existing files (else existing files are refused)

${PASSWORD_HELP}

The private key is PKCS#8 encrypted as cosign writes it (scrypt N=65536 r=8 p=1, NaCl secretbox),
under the PEM label ENCRYPTED SIGSTORE PRIVATE KEY; cosign, and waxseal sign --key, read it.`,
};

export const importKeyPairSpec = {
  usage: 'waxseal import-key-pair --key <pem> [--output-key-prefix <prefix>] [-y|--force]',
  summary: "Convert a PEM private key (PKCS#1 RSA, SEC1 EC or PKCS#8 RSA/ECDSA/Ed25519) into cosign's encrypted format.",
  options: {
    key: { type: 'string', short: 'k' },
    'output-key-prefix': { type: 'string', short: 'o', default: 'import-cosign' },
    yes: { type: 'boolean', short: 'y' },
    force: { type: 'boolean', short: 'f' },
  } as const,
  positionals: [0, 0] as [number, number],
  envPrefixes: ['COSIGN'],
  help: `Options:
  -k, --key <pem>                 the unencrypted PEM private key to import; required
  -o, --output-key-prefix <prefix>  file names: <prefix>.key and <prefix>.pub (default import-cosign)
  -y, --yes, -f, --force          replace existing files (else existing files are refused)

Keys are checked as cosign checks them: RSA of 2048 to 4096 bits, ECDSA on P-256, P-384 or P-521,
Ed25519.

${PASSWORD_HELP}`,
};

/** Reads a line from the terminal without echo (raw mode); Ctrl-C and Ctrl-D abort. */
function readHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  return new Promise((resolve, reject) => {
    let buf = '';
    stdin.setRawMode(true);
    stdin.resume();
    stdin.setEncoding('utf8');
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(buf);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003' || ch === '\u0004') return done(new UsageError('password entry cancelled'));
        if (ch === '\u007f' || ch === '\b') buf = buf.slice(0, -1);
        else buf += ch;
      }
    };
    stdin.on('data', onData);
  });
}

/**
 * cosign's password sources: COSIGN_PASSWORD when set (even empty), else the terminal (asked
 * twice when `confirm`); else a usage error naming both.
 */
export async function cosignPassword(o: { confirm: boolean; env?: NodeJS.ProcessEnv }): Promise<string> {
  const env = o.env ?? process.env;
  if (env.COSIGN_PASSWORD !== undefined) return env.COSIGN_PASSWORD;
  if (!process.stdin.isTTY || !process.stderr.isTTY) {
    throw new UsageError('the private key password is needed: set COSIGN_PASSWORD (empty for none) or run on a terminal');
  }
  const pw = await readHidden('Enter password for private key: ');
  if (o.confirm) {
    const again = await readHidden('Enter password for private key again: ');
    if (again !== pw) throw new UsageError('passwords do not match');
  }
  return pw;
}

function writeKeyPair(privateKey: KeyObject, prefix: string, replace: boolean, password: string): { key: string; pub: string } {
  const key = `${prefix}.key`;
  const pub = `${prefix}.pub`;
  const encrypted = encryptCosignKey(privateKey, password);
  writeSecretFile(key, encrypted, { force: replace, forceHint: 'pass -y/--yes or --force to replace it' });
  try {
    writeFileSync(pub, publicKeyPem(privateKey), { mode: 0o644 });
  } catch (e) {
    throw new WaxsealError('ERR_IO', `cannot write ${pub}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  return { key, pub };
}

/** Refuses, before any password is asked, files that would be replaced without -y/--force. */
function checkTargets(prefix: string, replace: boolean): void {
  if (!prefix) throw new UsageError('--output-key-prefix must not be empty');
  checkSecretFileTarget(`${prefix}.key`, { force: replace, forceHint: 'pass -y/--yes or --force to replace it' });
  const pub = `${prefix}.pub`;
  if (existsSync(pub) || isLink(pub)) {
    if (isLink(pub)) throw new WaxsealError('ERR_CONFLICT', `${pub} is a symbolic link: refusing to write through it`);
    if (!replace) throw new WaxsealError('ERR_CONFLICT', `${pub} exists: refusing to replace it (pass -y/--yes or --force)`);
  }
}

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

export async function generateKeyPair(argv: string[], ui: Ui): Promise<number> {
  const { values: v, helpWanted } = parse(argv, generateKeyPairSpec);
  if (helpWanted) return (ui.result({ help: helpText(generateKeyPairSpec) }, helpText(generateKeyPairSpec)), 0);
  const prefix = v['output-key-prefix'] ?? 'cosign';
  const replace = Boolean(v.yes || v.force);
  checkTargets(prefix, replace);
  const password = await cosignPassword({ confirm: true });
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const out = writeKeyPair(privateKey, prefix, replace, password);
  ui.result({ ok: true, privateKey: out.key, publicKey: out.pub }, `Private key written to ${out.key}\nPublic key written to ${out.pub}`);
  return 0;
}

export async function importKeyPair(argv: string[], ui: Ui): Promise<number> {
  const { values: v, helpWanted } = parse(argv, importKeyPairSpec);
  if (helpWanted) return (ui.result({ help: helpText(importKeyPairSpec) }, helpText(importKeyPairSpec)), 0);
  if (!v.key) throw new UsageError('--key <pem> is required');
  let pem: string;
  try {
    pem = readFileSync(v.key, 'utf8');
  } catch (e) {
    throw new WaxsealError('ERR_IO', `cannot read ${v.key}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  const privateKey = importPrivateKeyPem(pem);
  const prefix = v['output-key-prefix'] ?? 'import-cosign';
  const replace = Boolean(v.yes || v.force);
  checkTargets(prefix, replace);
  const password = await cosignPassword({ confirm: true });
  const out = writeKeyPair(privateKey, prefix, replace, password);
  ui.result(
    { ok: true, privateKey: out.key, publicKey: out.pub, keyType: privateKey.asymmetricKeyType },
    `Private key written to ${out.key}\nPublic key written to ${out.pub}`,
  );
  return 0;
}
