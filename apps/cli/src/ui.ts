// All output rules of the CLI in one place: results on stdout (text or --json), messages and
// progress on stderr, colour only on a TTY without NO_COLOR, one-line errors, exit codes that mean
// something (documented in `waxseal --help` and docs/cli.md).
import type { ParseArgsConfig } from 'node:util';
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
    // ERR_USAGE is the CLI's own code (no service ever answers it), so it is not in @waxseal/core's list.
    if (ui.json) stdout.write(`${JSON.stringify({ ok: false, error: { code: 'ERR_USAGE', message: e.message } })}\n`);
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
  if (ui.json) stdout.write(`${JSON.stringify({ ok: false, error: { code: 'ERR_INTERNAL', message: msg.split('\n')[0] } })}\n`);
  if (process.env.WAXSEAL_DEBUG) stderr.write(`${(e as Error)?.stack ?? ''}\n`);
  return EXIT.internal;
}

type OptionDefs = NonNullable<ParseArgsConfig['options']>;

/** Help for one subcommand of a group command (`waxseal ca csr --help`). */
export interface SubcommandHelp {
  usage: string;
  summary: string;
  help: string;
}

export interface CommandSpec<O extends ParseArgsConfig['options']> {
  usage: string;
  summary: string;
  options: O;
  help: string;
  /** Number of positional arguments: [min, max]. */
  positionals?: [number, number];
  /**
   * Environment prefixes whose `<PREFIX>_<FLAG>` variables set flags not given on the command line
   * (cosign's COSIGN_*: `--tlog-upload` from COSIGN_TLOG_UPLOAD). A flag on the command line wins.
   */
  envPrefixes?: readonly string[];
  /** Per-subcommand help; without it, sections of `help` that start with `waxseal <group> <sub>` are used. */
  subcommands?: Record<string, SubcommandHelp>;
}

const COMMON_OPTIONS = { help: { type: 'boolean', short: 'h' }, json: { type: 'boolean' } } as const;

/** Go's strconv.ParseBool, which cosign's flags and COSIGN_* variables use. */
export function parseBool(v: string): boolean | undefined {
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(v)) return false;
  return undefined;
}

/** Edit distance with transpositions (optimal string alignment), for "did you mean". */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest known flag to a mistyped one, when it is close enough to be the likely intent. */
export function closestFlag(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const k of known) {
    const dist = editDistance(name, k);
    if (dist < bestDistance) [best, bestDistance] = [k, dist];
  }
  // A prefix of exactly one flag (`--certificate-ident`) is also a likely intent.
  const prefixed = known.filter((k) => k.startsWith(name));
  if (bestDistance > Math.max(2, Math.floor(name.length / 3)) && prefixed.length === 1 && name.length >= 3) return prefixed[0];
  return bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

/** `<PREFIX>_<FLAG>` as cosign (viper) names it: upper case, dashes to underscores. */
export function flagEnvName(prefix: string, flag: string): string {
  return `${prefix}_${flag.toUpperCase().replace(/-/g, '_')}`;
}

type Parsed = { values: Record<string, string | boolean | string[] | boolean[] | undefined>; positionals: string[] };

/**
 * The command line grammar: `--flag value`, `--flag=value`, `-s value`, `-abc` (boolean shorts),
 * `--` ends options, `-` alone is a positional (stdin). Boolean flags take `--flag=true|false`
 * (Go's spellings, as cosign) and `--no-flag`; a spec's own `no-x` flag also answers `--x=false`.
 */
