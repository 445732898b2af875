// The command-line grammar every command shares: cosign's boolean spellings, negations, short
// flags, COSIGN_* variables, typo suggestions, per-subcommand help, and errors as JSON with --json.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { closestFlag, editDistance, flagEnvName, helpText, parse, reportError, subcommandHelp, UsageError, EXIT } from './ui.ts';
import { signBlobSpec, attestBlobSpec } from './commands/sign.ts';
import { verifyBlobSpec, verifyAttestationSpec } from './commands/verify.ts';
import { caSpec } from './commands/ca.ts';
import { tsaSpec } from './commands/tsa.ts';
import { trustSpec } from './commands/trust.ts';
import { auditSpec } from './commands/audit.ts';
import { logSpec } from './commands/log.ts';
import { devSpec, devTokenSpec } from './commands/dev.ts';
import { expandPredicateType } from './predicate-type.ts';

const spec = {
  usage: 'waxseal demo <file> [options]',
  summary: 'A demo command.',
  positionals: [1, 1] as [number, number],
  envPrefixes: ['COSIGN'],
  options: {
    bundle: { type: 'string' },
    'tlog-upload': { type: 'boolean', default: true },
    yes: { type: 'boolean', short: 'y' },
    'no-log': { type: 'boolean' },
    ext: { type: 'string', multiple: true },
  },
  help: 'Options:\n  --bundle <file>\n  --tlog-upload=false\n  -y, --yes\n  --no-log\n  --ext <kv>',
} as const;

const usageError = (fn: () => unknown, message: RegExp) =>
  assert.throws(fn, (e: unknown) => e instanceof UsageError && message.test(e.message) && !e.message.includes('\n'));

test('booleans: --flag, --flag=true|false in Go spellings, --no-flag, and defaults', () => {
  const env = {};
  assert.equal(parse(['a'], spec, env).values['tlog-upload'], true);
  assert.equal(parse(['a', '--tlog-upload=false'], spec, env).values['tlog-upload'], false);
  assert.equal(parse(['a', '--tlog-upload=0'], spec, env).values['tlog-upload'], false);
  assert.equal(parse(['a', '--tlog-upload=F'], spec, env).values['tlog-upload'], false);
  assert.equal(parse(['a', '--no-tlog-upload'], spec, env).values['tlog-upload'], false);
  assert.equal(parse(['a', '--no-tlog-upload=false'], spec, env).values['tlog-upload'], true);
  assert.equal(parse(['a', '--tlog-upload=TRUE'], spec, env).values['tlog-upload'], true);
  usageError(() => parse(['a', '--tlog-upload=maybe'], spec, env), /--tlog-upload takes true or false/);
  // A spec's own negative flag also answers the positive spelling.
  assert.equal(parse(['a', '--no-log'], spec, env).values['no-log'], true);
  assert.equal(parse(['a', '--log=false'], spec, env).values['no-log'], true);
});

test('short flags, values, --, - as a positional, repeated flags', () => {
  const env = {};
  const r = parse(['-y', '--bundle', 'out.json', '-'], spec, env);
  assert.equal(r.values.yes, true);
  assert.equal(r.values.bundle, 'out.json');
  assert.deepEqual(r.positionals, ['-']);
  assert.equal(parse(['--bundle=x=y', 'a'], spec, env).values.bundle, 'x=y');
  assert.deepEqual(parse(['a', '--ext', 'k=1', '--ext=k=2'], spec, env).values.ext, ['k=1', 'k=2']);
  assert.deepEqual(parse(['--', '--bundle'], spec, env).positionals, ['--bundle']);
  usageError(() => parse(['a', '--bundle'], spec, env), /^--bundle needs a value$/);
  usageError(() => parse(['a', '--bundle', '--yes'], spec, env), /^--bundle needs a value$/);
  usageError(() => parse(['a', '-q'], spec, env), /^unknown flag -q$/);
  usageError(() => parse([], spec, env), /^usage: waxseal demo/);
  usageError(() => parse(['a', 'b'], spec, env), /too many arguments/);
});

test('unknown flags: one line, with the closest valid flag', () => {
  usageError(() => parse(['a', '--bundel', 'x'], spec, {}), /^unknown flag --bundel; did you mean --bundle\?$/);
  usageError(() => parse(['a', '--tlog-uplod=false'], spec, {}), /did you mean --tlog-upload\?$/);
  usageError(() => parse(['a', '--zzzzzz'], spec, {}), /^unknown flag --zzzzzz$/);
  assert.equal(editDistance('bundel', 'bundle'), 1);
  assert.equal(editDistance('kitten', 'sitting'), 3);
  assert.equal(closestFlag('certificate-identty', Object.keys(verifyBlobSpec.options)), 'certificate-identity');
  assert.equal(closestFlag('xyz', ['bundle', 'json']), undefined);
});

