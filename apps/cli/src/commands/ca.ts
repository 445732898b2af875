// waxseal ca init | csr | import-chain: setting up the CA's chain, with the intermediate key in a
// file, an HSM or a KMS (any key URI) and the root either generated here (then kept offline) or
// held by the customer's own CA (CSR flow).
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WaxsealError, parseCertificatesPem, encodePem, OID } from '@waxseal/core';
import { openSigner, intermediateCa, writeSecretFile } from '@waxseal/keys';
import { initCaChain, writeCsr, validateCaChain } from '@waxseal/ca';
import { parse, helpText, subcommandHelp, UsageError, type Ui } from '../ui.ts';
import { loadRoot, prepareInitDir, replaceChain, signingKey, writePublicFile, years } from './authority.ts';

export const caSpec = {
  usage: 'waxseal ca <init|csr|import-chain|rotate> [options]',
  summary: 'Set up and rotate the CA certificate chain.',
  options: {},
  help: `Subcommands:
  waxseal ca init --out <dir> [--key <uri>] [--org <name>] [--root-kind ecdsa-p384|ecdsa-p256]
                  [--root-key-passphrase-env VAR] [--root-years N] [--intermediate-years N] [--force]
      Creates a root CA and an issuing intermediate (EKU codeSigning, pathLen 0). The
      intermediate key is --key (file://, pkcs11:, awskms://, gcpkms://; default: a new P-256
      key written to <dir>/intermediate.key). Writes root.pem, chain.pem and root.key: move
      root.key offline once the chain is made. Private keys are written as new files of mode
      0600. An existing chain.pem, root.key or intermediate.key is refused unless --force, which
      replaces them; a symbolic link at a key's path is always refused.
  waxseal ca csr --key <uri> --out <file> [--org <name>] [--cn <name>]
      Writes a CSR for an intermediate whose key is --key, for your own CA to sign.
  waxseal ca rotate --dir <dir> --root-key <file> [--key <uri>] [--root-key-passphrase-env VAR]
                    [--years N]
      Issues a new intermediate from the (offline) root for --key (default: a new P-256 file key),
      keeps the old chain as chain-<date>.pem and prints the ca.retired entry to add, so that
      signatures made with the old intermediate keep verifying. --years: the new intermediate's
      validity (default 5, never past the root's).
  waxseal ca import-chain --key <uri> --chain <pem> --out <dir>
      Checks that the chain (intermediate first, root last) verifies, that CA constraints hold
      and that --key's public key matches the intermediate, then installs it as <dir>/chain.pem.`,
} as const;

/** A subcommand's own help: its section of the group's help. */
function sectionOf(sub: string): string {
  return subcommandHelp(caSpec, sub)?.help ?? caSpec.help;
}
function usageOf(sub: string): string {
  return subcommandHelp(caSpec, sub)?.usage ?? caSpec.usage;
}

const initSpec = {
  usage: usageOf('init'),
  summary: 'Create a root CA and an issuing intermediate.',
  options: {
    out: { type: 'string' },
    key: { type: 'string' },
    org: { type: 'string' },
    'root-kind': { type: 'string' },
    'root-key-passphrase-env': { type: 'string' },
    'root-years': { type: 'string' },
    'intermediate-years': { type: 'string' },
    force: { type: 'boolean' },
  },
  help: sectionOf('init'),
} as const;

const csrSpec = {
  usage: usageOf('csr'),
  summary: 'Write a CSR for the intermediate CA key.',
  options: { key: { type: 'string' }, out: { type: 'string' }, org: { type: 'string' }, cn: { type: 'string' } },
  help: sectionOf('csr'),
} as const;

const importSpec = {
  usage: usageOf('import-chain'),
  summary: 'Install a chain issued by an external CA.',
  options: { key: { type: 'string' }, chain: { type: 'string' }, out: { type: 'string' } },
  help: sectionOf('import-chain'),
} as const;

