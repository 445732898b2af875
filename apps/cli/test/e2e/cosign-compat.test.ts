// cosign's flags and environment variables, with cosign's meaning, against the dev instance:
// each test runs the real CLI and shows what the flag or variable changes (a run that passes
// with it and fails without it, or the reverse), not merely that it is accepted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { useDevStack } from '../../../instance/test/helpers.ts';
import { fetchDevToken } from '../../../dev-idp/src/dev-idp.ts';
import { encodePem, fromBase64 } from '../../../../packages/core/src/index.ts';
import { failedWithCode, runCli, type CliResult } from '../helpers/cli.ts';
import { clickThroughLogin } from '../helpers/browser.ts';

const EMAIL = 'cosign-user@example.com';
let artifact: string;
let token: string;
const dev = useDevStack('wx-cosign-', {
  ready: ({ dir }) => {
    artifact = join(dir, 'artifact.txt');
    writeFileSync(artifact, 'hello, cosign users\n');
  },
});

/** The CLI with a clean environment for trust and identity: only what each test passes counts. */
const cli = (args: string[], env: Record<string, string | undefined> = {}, input?: string): Promise<CliResult> =>
  runCli(args, {
    env: {
      WAXSEAL_CONFIG_DIR: join(dev.dir, 'no-config'),
      WAXSEAL_TRUSTED_ROOT: undefined,
      WAXSEAL_SIGNING_CONFIG: undefined,
      SIGSTORE_ID_TOKEN: undefined,
      TUF_MIRROR: undefined,
      ...env,
    },
    ...(input !== undefined ? { input } : {}),
  });

const ok = (r: CliResult, what: string) => assert.equal(r.code, 0, `${what}:\n${r.stderr}`);
const devToken = async () => (token ??= await fetchDevToken(dev.stack.issuer, EMAIL));
const bundlePath = (name: string) => join(dev.dir, `${name}.sigstore.json`);
const signArgs = async (bundle: string, file = artifact) => [
  'sign-blob',
  file,
  '--bundle',
  bundle,
  '--signing-config',
  dev.stack.signingConfigPath,
  '--identity-token',
  await devToken(),
];
const identity = () => ['--certificate-identity', EMAIL, '--certificate-oidc-issuer', dev.stack.issuer];
const verifyArgs = (bundle: string, file = artifact) => [
  'verify-blob',
  file,
  '--bundle',
  bundle,
  '--trusted-root',
  dev.stack.trustedRootPath,
  ...identity(),
];
const bundleJson = (p: string) => JSON.parse(readFileSync(p, 'utf8'));

test('--tlog-upload=false, --no-tlog-upload and COSIGN_TLOG_UPLOAD=false leave the log out; the default logs', async () => {
  assert.ok(dev.stack.logUrl, 'the dev instance runs a log');
  const logged = bundlePath('logged');
  ok(await cli(await signArgs(logged)), 'default');
  assert.equal(bundleJson(logged).verificationMaterial.tlogEntries.length, 1);
  for (const [name, extra, env] of [
    ['eq-false', ['--tlog-upload=false'], {}],
    ['negated', ['--no-tlog-upload'], {}],
    ['env', [], { COSIGN_TLOG_UPLOAD: 'false' }],
  ] as const) {
    const b = bundlePath(`unlogged-${name}`);
    ok(await cli([...(await signArgs(b)), ...extra], env), name);
    assert.deepEqual(bundleJson(b).verificationMaterial.tlogEntries ?? [], [], `${name}: no log entry`);
  }
  // The flag wins over the variable.
  const b = bundlePath('flag-wins');
  ok(await cli([...(await signArgs(b)), '--tlog-upload=true'], { COSIGN_TLOG_UPLOAD: 'false' }), 'flag over env');
  assert.equal(bundleJson(b).verificationMaterial.tlogEntries.length, 1);
});

