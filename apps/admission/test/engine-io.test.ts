// What the engine fetches besides signatures, against real peers where one runs here:
//   - `key.kms` authorities: an AWS KMS key on moto_server signs an image (through Waxseal's KMS
//     signer), the engine reads its public key through @waxseal/keys-awskms and admits the image;
//     a GCP KMS key's public key is read from a 127.0.0.1 server answering Cloud KMS's REST call
//     (there is no emulator); keys are cached per URI; an unreachable KMS is a clear denial;
//   - `remote` policies over loopback http: fetched once, hash-checked, compiled, cached;
//   - fetchConfigFile: the image config files by platform, for an image and an index.
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { crc32c } from '../../../packages/keys-gcpkms/src/gcpkms.ts';
import { openSigner } from '../../../packages/keys/src/open.ts';
import { signerFromPem } from '../../../packages/keys/src/memory.ts';
import type { Signer } from '../../../packages/keys/src/signer.ts';
import { hasCommand, startMoto, type Moto } from '../../../packages/keys/test/helpers.ts';
import { attachBundle, COSIGN, RegistryClient, resolveImage, signStatement } from '../../../packages/oci/src/index.ts';
import { loadPolicyStore } from '../../../packages/policy/src/index.ts';
import { signStatementWithKey } from '../../../packages/sign/src/sign-with-key.ts';
import { PolicyEngine, type EngineOptions } from '../src/engine.ts';
import { kmsPublicKey } from '../src/engine-io.ts';
import { pushImage, registryToolsMissing, startRegistry, type TestRegistry } from './fixture.ts';

const skipRegistry = registryToolsMissing();
const AWS_ENV = {
  AWS_ACCESS_KEY_ID: 'testing',
  AWS_SECRET_ACCESS_KEY: 'testing',
  AWS_REGION: 'us-east-1',
  AWS_EC2_METADATA_DISABLED: 'true',
};

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
}

/** Signs `image` (a tag in `reg`) with `signer` and attaches the bundle as a referrer, as `waxseal sign --key` does. */
async function signWith(image: string, signer: Signer): Promise<void> {
  const client = new RegistryClient({ credentials: () => undefined });
  const t = await resolveImage(client, image);
  const bundle = await signStatementWithKey(signStatement(t.digest), { signer });
  await attachBundle(client, t.repo, t.descriptor, bundle, { predicateType: COSIGN.signPredicateType });
}

function keyPolicy(glob: string, kms: string, extra = ''): string {
  return `apiVersion: policy.sigstore.dev/v1beta1
kind: ClusterImagePolicy
metadata: {name: kms-signed}
spec:
  images: [{glob: "${glob}"}]
  authorities:
  - key: {kms: "${kms}"}${extra}
`;
}

const check = (e: PolicyEngine, image: string) =>
  e.check({ image, namespace: 'default', kind: 'Pod', labels: {} }, AbortSignal.timeout(20_000));

