// waxseal-git's fast path: when the per-user agent is running, git's request (argv, stdin, the
// environment and working directory) goes to it whole, and what it answers is written to git's
// file descriptors as the agent says. This module imports node builtins only, so that a
// signature through a running agent costs a process start, one round trip to the agent and the
// agent's own work (the timestamp request), not the loading of the signing stack.
// bin/waxseal-git (and this file run directly, from source) try it first and load
// git-program.ts only when no agent answers.
//
// Protocol (one connection per request, half-open): the client sends one JSON document
// `{"op":"gpg","v":2,argv,cwd,env,stdin}` (stdin in base64) and ends its side; the agent answers
// one JSON document `{"ok":true,"code":n,"writes":[{"fd":n,"data":base64}],"tty"?:line}` and
// closes. The socket is reachable only by its user: a 0600 socket in a 0700 folder, and this
// client refuses a socket that is not a socket or belongs to another user (git-program.ts says why).
import { closeSync, lstatSync, openSync, readSync, writeSync } from 'node:fs';
import { createConnection } from 'node:net';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

export const AGENT_PROTOCOL = 2;

/** Where the agent listens: WAXSEAL_GIT_AGENT_SOCKET, else $XDG_RUNTIME_DIR/waxseal, else the config folder. */
export function agentSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.WAXSEAL_GIT_AGENT_SOCKET) return resolve(env.WAXSEAL_GIT_AGENT_SOCKET);
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'waxseal', 'git-agent.sock');
  // The same folder as @waxseal/sign's configDir (not imported: it would load the signing stack).
  const config = env.WAXSEAL_CONFIG_DIR || join(env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'waxseal');
  return join(config, 'git-agent.sock');
}

/** What git asks for, read loosely: the full program parses argv strictly and refuses the rest. */
export function gpgMode(argv: readonly string[]): 'sign' | 'verify' | undefined {
  let sign = false;
  let verify = false;
  for (const a of argv) {
    if (a === '--verify') verify = true;
    else if (a === '--sign' || a === '--detach-sign' || (/^-[bsau]+$/.test(a) && /[bs]/.test(a))) sign = true;
  }
  return sign === verify ? undefined : sign ? 'sign' : 'verify';
}

export interface AgentWrite {
  fd: number;
  data: string;
}

export interface AgentAnswer {
  code: number;
  writes: AgentWrite[];
  tty?: string;
}

/** 'ours' when a socket owned by this user is at `socket`, 'none' when nothing is, 'foreign' otherwise. */
export function socketState(socket: string): 'ours' | 'none' | 'foreign' {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(socket);
  } catch {
    return 'none';
  }
  if (!st.isSocket()) return 'foreign';
  if (process.getuid && st.uid !== process.getuid()) return 'foreign';
  return 'ours';
}

function isAnswer(v: unknown): v is AgentAnswer {
  const a = v as AgentAnswer;
  return (
    typeof v === 'object' &&
    v !== null &&
    (v as { ok?: unknown }).ok === true &&
    Number.isInteger(a.code) &&
    Array.isArray(a.writes) &&
    a.writes.every((w) => Number.isInteger(w?.fd) && w.fd >= 0 && typeof w.data === 'string') &&
    (a.tty === undefined || typeof a.tty === 'string')
  );
}

/**
 * One request to the agent. `body` is sent once the connection is up (so stdin is read only when
 * an agent answers). Resolves undefined when no usable agent answered in time.
 */
export function askAgent(socket: string, body: () => object, timeoutMs = 120_000): Promise<unknown> {
  return new Promise((done) => {
    const c = createConnection(socket);
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (v: unknown) => {
      if (!settled) (settled = true), done(v);
    };
    c.setTimeout(timeoutMs, () => (c.destroy(), finish(undefined)));
    c.on('connect', () => {
      let text: string;
      try {
        text = JSON.stringify(body());
      } catch {
        c.destroy();
        finish(undefined);
        return;
      }
      c.end(`${text}\n`);
    });
    c.on('data', (d: Buffer) => chunks.push(d));
    c.on('error', () => finish(undefined));
    c.on('close', () => {
      try {
        finish(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        finish(undefined);
      }
    });
  });
}

/** Sends git's request to the agent; undefined when it did not answer as this client expects. */
export async function forwardToAgent(
  socket: string,
  argv: readonly string[],
  stdin: () => Uint8Array,
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd(),
): Promise<{ answer: AgentAnswer | undefined; stdin: Uint8Array | undefined }> {
  let input: Uint8Array | undefined;
  const r = await askAgent(socket, () => {
    input = stdin();
    return { op: 'gpg', v: AGENT_PROTOCOL, argv, cwd, env, stdin: Buffer.from(input).toString('base64') };
  });
  return { answer: isAnswer(r) ? r : undefined, stdin: input };
}

export function writeAll(fd: number, data: Uint8Array): void {
  for (let off = 0; off < data.length; ) {
    try {
      off += writeSync(fd, data, off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
    }
  }
}

/** Writes the agent's answer to this process's file descriptors; returns the exit code. */
export function applyAnswer(a: AgentAnswer): number {
  for (const w of a.writes) writeAll(w.fd, Buffer.from(w.data, 'base64'));
  if (a.tty !== undefined) {
    try {
      const fd = openSync('/dev/tty', 'w');
      writeSync(fd, `${a.tty}\n`);
      closeSync(fd);
    } catch {
      // no terminal
    }
  }
  return a.code;
}

/** All of stdin (git writes the payload and closes it). */
export function readStdinSync(): Uint8Array {
  const chunks: Buffer[] = [];
  const buf = Buffer.allocUnsafe(1 << 16);
  for (;;) {
    let n: number;
    try {
      n = readSync(0, buf, 0, buf.length, null);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') continue; // a non-blocking pipe: wait for git
      if (code === 'EOF') break;
      throw e;
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return new Uint8Array(Buffer.concat(chunks));
}

/**
 * The fast path: git's request answered by a running agent. Returns the exit code, or
 * `{ fallback }` (with stdin when it was already read) for the full program to handle.
 */
export async function tryAgent(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number } | { fallback: true; stdin?: Uint8Array }> {
  if (gpgMode(argv) === undefined) return { fallback: true };
  const socket = agentSocketPath(env);
  if (socketState(socket) !== 'ours') return { fallback: true };
  const { answer, stdin } = await forwardToAgent(socket, argv, readStdinSync, env);
  if (!answer) return stdin ? { fallback: true, stdin } : { fallback: true };
  return { code: applyAnswer(answer) };
}

/** The entry point: the agent when one answers, else the full program. */
export async function run(argv: string[]): Promise<number> {
  const r = await tryAgent(argv);
  if ('code' in r) return r.code;
  const { main } = await import('./git-program.ts');
  return main(argv, process.env, r.stdin);
}

// Run directly (from source: `node apps/cli/src/git-client.ts`).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  run(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (e) => {
      process.stderr.write(`waxseal-git: internal error: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 70;
    },
  );
}
