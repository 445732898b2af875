// The log keeps its identity (issue 11): an instance started, stopped (SIGTERM) or killed
// (SIGKILL) and started again on the same data folder keeps its log key, its tree ID and its
// entries, so bundles signed before a restart verify after it, with waxseal verify-blob and with
// sigstore-js. Both ways to run an instance, each in a child process as a user starts it:
//   - `waxseal dev --data <dir> --port <port>`;
//   - `waxseal serve --config waxseal.yaml` in a folder set up by running the commands and writing
//     the configuration of docs/configuration.md ("Set up an instance, step by step") as printed.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { FulcioSigner, MessageSignatureBundleBuilder, RekorWitness, TSAWitness } from '@sigstore/sign';
import { Verifier, toSignedEntity, toTrustMaterial } from '@sigstore/verify';
import { bundleFromJSON, bundleToJSON } from '@sigstore/bundle';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { useTempDir } from '@waxseal/testkit';
import { fetchDevToken } from '@waxseal/dev-idp';
import { runCli, signBlob } from '../../cli/test/helpers/cli.ts';
import { startIdp } from '../../cli/test/helpers/idp.ts';

const MAIN = new URL('../../cli/src/main.ts', import.meta.url).pathname;
const CONFIGURATION_DOC = new URL('../../../docs/configuration.md', import.meta.url).pathname;
const EMAIL = 'restart@example.com';

const tmp = useTempDir('wx-restart-');
const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) c.kill('SIGKILL');
});

/** A port free right now; the instance is started on it again and again (as `waxseal dev` reuses 7117). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

interface Instance {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs `waxseal <args>` in `cwd` until it prints `url` (its banner names it once it listens). */
function startWaxseal(args: string[], cwd: string, url: string): Promise<Instance> {
  const child = spawn(process.execPath, [MAIN, ...args], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1' },
  });
  children.add(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }),
  );
  let out = '';
  let err = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`waxseal ${args.join(' ')} did not start within 60 s\n${out}\n${err}`));
    }, 60_000);
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(url)) {
        clearTimeout(timer);
        resolve({ child, exited });
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`waxseal ${args.join(' ')} exited (${code ?? signal}) before it was up\n${out}\n${err}`));
    });
  });
}

/** SIGTERM: a clean stop (exit 0); SIGKILL: no chance to close anything. */
async function stop(inst: Instance, signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
  inst.child.kill(signal);
  const r = await inst.exited;
  if (signal === 'SIGTERM') assert.equal(r.code, 0, 'a clean stop on SIGTERM');
  else assert.equal(r.signal, 'SIGKILL');
}

interface Target {
  url: string;
  dataDir: string;
  issuer: string;
  token(): Promise<string>;
}

/** What the log says about itself (v1 API): its tree ID and size. */
async function logState(url: string): Promise<{ treeID: string; treeSize: number }> {
  const res = await fetch(`${url}/api/v1/log`);
  assert.equal(res.status, 200);
  return (await res.json()) as { treeID: string; treeSize: number };
}

/**
 * One life of the instance: checks that it kept what the earlier lives recorded (tree ID, the
 * trust documents, every earlier entry in the log), then signs the artifact twice: with
 * `waxseal sign-blob` (the signing config: Rekor v2) and with sigstore-js (Rekor v1 API).
 */
