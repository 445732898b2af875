// OpenSSL as the peer: `openssl ts -query` builds the requests, the running TSA answers, and
// `openssl ts -verify` must accept every token (signature, ESSCertIDv2, critical timeStamping
// EKU, chain, imprint and nonce).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { chainToPem, generateDevTsaChain, type DevTsaChain } from '../src/chain.ts';
import { startTsaServer, type StartedTsa } from '../src/service.ts';
import { hasOpenssl } from './helpers.ts';

const skip = hasOpenssl() ? false : 'openssl is not installed (apt-get install openssl)';

function openssl(args: string[], cwd: string): { ok: boolean; out: string } {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8', timeout: 20_000 });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

describe('openssl ts interoperability', { skip }, () => {
  let dir: string;
  let dev: DevTsaChain;
  let server: StartedTsa;
  const data = 'F';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wx-tsa-openssl-'));
    writeFileSync(join(dir, data), 'the artifact openssl timestamps\n');
    dev = await generateDevTsaChain({ intermediate: true });
    writeFileSync(join(dir, 'root.pem'), chainToPem(dev.chain.slice(-1)));
    writeFileSync(join(dir, 'tsa-chain.pem'), chainToPem(dev.chain.slice(0, -1)));
    server = await startTsaServer({ signer: dev.signer, chain: dev.chain });
  });
  after(async () => {
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function timestamp(url: string, query: string, reply: string, contentType = 'application/timestamp-query'): Promise<void> {
    const res = await fetch(`${url}/api/v1/timestamp`, {
      method: 'POST',
      body: readFileSync(join(dir, query)),
      headers: { 'content-type': contentType },
    });
    const body = Buffer.from(await res.arrayBuffer());
    assert.equal(res.status, 200, body.toString());
    writeFileSync(join(dir, reply), body);
  }

  function verifyOk(args: string[]): void {
    const r = openssl(['ts', '-verify', ...args, '-CAfile', 'root.pem'], dir);
    assert.ok(r.ok && /Verification: OK/.test(r.out), r.out);
  }

  for (const [hash, cert] of [
    ['sha256', true],
    ['sha256', false],
    ['sha384', true],
    ['sha384', false],
    ['sha512', true],
    ['sha512', false],
  ] as const) {
    test(`-${hash} ${cert ? 'with' : 'without'} -cert: openssl ts -verify says OK`, async () => {
      const q = `q-${hash}-${cert}.tsq`;
      const r = `r-${hash}-${cert}.tsr`;
      const query = openssl(['ts', '-query', '-data', data, `-${hash}`, ...(cert ? ['-cert'] : []), '-out', q], dir);
      assert.ok(query.ok, query.out);
      await timestamp(server.url, q, r);
      verifyOk(['-in', r, '-data', data, '-untrusted', 'tsa-chain.pem']);
      // Against the query: the imprint and the nonce must both match.
      verifyOk(['-in', r, '-queryfile', q, '-untrusted', 'tsa-chain.pem']);
    });
  }

  test('openssl ts -reply -text shows the policy, the echoed nonce, the accuracy and the TSA name', async () => {
    assert.ok(openssl(['ts', '-query', '-data', data, '-sha256', '-cert', '-out', 'n.tsq'], dir).ok);
    await timestamp(server.url, 'n.tsq', 'n.tsr');
    const queryText = openssl(['ts', '-query', '-in', 'n.tsq', '-text'], dir).out;
    const nonce = /Nonce: (0x[0-9A-F]+)/.exec(queryText)?.[1];
    assert.ok(nonce, queryText);
    const reply = openssl(['ts', '-reply', '-in', 'n.tsr', '-text'], dir);
    assert.ok(reply.ok, reply.out);
    assert.match(reply.out, /Status: Granted\./);
    assert.match(reply.out, /Policy OID: 1\.3\.6\.1\.4\.1\.57264\.2/);
    assert.ok(reply.out.includes(`Nonce: ${nonce}`), reply.out);
    assert.match(reply.out, /Accuracy: 0x01 seconds/);
    assert.match(reply.out, /Ordering: no/);
    assert.match(reply.out, /TSA: DirName:\/O=Waxseal dev\/CN=Waxseal dev TSA/);
    assert.match(reply.out, /Time stamp: .* GMT/);
  });

  test('-no_nonce and an explicit -tspolicy', async () => {
    assert.ok(
      openssl(['ts', '-query', '-data', data, '-sha256', '-no_nonce', '-tspolicy', '1.3.6.1.4.1.57264.2', '-out', 'p.tsq'], dir).ok,
    );
    await timestamp(server.url, 'p.tsq', 'p.tsr');
    verifyOk(['-in', 'p.tsr', '-queryfile', 'p.tsq', '-untrusted', 'tsa-chain.pem']);
    assert.doesNotMatch(openssl(['ts', '-reply', '-in', 'p.tsr', '-text'], dir).out, /Nonce: 0x/);
  });

  test('the JSON form yields a token openssl accepts', async () => {
    const artifactHash = createHash('sha256')
      .update(readFileSync(join(dir, data)))
      .digest('base64');
    // A nonce beyond 2^64, written as a bare JSON integer as timestamp-authority accepts it.
    const nonce = 98765432109876543210n;
    writeFileSync(join(dir, 'j.json'), `{"artifactHash":"${artifactHash}","hashAlgorithm":"sha256","certificates":true,"nonce":${nonce}}`);
    await timestamp(server.url, 'j.json', 'j.tsr', 'application/json');
    verifyOk(['-in', 'j.tsr', '-data', data, '-untrusted', 'tsa-chain.pem']);
    assert.match(
      openssl(['ts', '-reply', '-in', 'j.tsr', '-text'], dir).out,
      new RegExp(`Nonce: 0x0*${nonce.toString(16).toUpperCase()}\\n`),
    );
  });

  test('a P-384 TSA that includes the chain verifies with only the root', async () => {
    const p384 = await generateDevTsaChain({ kind: 'ecdsa-p384', intermediate: true });
    writeFileSync(join(dir, 'root384.pem'), chainToPem(p384.chain.slice(-1)));
    const s = await startTsaServer({ signer: p384.signer, chain: p384.chain, includeChainInResponse: true });
    try {
      assert.ok(openssl(['ts', '-query', '-data', data, '-sha384', '-cert', '-out', 'c.tsq'], dir).ok);
      await timestamp(s.url, 'c.tsq', 'c.tsr');
      const r = openssl(['ts', '-verify', '-in', 'c.tsr', '-queryfile', 'c.tsq', '-CAfile', 'root384.pem'], dir);
      assert.ok(r.ok && /Verification: OK/.test(r.out), r.out);
    } finally {
      await s.close();
    }
  });

  test('negative controls: other data, or another root, fail verification', async () => {
    assert.ok(openssl(['ts', '-query', '-data', data, '-sha256', '-cert', '-out', 'x.tsq'], dir).ok);
    await timestamp(server.url, 'x.tsq', 'x.tsr');
    writeFileSync(join(dir, 'G'), 'different content\n');
    const wrongData = openssl(['ts', '-verify', '-in', 'x.tsr', '-data', 'G', '-CAfile', 'root.pem', '-untrusted', 'tsa-chain.pem'], dir);
    assert.ok(!wrongData.ok, wrongData.out);
    const other = await generateDevTsaChain();
    writeFileSync(join(dir, 'other-root.pem'), chainToPem(other.chain.slice(-1)));
    const wrongRoot = openssl(
      ['ts', '-verify', '-in', 'x.tsr', '-data', data, '-CAfile', 'other-root.pem', '-untrusted', 'tsa-chain.pem'],
      dir,
    );
    assert.ok(!wrongRoot.ok, wrongRoot.out);
  });
});
