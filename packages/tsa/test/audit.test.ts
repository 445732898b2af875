// The TSA's audit hook, alone (hot-path listener) and mounted (shared router): a token leaves only
// after its record is durable, a failing audit gives 503 and no token, and refused or failed
// requests are recorded with their error code.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { sha256 } from '../../core/src/crypto.ts';
import { toHex } from '../../core/src/bytes.ts';
import type { RunningServer } from '../../server/src/http.ts';
import { serveServices } from '../../server/src/service.ts';
import { generateDevTsaChain, type DevTsaChain } from '../src/chain.ts';
import { encodeTimeStampReq } from '../src/timestamp.ts';
import { TsaService, startTsaServer, tsaErrorFormatter, type TsaAuditEvent } from '../src/service.ts';

const digest = sha256(new TextEncoder().encode('audited payload'));
const derRequest = encodeTimeStampReq({ hash: 'sha256', hashedMessage: digest, certReq: true });

for (const setup of ['standalone', 'mounted'] as const)
  describe(`TSA audit hook (${setup})`, () => {
    let dev: DevTsaChain;
    let server: RunningServer;
    let endpoint: string;
    const events: TsaAuditEvent[] = [];
    const hook: { mode: 'ok' | 'fail' | 'gate'; release?: () => void } = { mode: 'ok' };

    before(async () => {
      dev = await generateDevTsaChain();
      const audit = async (e: TsaAuditEvent) => {
        if (hook.mode === 'fail' && !e.errorCode) throw new Error('audit store down');
        if (hook.mode === 'gate' && !e.errorCode) await new Promise<void>((r) => (hook.release = r));
        events.push(e);
      };
      server =
        setup === 'standalone'
          ? await startTsaServer({ signer: dev.signer, chain: dev.chain, audit })
          : await serveServices([await TsaService.create({ signer: dev.signer, chain: dev.chain, audit })], {
              errorFormatter: tsaErrorFormatter,
            });
      endpoint = `${server.url}/api/v1/timestamp`;
    });
    after(() => server.close());

    const post = (body: Uint8Array | string, contentType = 'application/timestamp-query') =>
      fetch(endpoint, {
        method: 'POST',
        body: typeof body === 'string' ? body : Buffer.from(body),
        headers: { 'content-type': contentType },
      });

    test('the token is released only after its record is made', async () => {
      hook.mode = 'gate';
      const before = events.length;
      let answered = false;
      const pending = post(derRequest).then((r) => ((answered = true), r));
      while (!hook.release) await new Promise((r) => setTimeout(r, 5));
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(answered, false, 'no answer while the record is not made');
      hook.release();
      hook.release = undefined;
      hook.mode = 'ok';
      const res = await pending;
      assert.equal(res.status, 200);
      await res.arrayBuffer();
      const e = events[before]!;
      assert.equal(e.digest, toHex(digest));
      assert.equal(e.hash, 'sha256');
      assert.equal(e.errorCode, undefined);
      assert.equal(e.keyRef, dev.signer.keyRef);
    });

    test('a failing audit gives 503 and no token', async () => {
      hook.mode = 'fail';
      try {
        const res = await post(derRequest);
        assert.equal(res.status, 503);
        assert.match(((await res.json()) as { message: string }).message, /audit log could not record/);
      } finally {
        hook.mode = 'ok';
      }
    });

    test('refused requests are recorded with their code, before the answer', async () => {
      const before = events.length;
      const garbage = await post(new Uint8Array([0x30, 0x03, 0x02, 0x01]));
      assert.equal(garbage.status, 400);
      await garbage.arrayBuffer();
      const media = await post(derRequest, 'text/plain');
      assert.equal(media.status, 415);
      await media.arrayBuffer();
      const recorded = events.slice(before);
      assert.equal(recorded.length, 2);
      assert.equal(recorded[0]!.errorCode, 'ERR_DER_PARSE');
      assert.equal(recorded[0]!.digest, undefined);
      assert.equal(recorded[1]!.errorCode, 'ERR_MEDIA_TYPE');
      assert.ok(recorded.every((e) => typeof e.message === 'string' && e.keyRef === dev.signer.keyRef));
    });
  });