test('-y/--yes and COSIGN_YES are accepted; COSIGN_BUNDLE names the bundle; a bad boolean is a usage error', async () => {
  ok(await cli([...(await signArgs(bundlePath('y'))), '-y']), '-y');
  ok(await cli([...(await signArgs(bundlePath('yes'))), '--yes']), '--yes');
  const viaEnv = bundlePath('cosign-bundle-env');
  const args = (await signArgs('unused')).filter((a, i, all) => a !== '--bundle' && all[i - 1] !== '--bundle');
  ok(await cli(args, { COSIGN_BUNDLE: viaEnv, COSIGN_YES: 'true' }), 'COSIGN_BUNDLE');
  assert.ok(existsSync(viaEnv), 'the bundle went where COSIGN_BUNDLE said');
  const bad = await cli([...(await signArgs(bundlePath('bad'))), '--json'], { COSIGN_YES: 'sure' });
  assert.equal(bad.code, 2);
  assert.equal(JSON.parse(bad.stdout).error.code, 'ERR_USAGE');
  assert.match(bad.stderr, /COSIGN_YES must be true or false/);
});

test('unknown flags: one line with the closest flag; with --json the error is JSON on stdout', async () => {
  const r = await cli(['sign-blob', artifact, '--bundel', 'x.json', '--json']);
  assert.equal(r.code, 2);
  assert.equal(r.stderr, 'waxseal: unknown flag --bundel; did you mean --bundle? (see --help)\n');
  assert.deepEqual(JSON.parse(r.stdout), {
    ok: false,
    error: { code: 'ERR_USAGE', message: 'unknown flag --bundel; did you mean --bundle?' },
  });
});

test('- reads the artifact from stdin, for sign-blob and verify-blob', async () => {
  const b = bundlePath('stdin');
  const content = readFileSync(artifact, 'utf8');
  ok(await cli(await signArgs(b, '-'), {}, content), 'sign stdin');
  ok(await cli(verifyArgs(b)), 'the file verifies against the stdin signature');
  ok(await cli(verifyArgs(b, '-'), {}, content), 'verify stdin');
  const tampered = await cli(verifyArgs(b, '-'), {}, `${content}!`);
  failedWithCode(tampered, 'ERR_VERIFY_ARTIFACT');
});

test('--identity-token takes a token file; SIGSTORE_ID_TOKEN (GitLab CI) and the Buildkite agent are ambient sources', async () => {
  const file = join(dev.dir, 'token.jwt');
  writeFileSync(file, `${await devToken()}\n`);
  const base = ['sign-blob', artifact, '--signing-config', dev.stack.signingConfigPath, '--json'];
  const fromFile = await cli([...base, '--bundle', bundlePath('token-file'), '--identity-token', file]);
  ok(fromFile, 'token file');
  assert.equal(JSON.parse(fromFile.stdout).tokenSource, `file ${file}`);
  const gitlab = await cli([...base, '--bundle', bundlePath('gitlab')], { SIGSTORE_ID_TOKEN: await devToken() });
  ok(gitlab, 'SIGSTORE_ID_TOKEN');
  assert.equal(JSON.parse(gitlab.stdout).tokenSource, 'SIGSTORE_ID_TOKEN');
  // Buildkite's agent is not installed here: a stand-in prints a real token from the dev IdP.
  const bin = join(dev.dir, 'bin');
  mkdirSync(bin, { recursive: true });
  writeFileSync(
    join(bin, 'buildkite-agent'),
    `#!/bin/sh\n[ "$*" = "oidc request-token --audience sigstore" ] || exit 9\necho '${await devToken()}'\n`,
  );
  chmodSync(join(bin, 'buildkite-agent'), 0o755);
  const bk = await cli([...base, '--bundle', bundlePath('buildkite')], {
    BUILDKITE_AGENT_ACCESS_TOKEN: 'x',
    PATH: `${bin}:${process.env.PATH}`,
  });
  ok(bk, 'Buildkite');
  assert.equal(JSON.parse(bk.stdout).tokenSource, 'Buildkite');
  ok(await cli(verifyArgs(bundlePath('buildkite'))), 'the Buildkite-signed bundle verifies');
});

