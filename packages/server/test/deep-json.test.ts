// Waxseal issue 15 item 1: 4 MB of "[" posted 32 times at once grew a CA from 387 MiB to 4 GB and
// stalled every endpoint for half a minute. Here the same attack hits a real server (its own
// process, so its memory is measured apart from this client's): every answer must be a 4xx with
// a JSON body, the resident set (after a GC) must not grow by more than 64 MiB, and the health
// route must keep answering meanwhile. The peak is bounded by the same 64 MiB: a refused body is
// not read any further (the server answers and closes the connection), so no garbage piles up
// waiting for V8's next GC; before the fix the peak was gigabytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';

const FIXTURE = new URL('./fixtures/json-server.ts', import.meta.url).pathname;
const MiB = 1 << 20;

interface Answer {
  status: number;
  contentType: string;
  body: string;
}

/** One request on its own connection (so that 32 of them really are concurrent). */
function send(method: string, url: string, body?: Uint8Array): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent: false, headers: body ? { 'content-type': 'application/json' } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type']), body: Buffer.concat(chunks).toString() }),
      );
    });
    // The server answers a refused body before it is all sent and then closes the connection, so
    // the rest of the upload fails (EPIPE): what matters is that the whole answer arrived, which
    // Node's client reports just before or just after that error (a later reject is a no-op).
    req.on('error', (e) => setTimeout(() => reject(e), 200));
    req.end(body);
  });
}

function start(): Promise<{ url: string; child: ChildProcess }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=waxseal-source', '--expose-gc', FIXTURE], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /LISTENING (\S+)/.exec(out);
      if (m) resolve({ url: m[1]!, child });
    });
    child.once('exit', (code) => reject(new Error(`the test server exited with ${code} before listening`)));
  });
}

async function memory(url: string): Promise<{ rss: number; maxRss: number }> {
  const a = await send('GET', `${url}/rss`);
  const m = JSON.parse(a.body) as { rss: number; maxRss: number; gc: boolean };
  assert.ok(m.gc, 'the server runs with --expose-gc');
  return m;
}

test('32 concurrent 4 MB over-deep JSON bodies: 4xx with JSON, bounded memory, health keeps answering', async () => {
  const { url, child } = await start();
  try {
    const deep = new Uint8Array(4_000_000);
    deep.fill(0x5b, 0, 2_000_000);
    deep.fill(0x5d, 2_000_000);
    // Warm the paths up (valid and refused bodies) so the baseline includes the code they need.
    assert.equal((await send('POST', `${url}/api/v2/signingCert`, new TextEncoder().encode('{"a":[1]}'))).status, 200);
    assert.equal((await send('POST', `${url}/api/v2/signingCert`, deep.subarray(0, 1000))).status, 400);
    const before = await memory(url);

    const attack = Array.from({ length: 32 }, () => send('POST', `${url}/api/v2/signingCert`, deep));
    // Asked while the 32 bodies are in flight.
    const health = send('GET', `${url}/healthz`);
    const answers = await Promise.all(attack);
    for (const a of answers) {
      assert.ok(a.status >= 400 && a.status < 500, `status ${a.status}`);
      assert.match(a.contentType, /^application\/json/);
      const err = JSON.parse(a.body) as { code: string; message: string };
      assert.equal(err.code, 'ERR_INVALID_INPUT', a.body);
      assert.match(err.message, /nests deeper than 64/);
    }
    const h = await health;
    assert.equal(h.status, 200);
    assert.deepEqual(JSON.parse(h.body), { status: 'ok' });

    const after = await memory(url);
    const growth = after.rss - before.rss;
    const peakGrowth = after.maxRss - before.rss;
    assert.ok(growth < 64 * MiB, `resident set grew by ${(growth / MiB).toFixed(1)} MiB`);
    assert.ok(peakGrowth < 64 * MiB, `resident set peaked ${(peakGrowth / MiB).toFixed(1)} MiB above the baseline`);
    // Still serving normally afterwards.
    assert.equal((await send('POST', `${url}/api/v2/signingCert`, new TextEncoder().encode('[[[]]]'))).status, 200);
  } finally {
    child.kill('SIGTERM');
  }
});
