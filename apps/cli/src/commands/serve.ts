// waxseal serve --config <file>: run an instance from its configuration file.
import { parse, helpText, stopSignal, UsageError, type Ui } from '../ui.ts';
import { loadInstanceConfig, startInstance } from '@waxseal/instance';

export const serveSpec = {
  usage: 'waxseal serve --config <waxseal.yaml>',
  summary: 'Run a Waxseal instance (CA, TSA, TUF, audit) from a configuration file.',
  options: { config: { type: 'string' } },
  help: `Options:
  --config <file>   the instance configuration (see docs/configuration.md)

Keys are named by URI (file://, pkcs11:, awskms://, gcpkms://; file://ca/intermediate.key, as
\`ca init --out ca\` prints it, is relative to the configuration file); chains are checked against
them at start, and the instance refuses to start on any mismatch. The log's tree ID and key are
recorded with its data on first start and read back on every start.`,
} as const;

export async function serve(argv: string[], ui: Ui): Promise<number> {
  const { values, helpWanted } = parse(argv, serveSpec);
  if (helpWanted) return (ui.result({ help: helpText(serveSpec) }, helpText(serveSpec)), 0);
  if (!values.config) throw new UsageError('--config <file> is required');
  const inst = await startInstance(loadInstanceConfig(values.config));
  // Listen for the stop signal before saying we are up: whoever reads the report may signal at once.
  const stopRequested = stopSignal();
  ui.result(
    {
      ok: true,
      url: inst.url,
      trustedRoot: inst.trustedRootPath,
      signingConfig: inst.signingConfigPath,
      tuf: inst.tufUrl ?? null,
      log: inst.logDataDir ? { data: inst.logDataDir, treeId: inst.logTreeId } : null,
    },
    [
      `Waxseal instance at ${inst.url}`,
      `  trusted root   ${inst.trustedRootPath}`,
      `  signing config ${inst.signingConfigPath}`,
      ...(inst.tufUrl ? [`  TUF mirror     ${inst.tufUrl} (root ${inst.tufRootPath})`] : []),
      ...(inst.logDataDir ? [`  log data       ${inst.logDataDir} (tree ID ${inst.logTreeId}; waxseal log fsck --data <it>)`] : []),
    ],
  );
  await stopRequested;
  await inst.close();
  return 0;
}
