// The packages as a user gets them. Every publishable workspace is packed (scripts/pack.ts, from
// the build in dist/) and installed with npm and Node 24 in scratch folders outside the
// repository, then used against a running dev instance (the repository's `waxseal dev`):
// - a project that installs @waxseal/sign and @waxseal/verify signs a file and verifies the bundle
//   through the package roots, in TypeScript (typechecked against the published .d.ts: strict,
//   nodenext, no skipLibCheck; run with Node's type stripping) and in plain JavaScript, and
//   @waxseal/verify brings no runtime dependency outside @waxseal/*;
// - `npm install -g` of the CLI tarball, which bundles its @waxseal/* packages, gives a `waxseal`
//   that signs and verifies from any folder.
// Third-party dependencies come from the npm registry (or npm's cache: --prefer-offline).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packAll, type Tarball } from '../../scripts/pack.ts';
import { childEnv, REPO_ROOT } from '../../scripts/lib/workspaces.ts';

const NODE = process.execPath;
const CLI_SOURCE = join(REPO_ROOT, 'apps', 'cli', 'src', 'main.ts');
const TSC = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const NPM_FLAGS = ['--prefer-offline', '--no-audit', '--no-fund'];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command without blocking the event loop (the dev instance answers meanwhile). */
function sh(cmd: string, args: string[], opts: { cwd: string; env?: Record<string, string> }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? env(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

async function ok(cmd: string, args: string[], opts: { cwd: string; env?: Record<string, string> }): Promise<string> {
  const r = await sh(cmd, args, opts);
  assert.equal(r.code, 0, `${cmd} ${args.join(' ')} exited with ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

let dir: string;
let tarballs: Tarball[];
let dev: ChildProcess | undefined;
let instance: { caUrl: string; tsaUrl: string; issuer: string; trustedRootPath: string; signingConfigPath: string; dataDir: string };

/** Node 24 first on PATH, no waxseal-source condition, no colour, CLI state inside the scratch folder. */
const env = (extra: Record<string, string> = {}) => childEnv({ NO_COLOR: '1', WAXSEAL_CONFIG_DIR: join(dir, 'config'), ...extra });

function tarball(name: string): Tarball {
  const t = tarballs.find((x) => x.name === name);
  assert.ok(t, `no tarball for ${name}`);
  return t;
}

/** The tarballs to give npm for `names`: theirs and those of every @waxseal/* package they need. */
function withDependencies(names: string[]): string[] {
  const need = new Set<string>();
  const visit = (n: string) => {
    if (need.has(n)) return;
    need.add(n);
    for (const d of tarball(n).waxsealDependencies) visit(d);
  };
  for (const n of names) visit(n);
  return [...need].sort().map((n) => tarball(n).file);
}

async function devToken(email: string): Promise<string> {
  return (
    await ok(NODE, ['--conditions=waxseal-source', CLI_SOURCE, 'dev', 'token', '--email', email, '--data', instance.dataDir], { cwd: dir })
  ).trim();
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wx-consumer-'));
  tarballs = packAll(join(dir, 'tarballs'));
  const child = spawn(NODE, ['--conditions=waxseal-source', CLI_SOURCE, 'dev', '--port', '0', '--data', join(dir, 'instance'), '--json'], {
    cwd: dir,
    env: env(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  dev = child;
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  instance = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`waxseal dev did not start within 60 s\n${out}\n${stderr}`)), 60_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(JSON.parse(out.slice(0, nl)));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`waxseal dev exited with ${code}\n${out}\n${stderr}`));
    });
  });
});

after(async () => {
  if (dev && dev.exitCode === null) {
    const exited = new Promise((r) => dev!.once('exit', r));
    dev.kill('SIGTERM');
    await exited;
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// What a user of the two libraries writes: sign with the CA and TSA, write the bundle, read it
// back and verify it with the instance's trusted root. The TypeScript and the JavaScript take the
// same arguments and print the same summary.
const CONSUMER_TS = `import { readFileSync, writeFileSync } from 'node:fs';
import { serializeBundleJson, signFile, type SigningServices } from '@waxseal/sign';
import { Verifier, parseBundleJson, parseTrustedRootJson, type VerificationPolicy, type VerifierOptions } from '@waxseal/verify';

function setting(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(name + ' is not set');
  return value;
}

const [artifact, bundlePath] = process.argv.slice(2);
if (!artifact || !bundlePath) throw new Error('usage: consumer <artifact> <bundle>');
const services: SigningServices = { caUrl: setting('WX_CA_URL'), tsaUrl: setting('WX_TSA_URL') };
const signed = await signFile(artifact, { token: setting('WX_TOKEN'), services });
writeFileSync(bundlePath, serializeBundleJson(signed));

const root = parseTrustedRootJson(readFileSync(setting('WX_TRUSTED_ROOT'), 'utf8'));
const options: VerifierOptions = {
  tlogThreshold: 0,
  timestampThreshold: 1,
  ...(root.ctlogs.length > 0 ? {} : { ctlogThreshold: 0, skipSctUnsafe: true }),
};
const policy: VerificationPolicy = { identities: [{ subjectAlternativeName: setting('WX_IDENTITY'), issuer: setting('WX_ISSUER') }] };
const bundle = parseBundleJson(readFileSync(bundlePath, 'utf8'));
const result = new Verifier(root, options).verify(bundle, { bytes: readFileSync(artifact) }, policy);
const san: string | undefined = result.signer.type === 'certificate' ? result.signer.san : undefined;
console.log(JSON.stringify({ san, timestamps: result.timestamps.map((t) => t.source) }));
`;

const CONSUMER_MJS = `import { readFileSync, writeFileSync } from 'node:fs';
import { serializeBundleJson, signFile } from '@waxseal/sign';
import { Verifier, parseBundleJson, parseTrustedRootJson } from '@waxseal/verify';

const setting = (name) => {
  if (!process.env[name]) throw new Error(name + ' is not set');
  return process.env[name];
};
const [artifact, bundlePath] = process.argv.slice(2);
const signed = await signFile(artifact, { token: setting('WX_TOKEN'), services: { caUrl: setting('WX_CA_URL'), tsaUrl: setting('WX_TSA_URL') } });
writeFileSync(bundlePath, serializeBundleJson(signed));
const root = parseTrustedRootJson(readFileSync(setting('WX_TRUSTED_ROOT'), 'utf8'));
const options = { tlogThreshold: 0, timestampThreshold: 1, ...(root.ctlogs.length > 0 ? {} : { ctlogThreshold: 0, skipSctUnsafe: true }) };
const policy = { identities: [{ subjectAlternativeName: setting('WX_IDENTITY'), issuer: setting('WX_ISSUER') }] };
const result = new Verifier(root, options).verify(parseBundleJson(readFileSync(bundlePath, 'utf8')), { bytes: readFileSync(artifact) }, policy);
console.log(JSON.stringify({ san: result.signer.type === 'certificate' ? result.signer.san : undefined, timestamps: result.timestamps.map((t) => t.source) }));
`;

const hasCommand = (cmd: string) => spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;

/** Every package name in an `npm ls --json` subtree. */
function namesIn(deps: Record<string, { dependencies?: Record<string, unknown> }> | undefined): string[] {
  return Object.entries(deps ?? {}).flatMap(([name, node]) => [name, ...namesIn(node.dependencies as Parameters<typeof namesIn>[0])]);
}

test('a project that installs @waxseal/sign and @waxseal/verify signs and verifies through the package roots, in TypeScript and JavaScript', async () => {
  const project = join(dir, 'consumer');
  mkdirSync(project);
  await ok('npm', ['init', '-y'], { cwd: project });
  const typesNode = JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules', '@types', 'node', 'package.json'), 'utf8')).version as string;
  await ok('npm', ['pkg', 'set', 'type=module', `devDependencies.@types/node=${typesNode}`], { cwd: project });
  await ok('npm', ['install', ...NPM_FLAGS, ...withDependencies(['@waxseal/sign', '@waxseal/verify'])], { cwd: project });

  writeFileSync(join(project, 'consumer.ts'), CONSUMER_TS);
  writeFileSync(join(project, 'consumer.mjs'), CONSUMER_MJS);
  writeFileSync(
    join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        module: 'nodenext',
        moduleResolution: 'nodenext',
        target: 'es2023',
        lib: ['es2023'],
        types: ['node'],
        noEmit: true,
        skipLibCheck: false,
        verbatimModuleSyntax: true,
        erasableSyntaxOnly: true,
      },
      files: ['consumer.ts'],
    }),
  );
  const tsc = await sh(NODE, [TSC, '-p', 'tsconfig.json'], { cwd: project });
  assert.equal(tsc.code, 0, `the consumer does not typecheck against the published declarations:\n${tsc.stdout}${tsc.stderr}`);

  writeFileSync(join(project, 'artifact.txt'), 'consumed from npm\n');
  for (const script of ['consumer.ts', 'consumer.mjs']) {
    const run = env({
      WX_CA_URL: instance.caUrl,
      WX_TSA_URL: instance.tsaUrl,
      WX_TOKEN: await devToken('alice@example.com'),
      WX_TRUSTED_ROOT: instance.trustedRootPath,
      WX_IDENTITY: 'alice@example.com',
      WX_ISSUER: instance.issuer,
    });
    const out = await ok(NODE, [script, 'artifact.txt', `${script}.sigstore.json`], { cwd: project, env: run });
    assert.deepEqual(JSON.parse(out), { san: 'alice@example.com', timestamps: ['rfc3161'] }, script);
    // The identity is enforced through the public API too.
    const wrong = await sh(NODE, [script, 'artifact.txt', `${script}.wrong.sigstore.json`], {
      cwd: project,
      env: { ...run, WX_IDENTITY: 'mallory@example.com' },
    });
    assert.notEqual(wrong.code, 0, `${script} accepted the wrong identity`);
    assert.match(wrong.stderr, /ERR_VERIFY_IDENTITY/);
  }

  const tree = JSON.parse(await ok('npm', ['ls', '--omit=dev', '--all', '--json'], { cwd: project })) as {
    dependencies: Record<string, { dependencies?: Record<string, never> }>;
  };
  const verifyDeps = namesIn(tree.dependencies['@waxseal/verify']?.dependencies);
  assert.ok(verifyDeps.includes('@waxseal/core'), `npm ls shows no dependencies under @waxseal/verify: ${JSON.stringify(tree)}`);
  assert.deepEqual(
    verifyDeps.filter((n) => !n.startsWith('@waxseal/')),
    [],
    '@waxseal/verify has runtime dependencies outside @waxseal/*',
  );

  // The native addon is built by its install script where a C toolchain exists; else it is skipped quietly.
  const addon = JSON.parse(
    await ok(
      NODE,
      ['-e', "const m = require('@waxseal/ecdsa-digest'); console.log(JSON.stringify({ loaded: !!m.addon, why: m.unavailableReason }))"],
      { cwd: project },
    ),
  ) as { loaded: boolean; why?: string };
  if (hasCommand('make') && hasCommand('cc')) assert.ok(addon.loaded, `@waxseal/ecdsa-digest was not built at install: ${addon.why}`);
});

test('npm install -g of the CLI tarball gives a waxseal that signs and verifies from another folder', async () => {
  const cli = tarball('@waxseal/cli');
  assert.ok(
    cli.bundled.includes('@waxseal/verify') && cli.bundled.includes('@waxseal/core'),
    'the CLI tarball bundles its @waxseal packages',
  );
  const prefix = join(dir, 'global');
  await ok('npm', ['install', '-g', '--prefix', prefix, ...NPM_FLAGS, cli.file], { cwd: dir });
  const waxseal = join(prefix, 'bin', 'waxseal');
  const work = join(dir, 'elsewhere');
  mkdirSync(work);
  writeFileSync(join(work, 'release.tar'), 'a release\n');

  assert.equal((await ok(waxseal, ['--version'], { cwd: work })).trim(), 'waxseal 0.1.0');
  const token = await devToken('bob@example.com');
  await ok(
    waxseal,
    [
      'sign-blob',
      'release.tar',
      '--bundle',
      'release.tar.sigstore.json',
      '--signing-config',
      instance.signingConfigPath,
      '--identity-token',
      token,
    ],
    {
      cwd: work,
    },
  );
  const verify = (identity: string) =>
    sh(
      waxseal,
      [
        'verify-blob',
        'release.tar',
        '--bundle',
        'release.tar.sigstore.json',
        '--trusted-root',
        instance.trustedRootPath,
        '--certificate-identity',
        identity,
        '--certificate-oidc-issuer',
        instance.issuer,
      ],
      { cwd: work },
    );
  const good = await verify('bob@example.com');
  assert.equal(good.code, 0, good.stderr);
  assert.match(good.stdout, /Verified OK: signed by bob@example.com/);
  const wrong = await verify('mallory@example.com');
  assert.equal(wrong.code, 1, wrong.stderr);
  assert.match(wrong.stderr, /ERR_VERIFY_IDENTITY/);
});