function parseArgv(argv: string[], options: OptionDefs): Parsed {
  const values: Parsed['values'] = {};
  const positionals: string[] = [];
  const names = Object.keys(options);
  const shorts = new Map(Object.entries(options).flatMap(([n, o]) => (o.short ? [[o.short, n] as const] : [])));
  const set = (name: string, value: string | boolean) => {
    if (options[name]!.multiple)
      values[name] = [...((values[name] as (string | boolean)[] | undefined) ?? []), value] as string[] | boolean[];
    else values[name] = value;
  };
  const boolValue = (flag: string, raw: string | undefined): boolean => {
    if (raw === undefined) return true;
    const b = parseBool(raw);
    if (b === undefined) throw new UsageError(`${flag} takes true or false, not ${JSON.stringify(raw)}`);
    return b;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = arg.slice(2, eq < 0 ? undefined : eq);
      const inline = eq < 0 ? undefined : arg.slice(eq + 1);
      const opt = options[name];
      if (opt?.type === 'boolean') {
        set(name, boolValue(`--${name}`, inline));
      } else if (opt) {
        if (inline !== undefined) set(name, inline);
        else {
          const next = argv[i + 1];
          if (next === undefined || (next.startsWith('--') && next.length > 2 && names.includes(next.slice(2).split('=')[0]!)))
            throw new UsageError(`--${name} needs a value`);
          set(name, next);
          i++;
        }
      } else if (name.startsWith('no-') && options[name.slice(3)]?.type === 'boolean') {
        set(name.slice(3), !boolValue(`--${name}`, inline));
      } else if (options[`no-${name}`]?.type === 'boolean') {
        set(`no-${name}`, !boolValue(`--${name}`, inline));
      } else {
        const hint = closestFlag(name, names);
        throw new UsageError(`unknown flag --${name}${hint ? `; did you mean --${hint}?` : ''}`);
      }
      continue;
    }
    if (arg.startsWith('-') && arg !== '-') {
      // One or more single-letter flags; a string flag takes the rest of the word or the next word.
      for (let j = 1; j < arg.length; j++) {
        const letter = arg[j]!;
        const name = shorts.get(letter);
        if (!name) throw new UsageError(`unknown flag -${letter}${arg.length > 2 ? ` (in ${arg})` : ''}`);
        if (options[name]!.type === 'boolean') {
          set(name, true);
          continue;
        }
        const rest = arg.slice(j + 1).replace(/^=/, '');
        if (rest) set(name, rest);
        else {
          if (argv[i + 1] === undefined) throw new UsageError(`-${letter} needs a value`);
          set(name, argv[++i]!);
        }
        break;
      }
      continue;
    }
    positionals.push(arg);
  }
  return { values, positionals };
}

/** Fills flags not given on the command line from `<PREFIX>_<FLAG>` variables, then from defaults. */
function applyEnvAndDefaults(values: Parsed['values'], options: OptionDefs, prefixes: readonly string[], env: NodeJS.ProcessEnv): void {
  for (const [name, opt] of Object.entries(options)) {
    if (values[name] !== undefined || name in COMMON_OPTIONS) continue;
    for (const prefix of prefixes) {
      const key = flagEnvName(prefix, name);
      const raw = env[key];
      if (raw === undefined || raw === '') continue;
      let value: string | boolean = raw;
      if (opt.type === 'boolean') {
        const b = parseBool(raw);
        if (b === undefined) throw new UsageError(`${key} must be true or false, not ${JSON.stringify(raw)}`);
        value = b;
      }
      values[name] = opt.multiple ? ([value] as string[] | boolean[]) : value;
      break;
    }
    if (values[name] === undefined && opt.default !== undefined) values[name] = opt.default;
  }
}

// Commands print help with helpText(spec) after parse(); the subcommand asked about travels from one
// to the other here, so that group commands get per-subcommand help without changing their calls.
const helpAskedFor = new WeakMap<object, SubcommandHelp>();

/** parseArgs-compatible parsing with our conventions: --help, --json, suggestions for typos, UsageError on mistakes. */
export function parse<O extends OptionDefs>(argv: string[], spec: CommandSpec<O>, env: NodeJS.ProcessEnv = process.env) {
  const options: OptionDefs = { ...spec.options, ...COMMON_OPTIONS };
  const parsed = parseArgv(argv, options);
  const helpWanted = Boolean(parsed.values.help);
  if (helpWanted) {
    const sub = parsed.positionals[0] === undefined ? undefined : subcommandHelp(spec, parsed.positionals[0]);
    if (sub) helpAskedFor.set(spec, sub);
    else helpAskedFor.delete(spec);
  } else applyEnvAndDefaults(parsed.values, options, spec.envPrefixes ?? [], env);
  const [min, max] = spec.positionals ?? [0, 0];
  if (!helpWanted && (parsed.positionals.length < min || parsed.positionals.length > max)) {
    throw new UsageError(parsed.positionals.length > max && max > 0 ? `too many arguments; usage: ${spec.usage}` : `usage: ${spec.usage}`);
  }
  return {
    values: parsed.values as {
      [K in keyof O]?: O[K] extends { type: 'boolean' } ? boolean : O[K] extends { multiple: true } ? string[] : string;
    } & { help?: boolean; json?: boolean },
    positionals: parsed.positionals,
    helpWanted,
  };
}

