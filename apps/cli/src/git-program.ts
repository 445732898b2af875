// waxseal-git: the program git runs for x509 signatures (gpg.format=x509,
// gpg.x509.program=waxseal-git), speaking git's gpg-interface protocol exactly:
//   sign:    waxseal-git --status-fd=2 -bsau <key>        payload on stdin, armored signature on
//            stdout, `[GNUPG:] SIG_CREATED ...` on the status fd, exit 0
//   verify:  waxseal-git --status-fd=1 --verify <sigfile> -   payload on stdin, `[GNUPG:] GOODSIG
//            ...`, VALIDSIG and TRUST_FULLY on the status fd, a summary on stderr, exit 0
//   agent:   waxseal-git agent [--socket <path>] [--idle-exit <s>] | agent --stop   the per-user agent
// Signatures are gitsign's format (@waxseal/git): detached CMS, an RFC 3161 timestamp over the
// signature, and the log entry embedded when the instance runs a log (gitsign's offline mode).
// Configuration as gitsign's: GITSIGN_* (then SIGSTORE_*) variables, then `gitsign.*` git config,
// then the signing config / trusted root `waxseal env` and `waxseal trust init` point at.
//
// Git owns stdout and stderr while signing, so nothing but the protocol goes there on success;
// messages go to WAXSEAL_GIT_LOG / GITSIGN_LOG when set. On failure the one-line error goes to
// stderr, which git shows ("gpg failed to sign the data").
//
// The agent: one process per user holding the ephemeral key and its certificate for the
// certificate's lifetime, reachable on a Unix socket in a 0700 folder (socket 0600), so that a
// rebase signs every commit with one login and one certificate. Unlike gitsign-credential-cache,
// the private key never leaves the agent. Clients (git-client.ts, which bin/waxseal-git runs
// first) hand it git's whole request (argv, stdin, environment, working directory) and write
// back what it answers, so a signature through a running agent costs a process start and the
// timestamp request, not the loading of this program. The first signature starts the agent
// (unless WAXSEAL_GIT_AGENT=off); it exits after WAXSEAL_GIT_AGENT_IDLE seconds (default 600)
// without a request. Clients refuse a socket owned by another user.
import { appendFileSync, chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import { execFile, spawn } from 'node:child_process';
import { dirname, join, resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import { WaxsealError, sha256, type Certificate } from '@waxseal/core';
import { EphemeralKey, makeTlogUploader, requestSigningCertificate, requestTimestamp, resolveIdentityToken } from '@waxseal/sign';
import type { TransparencyLogEntry } from '@waxseal/bundle';
import { armorSignature, assembleCmsSignature, encodeTransparencyLogEntry, signedAttributes } from '@waxseal/git/signing';
import type { GitVerification } from '@waxseal/git';
import { exitCodeFor } from './ui.ts';
import {
  AGENT_PROTOCOL,
  agentSocketPath,
  applyAnswer,
  askAgent,
  forwardToAgent,
  readStdinSync,
  socketState,
  writeAll,
  type AgentAnswer,
} from './git-client.ts';

export { agentSocketPath };

// ---------------------------------------------------------------- configuration

export type GitsignConfig = ReturnType<typeof gitsignConfig>;

/** gitsign's configuration: GITSIGN_<NAME>, then SIGSTORE_<NAME> where gitsign allows it, then git config gitsign.<key>. */
export function gitsignConfig(env: NodeJS.ProcessEnv = process.env, gitConfig: Map<string, string> = new Map()) {
  const pick = (name: string, key: string, sigstore = true) =>
    env[`GITSIGN_${name}`] ||
    (sigstore ? env[`SIGSTORE_${name}`] : undefined) ||
    gitConfig.get(`gitsign.${key.toLowerCase()}`) ||
    undefined;
  return {
    fulcioUrl: pick('FULCIO_URL', 'fulcio'),
    timestampServerUrl: pick('TIMESTAMP_SERVER_URL', 'timestampServerURL'),
    rekorUrl: pick('REKOR_URL', 'rekor'),
    matchCommitter: /^(true|1|yes|on)$/i.test(gitConfig.get('gitsign.matchcommitter') ?? ''),
    logPath: env.WAXSEAL_GIT_LOG || env.GITSIGN_LOG || gitConfig.get('gitsign.logpath') || undefined,
  };
}

/** The `gitsign.*` keys of the repository at `cwd` (as git, with the caller's environment, sees them). */
export function readGitConfig(cwd: string = process.cwd(), env: NodeJS.ProcessEnv = process.env): Promise<Map<string, string>> {
  return new Promise((resolve) => {
    execFile('git', ['config', '--get-regexp', '^gitsign\\.'], { cwd, env, encoding: 'utf8' }, (err, text) => {
      const out = new Map<string, string>();
      // An error is "not in a repository" or "no gitsign.* keys": no configuration.
      if (!err) {
        for (const line of text.split('\n')) {
          const sp = line.indexOf(' ');
          if (sp > 0) out.set(line.slice(0, sp).toLowerCase(), line.slice(sp + 1));
        }
      }
      resolve(out);
    });
  });
}

/**
 * The agent's memory of `gitsign.*` per repository, so that a warm signature does not spawn git
 * (~15 ms, more than the timestamp request). Sound as long as git would read the same files: the
 * entry is keyed by the working directory and every variable that changes what git reads
 * (GIT_CONFIG*, GIT_DIR and the like, HOME, XDG_CONFIG_HOME), and is used only while every file it came from, every file it
 * includes and every place a configuration file could appear (system, global, XDG, the
 * repository's config, config.worktree, HEAD for onbranch includes) is as it was (size, mtime,
 * inode; or still absent). Anything else reads git again.
 */
// What decides which configuration git reads (not GIT_AUTHOR_DATE and the like, which git sets
// anew for every commit).
const CONFIG_ENV =
  /^(GIT_CONFIG.*|GIT_DIR|GIT_WORK_TREE|GIT_COMMON_DIR|GIT_CEILING_DIRECTORIES|GIT_DISCOVERY_ACROSS_FILESYSTEM|HOME|XDG_CONFIG_HOME)$/;

class GitConfigCache {
  readonly #entries = new Map<string, { values: Map<string, string>; files: Map<string, string> }>();

  async get(cwd: string, env: NodeJS.ProcessEnv): Promise<Map<string, string>> {
    const key = JSON.stringify([
      cwd,
      Object.entries(env)
        .filter(([k]) => CONFIG_ENV.test(k))
        .sort(([a], [b]) => (a < b ? -1 : 1)),
    ]);
    const hit = this.#entries.get(key);
    if (hit && [...hit.files].every(([f, sig]) => fileSignature(f) === sig)) return hit.values;
    const files = new Map<string, string>();
    const watch = (f: string | undefined) => {
      if (f && !files.has(f)) files.set(f, fileSignature(f));
    };
    // Signatures taken before git reads: a change while it runs only makes the next call read again.
    const home = env.HOME ?? '';
    let headFile: string | undefined;
    watch(env.GIT_CONFIG_SYSTEM || '/etc/gitconfig');
    watch(env.GIT_CONFIG_GLOBAL);
    watch(join(home, '.gitconfig'));
    watch(join(env.XDG_CONFIG_HOME || join(home, '.config'), 'git', 'config'));
    const dirs = await gitOut(cwd, env, ['rev-parse', '--absolute-git-dir', '--git-common-dir']);
    if (dirs !== undefined) {
      const [gitDir, common] = dirs.split('\n');
      if (gitDir) {
        const commonDir = resolvePath(gitDir, common ? resolvePath(cwd, common) : gitDir);
        watch(join(commonDir, 'config'));
        watch(join(gitDir, 'config.worktree'));
        headFile = join(gitDir, 'HEAD');
      }
    }
    const list = (await gitOut(cwd, env, ['config', '--list', '--show-origin', '-z'])) ?? '';
    const values = new Map<string, string>();
    // -z: "<origin>\0<key>\n<value>\0" per entry.
    const parts = list.split('\0');
    for (let i = 0; i + 1 < parts.length; i += 2) {
      const origin = parts[i]!;
      const entry = parts[i + 1]!;
      const nl = entry.indexOf('\n');
      const k = (nl < 0 ? entry : entry.slice(0, nl)).toLowerCase();
      const v = nl < 0 ? '' : entry.slice(nl + 1);
      const from = origin.startsWith('file:') ? resolvePath(cwd, origin.slice(5)) : undefined;
      watch(from);
      if (from && (k === 'include.path' || (k.startsWith('includeif.') && k.endsWith('.path'))))
        watch(v.startsWith('~/') ? join(home, v.slice(2)) : resolvePath(dirname(from), v));
      if (k.startsWith('gitsign.')) values.set(k, v);
      // HEAD changes at every commit of a rebase: watched only when a branch decides an include.
      if (k.startsWith('includeif.onbranch:')) watch(headFile);
    }
    // Outside a repository (or where git failed) nothing is remembered.
    if (dirs === undefined || headFile === undefined) return values;
    if (this.#entries.size > 256) this.#entries.clear();
    this.#entries.set(key, { values, files });
    return values;
  }
}

function fileSignature(f: string): string {
  try {
    const st = statSync(f, { bigint: true });
    return `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
  } catch {
    return 'absent';
  }
}

function gitOut(cwd: string, env: NodeJS.ProcessEnv, args: string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile('git', args, { cwd, env, encoding: 'utf8', maxBuffer: 16 << 20 }, (err, out) => resolve(err ? undefined : out));
  });
}

// ---------------------------------------------------------------- gpg argv

interface GpgArgs {
  mode: 'sign' | 'verify';
  statusFd: number | undefined;
  /** verify: the signature file and the payload file ('-' = stdin). */
  files: string[];
}

/** Reads git's gpg argv (and gpg's long spellings), refusing anything else. */
export function parseGpgArgs(argv: readonly string[]): GpgArgs {
  let statusFd: number | undefined;
  let sign = false;
  let verify = false;
  const files: string[] = [];
  const fd = (v: string | undefined) => {
    if (!v || !/^\d+$/.test(v)) throw new WaxsealError('ERR_INVALID_INPUT', `--status-fd needs a file descriptor number, got ${v}`);
    return Number(v);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('--status-fd=')) statusFd = fd(a.slice(12));
    else if (a === '--status-fd') statusFd = fd(argv[++i]);
    else if (a === '--verify') verify = true;
    else if (a === '--sign' || a === '--detach-sign' || a === '--armor') sign ||= a !== '--armor';
    else if (a === '--local-user' || a === '-u') i++;
    else if (a.startsWith('--keyid-format')) {
      if (a === '--keyid-format') i++;
    } else if (/^-[bsau]+$/.test(a)) {
      if (a.includes('s') || a.includes('b')) sign = true;
      if (a.endsWith('u')) i++; // the key name git passes: identity comes from OIDC instead
    } else if (!a.startsWith('-') || a === '-') files.push(a);
    else throw new WaxsealError('ERR_INVALID_INPUT', `unsupported option ${a}`);
  }
  if (sign === verify) throw new WaxsealError('ERR_INVALID_INPUT', 'expected git to ask for --sign (-bsau) or --verify');
  if (verify && files.length !== 2) throw new WaxsealError('ERR_INVALID_INPUT', 'usage: --verify <signature file> -');
  return { mode: sign ? 'sign' : 'verify', statusFd, files };
}

/**
 * Where one gpg request writes: this process's file descriptors, or (in the agent) a list
 * handed back to the client, which writes it to its own.
 */
interface GpgIo {
  write(fd: number, data: string | Uint8Array): void;
  /** A line for the person at the terminal (git before 2.43 keeps the program's stderr to itself). */
  tty(line: string): void;
  stdin(): Promise<Uint8Array>;
}

function processIo(stdin?: Uint8Array): GpgIo {
  return {
    write: (fd, data) => writeAll(fd, typeof data === 'string' ? Buffer.from(data) : data),
    tty: (line) => applyAnswer({ code: 0, writes: [], tty: line }),
    stdin: async () => stdin ?? readStdinSync(),
  };
}

function collectingIo(stdin: Uint8Array): GpgIo & { answer(code: number): AgentAnswer } {
  const writes: AgentAnswer['writes'] = [];
  let tty: string | undefined;
  return {
    write: (fd, data) => writes.push({ fd, data: Buffer.from(data).toString('base64') }),
    tty: (line) => (tty = line),
    stdin: async () => stdin,
    answer: (code) => ({ code, writes, ...(tty !== undefined ? { tty } : {}) }),
  };
}

function logTo(path: string | undefined): (msg: string) => void {
  return (msg) => {
    if (path) appendFileSync(path, `${new Date().toISOString()} ${msg}\n`);
  };
}

const fingerprint = (der: Uint8Array) => createHash('sha1').update(der).digest('hex').toUpperCase();

// ---------------------------------------------------------------- signing

/** Signs `message` (ECDSA P-256 / SHA-256) with a certified ephemeral key. */
interface CertifiedSigner {
  sign(message: Uint8Array): Promise<{ signature: Uint8Array; certificate: Certificate }>;
}

/** A new key and certificate per signature (no agent). */
function inProcessSigner(caUrl: string, env: NodeJS.ProcessEnv): CertifiedSigner {
  return {
    async sign(message) {
      const { token } = await resolveIdentityToken({ env });
      const key = new EphemeralKey();
      const [certificate] = await requestSigningCertificate({ caUrl, token, key });
      return { signature: key.signMessage(message), certificate: certificate! };
    },
  };
}

/** A gitsign-format signature over `payload`: the armored text git stores, and the certificate. */
export async function signPayload(
  payload: Uint8Array,
  env: NodeJS.ProcessEnv = process.env,
  o: { gitConfig?: Map<string, string>; signer?: (caUrl: string) => CertifiedSigner } = {},
): Promise<{ armored: string; certificate: Certificate; time: Date }> {
  const cfg = gitsignConfig(env, o.gitConfig ?? (await readGitConfig(process.cwd(), env)));
  const { resolveSigning } = await import('./config.ts');
  const r = resolveSigning({ fulcioUrl: cfg.fulcioUrl, timestampServerUrl: cfg.timestampServerUrl, rekorUrl: cfg.rekorUrl }, env);
  const signer = (o.signer ?? ((caUrl) => inProcessSigner(caUrl, env)))(r.caUrl);
  const time = new Date();
  const attrs = signedAttributes(sha256(payload), time);
  const { signature, certificate } = await signer.sign(attrs);
  const timestamp = await requestTimestamp({ tsaUrl: r.tsaUrl, signature });
  let tlogEntry: Uint8Array | undefined;
  if (r.rekor) {
    const entry: TransparencyLogEntry = await makeTlogUploader(r.rekor)({
      certificate,
      content: { kind: 'messageSignature', digest: sha256(attrs), signature },
    });
    // As gitsign: a hashedrekord v0.0.1 body is rebuilt by verifiers, so it is not stored twice.
    if (entry.kindVersion.kind === 'hashedrekord' && entry.kindVersion.version === '0.0.1') entry.canonicalizedBody = new Uint8Array();
    tlogEntry = encodeTransparencyLogEntry(entry);
  }
  const der = assembleCmsSignature({ certificate, signedAttributes: attrs, signature, timestamp, ...(tlogEntry ? { tlogEntry } : {}) });
  return { armored: armorSignature(der), certificate, time };
}

// ---------------------------------------------------------------- verifying

/** Offline verification against the trusted root in use (no identity policy: git cannot pass one). */
export async function verifyPayload(
  payload: Uint8Array,
  signature: Uint8Array,
  env: NodeJS.ProcessEnv = process.env,
  gitConfig?: Map<string, string>,
): Promise<GitVerification> {
  const { trustedRootPath } = await import('./config.ts');
  const { loadTrustedRoot, verifierFor } = await import('./commands/verify.ts');
  const { verifyGitSignature, checkCommitterMatch } = await import('@waxseal/git');
  const root = loadTrustedRoot(trustedRootPath(undefined, env));
  const v = verifyGitSignature(payload, signature, verifierFor(root, {}), { withoutIdentityUnsafe: true });
  if (gitsignConfig(env, gitConfig ?? (await readGitConfig(process.cwd(), env))).matchCommitter)
    checkCommitterMatch(v.identity, await parseCommitOrTag(payload));
  return v;
}

async function parseCommitOrTag(payload: Uint8Array): Promise<{ name: string; email: string } | undefined> {
  const { parseCommit } = await import('@waxseal/git');
  try {
    return parseCommit(payload).committer;
  } catch {
    const tagger = /^tagger (.*?) ?<([^>]*)>/m.exec(Buffer.from(payload).toString('utf8'));
    return tagger ? { name: tagger[1]!, email: tagger[2]! } : undefined;
  }
}

// ---------------------------------------------------------------- one gpg request

function errorLine(e: unknown): { line: string; code: number } {
  if (e instanceof WaxsealError) {
    const check = e.check ? ` [check: ${e.check}]` : '';
    return { line: `waxseal-git: ${e.code}: ${e.message.replace(/\s*\n\s*/g, ' ')}${check}`, code: exitCodeFor(e.code) };
  }
  return { line: `waxseal-git: internal error: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`, code: 70 };
}

/**
 * Answers one request of git's (sign or verify), in this process or in the agent: `cwd` and
 * `env` are git's, `io` where the answer goes, `signer` the agent's held key when in the agent.
 */
async function runGpg(
  args: GpgArgs,
  ctx: {
    env: NodeJS.ProcessEnv;
    cwd: string;
    io: GpgIo;
    signer?: (caUrl: string, env: NodeJS.ProcessEnv) => CertifiedSigner;
    gitConfig?: (cwd: string, env: NodeJS.ProcessEnv) => Promise<Map<string, string>>;
  },
): Promise<number> {
  const { env, cwd, io } = ctx;
  const status = (line: string) => {
    if (args.statusFd !== undefined) io.write(args.statusFd, `[GNUPG:] ${line}\n`);
  };
  const gitConfig = await (ctx.gitConfig ?? readGitConfig)(cwd, env);
  const log = logTo(gitsignConfig(env, gitConfig).logPath);
  if (args.mode === 'sign') {
    try {
      const payload = await io.stdin();
      status('BEGIN_SIGNING');
      const signer = ctx.signer;
      const { armored, certificate, time } = await signPayload(payload, env, {
        gitConfig,
        ...(signer ? { signer: (caUrl: string) => signer(caUrl, env) } : {}),
      });
      io.write(1, armored);
      // D = detached, 19 = ECDSA, 8 = SHA-256, 00 = signature class (OpenPGP numbers, as gitsign).
      status(`SIG_CREATED D 19 8 00 ${Math.floor(time.getTime() / 1000)} ${fingerprint(certificate.der)}`);
      log(`signed ${payload.length} bytes with certificate ${fingerprint(certificate.der)}`);
      return 0;
    } catch (e) {
      const { line, code } = errorLine(e);
      log(line);
      io.tty(line);
      io.write(2, `${line}\n`);
      return code;
    }
  }
  // verify
  status('NEWSIG');
  let certificate: Certificate | undefined;
  try {
    const signature = new Uint8Array(readFileSync(resolvePath(cwd, args.files[0]!)));
    const { dearmorSignature, parseCmsSignature, signerCertificate } = await import('@waxseal/git');
    try {
      certificate = signerCertificate(parseCmsSignature(dearmorSignature(signature))); // for BADSIG
    } catch {
      // reported by verifyPayload below
    }
    const payload = args.files[1] === '-' ? await io.stdin() : new Uint8Array(readFileSync(resolvePath(cwd, args.files[1]!)));
    const v = await verifyPayload(payload, signature, env, gitConfig);
    const fpr = fingerprint(v.certificate.der);
    const who = v.identity.san ?? '?';
    const times = v.result?.timestamps ?? [];
    const when = times[0]?.time ?? new Date();
    io.write(
      2,
      [
        `waxseal-git: Good signature from ${who} (issuer ${v.identity.issuer ?? '?'})`,
        ...times.map(
          (t) =>
            `waxseal-git: signed at ${t.time.toISOString()} (${t.source === 'rfc3161' ? 'timestamp from' : 'log entry in'} ${t.authority})`,
        ),
        ...(v.result?.tlogEntries ?? []).map(
          (t) => `waxseal-git: logged${t.logIndex !== undefined ? ` at index ${t.logIndex}` : ''} in ${t.baseUrl}`,
        ),
        `waxseal-git: certificate ${fpr}`,
        'waxseal-git: WARNING: git verify-commit checks the signature, not who signed; use `waxseal verify-commit --certificate-identity ...`',
        '',
      ].join('\n'),
    );
    status(`GOODSIG ${fpr} ${who}`);
    status(`VALIDSIG ${fpr} ${when.toISOString().slice(0, 10)} ${Math.floor(when.getTime() / 1000)} 0 - - 19 8 00 ${fpr}`);
    status('TRUST_FULLY 0 shell');
    return 0;
  } catch (e) {
    const { line, code } = errorLine(e);
    if (certificate) status(`BADSIG ${fingerprint(certificate.der)} -`);
    else status('ERRSIG - 19 8 00 0 9');
    io.write(2, `${line}\n`);
    log(line);
    return code === 0 ? 1 : code;
  }
}

// ---------------------------------------------------------------- agent

const AGENT_MARGIN_MS = 60_000;
const DEFAULT_IDLE_S = 600;

/** The agent's socket when one of ours is there; throws when another user's is. */
function usableAgent(socket: string): boolean {
  const s = socketState(socket);
  if (s === 'foreign' && existsSync(socket)) {
    const st = lstatSync(socket);
    if (st.isSocket()) throw new WaxsealError('ERR_CONFIG', `the git agent socket ${socket} belongs to another user: refusing to use it`);
  }
  return s === 'ours';
}

const agentAnswers = (socket: string) => askAgent(socket, () => ({ op: 'ping', v: AGENT_PROTOCOL }), 5_000).then((r) => r !== undefined);

/** Runs the agent until SIGINT/SIGTERM, `agent --stop`, or `idleMs` without a request. */
export async function runAgent(socket: string, opts: { idleMs?: number; log?: (m: string) => void } = {}): Promise<void> {
  const log = opts.log ?? (() => {});
  mkdirSync(dirname(socket), { recursive: true, mode: 0o700 });
  chmodSync(dirname(socket), 0o700);
  if (existsSync(socket)) {
    if (!usableAgent(socket)) throw new WaxsealError('ERR_CONFIG', `${socket} exists and is not a socket: refusing to replace it`);
    if (await agentAnswers(socket)) throw new WaxsealError('ERR_CONFLICT', `a git agent already listens on ${socket}`);
    rmSync(socket, { force: true }); // a stale socket: its agent is gone
  }
  // One key and certificate per CA, created on the first request that needs it (concurrent
  // requests share the one being made).
  const held = new Map<string, Promise<{ key: EphemeralKey; certificate: Certificate }>>();
  const heldSigner = (caUrl: string, env: NodeJS.ProcessEnv): CertifiedSigner => ({
    async sign(message) {
      const current = held.get(caUrl);
      let h = current && (await current.catch(() => undefined));
      if (!h || h.certificate.notAfter.getTime() - Date.now() < AGENT_MARGIN_MS) {
        // Unless another request replaced it meanwhile: a new key and certificate, with a token
        // resolved from this request's environment.
        if (held.get(caUrl) === current) {
          const next = (async () => {
            const { token } = await resolveIdentityToken({ env });
            const key = new EphemeralKey();
            const [certificate] = await requestSigningCertificate({ caUrl, token, key });
            log(`certificate for ${caUrl} valid until ${certificate!.notAfter.toISOString()}`);
            return { key, certificate: certificate! };
          })();
          held.set(caUrl, next);
          next.catch(() => held.get(caUrl) === next && held.delete(caUrl));
        }
        h = await held.get(caUrl)!;
      }
      return { signature: h.key.signMessage(message), certificate: h.certificate };
    },
  });
  const gitConfigs = new GitConfigCache();
  let timer: NodeJS.Timeout | undefined;
  // Half-open: a client ends its side after the request and still reads the answer.
  const server = createServer({ allowHalfOpen: true }, (c: Socket) => {
    const chunks: Buffer[] = [];
    let size = 0;
    c.on('data', (d: Buffer) => {
      size += d.length;
      if (size > 64 << 20) c.destroy();
      else chunks.push(d);
    });
    c.on('end', () => {
      idle();
      handle(Buffer.concat(chunks).toString('utf8')).then(
        (r) => c.end(r instanceof Uint8Array ? r : JSON.stringify(r)),
        (e) => c.end(JSON.stringify({ ok: false, error: { code: e?.code ?? 'ERR_INTERNAL', message: e?.message ?? String(e) } })),
      );
    });
    c.on('error', () => {});
  });
  async function handle(text: string): Promise<object | Uint8Array> {
    const req = JSON.parse(text) as {
      op?: unknown;
      v?: unknown;
      frames?: unknown;
      argv?: unknown;
      cwd?: unknown;
      env?: unknown;
      stdin?: unknown;
    };
    if (req.op === 'ping') return { ok: true, v: AGENT_PROTOCOL };
    if (req.op === 'stop') {
      setImmediate(() => server.close());
      return { ok: true };
    }
    if (
      req.op !== 'gpg' ||
      req.v !== AGENT_PROTOCOL ||
      !Array.isArray(req.argv) ||
      !req.argv.every((a) => typeof a === 'string') ||
      typeof req.cwd !== 'string' ||
      typeof req.env !== 'object' ||
      req.env === null ||
      typeof req.stdin !== 'string'
    )
      return { ok: false, error: { code: 'ERR_INVALID_INPUT', message: 'bad agent request' } };
    const io = collectingIo(new Uint8Array(Buffer.from(req.stdin, 'base64')));
    let code: number;
    try {
      code = await runGpg(parseGpgArgs(req.argv as string[]), {
        env: req.env as NodeJS.ProcessEnv,
        cwd: req.cwd,
        io,
        signer: heldSigner,
        gitConfig: (cwd, env) => gitConfigs.get(cwd, env),
      });
    } catch (e) {
      io.write(2, `${errorLine(e).line}\n`);
      code = 2;
    }
    return req.frames === true ? frames(io.answer(code)) : { ok: true, ...io.answer(code) };
  }
  const stopped = new Promise<void>((resolve) => {
    const stop = () => server.close(() => resolve());
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    server.on('close', () => resolve());
  });
  function idle(): void {
    if (timer) clearTimeout(timer);
    if (opts.idleMs) timer = setTimeout(() => server.close(), opts.idleMs).unref();
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // Owner-only from the first moment: the socket is created under a 0077 umask.
    const old = process.umask(0o077);
    server.listen(socket, () => {
      process.umask(old);
      resolve();
    });
  });
  chmodSync(socket, 0o600);
  idle();
  log(`git agent listening on ${socket}`);
  process.stderr.write(`waxseal-git agent: listening on ${socket}\n`);
  await stopped;
  held.clear();
  rmSync(socket, { force: true });
}

/** The answer as the native client reads it (packages/git-client-native): binary frames, little-endian. */
function frames(a: AgentAnswer): Uint8Array {
  const parts = a.writes.map((w) => ({ fd: w.fd, data: Buffer.from(w.data, 'base64') }));
  const tty = Buffer.from(a.tty ?? '');
  const out = Buffer.alloc(12 + parts.reduce((n, p) => n + 8 + p.data.length, 0) + 4 + tty.length);
  out.write('WXS2', 0, 'latin1');
  out.writeUInt32LE(a.code >>> 0, 4);
  out.writeUInt32LE(parts.length, 8);
  let pos = 12;
  for (const p of parts) {
    out.writeUInt32LE(p.fd, pos);
    out.writeUInt32LE(p.data.length, pos + 4);
    p.data.copy(out, pos + 8);
    pos += 8 + p.data.length;
  }
  out.writeUInt32LE(tty.length, pos);
  tty.copy(out, pos + 4);
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

/**
 * Starts an agent on `socket` in the background (this same program, detached) and waits until
 * it answers. False when it could not be started; the caller then signs in-process.
 */
async function startAgent(socket: string, env: NodeJS.ProcessEnv, log: (m: string) => void): Promise<boolean> {
  const entry = process.argv[1];
  if (!entry) return false;
  const idle = Number(env.WAXSEAL_GIT_AGENT_IDLE ?? DEFAULT_IDLE_S);
  const args = [
    ...process.execArgv,
    entry,
    'agent',
    '--socket',
    socket,
    '--idle-exit',
    String(Number.isFinite(idle) && idle > 0 ? idle : DEFAULT_IDLE_S),
  ];
  let exited = false;
  try {
    const child = spawn(process.execPath, args, { detached: true, stdio: 'ignore', env });
    child.on('error', () => (exited = true));
    child.on('exit', () => (exited = true));
    child.unref();
  } catch (e) {
    log(`cannot start the git agent: ${(e as Error).message}`);
    return false;
  }
  for (const deadline = Date.now() + 15_000; Date.now() < deadline; ) {
    await new Promise((r) => setTimeout(r, 20));
    // When another signature started one first, this one exits and that one answers.
    const gone = exited;
    if (socketState(socket) === 'ours' && (await agentAnswers(socket))) return true;
    if (gone) break;
  }
  log(`the git agent did not start on ${socket}: signing in-process`);
  return false;
}

const agentDisabled = (env: NodeJS.ProcessEnv) => /^(0|off|false|no)$/i.test(env.WAXSEAL_GIT_AGENT ?? '');

// ---------------------------------------------------------------- entry point

/**
 * The full program. `stdin` is git's payload when the fast path (git-client.ts) already read it.
 */
export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env, stdin?: Uint8Array): Promise<number> {
  if (argv[0] === 'agent') {
    const i = argv.indexOf('--socket');
    const idle = argv.indexOf('--idle-exit');
    const socket = i > 0 ? resolvePath(argv[i + 1]!) : agentSocketPath(env);
    try {
      if (argv.includes('--stop')) {
        if (!usableAgent(socket) || (await askAgent(socket, () => ({ op: 'stop', v: AGENT_PROTOCOL }), 5_000)) === undefined) {
          process.stderr.write(`waxseal-git: no git agent answers on ${socket}\n`);
          return 1;
        }
        for (let n = 0; n < 250 && existsSync(socket); n++) await new Promise((r) => setTimeout(r, 20));
        return 0;
      }
      await runAgent(socket, {
        ...(idle > 0 ? { idleMs: Number(argv[idle + 1]) * 1000 } : {}),
        log: logTo(gitsignConfig(env, await readGitConfig(process.cwd(), env)).logPath),
      });
      return 0;
    } catch (e) {
      const { line, code } = errorLine(e);
      process.stderr.write(`${line}\n`);
      return code;
    }
  }
  if (argv[0] === '--version' || argv[0] === 'version') {
    process.stdout.write('waxseal-git 0.1.0 (gitsign signature format; gpg.format=x509)\n');
    return 0;
  }
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h') {
    process.stdout.write(
      'Usage: git config gpg.format x509 && git config gpg.x509.program waxseal-git\n' +
        '       waxseal-git agent [--socket <path>] [--idle-exit <seconds>]   hold a key and certificate for a login session\n' +
        '       waxseal-git agent --stop [--socket <path>]                    stop it\n',
    );
    return argv.length === 0 ? 2 : 0;
  }
  let args: GpgArgs;
  try {
    args = parseGpgArgs(argv);
  } catch (e) {
    process.stderr.write(`${errorLine(e).line}\n`);
    return 2;
  }
  const io = processIo(stdin);
  if (args.mode === 'sign') {
    // No agent answered the fast path: start one (the first signature of a session), hand it
    // this request, and sign in-process only when that fails.
    const socket = agentSocketPath(env);
    try {
      const running = usableAgent(socket) && (await agentAnswers(socket));
      if (!running && !agentDisabled(env)) {
        const log = logTo(gitsignConfig(env).logPath);
        if (await startAgent(socket, env, log)) {
          const payload = await io.stdin();
          const { answer } = await forwardToAgent(socket, argv, () => payload, env);
          if (answer) return applyAnswer(answer);
          log(`the git agent on ${socket} did not answer: signing in-process`);
          return runGpg(args, { env, cwd: process.cwd(), io: processIo(payload) });
        }
      }
    } catch (e) {
      const { line, code } = errorLine(e);
      io.tty(line);
      process.stderr.write(`${line}\n`);
      return code;
    }
  }
  return runGpg(args, { env, cwd: process.cwd(), io });
}

// Run directly (`node apps/cli/src/git-program.ts` from source; the bin goes through git-client).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (e) => {
      process.stderr.write(`${errorLine(e).line}\n`);
      process.exitCode = 70;
    },
  );
}