test('no token and no terminal: the identity error (exit 4); --fulcio-auth-flow=token never starts a login', async () => {
  const base = ['sign-blob', artifact, '--bundle', bundlePath('none'), '--signing-config', dev.stack.signingConfigPath];
  failedWithCode(await cli(base), 'ERR_TOKEN_INVALID', /no identity token/);
  failedWithCode(await cli([...base, '--fulcio-auth-flow=token']), 'ERR_TOKEN_INVALID', /no identity token/);
  const bad = await cli([...base, '--fulcio-auth-flow=magic']);
  assert.equal(bad.code, 2, bad.stderr);
});

test('--fulcio-auth-flow=normal starts the browser login itself, with --oidc-issuer and --oidc-client-id', async () => {
  let printed!: (url: string) => void;
  const authUrl = new Promise<string>((resolve) => (printed = resolve));
  let stderr = '';
  const bundle = bundlePath('login-flow');
  const signing = runCli(
    [
      'sign-blob',
      artifact,
      '--bundle',
      bundle,
      '--signing-config',
      dev.stack.signingConfigPath,
      '--fulcio-auth-flow=normal',
      '--oidc-issuer',
      dev.stack.issuer,
      '--oidc-client-id',
      'sigstore',
    ],
    {
      env: { WAXSEAL_CONFIG_DIR: join(dev.dir, 'login-config'), SIGSTORE_ID_TOKEN: undefined, BROWSER: 'true', DISPLAY: undefined },
      onStderr: (chunk) => {
        stderr += chunk;
        const url = /(http:\/\/\S+\/auth\?\S+)/.exec(stderr)?.[1];
        if (url) printed(url);
      },
    },
  );
  const url = await Promise.race([
    authUrl,
    signing.then((r) => assert.fail(`sign-blob exited (${r.code}) before printing a login URL:\n${r.stderr}`)),
  ]);
  const u = new URL(url);
  assert.equal(`${u.origin}${u.pathname}`.startsWith(dev.stack.issuer), true, 'the login goes to --oidc-issuer');
  assert.equal(u.searchParams.get('client_id'), 'sigstore');
  const redirect = u.searchParams.get('redirect_uri')!;
  const callback = await clickThroughLogin(url, EMAIL, (c) => c.href.startsWith(redirect));
  await fetch(callback);
  const r = await signing;
  ok(r, 'sign-blob after its own login');
  ok(await cli(verifyArgs(bundle)), 'verify');
});