async function life(t: Target, n: number, artifact: string, seen: { treeID?: string; trustedRoot?: string; bundles: string[] }) {
  const state = await logState(t.url);
  seen.treeID ??= state.treeID;
  assert.equal(state.treeID, seen.treeID, `start ${n}: the tree ID is the one recorded on first start`);
  const trustedRoot = readFileSync(join(t.dataDir, 'trusted_root.json'), 'utf8');
  seen.trustedRoot ??= trustedRoot;
  assert.equal(trustedRoot, seen.trustedRoot, `start ${n}: trusted_root.json is unchanged`);
  assert.equal(state.treeSize, seen.bundles.length, `start ${n}: every earlier entry is still in the log`);
  for (const b of seen.bundles) {
    const entry = JSON.parse(readFileSync(b, 'utf8')).verificationMaterial.tlogEntries[0];
    const res = await fetch(`${t.url}/api/v1/log/entries?logIndex=${entry.logIndex}`);
    assert.equal(res.status, 200, `start ${n}: entry ${entry.logIndex}`);
    const [stored] = Object.values((await res.json()) as Record<string, { body: string }>);
    assert.equal(stored!.body, entry.canonicalizedBody, `start ${n}: entry ${entry.logIndex} kept its body`);
  }

  const token = await t.token();
  const byWaxseal = join(tmp.dir, `${n}-${new URL(t.url).port}-waxseal.sigstore.json`);
  const signed = await signBlob(artifact, byWaxseal, join(t.dataDir, 'signing_config.json'), token);
  assert.equal(signed.code, 0, signed.stderr);

  const builder = new MessageSignatureBundleBuilder({
    signer: new FulcioSigner({ fulcioBaseURL: t.url, identityProvider: { getToken: async () => token } }),
    witnesses: [new RekorWitness({ rekorBaseURL: t.url }), new TSAWitness({ tsaBaseURL: t.url })],
  });
  const bundle = await builder.create({ data: readFileSync(artifact) });
  const bySigstoreJs = join(tmp.dir, `${n}-${new URL(t.url).port}-sigstore-js.sigstore.json`);
  writeFileSync(bySigstoreJs, JSON.stringify(bundleToJSON(bundle)));
  // The v1 checkpoint names the tree: "<host> - <tree ID>".
  assert.ok(bundle.verificationMaterial.tlogEntries[0]?.inclusionProof?.checkpoint?.envelope.includes(` - ${seen.treeID}\n`));
  seen.bundles.push(byWaxseal, bySigstoreJs);
}

/** Every bundle, from every life, verifies with waxseal verify-blob and with sigstore-js (log entries required). */
async function verifyAll(t: Target, artifact: string, bundles: string[]): Promise<void> {
  const trustedRootPath = join(t.dataDir, 'trusted_root.json');
  const root = TrustedRoot.fromJSON(JSON.parse(readFileSync(trustedRootPath, 'utf8')));
  assert.ok(root.tlogs.length > 0, 'the trusted root lists the log');
  const verifier = new Verifier(toTrustMaterial(root), { tlogThreshold: 1, ctlogThreshold: 0, timestampThreshold: 1 });
  const policy = { subjectAlternativeName: EMAIL, extensions: { issuer: t.issuer } };
  const data = readFileSync(artifact);
  for (const b of bundles) {
    const r = await runCli([
      'verify-blob',
      artifact,
      '--bundle',
      b,
      '--trusted-root',
      trustedRootPath,
      '--certificate-identity',
      EMAIL,
      '--certificate-oidc-issuer',
      t.issuer,
    ]);
    assert.equal(r.code, 0, `waxseal verify-blob ${b}: ${r.stderr}`);
    const parsed = bundleFromJSON(JSON.parse(readFileSync(b, 'utf8')));
    assert.ok(parsed.verificationMaterial.tlogEntries[0]?.inclusionProof, `${b} carries a log entry with an inclusion proof`);
    verifier.verify(toSignedEntity(parsed, data), policy);
  }
  // The same verifier refuses a bundle for other bytes: the checks above can fail.
  assert.throws(
    () => verifier.verify(toSignedEntity(bundleFromJSON(JSON.parse(readFileSync(bundles[0]!, 'utf8'))), Buffer.from('x')), policy),
    {
      code: 'SIGNATURE_ERROR',
    },
  );
}

/** After the last stop: `waxseal log fsck --data <dir>` finds the log and finds it consistent. */
async function fsck(dir: string, cwd: string, entries: number): Promise<void> {
  const r = await runCli(['log', 'fsck', '--data', join(cwd, dir), '--json']);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.equal(report.ok, true);
  assert.equal(report.entries, entries);
}

