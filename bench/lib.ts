// Shared benchmark plumbing: start a server in its own process, drive it with wrk (a C load
// generator, so the client costs little CPU), and print figures next to a baseline.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';

export interface SpawnedServer {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Starts `node <script> ...args` and waits for a "LISTENING <url>" line on stdout. */
export function spawnServer(script: string, args: string[] = [], env: Record<string, string> = {}): Promise<SpawnedServer> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
    let buf = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} did not start within 30 s`));
    }, 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /LISTENING (\S+)/.exec(buf);
      if (m) {
        clearTimeout(timer);
        resolve({
          url: m[1]!,
          child,
          stop: () =>
            new Promise<void>((res) => {
              child.once('exit', () => res());
              child.kill('SIGTERM');
              setTimeout(() => child.kill('SIGKILL'), 3000).unref();
            }),
        });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with ${code} before listening`));
    });
  });
}

export interface LoadResult {
  requestsPerSec: number;
  p50ms: number;
  p99ms: number;
  non2xx: number;
  errors: number;
}

function toMs(v: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 's' ? n * 1000 : n;
}

/** Runs wrk against `url` with a fixed body; bounded by `seconds`. */
export function wrk(opts: {
  url: string;
  method?: string;
  body?: Uint8Array | string;
  contentType?: string;
  headers?: Record<string, string>;
  connections?: number;
  seconds?: number;
  threads?: number;
}): LoadResult {
  const dir = mkdtempSync(join(tmpdir(), 'wx-wrk-'));
  const bodyFile = join(dir, 'body.bin');
  if (opts.body !== undefined) writeFileSync(bodyFile, opts.body);
  const headers = { ...(opts.contentType ? { 'Content-Type': opts.contentType } : {}), ...opts.headers };
  const lua = [
    `wrk.method = "${opts.method ?? 'POST'}"`,
    ...(opts.body !== undefined ? [`local f = io.open("${bodyFile}", "rb"); wrk.body = f:read("*a"); f:close()`] : []),
    ...Object.entries(headers).map(([k, v]) => `wrk.headers["${k}"] = "${v}"`),
    'local non2xx = 0',
    'response = function(status) if status < 200 or status > 299 then non2xx = non2xx + 1 end end',
    'done = function(summary, latency, requests) io.write(string.format("ERRORS %d %d %d %d %d\\n", summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout)) end',
  ].join('\n');
  const script = join(dir, 'script.lua');
  writeFileSync(script, lua);
  const out = execFileSync(
    'wrk',
    [
      '-t',
      String(opts.threads ?? 1),
      '-c',
      String(opts.connections ?? 64),
      '-d',
      `${opts.seconds ?? 5}s`,
      '--latency',
      '-s',
      script,
      opts.url,
    ],
    {
      encoding: 'utf8',
      timeout: ((opts.seconds ?? 5) + 30) * 1000,
    },
  );
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const p50 = toMs(/\s50%\s+(\S+)/.exec(out)?.[1] ?? '');
  const p99 = toMs(/\s99%\s+(\S+)/.exec(out)?.[1] ?? '');
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const e = /ERRORS (\d+) (\d+) (\d+) (\d+) (\d+)/.exec(out);
  const errors = e ? Number(e[1]) + Number(e[2]) + Number(e[3]) + Number(e[5]) : 0;
  return { requestsPerSec: rps, p50ms: p50, p99ms: p99, non2xx, errors };
}

export function machineLine(): string {
  return `machine: ${cpus().length} cores, ${cpus()[0]?.model ?? '?'}; node ${process.version}; openssl ${process.versions.openssl}`;
}

export function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** Prints one result row: name, figure, baseline figure and ratio. */
export function report(name: string, value: number, unit: string, baseline?: { name: string; value: number }): void {
  const base = baseline
    ? `   baseline ${baseline.name}: ${fmt(baseline.value)} ${unit}   ratio ${fmt((100 * value) / baseline.value, 1)}%`
    : '';
  process.stdout.write(`${name.padEnd(34)} ${fmt(value).padStart(10)} ${unit}${base}\n`);
}