test('COSIGN_<FLAG> fills flags not given; the command line wins', () => {
  assert.equal(flagEnvName('COSIGN', 'tlog-upload'), 'COSIGN_TLOG_UPLOAD');
  const env = { COSIGN_YES: 'true', COSIGN_BUNDLE: 'from-env.json', COSIGN_TLOG_UPLOAD: 'false' };
  const r = parse(['a'], spec, env);
  assert.equal(r.values.yes, true);
  assert.equal(r.values.bundle, 'from-env.json');
  assert.equal(r.values['tlog-upload'], false);
  const flags = parse(['a', '--bundle', 'flag.json', '--tlog-upload'], spec, env);
  assert.equal(flags.values.bundle, 'flag.json');
  assert.equal(flags.values['tlog-upload'], true);
  usageError(() => parse(['a'], spec, { COSIGN_YES: 'sure' }), /^COSIGN_YES must be true or false/);
  // Without an env prefix in the spec, the variables mean nothing to the command.
  assert.equal(parse(['a'], { ...spec, envPrefixes: [] }, env).values.bundle, undefined);
});

test('per-subcommand help, from a spec or from the sections of its help text', () => {
  const fsck = subcommandHelp(logSpec, 'fsck');
  assert.match(fsck!.usage, /^waxseal log fsck --data/);
  assert.doesNotMatch(fsck!.help, /monitor/);
  const r = parse(['fsck', '--help'], logSpec, {});
  assert.equal(r.helpWanted, true);
  assert.match(helpText(logSpec), /^Usage: waxseal log fsck/);
  // The group's own help again once the next parse asks for it.
  parse(['--help'], logSpec, {});
  assert.match(helpText(logSpec), /^Usage: waxseal log <fsck\|monitor>/);
  for (const [s, sub] of [
    [tsaSpec, 'init'],
    [tsaSpec, 'rotate'],
    [auditSpec, 'list'],
    [auditSpec, 'verify'],
    [caSpec, 'csr'],
    [caSpec, 'rotate'],
  ] as const) {
    parse([sub, '--help'], s as never, {});
    assert.match(helpText(s), new RegExp(`^Usage: waxseal \\S+ ${sub}`), `${sub} has its own help`);
  }
  assert.match(helpText(caSpec), /rotate/);
});

test('every flag of every command appears in its help', () => {
  for (const s of [
    signBlobSpec,
    attestBlobSpec,
    verifyBlobSpec,
    verifyAttestationSpec,
    tsaSpec,
    trustSpec,
    auditSpec,
    logSpec,
    devSpec,
    devTokenSpec,
  ]) {
    parse(['--help'], s as never, {});
    const text = helpText(s);
    for (const name of Object.keys(s.options)) assert.match(text, new RegExp(`--(no-)?${name}(?![\\w-])`), `${s.usage}: --${name}`);
  }
  // A flag missing from the text is listed by name.
  const bare = { ...spec, help: 'Options:\n  --bundle <file>' };
  assert.match(helpText(bare), /More options:\n {2}--tlog-upload\n {2}--yes\n/);
});

test('usage errors: one line on stderr, and JSON on stdout with --json', () => {
  const capture = () => {
    const s = new PassThrough();
    let text = '';
    s.on('data', (d: Buffer) => (text += d.toString()));
    return { stream: s as unknown as NodeJS.WriteStream, text: () => text };
  };
  const err = capture();
  const out = capture();
  const e = new UsageError('unknown flag --bundel; did you mean --bundle?');
  assert.equal(reportError(e, { json: true }, err.stream, out.stream), EXIT.usage);
  assert.equal(err.text(), 'waxseal: unknown flag --bundel; did you mean --bundle? (see --help)\n');
  assert.deepEqual(JSON.parse(out.text()), { ok: false, error: { code: 'ERR_USAGE', message: e.message } });
  const quietOut = capture();
  reportError(e, { json: false }, capture().stream, quietOut.stream);
  assert.equal(quietOut.text(), '');
});

test("predicate types: cosign's aliases expand, URIs pass, anything else is refused", () => {
  assert.equal(expandPredicateType('slsaprovenance1'), 'https://slsa.dev/provenance/v1');
  assert.equal(expandPredicateType('slsaprovenance'), 'https://slsa.dev/provenance/v0.2');
  assert.equal(expandPredicateType('custom'), 'https://cosign.sigstore.dev/attestation/v1');
  assert.equal(expandPredicateType('link'), 'https://in-toto.io/Link/v1');
  assert.equal(expandPredicateType('https://example.com/p/v1'), 'https://example.com/p/v1');
  assert.throws(() => expandPredicateType('slsa-provenance'), UsageError);
  assert.throws(() => expandPredicateType('toString'), UsageError);
});

test('a reader that closes the pipe early is no crash: the exit code still says what the command found', async () => {
  const { spawn } = await import('node:child_process');
  // The read end is closed before the CLI has started, so its first write meets EPIPE.
  const child = spawn(process.execPath, [new URL('./main.ts', import.meta.url).pathname, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(stderr, '');
  assert.equal(code, EXIT.ok);
});