export async function ca(argv: string[], ui: Ui): Promise<number> {
  const [sub, ...rest] = argv;
  if (!sub || sub === '--help' || sub === '-h') {
    ui.result({ help: helpText(caSpec) }, helpText(caSpec));
    return sub ? 0 : 2;
  }
  if (sub === 'init') return init(rest, ui);
  if (sub === 'csr') return csr(rest, ui);
  if (sub === 'import-chain') return importChain(rest, ui);
  if (sub === 'rotate') return rotate(rest, ui);
  throw new UsageError(`unknown subcommand ca ${sub}`);
}

async function init(argv: string[], ui: Ui): Promise<number> {
  const { values: v, helpWanted } = parse(argv, initSpec);
  if (helpWanted) return (ui.result({ help: helpText(initSpec) }, helpText(initSpec)), 0);
  if (!v.out) throw new UsageError('--out <dir> is required');
  const rootKind = (v['root-kind'] ?? 'ecdsa-p384') as 'ecdsa-p384' | 'ecdsa-p256';
  if (!['ecdsa-p384', 'ecdsa-p256'].includes(rootKind)) throw new UsageError('--root-kind must be ecdsa-p384 or ecdsa-p256');
  let passphrase: string | undefined;
  if (v['root-key-passphrase-env']) {
    passphrase = process.env[v['root-key-passphrase-env']];
    if (!passphrase) throw new UsageError(`environment variable ${v['root-key-passphrase-env']} is empty or unset`);
  }
  const rootKeyPath = join(v.out, 'root.key');
  const intermediatePath = join(v.out, 'intermediate.key');
  const secret = prepareInitDir(v.out, v.force ?? false, v.key ? [rootKeyPath] : [rootKeyPath, intermediatePath]);
  const { signer: intermediate, uri: keyUri } = await signingKey(v.key, intermediatePath, secret);
  const r = await initCaChain({
    intermediateSigner: intermediate,
    rootKind,
    organization: v.org ?? 'Waxseal',
    rootValidityYears: years(v['root-years'], 10, '--root-years'),
    intermediateValidityYears: years(v['intermediate-years'], 5, '--intermediate-years'),
    ...(passphrase ? { rootKeyPassphrase: passphrase } : {}),
  });
  writeSecretFile(rootKeyPath, r.rootKeyPem!, secret);
  writePublicFile(join(v.out, 'root.pem'), r.rootPem);
  writePublicFile(join(v.out, 'chain.pem'), r.chainPem);
  await intermediate.close?.();
  ui.result(
    { ok: true, out: v.out, key: keyUri, root: join(v.out, 'root.pem'), chain: join(v.out, 'chain.pem'), rootKey: join(v.out, 'root.key') },
    [
      `CA chain written to ${v.out}:`,
      `  chain.pem   intermediate + root, for the CA's configuration (ca.chain)`,
      `  root.pem    the root certificate, for trusted_root.json and verifiers`,
      `  root.key    the root private key${passphrase ? ' (encrypted)' : ''}: move it to offline storage now;`,
      `              it is needed again only to issue a new intermediate (rotation)`,
      `The CA signs with ${keyUri}.`,
    ],
  );
  return 0;
}

async function csr(argv: string[], ui: Ui): Promise<number> {
  const { values: v, helpWanted } = parse(argv, csrSpec);
  if (helpWanted) return (ui.result({ help: helpText(csrSpec) }, helpText(csrSpec)), 0);
  if (!v.key || !v.out) throw new UsageError('--key <uri> and --out <file> are required');
  const signer = await openSigner(v.key);
  const pem = await writeCsr(signer, {
    organization: v.org ?? 'Waxseal',
    commonName: v.cn ?? `${v.org ?? 'Waxseal'} code-signing intermediate CA`,
  });
  await signer.close?.();
  writePublicFile(v.out, pem);
  ui.result({ ok: true, csr: v.out }, [
    `CSR written to ${v.out}.`,
    'Have your CA issue a CA certificate (CA:TRUE, pathLen 0, keyCertSign, EKU codeSigning) for it,',
    `then run: waxseal ca import-chain --key ${v.key} --chain <issued chain.pem> --out <dir>`,
  ]);
  return 0;
}