test('waxseal dev: stop, kill -9 and restart on the same folder; bundles from every start verify', { timeout: 300_000 }, async () => {
  const dataDir = join(tmp.dir, 'dev');
  const artifact = join(tmp.dir, 'dev-artifact.txt');
  writeFileSync(artifact, 'signed by the dev instance across restarts\n');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const target: Target = {
    url,
    dataDir,
    issuer: `${url}/oidc`,
    async token() {
      const r = await runCli(['dev', 'token', '--email', EMAIL, '--data', dataDir]);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.trim();
    },
  };
  const seen: { treeID?: string; trustedRoot?: string; bundles: string[] } = { bundles: [] };
  const start = () => startWaxseal(['dev', '--data', dataDir, '--port', String(port)], tmp.dir, url);

  const first = await start();
  await life(target, 1, artifact, seen);
  await stop(first, 'SIGTERM');
  const second = await start();
  await life(target, 2, artifact, seen);
  await stop(second, 'SIGKILL');
  const third = await start();
  await life(target, 3, artifact, seen);
  await verifyAll(target, artifact, seen.bundles);
  await stop(third, 'SIGTERM');
  await fsck('dev/log', tmp.dir, seen.bundles.length);
});

/** The "step by step" section of docs/configuration.md: its shell commands and its waxseal.yaml. */
function setupFromDocs(): { commands: string; config: string } {
  const doc = readFileSync(CONFIGURATION_DOC, 'utf8');
  const section = doc.split('\n## ').find((s) => s.startsWith('Set up an instance, step by step'));
  assert.ok(section, 'docs/configuration.md has the "Set up an instance, step by step" section');
  const block = (lang: string) => {
    const m = new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``).exec(section);
    assert.ok(m, `the section has a ${lang} block`);
    return m[1]!;
  };
  return { commands: block('sh'), config: block('yaml') };
}

test('waxseal serve, set up as docs/configuration.md says: stop, kill -9 and restart; bundles verify', { timeout: 300_000 }, async () => {
  const dir = join(tmp.dir, 'serve');
  mkdirSync(join(dir, 'bin'), { recursive: true });
  // `waxseal` on the PATH, as `npm install -g` puts it there.
  const shim = join(dir, 'bin', 'waxseal');
  writeFileSync(shim, `#!/bin/sh\nexec "${process.execPath}" --conditions=waxseal-source "${MAIN}" "$@"\n`);
  chmodSync(shim, 0o755);
  const { commands, config } = setupFromDocs();
  execFileSync('sh', ['-e', '-c', commands], {
    cwd: dir,
    env: { ...process.env, PATH: `${join(dir, 'bin')}:${process.env.PATH}` },
    stdio: 'pipe',
  });
  // The key URIs in the configuration are the ones `ca init` and `tsa init` print.
  assert.match(config, /key: file:\/\/ca\/intermediate\.key\n/);
  assert.match(config, /key: file:\/\/tsa\/tsa\.key\n/);
  const port = await freePort();
  assert.match(config, /port: 8080/);
  writeFileSync(join(dir, 'waxseal.yaml'), config.replace('port: 8080', `port: ${port}`));
  const idp = await startIdp(dir); // writes issuers.yaml, as the section asks
  const artifact = join(dir, 'artifact.txt');
  writeFileSync(artifact, 'signed by a serve instance across restarts\n');
  try {
    const url = `http://127.0.0.1:${port}`;
    const target: Target = { url, dataDir: join(dir, 'data'), issuer: idp.issuer, token: () => fetchDevToken(idp.issuer, EMAIL) };
    const seen: { treeID?: string; trustedRoot?: string; bundles: string[] } = { bundles: [] };
    const start = () => startWaxseal(['serve', '--config', 'waxseal.yaml'], dir, url);

    const first = await start();
    await life(target, 1, artifact, seen);
    await stop(first, 'SIGTERM');
    const second = await start();
    await life(target, 2, artifact, seen);
    await stop(second, 'SIGKILL');
    const third = await start();
    await life(target, 3, artifact, seen);
    await verifyAll(target, artifact, seen.bundles);
    await stop(third, 'SIGTERM');
    // The issue's own command: fsck finds the log in its per-key folder below data/log.
    await fsck('data/log', dir, seen.bundles.length);
  } finally {
    await idp.server.close();
  }
});
