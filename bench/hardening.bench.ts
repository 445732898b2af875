// Hardening (Waxseal issue 15 item 1): how long /healthz takes to answer while 32 clients at once
// post 4 MB of "[" (2,000,000 deep) to a route that reads req.json() with Fulcio's 4 MiB limit,
// printed next to /healthz latency with no attack, measured in the same run against the same
// server (its own process). Before the bounded parse this stalled /healthz for 26-33 s and grew
// the process by gigabytes; the peak resident set growth is printed too.
// `node bench/hardening.bench.ts serve` runs the server side.
import { spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { fmt, report } from './lib.ts';

const CONCURRENCY = 32;
const ROUNDS = 3;
const IDLE_SAMPLES = 300;

if (process.argv[2] === 'attack') {
  // The attacker is a process of its own: writing 128 MB of bodies would otherwise stall the
  // prober's event loop, and the figure would be the client's latency, not the server's.
  const [url, n] = [process.argv[3]!, Number(process.argv[4])];
  const deep = new Uint8Array(4_000_000);
  deep.fill(0x5b, 0, 2_000_000);
  deep.fill(0x5d, 2_000_000);
  const statuses = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<number>((resolve) => {
          const req = request(
            `${url}/api/v2/signingCert`,
            { method: 'POST', agent: false, headers: { 'content-type': 'application/json' } },
            (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode ?? 0));
            },
          );
          // The server answers before the whole body is sent and closes; the answer is what counts.
          req.on('error', () => setTimeout(() => resolve(0), 200));
          req.end(deep);
        }),
    ),
  );
  process.stdout.write(`${statuses.filter((s) => s >= 400 && s < 500).length}\n`);
} else if (process.argv[2] === 'serve') {
  const { Router, json, listen, requestListener } = await import('../packages/server/src/index.ts');
  const router = new Router();
  router.post('/api/v2/signingCert', async (req) => json(200, { parsed: typeof (await req.json(4 << 20)) }));
  router.get('/healthz', () => json(200, { status: 'SERVING' }));
  router.get('/rss', () => json(200, { rss: process.memoryUsage().rss, maxRss: process.resourceUsage().maxRSS * 1024 }));
  const server = await listen(requestListener({ router, maxBodyBytes: 4 << 20 }));
  process.stdout.write(`LISTENING ${server.url}\n`);
  process.on('SIGTERM', () => void server.close().then(() => process.exit(0)));
} else {
  const child = spawn(process.execPath, [...process.execArgv, new URL(import.meta.url).pathname, 'serve'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /LISTENING (\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });

  const send = (method: string, path: string, body?: Uint8Array, agent: Agent | false = false) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${url}${path}`, { method, agent, headers: body ? { 'content-type': 'application/json' } : {} }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on('error', reject);
      req.end(body);
    });

  /** Milliseconds for one GET /healthz on the kept-alive connection. */
  const health = async (): Promise<number> => {
    const t0 = performance.now();
    const r = await send('GET', '/healthz', undefined, keepAlive);
    if (r.status !== 200) throw new Error(`/healthz answered ${r.status}`);
    return performance.now() - t0;
  };
  const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

  const attackOnce = () =>
    new Promise<number>((resolve, reject) => {
      const a = spawn(process.execPath, [...process.execArgv, new URL(import.meta.url).pathname, 'attack', url, String(CONCURRENCY)], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      a.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      a.on('error', reject);
      a.on('close', () => resolve(Number(out.trim())));
    });
  const base = JSON.parse((await send('GET', '/rss')).body) as { rss: number };

  const idle: number[] = [];
  const attacked: number[] = [];
  let refused = 0;
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < IDLE_SAMPLES / ROUNDS; i++) idle.push(await health());
    let done = false;
    const attack = attackOnce().finally(() => (done = true));
    // At least one probe while the bodies are in flight, then as many as fit.
    do attacked.push(await health());
    while (!done);
    refused += await attack;
  }
  const mem = JSON.parse((await send('GET', '/rss')).body) as { rss: number; maxRss: number };

  process.stdout.write(
    `${CONCURRENCY} concurrent 4 MB over-deep bodies x ${ROUNDS} rounds; ${refused}/${CONCURRENCY * ROUNDS} refused with 4xx\n`,
  );
  report('/healthz max latency, attack', pct(attacked, 100), 'ms', { name: 'no attack', value: pct(idle, 100) });
  report('/healthz p50 latency, attack', pct(attacked, 50), 'ms', { name: 'no attack', value: pct(idle, 50) });
  process.stdout.write(`probes during the attack: ${attacked.length}; idle probes: ${idle.length}\n`);
  process.stdout.write(`server resident set: ${fmt(base.rss / 2 ** 20)} MiB before, peak ${fmt(mem.maxRss / 2 ** 20)} MiB\n`);
  keepAlive.destroy();
  child.kill('SIGTERM');
  if (refused !== CONCURRENCY * ROUNDS) process.exitCode = 1;
}
