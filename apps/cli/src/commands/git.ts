// waxseal verify-commit / verify-tag: one gitsign-format signature against verify-blob's identity
// flags; waxseal verify-commits: every commit of a range against a source policy (the presubmit
// check), as a table, --json, and GitHub Actions annotations plus a step summary.
// All verification is offline, over the trusted root in use (@waxseal/git, @waxseal/verify).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { WaxsealError } from '@waxseal/core';
import {
  checkCommitterMatch,
  evaluateMany,
  startEvaluators,
  type EvaluatorThreads,
  parseGitObject,
  parseSourcePolicy,
  verifyGitSignature,
  type LoadedKeyAuthority,
  type ObjectVerdict,
  type RawObject,
  type SourcePolicy,
} from '@waxseal/git';
import type { Verifier } from '@waxseal/verify';
import { parse, helpText, UsageError, type Ui } from '../ui.ts';
import { explicitTrustedRootPath } from '../trusted-root-source.ts';
import { VERIFY_OPTIONS, loadTrustedRoot, policyFrom, verifierFor, type Values } from './verify.ts';

const IDENTITY_OPTIONS = {
  'trusted-root': VERIFY_OPTIONS['trusted-root'],
  'certificate-identity': VERIFY_OPTIONS['certificate-identity'],
  'certificate-identity-regexp': VERIFY_OPTIONS['certificate-identity-regexp'],
  'certificate-oidc-issuer': VERIFY_OPTIONS['certificate-oidc-issuer'],
  'certificate-oidc-issuer-regexp': VERIFY_OPTIONS['certificate-oidc-issuer-regexp'],
  'certificate-extension': VERIFY_OPTIONS['certificate-extension'],
  'certificate-github-workflow-trigger': VERIFY_OPTIONS['certificate-github-workflow-trigger'],
  'certificate-github-workflow-sha': VERIFY_OPTIONS['certificate-github-workflow-sha'],
  'certificate-github-workflow-name': VERIFY_OPTIONS['certificate-github-workflow-name'],
  'certificate-github-workflow-repository': VERIFY_OPTIONS['certificate-github-workflow-repository'],
  'certificate-github-workflow-ref': VERIFY_OPTIONS['certificate-github-workflow-ref'],
  'insecure-ignore-tlog': VERIFY_OPTIONS['insecure-ignore-tlog'],
  'insecure-ignore-sct': VERIFY_OPTIONS['insecure-ignore-sct'],
  'insecure-skip-identity': VERIFY_OPTIONS['insecure-skip-identity'],
  'match-committer': { type: 'boolean' },
  repo: { type: 'string' },
} as const;

const IDENTITY_HELP = `
  --certificate-identity <san>           the signer's identity (e-mail, URI), exactly
  --certificate-identity-regexp <re>     ... or an RE2 regular expression (unanchored)
  --certificate-oidc-issuer <url>        the OIDC issuer, exactly
  --certificate-oidc-issuer-regexp <re>  ... or an RE2 regular expression
  --certificate-extension <name>=<value> a Fulcio extension that must match; repeatable
  --certificate-github-workflow-{trigger,sha,name,repository,ref} <value>
  --match-committer                      the certificate identity must also be the committer
                                         (e-mail SAN = committer e-mail, or URI SAN = name);
                                         also on with git config gitsign.matchCommitter=true
  --trusted-root <file>                  TrustedRoot JSON (else WAXSEAL_TRUSTED_ROOT, or
                                         \`waxseal trust init\`)
  --insecure-ignore-tlog, --insecure-ignore-sct, --insecure-skip-identity  as in verify-blob
  --repo <dir>                           the repository (default: the current directory)

Offline: the certificate chain is checked at the time the RFC 3161 timestamp (or the embedded
log entry) proves, the timestamp over the signature, the log entry when present, and that the
signed digest is the object's. A signature without any time proof (gitsign's online mode) is
refused. Exit codes: 0 verified, 1 verification failed (the message names the check), 2 usage,
3 unreadable input.`;

