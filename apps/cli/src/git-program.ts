// waxseal-git: the program git runs for x509 signatures (gpg.format=x509,
// gpg.x509.program=waxseal-git), speaking git's gpg-interface protocol exactly:
//   sign:    waxseal-git --status-fd=2 -bsau <key>        payload on stdin, armored signature on
//            stdout, `[GNUPG:] SIG_CREATED ...` on the status fd, exit 0
//   verify:  waxseal-git --status-fd=1 --verify <sigfile> -   payload on stdin, `[GNUPG:] GOODSIG
//            ...`, VALIDSIG and TRUST_FULLY on the status fd, a summary on stderr, exit 0
//   agent:   waxseal-git agent [--socket <path>]   the per-user key agent (see below)
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
// the private key never leaves the agent: clients send the bytes to sign and get a signature and
// the certificate back. Clients refuse a socket owned by another user. Without an agent each
// signature gets its own key and certificate, but the identity token is still the one cached.
import { appendFileSync, chmodSync, closeSync, existsSync, openSync, lstatSync, mkdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { createConnection, createServer, type Socket } from 'node:net';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { WaxsealError, fromBase64, parseCertificate, sha256, toBase64, type Certificate } from '@waxseal/core';
import {
  EphemeralKey,
  configDir,
  makeTlogUploader,
  requestSigningCertificate,
  requestTimestamp,
  resolveIdentityToken,
} from '@waxseal/sign';
import type { TransparencyLogEntry } from '@waxseal/bundle';
import { armorSignature, assembleCmsSignature, encodeTransparencyLogEntry, signedAttributes } from '@waxseal/git/signing';
import type { GitVerification } from '@waxseal/git';
import { exitCodeFor } from './ui.ts';

// ---------------------------------------------------------------- configuration

/** gitsign's configuration: GITSIGN_<NAME>, then SIGSTORE_<NAME> where gitsign allows it, then git config gitsign.<key>. */
export function gitsignConfig(env: NodeJS.ProcessEnv = process.env, gitConfig: Map<string, string> = readGitConfig()) {
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

function readGitConfig(): Map<string, string> {
  const out = new Map<string, string>();
  try {
    const text = execFileSync('git', ['config', '--get-regexp', '^gitsign\\.'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    for (const line of text.split('\n')) {
      const sp = line.indexOf(' ');
      if (sp > 0) out.set(line.slice(0, sp).toLowerCase(), line.slice(sp + 1));
    }
  } catch {
    // not in a repository, or no gitsign.* keys
  }
  return out;
}

export function agentSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.WAXSEAL_GIT_AGENT_SOCKET) return env.WAXSEAL_GIT_AGENT_SOCKET;
  return env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, 'waxseal', 'git-agent.sock') : join(configDir(env), 'git-agent.sock');
}

// ---------------------------------------------------------------- gpg argv

interface GpgArgs {
  mode: 'sign' | 'verify';
  statusFd: number | undefined;
  /** verify: the signature file and the payload file ('-' = stdin). */
  files: string[];
}

/** Reads git's gpg argv (and gpg's long spellings), refusing anything else. */
export function parseGpgArgs(argv: string[]): GpgArgs {
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

function status(fd: number | undefined, line: string): void {
  if (fd !== undefined) writeSync(fd, `[GNUPG:] ${line}\n`);
}

function logTo(path: string | undefined): (msg: string) => void {
  return (msg) => {
    if (path) appendFileSync(path, `${new Date().toISOString()} ${msg}\n`);
  };
}

function toTerminal(line: string): void {
  try {
    const fd = openSync('/dev/tty', 'w');
    writeSync(fd, `${line}\n`);
    closeSync(fd);
  } catch {
    // no terminal: the log file (WAXSEAL_GIT_LOG / GITSIGN_LOG) has it
  }
}

async function readStdin(): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return new Uint8Array(Buffer.concat(chunks));
}

const fingerprint = (der: Uint8Array) => createHash('sha1').update(der).digest('hex').toUpperCase();

// ---------------------------------------------------------------- signing

/** Signs `message` (ECDSA P-256 / SHA-256) with a certified ephemeral key. */
interface CertifiedSigner {
  sign(message: Uint8Array): Promise<{ signature: Uint8Array; certificate: Certificate }>;
}

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

/** A request to the agent, one JSON line per connection. */
interface AgentRequest {
  op: 'sign';
  caUrl: string;
  message: string;
  token?: string;
}

type AgentResponse =
  | { ok: true; signature: string; certificate: string }
  | { ok: false; needToken: true }
  | { ok: false; error: { code: string; message: string } };

function ask(socket: string, req: AgentRequest): Promise<AgentResponse> {
  return new Promise((resolve, reject) => {
    const c = createConnection(socket);
    let buf = '';
    c.setTimeout(60_000, () => c.destroy(new Error('the git agent did not answer in 60 s')));
    c.on('connect', () => c.end(`${JSON.stringify(req)}\n`));
    c.on('data', (d) => (buf += d.toString()));
    c.on('error', reject);
    c.on('close', () => {
      try {
        resolve(JSON.parse(buf) as AgentResponse);
      } catch {
        reject(new Error('the git agent answered with something that is not JSON'));
      }
    });
  });
}

/** The agent's socket when one of ours is listening there: owned by this user, a socket. */
function usableAgent(socket: string): boolean {
  try {
    const st = lstatSync(socket);
    if (!st.isSocket()) return false;
    if (process.getuid && st.uid !== process.getuid())
      throw new WaxsealError('ERR_CONFIG', `the git agent socket ${socket} belongs to another user: refusing to use it`);
    return true;
  } catch (e) {
    if (e instanceof WaxsealError) throw e;
    return false;
  }
}

function agentSigner(
  socket: string,
  caUrl: string,
  env: NodeJS.ProcessEnv,
  fallback: CertifiedSigner,
  log: (m: string) => void,
): CertifiedSigner {
  return {
    async sign(message) {
      const req: AgentRequest = { op: 'sign', caUrl, message: toBase64(message) };
      let r: AgentResponse;
      try {
        r = await ask(socket, req);
        if (!r.ok && 'needToken' in r) r = await ask(socket, { ...req, token: (await resolveIdentityToken({ env })).token });
      } catch (e) {
        if (e instanceof WaxsealError) throw e;
        log(`git agent at ${socket} unusable (${(e as Error).message}): signing in-process`);
        return fallback.sign(message); // a stale socket
      }
      if (!r.ok) throw new WaxsealError('error' in r ? (r.error.code as never) : 'ERR_INTERNAL', 'error' in r ? r.error.message : 'agent');
      return { signature: fromBase64(r.signature), certificate: parseCertificate(fromBase64(r.certificate)) };
    },
  };
}

/** A gitsign-format signature over `payload`: the armored text git stores, and the certificate. */
export async function signPayload(
  payload: Uint8Array,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ armored: string; certificate: Certificate; time: Date }> {
  const cfg = gitsignConfig(env);
  const { resolveSigning } = await import('./config.ts');
  const r = resolveSigning({ fulcioUrl: cfg.fulcioUrl, timestampServerUrl: cfg.timestampServerUrl, rekorUrl: cfg.rekorUrl }, env);
  const inProcess = inProcessSigner(r.caUrl, env);
  const socket = agentSocketPath(env);
  const signer = usableAgent(socket) ? agentSigner(socket, r.caUrl, env, inProcess, logTo(cfg.logPath)) : inProcess;
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
): Promise<GitVerification> {
  const { trustedRootPath } = await import('./config.ts');
  const { loadTrustedRoot, verifierFor } = await import('./commands/verify.ts');
  const { verifyGitSignature, checkCommitterMatch } = await import('@waxseal/git');
  const root = loadTrustedRoot(trustedRootPath(undefined, env));
  const v = verifyGitSignature(payload, signature, verifierFor(root, {}), { withoutIdentityUnsafe: true });
  if (gitsignConfig(env).matchCommitter) checkCommitterMatch(v.identity, await parseCommitOrTag(payload));
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

// ---------------------------------------------------------------- agent

const AGENT_MARGIN_MS = 60_000;

/** Runs the agent until SIGINT/SIGTERM, or until idle for `idleMs` with no valid certificate. */
export async function runAgent(socket: string, opts: { idleMs?: number; log?: (m: string) => void } = {}): Promise<void> {
  const log = opts.log ?? (() => {});
  mkdirSync(dirname(socket), { recursive: true, mode: 0o700 });
  chmodSync(dirname(socket), 0o700);
  if (existsSync(socket)) {
    if (
      usableAgent(socket) &&
      (await ask(socket, { op: 'sign', caUrl: '', message: '' }).then(
        () => true,
        () => false,
      ))
    )
      throw new WaxsealError('ERR_CONFLICT', `a git agent already listens on ${socket}`);
    rmSync(socket, { force: true });
  }
  const held = new Map<string, { key: EphemeralKey; certificate: Certificate }>();
  let timer: NodeJS.Timeout | undefined;
  // Half-open: a client ends its side after the request and still reads the answer.
  const server = createServer({ allowHalfOpen: true }, (c: Socket) => {
    let buf = '';
    c.on('data', (d) => {
      buf += d.toString();
      if (buf.length > 1 << 20) c.destroy();
    });
    c.on('end', () => {
      handle(buf).then(
        (r) => c.end(JSON.stringify(r)),
        (e) => c.end(JSON.stringify({ ok: false, error: { code: e?.code ?? 'ERR_INTERNAL', message: e?.message ?? String(e) } })),
      );
    });
    c.on('error', () => {});
  });
  async function handle(line: string): Promise<AgentResponse> {
    const req = JSON.parse(line) as AgentRequest;
    if (req.op !== 'sign' || typeof req.caUrl !== 'string' || typeof req.message !== 'string')
      return { ok: false, error: { code: 'ERR_INVALID_INPUT', message: 'bad agent request' } };
    let h = held.get(req.caUrl);
    if (h && h.certificate.notAfter.getTime() - Date.now() < AGENT_MARGIN_MS) held.delete(req.caUrl), (h = undefined);
    if (!h) {
      if (!req.token) return { ok: false, needToken: true };
      const key = new EphemeralKey();
      const [certificate] = await requestSigningCertificate({ caUrl: req.caUrl, token: req.token, key });
      h = { key, certificate: certificate! };
      held.set(req.caUrl, h);
      log(`certificate for ${req.caUrl} valid until ${h.certificate.notAfter.toISOString()}`);
    }
    idle();
    return { ok: true, signature: toBase64(h.key.signMessage(fromBase64(req.message))), certificate: toBase64(h.certificate.der) };
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

// ---------------------------------------------------------------- entry point

function errorLine(e: unknown): { line: string; code: number } {
  if (e instanceof WaxsealError) {
    const check = e.check ? ` [check: ${e.check}]` : '';
    return { line: `waxseal-git: ${e.code}: ${e.message.replace(/\s*\n\s*/g, ' ')}${check}`, code: exitCodeFor(e.code) };
  }
  return { line: `waxseal-git: internal error: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`, code: 70 };
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  if (argv[0] === 'agent') {
    const i = argv.indexOf('--socket');
    const idle = argv.indexOf('--idle-exit');
    try {
      await runAgent(i > 0 ? argv[i + 1]! : agentSocketPath(env), {
        ...(idle > 0 ? { idleMs: Number(argv[idle + 1]) * 1000 } : {}),
        log: logTo(gitsignConfig(env).logPath),
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
        '       waxseal-git agent [--socket <path>] [--idle-exit <seconds>]   hold a key and certificate for a login session\n',
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
  const log = logTo(gitsignConfig(env).logPath);
  if (args.mode === 'sign') {
    try {
      const payload = await readStdin();
      status(args.statusFd, 'BEGIN_SIGNING');
      const { armored, certificate, time } = await signPayload(payload, env);
      process.stdout.write(armored);
      // D = detached, 19 = ECDSA, 8 = SHA-256, 00 = signature class (OpenPGP numbers, as gitsign).
      status(args.statusFd, `SIG_CREATED D 19 8 00 ${Math.floor(time.getTime() / 1000)} ${fingerprint(certificate.der)}`);
      log(`signed ${payload.length} bytes with certificate ${fingerprint(certificate.der)}`);
      return 0;
    } catch (e) {
      const { line, code } = errorLine(e);
      log(line);
      toTerminal(line); // git (before 2.43) keeps the program's stderr to itself
      process.stderr.write(`${line}\n`);
      return code;
    }
  }
  // verify
  status(args.statusFd, 'NEWSIG');
  let certificate: Certificate | undefined;
  try {
    const signature = new Uint8Array(readFileSync(args.files[0]!));
    const { dearmorSignature, parseCmsSignature, signerCertificate } = await import('@waxseal/git');
    try {
      certificate = signerCertificate(parseCmsSignature(dearmorSignature(signature))); // for BADSIG
    } catch {
      // reported by verifyPayload below
    }
    const payload = args.files[1] === '-' ? await readStdin() : new Uint8Array(readFileSync(args.files[1]!));
    const v = await verifyPayload(payload, signature, env);
    const fpr = fingerprint(v.certificate.der);
    const who = v.identity.san ?? '?';
    const times = v.result?.timestamps ?? [];
    const when = times[0]?.time ?? new Date();
    process.stderr.write(
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
    status(args.statusFd, `GOODSIG ${fpr} ${who}`);
    status(args.statusFd, `VALIDSIG ${fpr} ${when.toISOString().slice(0, 10)} ${Math.floor(when.getTime() / 1000)} 0 - - 19 8 00 ${fpr}`);
    status(args.statusFd, 'TRUST_FULLY 0 shell');
    return 0;
  } catch (e) {
    const { line, code } = errorLine(e);
    if (certificate) status(args.statusFd, `BADSIG ${fingerprint(certificate.der)} -`);
    else status(args.statusFd, 'ERRSIG - 19 8 00 0 9');
    process.stderr.write(`${line}\n`);
    log(line);
    return code === 0 ? 1 : code;
  }
}

// Run directly (the bin, and `node apps/cli/src/git-program.ts` from source).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (e) => {
      process.stderr.write(`${errorLine(e).line}\n`);
      process.exitCode = 70;
    },
  );
}