test('--output-signature/--output-certificate/--rfc3161-timestamp, verified detached with the chains or SIGSTORE_* files', async () => {
  const sig = join(dev.dir, 'artifact.sig');
  const cert = join(dev.dir, 'artifact.crt');
  const ts = join(dev.dir, 'artifact.tsr.json');
  const bundle = bundlePath('detached');
  ok(await cli([...(await signArgs(bundle)), '--output-signature', sig, '--output-certificate', cert, '--rfc3161-timestamp', ts]), 'sign');
  const b = bundleJson(bundle);
  assert.equal(readFileSync(sig, 'utf8'), b.messageSignature.signature, 'the signature, base64, as cosign writes it');
  assert.match(Buffer.from(readFileSync(cert, 'utf8'), 'base64').toString(), /^-----BEGIN CERTIFICATE-----/);
  assert.equal(
    JSON.parse(readFileSync(ts, 'utf8')).SignedRFC3161Timestamp,
    b.verificationMaterial.timestampVerificationData.rfc3161Timestamps[0].signedTimestamp,
  );
  const caChain = join(dev.stack.dataDir, 'ca', 'chain.pem');
  const tsaChain = join(dev.stack.dataDir, 'tsa', 'chain.pem');
  const detached = (file = artifact) => [
    'verify-blob',
    file,
    '--signature',
    sig,
    '--certificate',
    cert,
    '--rfc3161-timestamp',
    ts,
    ...identity(),
  ];
  ok(await cli([...detached(), '--certificate-chain', caChain, '--timestamp-certificate-chain', tsaChain]), 'flags');
  ok(
    await cli([...detached(), '--certificate-chain', caChain], { SIGSTORE_TSA_CERTIFICATE_FILE: tsaChain }),
    'SIGSTORE_TSA_CERTIFICATE_FILE',
  );
  ok(await cli(detached(), { SIGSTORE_ROOT_FILE: caChain, SIGSTORE_TSA_CERTIFICATE_FILE: tsaChain }), 'SIGSTORE_ROOT_FILE');
  ok(await cli([...detached(), '--trusted-root', dev.stack.trustedRootPath, '--private-infrastructure']), 'against the trusted root');
  // What each piece is for: another file, another TSA, no timestamp at all.
  const other = join(dev.dir, 'other.txt');
  writeFileSync(other, 'not what was signed\n');
  failedWithCode(
    await cli([...detached(other), '--certificate-chain', caChain, '--timestamp-certificate-chain', tsaChain]),
    'ERR_VERIFY_SIGNATURE',
  );
  const wrongTsa = await cli([...detached(), '--certificate-chain', caChain, '--timestamp-certificate-chain', caChain]);
  assert.equal(wrongTsa.code, 1, wrongTsa.stderr);
  const noTs = [
    'verify-blob',
    artifact,
    '--signature',
    sig,
    '--certificate',
    cert,
    ...identity(),
    '--certificate-chain',
    caChain,
    '--timestamp-certificate-chain',
    tsaChain,
  ];
  failedWithCode(await cli(noTs), 'ERR_VERIFY_THRESHOLD');
  // With the bundle, --certificate must be the bundle's own.
  ok(await cli([...verifyArgs(bundle), '--certificate', cert]), 'matching certificate');
  writeFileSync(join(dev.dir, 'other.crt'), readFileSync(caChain));
  failedWithCode(await cli([...verifyArgs(bundle), '--certificate', join(dev.dir, 'other.crt')]), 'ERR_VERIFY_CERT_CHAIN');
});

test('--private-infrastructure drops the log requirement; --use-signed-timestamps requires a timestamp; --offline is accepted', async () => {
  const unlogged = bundlePath('unlogged-pi');
  ok(await cli([...(await signArgs(unlogged)), '--tlog-upload=false']), 'sign');
  failedWithCode(await cli(verifyArgs(unlogged)), 'ERR_VERIFY_THRESHOLD');
  ok(await cli([...verifyArgs(unlogged), '--private-infrastructure']), '--private-infrastructure');
  ok(await cli(verifyArgs(unlogged), { COSIGN_PRIVATE_INFRASTRUCTURE: 'true' }), 'COSIGN_PRIVATE_INFRASTRUCTURE');
  // A bundle logged through the v1 API (whose entries carry a signed integrated time) without its
  // RFC 3161 timestamp: the log's time suffices, unless signed timestamps are required.
  const logged = bundlePath('logged-no-ts');
  ok(await cli([...(await signArgs(logged)), '--rekor-url', dev.stack.logUrl!]), 'sign');
  const b = bundleJson(logged);
  b.verificationMaterial.timestampVerificationData.rfc3161Timestamps = [];
  writeFileSync(logged, JSON.stringify(b));
  ok(await cli([...verifyArgs(logged), '--offline']), 'logged, no timestamp, --offline');
  failedWithCode(await cli([...verifyArgs(logged), '--use-signed-timestamps']), 'ERR_VERIFY_THRESHOLD');
});