export const verifyCommitSpec = {
  usage: 'waxseal verify-commit [<rev>] --certificate-identity <san> --certificate-oidc-issuer <url> [options]',
  summary: "Verify a commit's gitsign-format signature and who made it (default HEAD).",
  options: IDENTITY_OPTIONS,
  positionals: [0, 1] as [number, number],
  help: `Options:${IDENTITY_HELP}`,
};

export const verifyTagSpec = {
  usage: 'waxseal verify-tag <tag> --certificate-identity <san> --certificate-oidc-issuer <url> [options]',
  summary: "Verify an annotated tag's gitsign-format signature and who made it.",
  options: IDENTITY_OPTIONS,
  positionals: [1, 1] as [number, number],
  help: `Options:${IDENTITY_HELP}`,
};

type GitValues = Values & { 'match-committer'?: boolean; repo?: string };

function git(repo: string, args: string[], input?: string): Buffer {
  const r = spawnSync('git', args, { cwd: repo, input, maxBuffer: 1 << 30 });
  if (r.error) throw new WaxsealError('ERR_IO', `cannot run git: ${r.error.message}`);
  if (r.status !== 0) {
    const why = r.stderr.toString().trim().split('\n').pop() ?? `exit ${r.status}`;
    throw new WaxsealError('ERR_INVALID_INPUT', `git ${args[0]}: ${why}`);
  }
  return r.stdout;
}

/** `git` run without blocking this thread (verify-commits reads its trust and policy meanwhile). */
function gitAsync(repo: string, args: string[]): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn('git', args, { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => out.push(d));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('error', (e) => reject(new WaxsealError('ERR_IO', `cannot run git: ${e.message}`)));
    c.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr }));
  });
}

