// Shared benchmark plumbing: start a server in its own process, drive it with wrk (a C load
// generator, so the client costs little CPU), and print figures next to a baseline.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { spawnListening } from '@waxseal/testkit';
import { createServer, type ServerResponse } from 'node:http';
import { writeFileSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';

export interface SpawnedServer {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Starts `node <script> ...args` and waits for a "LISTENING <url>" line on stdout. */
export async function spawnServer(script: string, args: string[] = [], env: Record<string, string> = {}): Promise<SpawnedServer> {
  const { child, url } = await spawnListening(script, args, { env });
  return {
    url,
    child,
    stop: () =>
      new Promise<void>((res) => {
        child.once('exit', () => res());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 3000).unref();
      }),
  };
}

/**
 * For baseline server scripts: a bare node:http server on 127.0.0.1 that reads each request's
 * body as JSON (null when it does not parse) and hands it to `respond`; it prints "LISTENING
 * <url>" when ready (see spawnServer) and closes on SIGTERM.
 */
export function serveJsonBaseline(respond: (parsed: unknown, res: ServerResponse) => void): void {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let parsed: unknown = null;
      try {
        parsed = JSON.parse(Buffer.concat(chunks).toString() || 'null');
      } catch {
        parsed = null;
      }
      respond(parsed, res);
    });
  });
  server.listen(0, '127.0.0.1', () => {
    const a = server.address();
    process.stdout.write(`LISTENING http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}\n`);
  });
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

export interface LoadResult {
  requestsPerSec: number;
  p50ms: number;
  p99ms: number;
  non2xx: number;
  errors: number;
}

/** A wrk latency figure ("812.5us", "3.2ms", "1.1s") in milliseconds. */
export function toMs(v: string): number {
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
  return parseWrk(out);
}

/**
 * The figures in wrk's output (run with --latency and a script whose done() prints
 * "ERRORS connect read write status timeout"); socket errors exclude status errors.
 */
export function parseWrk(out: string): LoadResult {
  const e = /ERRORS (\d+) (\d+) (\d+) (\d+) (\d+)/.exec(out);
  return {
    requestsPerSec: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN),
    p50ms: toMs(/\s50%\s+(\S+)/.exec(out)?.[1] ?? ''),
    p99ms: toMs(/\s99%\s+(\S+)/.exec(out)?.[1] ?? ''),
    non2xx: Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0),
    errors: e ? Number(e[1]) + Number(e[2]) + Number(e[3]) + Number(e[5]) : 0,
  };
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

/** The median (the mean of the middle two for an even count). */
export function median(xs: number[]): number {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
}

let clockTicks: number | undefined;

/** A /proc stat line's command name (between the parentheses) and its user + system CPU seconds. */
function parseStat(stat: string): { name: string; seconds: number; kernelSeconds: number } {
  clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  const close = stat.lastIndexOf(')');
  const fields = stat.slice(close + 2).split(' ');
  const [user, system] = [Number(fields[11]), Number(fields[12])];
  return { name: stat.slice(stat.indexOf('(') + 1, close), seconds: (user + system) / clockTicks, kernelSeconds: system / clockTicks };
}

/** CPU seconds (user + system) a process has used, from /proc (Linux). */
export function cpuSeconds(pid: number): number {
  return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8')).seconds;
}

/**
 * CPU seconds used so far by each of a process's threads, summed by thread name (/proc/<pid>/task):
 * in all, and the part spent in the kernel (system time).
 */
export function threadCpuSeconds(pid: number): Map<string, { seconds: number; kernelSeconds: number }> {
  const out = new Map<string, { seconds: number; kernelSeconds: number }>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread exited
    }
    const { name, seconds, kernelSeconds } = parseStat(stat);
    const sum = out.get(name) ?? { seconds: 0, kernelSeconds: 0 };
    out.set(name, { seconds: sum.seconds + seconds, kernelSeconds: sum.kernelSeconds + kernelSeconds });
  }
  return out;
}

/**
 * Prints the rounds of one server: the median rate (next to `baseline`), then the median
 * latencies, the server CPU per request when measured, each round's rate and the failures.
 * Returns the median rate.
 */
export function summary(
  name: string,
  rs: (LoadResult & { cpuUsPerRequest?: number })[],
  unit: string,
  baseline?: { name: string; value: number },
  errorsLabel = 'socket errors',
): number {
  const rps = median(rs.map((r) => r.requestsPerSec));
  report(name, rps, unit, baseline);
  const non2xx = rs.reduce((a, r) => a + r.non2xx, 0);
  const errors = rs.reduce((a, r) => a + r.errors, 0);
  const cpu = rs.every((r) => r.cpuUsPerRequest !== undefined)
    ? `server CPU ${fmt(median(rs.map((r) => r.cpuUsPerRequest!)), 1)} us/request   `
    : '';
  process.stdout.write(
    `${''.padEnd(34)} p50 ${fmt(median(rs.map((r) => r.p50ms)), 2)} ms   p99 ${fmt(median(rs.map((r) => r.p99ms)), 2)} ms   ` +
      `${cpu}rounds ${rs.map((r) => fmt(r.requestsPerSec)).join(' / ')}   non-2xx ${non2xx}   ${errorsLabel} ${errors}\n`,
  );
  return rps;
}