describe('engine: key.kms authorities', { skip: skipRegistry, timeout: 120_000 }, () => {
  let reg: TestRegistry;
  before(async () => {
    reg = await startRegistry();
  });
  after(() => reg?.close());

  describe('AWS KMS (moto)', { skip: hasCommand('moto_server') ? false : 'moto_server is not installed' }, () => {
    let moto: Moto;
    const saved: Record<string, string | undefined> = {};
    before(async () => {
      for (const [k, v] of Object.entries(AWS_ENV)) {
        saved[k] = process.env[k];
        process.env[k] = v;
      }
      moto = await startMoto();
      const { KMSClient, CreateKeyCommand, CreateAliasCommand } = await import('@aws-sdk/client-kms');
      const sdk = new KMSClient({ endpoint: moto.endpoint, region: 'us-east-1' });
      for (const alias of ['alias/admission', 'alias/other']) {
        const k = await sdk.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }));
        await sdk.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: k.KeyMetadata!.KeyId! }));
      }
      sdk.destroy();
    });
    after(async () => {
      await moto?.stop();
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    });

    test('an image signed by the KMS key is admitted; its public key is fetched once per URI', async () => {
      const uri = (alias: string) => `awskms://${moto.hostPort}/alias/${alias}?region=us-east-1`;
      const signer = await openSigner(`${uri('admission')}&message-type=raw`);
      await pushImage(reg, 'kms/app:v1', 'kms-app');
      await signWith(`${reg.host}/kms/app:v1`, signer);
      await signer.close?.();
      await pushImage(reg, 'kms/unsigned:v1', 'kms-unsigned');

      let calls = 0;
      const opts: EngineOptions = {
        registry: { credentials: () => undefined },
        cacheSize: 0,
        kmsPublicKey: (u, s) => (calls++, kmsPublicKey(u, s)),
      };
      const e = new PolicyEngine(loadPolicyStore([{ name: 'kms.yaml', text: keyPolicy(`${reg.host}/kms/**`, uri('admission')) }]), opts);
      const ok = await check(e, `${reg.host}/kms/app:v1`);
      assert.deepEqual(ok.errors, []);
      assert.equal(ok.allowed, true);
      const unsigned = await check(e, `${reg.host}/kms/unsigned:v1`);
      assert.equal(unsigned.allowed, false);
      assert.match(unsigned.errors.join('\n'), /authority authority-0: .*no signatures found/);
      assert.equal(calls, 1, 'the key is cached per URI (the decision cache is off here)');

      // Another KMS key: the same signature does not verify.
      const other = new PolicyEngine(loadPolicyStore([{ name: 'kms.yaml', text: keyPolicy(`${reg.host}/kms/**`, uri('other')) }]), opts);
      const denied = await check(other, `${reg.host}/kms/app:v1`);
      assert.equal(denied.allowed, false);
      assert.match(denied.errors.join('\n'), /authority authority-0: signature key validation failed/);

      // A key that does not exist: a clear denial naming it, not cached.
      const missing = new PolicyEngine(loadPolicyStore([{ name: 'kms.yaml', text: keyPolicy(`${reg.host}/kms/**`, uri('nope')) }]), opts);
      const m = await check(missing, `${reg.host}/kms/app:v1`);
      assert.equal(m.allowed, false);
      assert.match(m.errors.join('\n'), /key\.kms awskms:\/\/.*alias\/nope.*: AWS KMS key alias\/nope .* not found/);
    });
  });

  describe('GCP KMS (its REST call, answered on 127.0.0.1)', () => {
    let server: Server;
    let port = 0;
    let dir = '';
    let requests = 0;
    const saved = process.env['GOOGLE_APPLICATION_CREDENTIALS'];
    const name = 'projects/waxseal-test/locations/us-east1/keyRings/admission/cryptoKeys/signer/cryptoKeyVersions/1';
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'wx-engine-gcp-'));
      // A service-account key file: the client authenticates with a self-signed JWT, offline.
      const sa = generateKeyPairSync('rsa', { modulusLength: 2048 });
      writeFileSync(
        join(dir, 'sa.json'),
        JSON.stringify({
          type: 'service_account',
          project_id: 'waxseal-test',
          private_key_id: 'k1',
          private_key: sa.privateKey.export({ format: 'pem', type: 'pkcs8' }),
          client_email: 'admission@waxseal-test.iam.gserviceaccount.com',
          client_id: '1',
          token_uri: 'https://oauth2.googleapis.com/token',
        }),
        { mode: 0o600 },
      );
      process.env['GOOGLE_APPLICATION_CREDENTIALS'] = join(dir, 'sa.json');
      server = createServer((req, res) => {
        requests++;
        const path = (req.url ?? '').split('?')[0];
        if (req.method !== 'GET' || path !== `/v1/${name}/publicKey`) {
          res.writeHead(404, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: { code: 404, message: `${path} not found`, status: 'NOT_FOUND' } }));
          return;
        }
        const pem = createPublicKey(key.privateKey).export({ format: 'pem', type: 'spki' }) as string;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ pem, algorithm: 12, pemCrc32c: String(crc32c(new TextEncoder().encode(pem))), name, protectionLevel: 1 }));
      });
      port = await listen(server);
    });
    after(async () => {
      server?.closeAllConnections();
      await new Promise((r) => server?.close(r));
      if (saved === undefined) delete process.env['GOOGLE_APPLICATION_CREDENTIALS'];
      else process.env['GOOGLE_APPLICATION_CREDENTIALS'] = saved;
      rmSync(dir, { recursive: true, force: true });
    });

    test('the public key is read from Cloud KMS (once) and verifies the signature', async () => {
      const signer = signerFromPem(key.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, 'test');
      await pushImage(reg, 'gcp/app:v1', 'gcp-app');
      await signWith(`${reg.host}/gcp/app:v1`, signer);
      const uri = `gcpkms://${name}?endpoint=127.0.0.1:${port}`;
      const e = new PolicyEngine(loadPolicyStore([{ name: 'gcp.yaml', text: keyPolicy(`${reg.host}/gcp/**`, uri) }]), {
        registry: { credentials: () => undefined },
        cacheSize: 0,
      });
      const v = await check(e, `${reg.host}/gcp/app:v1`);
      assert.deepEqual(v.errors, []);
      assert.equal(v.allowed, true);
      const before = requests;
      assert.equal((await check(e, `${reg.host}/gcp/app:v1`)).allowed, true);
      assert.equal(requests, before, 'cached per URI');
      const wrong = uri.replace('cryptoKeyVersions/1', 'cryptoKeyVersions/2');
      const w = await check(
        new PolicyEngine(loadPolicyStore([{ name: 'gcp.yaml', text: keyPolicy(`${reg.host}/gcp/**`, wrong) }]), {
          registry: { credentials: () => undefined },
        }),
        `${reg.host}/gcp/app:v1`,
      );
      assert.equal(w.allowed, false);
      assert.match(w.errors.join('\n'), /key\.kms gcpkms:\/\/.*cryptoKeyVersions\/2.*not found/);
    });
  });

  test('hashivault:// and azurekms:// keys are refused when the policy loads', () => {
    for (const kms of ['hashivault://admission', 'azurekms://vault.example/key']) {
      assert.throws(
        () => loadPolicyStore([{ name: 'v.yaml', text: keyPolicy('**', kms) }]),
        /v\.yaml: ClusterImagePolicy kms-signed: spec\.authorities\[0\]\.key\.kms: (hashivault|azurekms):\/\/ keys are not supported by Waxseal admission \(awskms:\/\/ and gcpkms:\/\/ are\)/,
      );
    }
  });
});