function gitConfigTrue(repo: string, key: string): boolean {
  try {
    return (
      execFileSync('git', ['config', '--type=bool', '--get', key], {
        cwd: repo,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim() === 'true'
    );
  } catch {
    return false;
  }
}

async function verifierFromFlags(v: GitValues): Promise<Verifier> {
  // config.ts (it loads the signing client) only to find the installed trusted root.
  const path = explicitTrustedRootPath(v['trusted-root']) ?? (await import('../config.ts')).trustedRootPath(v['trusted-root']);
  return verifierFor(loadTrustedRoot(path), v);
}

async function verifyOne(argv: string[], ui: Ui, type: 'commit' | 'tag'): Promise<number> {
  const spec = type === 'commit' ? verifyCommitSpec : verifyTagSpec;
  const { values, positionals, helpWanted } = parse(argv, spec);
  if (helpWanted) return (ui.result({ help: helpText(spec) }, helpText(spec)), 0);
  const v = values as GitValues;
  const repo = resolve(v.repo ?? '.');
  const rev = positionals[0] ?? 'HEAD';
  const policy = policyFrom(v);
  const verifier = await verifierFromFlags(v);
  const id = git(repo, [
    'rev-parse',
    '--verify',
    '--end-of-options',
    `${type === 'tag' && !rev.startsWith('refs/') ? `refs/tags/${rev}` : rev}^{${type}}`,
  ])
    .toString()
    .trim();
  const obj = parseGitObject(type, new Uint8Array(git(repo, ['cat-file', type, id])));
  const short = id.slice(0, 12);
  try {
    if (obj.signature === undefined)
      throw new WaxsealError('ERR_VERIFY_SIGNATURE', `git.unsigned: the ${type} is not signed`, { check: 'git.unsigned' });
    if (obj.format !== 'x509')
      throw new WaxsealError(
        'ERR_VERIFY_SIGNATURE',
        `cms.format: the ${type} carries an ${obj.format} signature, not a gitsign (x509) one`,
        {
          check: 'cms.format',
        },
      );
    const r = verifyGitSignature(obj.payload, obj.signature, verifier, policy);
    if (v['match-committer'] || gitConfigTrue(repo, 'gitsign.matchCommitter')) checkCommitterMatch(r.identity, obj.committer);
    const times = r.result?.timestamps ?? [];
    ui.result(
      {
        ok: true,
        [type]: id,
        signer: { identity: r.identity.san, issuer: r.identity.issuer, extensions: r.identity.extensions },
        timestamps: times.map((t) => ({ ...t, time: t.time.toISOString() })),
        tlogEntries: r.result?.tlogEntries ?? [],
      },
      [
        `Verified OK: ${type} ${short} signed by ${r.identity.san ?? '?'} (issuer ${r.identity.issuer ?? '?'})`,
        ...times.map(
          (t) =>
            `  signed at ${t.time.toISOString()} (${t.source === 'rfc3161' ? 'RFC 3161 timestamp from' : 'log entry in'} ${t.authority})`,
        ),
      ],
    );
    return 0;
  } catch (e) {
    // Name the object in the one-line error.
    if (e instanceof WaxsealError)
      throw new WaxsealError(e.code, `${type} ${short}: ${e.message}`, { ...(e.check ? { check: e.check } : {}), cause: e });
    throw e;
  }
}

export const verifyCommit = (argv: string[], ui: Ui) => verifyOne(argv, ui, 'commit');
export const verifyTag = (argv: string[], ui: Ui) => verifyOne(argv, ui, 'tag');

// ---------------------------------------------------------------- verify-commits

export const verifyCommitsSpec = {
  usage: 'waxseal verify-commits <base>..<head> [--policy <file>] [options]',
  summary: 'Presubmit check: every commit in the range must be signed as the source policy allows.',
  options: {
    policy: { type: 'string' },
    'trusted-root': VERIFY_OPTIONS['trusted-root'],
    'match-committer': { type: 'boolean' },
    repo: { type: 'string' },
    'github-actions': { type: 'boolean' },
  } as const,
  positionals: [1, 1] as [number, number],
  help: `Options:
  --policy <file>          the source policy (default .waxseal/source.yaml, else
                           .chainguard/source.yaml, in the repository)
  --trusted-root <file>    the instance's TrustedRoot JSON for keyless authorities (else
                           WAXSEAL_TRUSTED_ROOT, or \`waxseal trust init\`)
  --match-committer        keyless signers must also be the committer
  --repo <dir>             the repository (default: the current directory)
  --github-actions         GitHub Actions annotations and step summary (default when
                           GITHUB_ACTIONS=true)

The policy reads Chainguard's source.yaml shape (docs/git.md):
  spec:
    authorities:            # OR-ed
    - keyless:
        identities: [{issuer: <url>, subjectRegExp: <re2>}]   # issuer|issuerRegExp, subject|subjectRegExp
    - key:
        kms: https://github.com/web-flow.gpg                  # or data: <armored>, file: <path>

Output: a table (--json for machine use); each offending commit with its author and why.
Exit codes: 0 every commit passes, 1 some commit does not, 2 usage, 3 bad policy or input.`,
};

function findPolicy(repo: string, flag: string | undefined): string {
  if (flag) return resolve(flag);
  for (const p of ['.waxseal/source.yaml', '.chainguard/source.yaml']) if (existsSync(join(repo, p))) return join(repo, p);
  throw new UsageError('no policy: pass --policy <file> or add .waxseal/source.yaml to the repository');
}

async function loadKeys(policy: SourcePolicy, policyPath: string): Promise<LoadedKeyAuthority[]> {
  const out: LoadedKeyAuthority[] = [];
  for (const a of policy.authorities) {
    if (a.type !== 'key') continue;
    const s = a.source;
    let armoredKeys: string;
    if (s.type === 'data') armoredKeys = s.armored;
    else if (s.type === 'file') {
      const p = resolve(dirname(policyPath), s.path);
      try {
        armoredKeys = readFileSync(p, 'utf8');
      } catch (e) {
        throw new WaxsealError('ERR_IO', `policy ${a.name}: cannot read key file ${p}: ${(e as NodeJS.ErrnoException).code ?? e}`);
      }
    } else {
      let res: Response;
      try {
        res = await fetch(s.url, { signal: AbortSignal.timeout(15_000), redirect: 'follow' });
      } catch (e) {
        throw new WaxsealError('ERR_UNAVAILABLE', `policy ${a.name}: cannot fetch ${s.url}: ${(e as Error).message}`);
      }
      if (!res.ok) throw new WaxsealError('ERR_UNAVAILABLE', `policy ${a.name}: ${s.url} answered HTTP ${res.status}`);
      armoredKeys = await res.text();
    }
    if (!armoredKeys.includes('-----BEGIN PGP PUBLIC KEY BLOCK-----'))
      throw new WaxsealError('ERR_CONFIG', `policy ${a.name}: the key source holds no armored OpenPGP public key`);
    out.push({ authority: a, armoredKeys });
  }
  return out;
}

/**
 * The commits of `ids`, as `git cat-file --batch` streams them (one process for the whole
 * range): each object is handed on as soon as it has arrived, in its own buffer (it may be sent
 * to a worker thread).
 */
async function* catFileBatch(repo: string, ids: string[]): AsyncGenerator<RawObject> {
  const child = spawn('git', ['cat-file', '--batch', '--buffer'], { cwd: repo, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', (e) => reject(new WaxsealError('ERR_IO', `cannot run git: ${e.message}`)));
    child.on('close', (code) => resolve(code));
  });
  exited.catch(() => {});
  child.stdin.on('error', () => {}); // reported through the exit status
  child.stdin.end(`${ids.join('\n')}\n`);
  let buf: Buffer = Buffer.alloc(0);
  let want = ids.length;
  try {
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      let pos = 0;
      for (;;) {
        const nl = buf.indexOf(0x0a, pos);
        if (nl < 0) break;
        const [id, type, size] = buf.subarray(pos, nl).toString('latin1').split(' ');
        if (type === 'missing' || size === undefined) throw new WaxsealError('ERR_INVALID_INPUT', `git cat-file: object ${id} is missing`);
        const start = nl + 1;
        const end = start + Number(size);
        if (end + 1 > buf.length) break; // the rest of this object is still to come
        if (type !== 'commit') throw new WaxsealError('ERR_INVALID_INPUT', `git cat-file: object ${id} is a ${type}, not a commit`);
        want--;
        yield { id: id!, type: 'commit', raw: new Uint8Array(buf.subarray(start, end)) }; // a copy: its own buffer
        pos = end + 1; // the newline after the content
      }
      buf = buf.subarray(pos);
    }
  } finally {
    if (child.exitCode === null) child.kill();
  }
  const code = await exited;
  if (want !== 0 || code !== 0) {
    const why = stderr.trim().split('\n').pop() || `exit ${code}`;
    throw new WaxsealError('ERR_INVALID_INPUT', `git cat-file: ${want} object(s) not read (${why})`);
  }
}

/** GitHub Actions workflow-command escaping (data; properties also escape : and ,). */
const ghData = (s: string) => s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
const ghProp = (s: string) => ghData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
const mdCell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  '));
}

