// All output rules of the CLI in one place: results on stdout (text or --json), messages and
// progress on stderr, colour only on a TTY without NO_COLOR, one-line errors, exit codes that mean
// something (documented in `waxseal --help` and docs/cli.md).
import { parseArgs, type ParseArgsConfig } from 'node:util';
// Types only: `waxseal --help` and `--version` must not load @waxseal/core (its barrel brings
// all of its crypto), so errors are recognised by shape below.
import type { ErrorCode, WaxsealError } from '@waxseal/core';

export const EXIT = {
  ok: 0,
  /** Verification ran and the artifact, bundle or identity did not verify. */
  verifyFailed: 1,
  /** Bad command line. */
  usage: 2,
  /** Unreadable or malformed input file, or bad configuration. */
  input: 3,
  /** Identity problem: no token, token refused, signing not allowed. */
  identity: 4,
  /** A service (CA, TSA, log, IdP) was unreachable or failed. */
  service: 5,
  /** Anything else: a bug. */
  internal: 70,
} as const;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export function exitCodeFor(code: ErrorCode): number {
  if (code.startsWith('ERR_VERIFY_') || code === 'ERR_AUDIT_TAMPERED' || code === 'ERR_LOG_INCONSISTENT') return EXIT.verifyFailed;
  if (code.startsWith('ERR_TOKEN_') || code.startsWith('ERR_ISSUER_') || code === 'ERR_POLICY_DENIED' || code === 'ERR_IDENTITY_CLAIMS')
    return EXIT.identity;
  if (code === 'ERR_UNAVAILABLE' || code === 'ERR_SIGNER' || code === 'ERR_INTERNAL') return EXIT.service;
  return EXIT.input;
}

export interface Ui {
  json: boolean;
  color: boolean;
  /** Writes a result: `data` as JSON with --json, else the text lines. */
  result(data: unknown, text: string | string[]): void;
  /** A human message on stderr (suppressed with --json unless it is a warning). */
  info(msg: string): void;
  warn(msg: string): void;
  /** Progress on stderr, only on a TTY and not with --json. */
  progress(label: string, done: number, total: number): void;
  progressDone(): void;
  green(s: string): string;
  red(s: string): string;
  bold(s: string): string;
}

export function makeUi(opts: { json: boolean; stdout?: NodeJS.WriteStream; stderr?: NodeJS.WriteStream; env?: NodeJS.ProcessEnv }): Ui {
  const out = opts.stdout ?? process.stdout;
  const err = opts.stderr ?? process.stderr;
  const env = opts.env ?? process.env;
  const color = !opts.json && !env.NO_COLOR && env.TERM !== 'dumb' && Boolean(err.isTTY);
  const paint = (code: number, s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
  let progressShown = false;
  let lastDraw = 0;
  return {
    json: opts.json,
    color,
    result(data, text) {
      if (opts.json) out.write(`${JSON.stringify(data)}\n`);
      else out.write(`${Array.isArray(text) ? text.join('\n') : text}\n`);
    },
    info(msg) {
      if (!opts.json) err.write(`${msg}\n`);
    },
    warn(msg) {
      err.write(`${paint(33, 'warning:')} ${msg}\n`);
    },
    progress(label, done, total) {
      if (opts.json || !err.isTTY) return;
      const now = Date.now();
      if (now - lastDraw < 100 && done < total) return;
      lastDraw = now;
      const pct = total ? Math.floor((100 * done) / total) : 100;
      err.write(`\r${label} ${pct}% (${(done / 1048576).toFixed(0)}/${(total / 1048576).toFixed(0)} MiB)`);
      progressShown = true;
    },
    progressDone() {
      if (progressShown) err.write('\n');
      progressShown = false;
    },
    green: (s) => paint(32, s),
    red: (s) => paint(31, s),
    bold: (s) => paint(1, s),
  };
}

/** A WaxsealError by name and shape (also one thrown by another copy of @waxseal/core). */
function isWaxsealError(e: unknown): e is WaxsealError {
  return (
    e instanceof Error &&
    e.name === 'WaxsealError' &&
    typeof (e as { code?: unknown }).code === 'string' &&
    typeof (e as { toJSON?: unknown }).toJSON === 'function'
  );
}

/** Renders any thrown value as one line on stderr (and JSON with --json) and returns the exit code. */
export function reportError(
  e: unknown,
  ui: Pick<Ui, 'json'>,
  stderr: NodeJS.WriteStream = process.stderr,
  stdout: NodeJS.WriteStream = process.stdout,
): number {
  if (e instanceof UsageError) {
    stderr.write(`waxseal: ${e.message} (see --help)\n`);
    return EXIT.usage;
  }
  if (isWaxsealError(e)) {
    const check = e.check ? ` [check: ${e.check}]` : '';
    stderr.write(`waxseal: ${e.code}: ${e.message.replace(/\s*\n\s*/g, ' ')}${check}\n`);
    if (ui.json) stdout.write(`${JSON.stringify({ ok: false, error: e.toJSON() })}\n`);
    return exitCodeFor(e.code);
  }
  const msg = e instanceof Error ? e.message : String(e);
  stderr.write(`waxseal: internal error: ${msg.split('\n')[0]}\n`);
  if (process.env.WAXSEAL_DEBUG) stderr.write(`${(e as Error)?.stack ?? ''}\n`);
  return EXIT.internal;
}

export interface CommandSpec<O extends ParseArgsConfig['options']> {
  usage: string;
  summary: string;
  options: O;
  help: string;
  /** Number of positional arguments: [min, max]. */
  positionals?: [number, number];
}

/** parseArgs with our conventions: --help, --json, strict flags, and UsageError on mistakes. */
export function parse<O extends NonNullable<ParseArgsConfig['options']>>(argv: string[], spec: CommandSpec<O>) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { ...spec.options, help: { type: 'boolean', short: 'h' }, json: { type: 'boolean' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    throw new UsageError((e as Error).message.split('\n')[0]!.replace(/^TypeError \[\w+\]: /, ''));
  }
  const [min, max] = spec.positionals ?? [0, 0];
  const helpWanted = Boolean((parsed.values as Record<string, unknown>).help);
  if (!helpWanted && (parsed.positionals.length < min || parsed.positionals.length > max)) {
    throw new UsageError(`usage: ${spec.usage}`);
  }
  return {
    values: parsed.values as {
      [K in keyof O]?: O[K] extends { type: 'boolean' } ? boolean : O[K] extends { multiple: true } ? string[] : string;
    } & { help?: boolean; json?: boolean },
    positionals: parsed.positionals,
    helpWanted,
  };
}

export function helpText(spec: { usage: string; summary: string; help: string }): string {
  return `Usage: ${spec.usage}\n\n${spec.summary}\n\n${spec.help.trim()}\n\nCommon options:\n  --json        machine-readable output on stdout\n  -h, --help    show this help\n`;
}
/** Resolves on the first SIGINT or SIGTERM (listening from the moment it is called). */
export function stopSignal(): Promise<void> {
  return new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}
