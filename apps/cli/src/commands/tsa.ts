// waxseal tsa init | rotate: the timestamp authority's certificate chain (a root kept offline and
// a TSA leaf with exactly one, critical EKU: timeStamping), the leaf key under any key URI.
import { join } from 'node:path';
import { encodePem } from '@waxseal/core';
import { generateSigner, selfSignedRoot, tsaLeaf, writeSecretFile } from '@waxseal/keys';
import { checkTsaChain } from '@waxseal/tsa';
import { parse, helpText, UsageError, type Ui } from '../ui.ts';
import { loadRoot, prepareInitDir, replaceChain, signingKey, writePublicFile, years } from './authority.ts';

export const tsaSpec = {
  usage: 'waxseal tsa <init|rotate> [options]',
  summary: 'Set up or rotate the timestamp authority certificate chain.',
  options: {
    out: { type: 'string' },
    dir: { type: 'string' },
    key: { type: 'string' },
    'root-key': { type: 'string' },
    org: { type: 'string' },
    years: { type: 'string' },
    force: { type: 'boolean' },
  },
  positionals: [1, 1] as [number, number],
  help: `Subcommands:
  waxseal tsa init --out <dir> [--key <uri>] [--org <name>] [--years N] [--force]
      A TSA root (P-384, 10 years; root.key: move it offline) and a TSA leaf for --key
      (default: a new P-256 file key, tsa.key). Writes chain.pem (leaf first) and root.pem.
      Private keys are written as new files of mode 0600. An existing chain.pem, root.key or
      tsa.key is refused unless --force, which replaces them; a symbolic link at a key's path
      is always refused.
  waxseal tsa rotate --dir <dir> --root-key <file> [--key <uri>] [--years N]
      A new TSA leaf from the root; the old chain is kept as chain-<date>.pem and the
      tsa.retired entry to add is printed. --years: the leaf's validity (default 5).`,
} as const;

export async function tsa(argv: string[], ui: Ui): Promise<number> {
  const { values: v, positionals, helpWanted } = parse(argv, tsaSpec);
  if (helpWanted) return (ui.result({ help: helpText(tsaSpec) }, helpText(tsaSpec)), 0);
  const org = v.org ?? 'Waxseal';
  const yearsN = years(v.years, 5, '--years');
  const now = new Date();
  if (positionals[0] === 'init') {
    if (!v.out) throw new UsageError('--out <dir> is required');
    const rootKeyPath = join(v.out, 'root.key');
    const secret = prepareInitDir(v.out, v.force ?? false, v.key ? [rootKeyPath] : [rootKeyPath, join(v.out, 'tsa.key')]);
    const rootSigner = generateSigner('ecdsa-p384');
    const root = await selfSignedRoot(rootSigner, {
      organization: org,
      commonName: `${org} timestamping root`,
      notAfter: new Date(now.getTime() + 10 * 365 * 86_400_000),
      pathLen: 0,
    });
    const { signer, uri } = await signingKey(v.key, join(v.out, 'tsa.key'), secret);
    const leaf = await tsaLeaf(signer.publicKeySpki, rootSigner, root, {
      organization: org,
      commonName: `${org} timestamp authority`,
      notAfter: new Date(now.getTime() + yearsN * 365 * 86_400_000),
    });
    checkTsaChain([leaf, root], signer.publicKeySpki);
    await signer.close?.();
    writeSecretFile(rootKeyPath, rootSigner.exportPkcs8Pem(), secret);
    writePublicFile(join(v.out, 'root.pem'), encodePem('CERTIFICATE', root.der));
    writePublicFile(join(v.out, 'chain.pem'), encodePem('CERTIFICATE', leaf.der) + encodePem('CERTIFICATE', root.der));
    ui.result({ ok: true, chain: join(v.out, 'chain.pem'), key: uri }, [
      `TSA chain written to ${v.out}/chain.pem (signing key ${uri}).`,
      `Move ${v.out}/root.key offline.`,
    ]);
    return 0;
  }
  if (positionals[0] === 'rotate') {
    if (!v.dir || !v['root-key']) throw new UsageError('--dir and --root-key are required');
    const { root, rootSigner } = loadRoot(v.dir, v['root-key']);
    const stamp = now.toISOString().replace(/[:.]/g, '-');
    const { signer, uri } = await signingKey(v.key, join(v.dir, `tsa-${stamp}.key`));
    const leaf = await tsaLeaf(signer.publicKeySpki, rootSigner, root, {
      organization: root.subject['2.5.4.10'] ?? org,
      commonName: `${root.subject['2.5.4.10'] ?? org} timestamp authority ${now.toISOString().slice(0, 10)}`,
      notAfter: new Date(Math.min(root.notAfter.getTime(), now.getTime() + yearsN * 365 * 86_400_000)),
    });
    checkTsaChain([leaf, root], signer.publicKeySpki);
    await signer.close?.();
    const retiredPath = replaceChain(v.dir, stamp, encodePem('CERTIFICATE', leaf.der) + encodePem('CERTIFICATE', root.der));
    ui.result({ ok: true, chain: join(v.dir, 'chain.pem'), key: uri, retired: { chain: retiredPath, end: now.toISOString() } }, [
      `New TSA certificate in ${join(v.dir, 'chain.pem')}, signing with ${uri}.`,
      'Point tsa.key at the new key, add the old chain to tsa.retired, and restart:',
      `  retired: [ { chain: ${retiredPath}, end: ${now.toISOString()} } ]`,
    ]);
    return 0;
  }
  throw new UsageError(`unknown subcommand tsa ${positionals[0]}`);
}