test('SIGSTORE_REKOR_PUBLIC_KEY makes the log required and checks entries against it; SIGSTORE_CT_LOG_PUBLIC_KEY_FILE requires SCTs', async () => {
  const log = dev.stack.trustedRoot.tlogs[0]!;
  const rekorKey = join(dev.dir, 'rekor.pub');
  writeFileSync(rekorKey, encodePem('PUBLIC KEY', log.publicKey.rawBytes!));
  const caChain = join(dev.stack.dataDir, 'ca', 'chain.pem');
  const tsaChain = join(dev.stack.dataDir, 'tsa', 'chain.pem');
  // cosign's key variable describes a Rekor v1 log (log ID = SHA-256 of the key): sign through its v1 API.
  const v1 = bundlePath('rekor-v1');
  ok(await cli([...(await signArgs(v1)), '--rekor-url', dev.stack.logUrl!]), 'sign with a v1 log entry');
  const unlogged = bundlePath('unlogged-rekor');
  ok(await cli([...(await signArgs(unlogged)), '--tlog-upload=false']), 'sign without the log');
  const loose = (b: string) => ['verify-blob', artifact, '--bundle', b, ...identity(), '--certificate-chain', caChain];
  const withKey = { SIGSTORE_REKOR_PUBLIC_KEY: rekorKey, SIGSTORE_TSA_CERTIFICATE_FILE: tsaChain };
  ok(await cli(loose(v1), withKey), 'logged bundle, log key given');
  failedWithCode(await cli(loose(unlogged), withKey), 'ERR_VERIFY_THRESHOLD');
  ok(await cli(loose(unlogged), { SIGSTORE_TSA_CERTIFICATE_FILE: tsaChain }), 'no log key: no log required');
  const otherKey = join(dev.dir, 'other.pub');
  execFileSync('sh', ['-c', `openssl ecparam -name prime256v1 -genkey -noout | openssl ec -pubout -out '${otherKey}' 2>/dev/null`]);
  const wrong = await cli(loose(v1), { SIGSTORE_REKOR_PUBLIC_KEY: otherKey, SIGSTORE_TSA_CERTIFICATE_FILE: tsaChain });
  assert.equal(wrong.code, 1, `an entry from another log does not count:\n${wrong.stderr}`);
  // The dev CA embeds no SCTs: naming a CT log key makes them required, --insecure-ignore-sct drops that.
  const ct = { SIGSTORE_CT_LOG_PUBLIC_KEY_FILE: otherKey, SIGSTORE_TSA_CERTIFICATE_FILE: tsaChain };
  const noSct = await cli(loose(unlogged), ct);
  assert.equal(noSct.code, 1, noSct.stderr);
  ok(await cli([...loose(unlogged), '--insecure-ignore-sct'], ct), '--insecure-ignore-sct');
});

test('attest-blob --type slsaprovenance1 expands the alias as cosign does; verify-blob-attestation accepts the alias', async () => {
  const predicate = join(dev.dir, 'predicate.json');
  writeFileSync(predicate, JSON.stringify({ buildDefinition: { buildType: 'https://example.com/build' } }));
  const bundle = bundlePath('attestation');
  ok(
    await cli([
      'attest-blob',
      artifact,
      '--predicate',
      predicate,
      '--type',
      'slsaprovenance1',
      '--bundle',
      bundle,
      '--signing-config',
      dev.stack.signingConfigPath,
      '--identity-token',
      await devToken(),
    ]),
    'attest',
  );
  const statement = JSON.parse(Buffer.from(fromBase64(bundleJson(bundle).dsseEnvelope.payload)).toString());
  assert.equal(statement.predicateType, 'https://slsa.dev/provenance/v1');
  const verify = (type: string) =>
    cli([
      'verify-blob-attestation',
      artifact,
      '--bundle',
      bundle,
      '--type',
      type,
      '--trusted-root',
      dev.stack.trustedRootPath,
      ...identity(),
    ]);
  ok(await verify('slsaprovenance1'), 'alias');
  ok(await verify('https://slsa.dev/provenance/v1'), 'URI');
  failedWithCode(await verify('slsaprovenance02'), 'ERR_VERIFY_DSSE');
  const invalid = await cli(['attest-blob', artifact, '--predicate', predicate, '--type', 'slsa-provenance', '--bundle', bundle]);
  assert.equal(invalid.code, 2, invalid.stderr);
  // cosign's default type is custom.
  const custom = bundlePath('custom');
  ok(
    await cli([
      'attest-blob',
      artifact,
      '--predicate',
      predicate,
      '--bundle',
      custom,
      '--signing-config',
      dev.stack.signingConfigPath,
      '--identity-token',
      await devToken(),
    ]),
    'default type',
  );
  ok(
    await cli([
      'verify-blob-attestation',
      artifact,
      '--bundle',
      custom,
      '--type',
      'custom',
      '--trusted-root',
      dev.stack.trustedRootPath,
      ...identity(),
    ]),
    'custom',
  );
});