async function importChain(argv: string[], ui: Ui): Promise<number> {
  const { values: v, helpWanted } = parse(argv, importSpec);
  if (helpWanted) return (ui.result({ help: helpText(importSpec) }, helpText(importSpec)), 0);
  if (!v.key || !v.chain || !v.out) throw new UsageError('--key, --chain and --out are required');
  let text: string;
  try {
    text = readFileSync(v.chain, 'utf8');
  } catch (e) {
    throw new WaxsealError('ERR_IO', `cannot read ${v.chain}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  const chain = parseCertificatesPem(text);
  if (chain.length < 2) throw new WaxsealError('ERR_CHAIN_INVALID', 'the chain must hold the intermediate and, last, the root');
  const signer = await openSigner(v.key);
  validateCaChain(signer, chain);
  await signer.close?.();
  mkdirSync(v.out, { recursive: true });
  writePublicFile(join(v.out, 'chain.pem'), chain.map((c) => encodePem('CERTIFICATE', c.der)).join(''));
  writePublicFile(join(v.out, 'root.pem'), encodePem('CERTIFICATE', chain[chain.length - 1]!.der));
  ui.result({ ok: true, chain: join(v.out, 'chain.pem') }, `Chain verified and installed as ${join(v.out, 'chain.pem')}`);
  return 0;
}

const rotateSpec = {
  usage: usageOf('rotate'),
  summary: 'Issue a new intermediate from the root and retire the old one.',
  options: {
    dir: { type: 'string' },
    'root-key': { type: 'string' },
    key: { type: 'string' },
    'root-key-passphrase-env': { type: 'string' },
    years: { type: 'string' },
  },
  help: sectionOf('rotate'),
} as const;

async function rotate(argv: string[], ui: Ui): Promise<number> {
  const { values: v, helpWanted } = parse(argv, rotateSpec);
  if (helpWanted) return (ui.result({ help: helpText(rotateSpec) }, helpText(rotateSpec)), 0);
  if (!v.dir || !v['root-key']) throw new UsageError('--dir and --root-key are required');
  const passphrase = v['root-key-passphrase-env'] ? process.env[v['root-key-passphrase-env']] : undefined;
  const { root, rootSigner } = loadRoot(v.dir, v['root-key'], passphrase);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const { signer, uri: keyUri } = await signingKey(v.key, join(v.dir, `intermediate-${stamp}.key`));
  const now = new Date();
  const notAfter = new Date(Math.min(root.notAfter.getTime(), now.getTime() + years(v.years, 5, '--years') * 365 * 86_400_000));
  const intermediate = await intermediateCa(signer.publicKeySpki, rootSigner, root, {
    organization: root.subject['2.5.4.10'] ?? 'Waxseal',
    commonName: `${root.subject['2.5.4.10'] ?? 'Waxseal'} code-signing intermediate CA ${now.toISOString().slice(0, 10)}`,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter,
    pathLen: 0,
    extKeyUsage: [OID.kpCodeSigning],
  });
  validateCaChain(signer, [intermediate, root]);
  await signer.close?.();
  const retiredPath = replaceChain(v.dir, stamp, encodePem('CERTIFICATE', intermediate.der) + encodePem('CERTIFICATE', root.der));
  const end = now.toISOString();
  ui.result({ ok: true, chain: join(v.dir, 'chain.pem'), key: keyUri, retired: { chain: retiredPath, end } }, [
    `New intermediate in ${join(v.dir, 'chain.pem')}, signing with ${keyUri}.`,
    'Point ca.key at the new key and add the old chain to the configuration, then restart:',
    '  ca:',
    `    key: "${keyUri}"`,
    '    retired:',
    `      - { chain: ${retiredPath}, end: ${end} }`,
  ]);
  return 0;
}