describe('engine: remote policies and fetchConfigFile', { skip: skipRegistry, timeout: 120_000 }, () => {
  let reg: TestRegistry;
  let server: Server;
  let base = '';
  const served = new Map<string, string>();
  const hits = new Map<string, number>();
  before(async () => {
    reg = await startRegistry();
    server = createServer((req, res) => {
      hits.set(req.url ?? '', (hits.get(req.url ?? '') ?? 0) + 1);
      if (req.url === '/redirect-out') {
        res.writeHead(302, { location: 'http://example.com/policy.cel' });
        res.end();
        return;
      }
      if (req.url === '/big') {
        res.writeHead(200);
        res.end('x'.repeat(200_000));
        return;
      }
      const body = served.get(req.url ?? '');
      res.writeHead(body === undefined ? 404 : 200, { 'content-type': 'text/plain' });
      res.end(body ?? 'not found');
    });
    base = `http://127.0.0.1:${await listen(server)}`;
  });
  after(async () => {
    await reg?.close();
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
  });

  const sha = (s: string) => createHash('sha256').update(s).digest('hex');
  const policy = (glob: string, pol: string) => `apiVersion: policy.sigstore.dev/v1beta1
kind: ClusterImagePolicy
metadata: {name: remote}
spec:
  images: [{glob: "${glob}"}]
  authorities: [{static: {action: pass}}]
  policy:
${pol}`;

  test('a remote CEL policy: fetched once, its sha256sum checked, its verdict applied', async () => {
    const image = `${reg.host}/remote/app@sha256:${'1'.repeat(64)}`;
    served.set('/allow.cel', "authorityMatches['authority-0'].static == true");
    served.set('/deny.cel', 'size(authorityMatches) > 1');
    const remote = (path: string, sum = sha(served.get(path) ?? '')) =>
      `    type: cel\n    remote: {url: "${base}${path}", sha256sum: "${sum}"}\n`;
    const judge = async (pol: string) =>
      check(
        new PolicyEngine(loadPolicyStore([{ name: 'r.yaml', text: policy(`${reg.host}/remote/**`, pol) }]), {
          registry: { credentials: () => undefined },
          cacheSize: 0,
        }),
        image,
      );
    const e = new PolicyEngine(loadPolicyStore([{ name: 'r.yaml', text: policy(`${reg.host}/remote/**`, remote('/allow.cel')) }]), {
      registry: { credentials: () => undefined },
      cacheSize: 0,
    });
    assert.equal((await check(e, image)).allowed, true);
    assert.equal((await check(e, image)).allowed, true);
    assert.equal(hits.get('/allow.cel'), 1, 'fetched once');

    const denied = await judge(remote('/deny.cel'));
    assert.equal(denied.allowed, false);
    assert.match(denied.errors.join('\n'), /failed policy: ClusterImagePolicy remote: policy: .*evaluated to false/);

    const tampered = await judge(remote('/allow.cel', sha('something else')));
    assert.equal(tampered.allowed, false);
    assert.match(
      tampered.errors.join('\n'),
      /remote policy http:\/\/127\.0\.0\.1:\d+\/allow\.cel: failed to check sha256sum from policy remote/,
    );

    const missing = await judge(remote('/missing.cel', sha('x')));
    assert.match(missing.errors.join('\n'), /remote policy .*missing\.cel: fetching .* failed: HTTP 404/);
    const big = await judge(remote('/big', sha('x')));
    assert.match(big.errors.join('\n'), /remote policy .*\/big: .* is larger than 65536 bytes/);
    const out = await judge(remote('/redirect-out', sha('x')));
    assert.match(out.errors.join('\n'), /http:\/\/example\.com\/policy\.cel: only https \(or http to the loopback interface\) is fetched/);
    served.set('/bad.cel', 'this is not CEL (');
    const bad = await judge(remote('/bad.cel'));
    assert.equal(bad.allowed, false);
    assert.match(bad.errors.join('\n'), /remote policy .*bad\.cel: .*(CEL|syntax|parse)/i);
  });

  test('remote policy URLs: https, or http to loopback only', () => {
    const load = (url: string) =>
      loadPolicyStore([
        { name: 'r.yaml', text: policy('**', `    type: cel\n    remote: {url: "${url}", sha256sum: "${'a'.repeat(64)}"}\n`) },
      ]);
    assert.doesNotThrow(() => load('https://policies.example/p.cel'));
    assert.doesNotThrow(() => load('http://127.0.0.1:8080/p.cel'));
    assert.throws(() => load('http://policies.example/p.cel'), /spec\.policy\.remote\.url: url valid is invalid/);
    assert.throws(
      () =>
        loadPolicyStore([
          { name: 'r.yaml', text: policy('**', '    type: cel\n    remote: {url: "https://p.example/x", sha256sum: "abc"}\n') },
        ]),
      /spec\.policy\.remote\.sha256sum: invalid value "abc": 64 hex digits expected/,
    );
  });

  test('fetchConfigFile: the config files by platform, for an image and for an index', async () => {
    const single = await pushImage(reg, 'config/single:v1', 'cfg-single');
    const multi = await pushImage(reg, 'config/multi:v1', 'cfg-multi', ['linux/amd64', 'linux/arm64']);
    const pol = (expr: string) => `    type: cel\n    fetchConfigFile: true\n    data: ${JSON.stringify(expr)}\n`;
    const judge = (expr: string, image: string) =>
      check(
        new PolicyEngine(loadPolicyStore([{ name: 'c.yaml', text: policy(`${reg.host}/config/**`, pol(expr)) }]), {
          registry: { credentials: () => undefined },
        }),
        image,
      );
    const one = await judge(
      "config['linux/amd64'].config.Labels.seed == 'cfg-single' && size(config) == 1",
      `${reg.host}/config/single@${single}`,
    );
    assert.deepEqual(one.errors, []);
    const both = await judge(
      "config['linux/amd64'].config.Labels.seed == 'cfg-multi' && config['linux/arm64'].architecture == 'arm64'",
      `${reg.host}/config/multi@${multi}`,
    );
    assert.deepEqual(both.errors, []);
    const no = await judge("config['linux/amd64'].config.Labels.seed == 'someone else'", `${reg.host}/config/single:v1`);
    assert.equal(no.allowed, false);
    const gone = await judge('true', `${reg.host}/config/nothing@sha256:${'2'.repeat(64)}`);
    assert.equal(gone.allowed, false);
    assert.match(gone.errors.join('\n'), /policy: fetchConfigFile: cannot fetch the image config files: .*404/);
  });
});