/**
 * Help for `sub`: the spec's own entry, or the section of its help text that starts with
 * `waxseal <group> <sub>` (usage lines, then the description indented below them).
 */
export function subcommandHelp(
  spec: { usage: string; help: string; subcommands?: Record<string, SubcommandHelp> },
  sub: string,
): SubcommandHelp | undefined {
  if (spec.subcommands) return Object.hasOwn(spec.subcommands, sub) ? spec.subcommands[sub] : undefined;
  const group = /^waxseal (\S+)/.exec(spec.usage)?.[1];
  if (!group) return undefined;
  const lines = spec.help.split('\n');
  const start = lines.findIndex((l) => l.trimStart().startsWith(`waxseal ${group} ${sub} `) || l.trim() === `waxseal ${group} ${sub}`);
  if (start < 0) return undefined;
  const indent = (l: string) => l.length - l.trimStart().length;
  const base = indent(lines[start]!);
  const usage: string[] = [lines[start]!.trim()];
  const body: string[] = [];
  for (const l of lines.slice(start + 1)) {
    if (l.trim() === '' || indent(l) <= base) break;
    // Usage continuation lines sit deeper than the description (aligned under the options).
    if (body.length === 0 && indent(l) > base + 6) usage.push(l.trim());
    else body.push(l.trim());
  }
  return { usage: usage.join(' '), summary: body.join(' ').split(/(?<=\.) /)[0] ?? '', help: body.join('\n') };
}

const COMMON_HELP = 'Common options:\n  --json        machine-readable output on stdout (errors too)\n  -h, --help    show this help\n';

export function helpText(spec: {
  usage: string;
  summary: string;
  help: string;
  options?: OptionDefs;
  envPrefixes?: readonly string[];
}): string {
  // Not removed once read: commands call helpText twice (for --json and for text); parse() resets it.
  const sub = helpAskedFor.get(spec);
  if (sub) {
    const flat = (t: string) => t.replace(/\s+/g, ' ').trim();
    const text = flat(sub.help).startsWith(flat(sub.summary)) ? sub.help.trim() : `${sub.summary}\n\n${sub.help.trim()}`;
    return `Usage: ${sub.usage}\n\n${text}\n\n${COMMON_HELP}`;
  }
  // Every flag is in a help: one the text does not mention is listed by name.
  const text = `${spec.usage}\n${spec.help}`;
  const unlisted = Object.entries(spec.options ?? {})
    .filter(([name]) => !new RegExp(`--(no-)?${name.replace(/[-]/g, '\\-')}(?![\\w-])`).test(text))
    .map(([name, o]) => `  --${name}${o.type === 'string' ? ' <value>' : ''}`);
  const more = unlisted.length ? `\n\nMore options:\n${unlisted.join('\n')}` : '';
  const env = spec.envPrefixes?.length
    ? `\n\nEvery option can also be set as ${spec.envPrefixes.map((p) => `${p}_<OPTION>`).join(' or ')} (upper case, dashes as\nunderscores, e.g. ${flagEnvName(spec.envPrefixes[0]!, 'yes')}=true); an option on the command line wins.`
    : '';
  return `Usage: ${spec.usage}\n\n${spec.summary}\n\n${spec.help.trim()}${more}${env}\n\n${COMMON_HELP}`;
}
/** Resolves on the first SIGINT or SIGTERM (listening from the moment it is called). */
export function stopSignal(): Promise<void> {
  return new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}
