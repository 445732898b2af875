// waxseal trust init: set a client up from an instance's TUF mirror. The trusted root and the
// signing config are fetched and verified with a real TUF client (tuf-js) starting from a root
// you pinned out of band, and installed where sign-blob and verify-blob look by default.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { WaxsealError } from '@waxseal/core';
import { loadTrustFromTuf } from '@waxseal/trust';
import { parseSigningConfigJson, parseTrustedRootJson } from '@waxseal/bundle';
import { trustDir } from '../config.ts';
import { parse, helpText, UsageError, type Ui } from '../ui.ts';

export const trustSpec = {
  usage: 'waxseal trust init --mirror <url> --root <root.json>',
  summary: "Fetch and verify an instance's trusted root and signing config through TUF, and install them.",
  options: { mirror: { type: 'string' }, root: { type: 'string' }, 'force-init': { type: 'boolean' } },
  positionals: [1, 1] as [number, number],
  help: `Options:
  --mirror <url>    the instance's TUF repository (e.g. https://signing.example.com/tuf;
                    \`waxseal env\` prints it as WAXSEAL_TUF_MIRROR; cosign's TUF_MIRROR works too)
  --root <file>     the TUF root.json to trust initially (WAXSEAL_TUF_ROOT, or cosign's
                    TUF_ROOT_JSON), obtained out of band
  --force-init      start again from --root even if a newer root is cached

Installs trusted_root.json and signing_config.json into $WAXSEAL_CONFIG_DIR/trust (default
~/.config/waxseal/trust); sign-blob and verify-blob use them when no flag or variable says otherwise.
Run it again to pick up rotated keys. The TUF cache is kept in TUF_ROOT when set, as cosign keeps it.
Without \`trust init\`, TUF_MIRROR (with TUF_ROOT_JSON) makes sign-blob and verify-blob fetch
the documents through TUF on each run.`,
} as const;

export async function trust(argv: string[], ui: Ui): Promise<number> {
  const { values: v, positionals, helpWanted } = parse(argv, trustSpec);
  if (helpWanted) return (ui.result({ help: helpText(trustSpec) }, helpText(trustSpec)), 0);
  if (positionals[0] !== 'init') throw new UsageError(`unknown subcommand trust ${positionals[0]}`);
  const env = process.env;
  // cosign's names too: TUF_MIRROR, TUF_ROOT_JSON (the root.json), TUF_ROOT (the cache folder).
  const mirror = v.mirror ?? (env.WAXSEAL_TUF_MIRROR || env.TUF_MIRROR || undefined);
  const rootPath = v.root ?? (env.WAXSEAL_TUF_ROOT || env.TUF_ROOT_JSON || undefined);
  if (!mirror || !rootPath) throw new UsageError('--mirror <url> and --root <root.json> are required');
  let initialRoot: Uint8Array;
  try {
    initialRoot = readFileSync(rootPath);
  } catch (e) {
    throw new WaxsealError('ERR_IO', `cannot read TUF root ${rootPath}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  const dir = trustDir();
  mkdirSync(dir, { recursive: true });
  const t = await loadTrustFromTuf({
    mirrorUrl: mirror,
    initialRoot,
    cacheDir: env.TUF_ROOT || join(dir, 'tuf-cache'),
    forceInit: Boolean(v['force-init']),
  });
  // Installed documents must be usable.
  parseTrustedRootJson(t.trustedRoot);
  if (t.signingConfig) parseSigningConfigJson(t.signingConfig);
  writeFileSync(join(dir, 'trusted_root.json'), t.trustedRoot);
  if (t.signingConfig) writeFileSync(join(dir, 'signing_config.json'), t.signingConfig);
  ui.result(
    { ok: true, dir, rootVersion: t.rootVersion, signingConfig: Boolean(t.signingConfig) },
    `Trust installed in ${dir} (TUF root version ${t.rootVersion}${t.signingConfig ? ', with signing config' : ''})`,
  );
  return 0;
}