test('COSIGN_<FLAG> for verify flags; TUF_MIRROR, TUF_ROOT_JSON and TUF_ROOT fetch the trust documents through TUF', async () => {
  const bundle = bundlePath('env-verify');
  ok(await cli(await signArgs(bundle)), 'sign');
  ok(
    await cli(['verify-blob', artifact, '--bundle', bundle], {
      COSIGN_TRUSTED_ROOT: dev.stack.trustedRootPath,
      COSIGN_CERTIFICATE_IDENTITY: EMAIL,
      COSIGN_CERTIFICATE_OIDC_ISSUER: dev.stack.issuer,
    }),
    'all from COSIGN_*',
  );
  const wrong = await cli(['verify-blob', artifact, '--bundle', bundle, '--certificate-identity', 'mallory@example.com'], {
    COSIGN_TRUSTED_ROOT: dev.stack.trustedRootPath,
    COSIGN_CERTIFICATE_IDENTITY: EMAIL,
    COSIGN_CERTIFICATE_OIDC_ISSUER: dev.stack.issuer,
  });
  failedWithCode(wrong, 'ERR_VERIFY_IDENTITY');

  const tufCache = join(dev.dir, 'tuf-cache');
  const tuf = { TUF_MIRROR: dev.stack.tufUrl, TUF_ROOT_JSON: dev.stack.tufRootPath, TUF_ROOT: tufCache };
  const viaTuf = bundlePath('tuf');
  const signed = await cli(['sign-blob', artifact, '--bundle', viaTuf, '--identity-token', await devToken(), '--json'], tuf);
  ok(signed, 'sign with the signing config from TUF');
  assert.equal(JSON.parse(signed.stdout).ca, dev.stack.caUrl);
  assert.ok(readdirSync(tufCache).length > 0, 'the TUF client cached its metadata in TUF_ROOT');
  ok(await cli(['verify-blob', artifact, '--bundle', viaTuf, ...identity()], tuf), 'verify with the trusted root from TUF');
  // Once cached, the root need not be named again (cosign after `cosign initialize`).
  ok(
    await cli(['verify-blob', artifact, '--bundle', viaTuf, ...identity()], { TUF_MIRROR: dev.stack.tufUrl, TUF_ROOT: tufCache }),
    'cached root',
  );
  const noRoot = await cli(['verify-blob', artifact, '--bundle', viaTuf, ...identity()], {
    TUF_MIRROR: dev.stack.tufUrl,
    TUF_ROOT: join(dev.dir, 'empty-tuf'),
  });
  failedWithCode(noRoot, 'ERR_CONFIG', /TUF_ROOT_JSON/);
});

test('a CI token made with `dev token --claims` that lacks claims is refused naming all of them at once', async () => {
  const claims = JSON.stringify({ sub: 'repo:acme/app:ref:refs/tags/v1', repository: 'acme/app' });
  const t = await cli(['dev', 'token', '--claims', claims, '--data', dev.stack.dataDir]);
  ok(t, 'dev token');
  const r = await cli([
    'sign-blob',
    artifact,
    '--bundle',
    bundlePath('ci'),
    '--signing-config',
    dev.stack.signingConfigPath,
    '--identity-token',
    t.stdout.trim(),
  ]);
  failedWithCode(r, 'ERR_IDENTITY_CLAIMS', /lacks the claims .*job_workflow_ref.*, .*sha/);
  assert.doesNotMatch(r.stderr, /repository(?!_)/, 'a claim that is present is not named');
});