const WORKERS_FROM = 200;

export async function verifyCommits(argv: string[], ui: Ui, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const spec = verifyCommitsSpec;
  const { values, positionals, helpWanted } = parse(argv, spec);
  if (helpWanted) return (ui.result({ help: helpText(spec) }, helpText(spec)), 0);
  const repo = resolve(values.repo ?? '.');
  const range = positionals[0]!;
  if (!range.includes('..')) throw new UsageError(`expected a range <base>..<head>, got ${JSON.stringify(range)}`);
  // Worker threads start now, so that their start overlaps this thread's set-up; they are
  // ended unused when the range turns out short.
  const threads = Math.min(Math.max(1, Math.floor(Number(env.WAXSEAL_VERIFY_THREADS)) || 1), availableParallelism());
  const evaluators = threads > 1 ? startEvaluators(threads - 1) : undefined;
  try {
    return await verifyRange(values, range, repo, ui, env, evaluators);
  } finally {
    await evaluators?.close();
  }
}

async function verifyRange(
  values: ReturnType<typeof parse<(typeof verifyCommitsSpec)['options']>>['values'],
  range: string,
  repo: string,
  ui: Ui,
  env: NodeJS.ProcessEnv,
  evaluators: EvaluatorThreads | undefined,
): Promise<number> {
  const policyPath = findPolicy(repo, values.policy);
  let text: string;
  try {
    text = readFileSync(policyPath, 'utf8');
  } catch (e) {
    throw new WaxsealError('ERR_IO', `cannot read policy ${policyPath}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  let policy: SourcePolicy;
  try {
    policy = parseSourcePolicy(text);
  } catch (e) {
    if (e instanceof WaxsealError)
      throw new WaxsealError(e.code, `${policyPath}: ${e.message}`, { ...(e.check ? { check: e.check } : {}) });
    throw e;
  }
  // git lists the range and reads its config while the trust and keys load.
  const listed = gitAsync(repo, ['rev-list', '--reverse', '--end-of-options', range]);
  const configured = values['match-committer']
    ? Promise.resolve(true)
    : gitAsync(repo, ['config', '--type=bool', '--get', 'gitsign.matchCommitter']).then((r) => r.stdout.toString().trim() === 'true');
  listed.catch(() => {});
  configured.catch(() => {});
  const verifier = policy.authorities.some((a) => a.type === 'keyless') ? await verifierFromFlags(values as GitValues) : undefined;
  const keys = await loadKeys(policy, policyPath);
  const rl = await listed;
  if (rl.code !== 0)
    throw new WaxsealError('ERR_INVALID_INPUT', `git rev-list: ${rl.stderr.trim().split('\n').pop() ?? `exit ${rl.code}`}`);
  const ids = rl.stdout.toString().split('\n').filter(Boolean);
  const ctx = { policy, verifier, keys, matchCommitter: await configured };
  // A long range (from a few hundred commits) is spread over the worker threads too.
  const workers = evaluators && ids.length >= WORKERS_FROM ? evaluators : 0;
  const verdicts: ObjectVerdict[] = ids.length ? await evaluateMany(catFileBatch(repo, ids), ids.length, ctx, { workers }) : [];
  const failed = verdicts.filter((v) => !v.ok);

  const rows = [
    ['COMMIT', 'AUTHOR', 'RESULT', 'DETAIL'],
    ...verdicts.map((v) => [
      v.id.slice(0, 12),
      v.author,
      v.ok ? 'ok' : 'FAIL',
      v.ok ? `${v.signer} via ${v.authority}` : `${v.check}: ${v.reason}`,
    ]),
  ];
  const summaryLine = `${verdicts.length - failed.length} of ${verdicts.length} commits in ${range} satisfy ${policyPath}`;
  const actions = values['github-actions'] ?? env.GITHUB_ACTIONS === 'true';
  if (actions) {
    // Annotations are read from stdout; with --json they go to stderr so stdout stays one document.
    const write = (s: string) => (ui.json ? process.stderr : process.stdout).write(`${s}\n`);
    for (const v of failed) {
      write(
        `::error title=${ghProp(`Commit ${v.id.slice(0, 12)} is not signed as the policy requires`)}::${ghData(`${v.author}: ${v.check}: ${v.reason} (${v.subject})`)}`,
      );
    }
    if (env.GITHUB_STEP_SUMMARY) {
      const md = [
        `## Commit signatures: ${failed.length === 0 ? 'all commits pass' : `${failed.length} commit(s) fail`}`,
        '',
        summaryLine,
        '',
        '| Commit | Author | Result | Detail |',
        '| --- | --- | --- | --- |',
        ...verdicts.map(
          (v) =>
            `| \`${v.id.slice(0, 12)}\` | ${mdCell(v.author)} | ${v.ok ? '✅' : '❌'} | ${mdCell(v.ok ? `${v.signer} via ${v.authority}` : `${v.check}: ${v.reason}`)} |`,
        ),
        '',
      ];
      appendFileSync(env.GITHUB_STEP_SUMMARY, md.join('\n'));
    }
  }
  ui.result({ ok: failed.length === 0, range, policy: policyPath, checked: verdicts.length, failed: failed.length, commits: verdicts }, [
    ...table(rows),
    '',
    summaryLine,
  ]);
  for (const v of failed) process.stderr.write(`waxseal: commit ${v.id.slice(0, 12)} by ${v.author}: ${v.code}: ${v.check}: ${v.reason}\n`);
  return failed.length === 0 ? 0 : 1;
}
