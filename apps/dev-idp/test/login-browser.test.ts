// The dev login as a person goes through it: a dev instance started as `npm start` starts it,
// `waxseal login --no-browser` in a child process, and Debian's Chromium (through playwright-core)
// on the URL the CLI prints. Also checks that no page asks for anything outside the instance and
// the CLI's loopback listener, and that oidc-provider prints none of its warnings.
//
// Screenshots go to $WAXSEAL_SCREENSHOT_DIR (kept) or to the test's temporary folder.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { runCli, type CliResult } from '../../cli/test/helpers/cli.ts';

const CHROMIUM = '/usr/bin/chromium';
const MAIN = new URL('../../cli/src/main.ts', import.meta.url).pathname;
const skip = existsSync(CHROMIUM) ? false : `Chromium is not installed at ${CHROMIUM} (apt-get install chromium)`;

interface DevRun {
  child: ChildProcess;
  url: string;
  issuer: string;
  signingConfig: string;
  output: () => string;
}

/** `waxseal dev --port 0` in a child process, as `npm start` runs it; resolves once it prints its URL. */
function startDevInstance(dataDir: string): Promise<DevRun> {
  const child = spawn(process.execPath, [MAIN, 'dev', '--data', dataDir, '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1' },
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the dev instance did not start within 90 s:\n${out}`));
    }, 90_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the dev instance exited (${code}) before starting:\n${out}`));
    });
    child.stdout!.on('data', () => {
      const url = /running at (http:\/\/[^\s/]+)/.exec(out)?.[1];
      const signingConfig = /signing config (\S+)/.exec(out)?.[1];
      if (!url || !signingConfig || !out.includes('Press Ctrl-C')) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      resolve({ child, url, issuer: `${url}/oidc`, signingConfig, output: () => out });
    });
  });
}

/** `waxseal login --no-browser` in a child process, and the login URL it prints. */
async function startLogin(issuer: string, configDir: string): Promise<{ url: string; done: Promise<CliResult> }> {
  let printed!: (url: string) => void;
  const urlPrinted = new Promise<string>((resolve) => (printed = resolve));
  let stderr = '';
  const done = runCli(['login', '--issuer', issuer, '--no-browser', '--json', '--timeout', '60'], {
    env: { WAXSEAL_CONFIG_DIR: configDir },
    timeoutMs: 90_000,
    onStderr: (chunk) => {
      stderr += chunk;
      const url = /(http:\/\/\S+\/oidc\/auth\?\S+)/.exec(stderr)?.[1];
      if (url) printed(url);
    },
  });
  const url = await Promise.race([
    urlPrinted,
    done.then((r) => assert.fail(`waxseal login exited (${r.code}) before printing a login URL:\n${r.stderr}`)),
  ]);
  return { url, done };
}

describe('the dev login in Chromium', { skip, timeout: 240_000 }, () => {
  let dir: string;
  let shots: string;
  let dev: DevRun;
  let browser: Browser;
  /** Every URL any page requested, for the no-external-requests check. */
  const requested: string[] = [];
  const loopbackOrigins = new Set<string>();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wx-login-browser-'));
    shots = process.env.WAXSEAL_SCREENSHOT_DIR ?? join(dir, 'screenshots');
    mkdirSync(shots, { recursive: true });
    dev = await startDevInstance(join(dir, 'instance'));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      timeout: 60_000,
    });
  });

  after(async () => {
    await browser?.close();
    if (dev?.child.exitCode === null) {
      const exited = new Promise((r) => dev.child.once('exit', r));
      dev.child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (dev.child.exitCode === null) dev.child.kill('SIGKILL');
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function openLogin(url: string): Promise<Page> {
    loopbackOrigins.add(new URL(new URL(url).searchParams.get('redirect_uri')!).origin);
    const context = await browser.newContext({ viewport: { width: 900, height: 720 } });
    const page = await context.newPage();
    page.setDefaultTimeout(20_000);
    page.on('request', (r) => requested.push(r.url()));
    await page.goto(url);
    return page;
  }

  /** What a person reading the login page would see, and what must not be there. */
  async function checkLoginPage(page: Page): Promise<void> {
    const text = (await page.locator('body').textContent()) ?? '';
    assert.match(text, /Waxseal/);
    assert.match(text, new RegExp(`dev instance at ${new URL(dev.url).host.replace(/\./g, '\\.')}`));
    assert.match(text, /trusts any e-mail address/);
    assert.equal(await page.locator('input[type=password]').count(), 0, 'no password field');
    assert.equal(await page.locator('input[type=email][required]').count(), 1, 'an e-mail field, required');
    for (const secret of ['code_challenge', 'nonce', 'state', 'DEBUG']) {
      assert.ok(!text.includes(secret), `the page does not show ${secret}`);
      assert.ok(!(await page.content()).includes(`${secret}:`), `no debug panel listing ${secret}`);
    }
  }

  test('a valid e-mail address logs in: the page and the CLI say who, and the cached token signs', async () => {
    const configDir = join(dir, 'config-alice');
    const login = await startLogin(dev.issuer, configDir);
    const page = await openLogin(login.url);
    await checkLoginPage(page);
    await page.screenshot({ path: join(shots, '1-login.png'), fullPage: true });
    await page.getByLabel('E-mail address').fill('alice@example.com');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'Logged in' }).waitFor();
    assert.match((await page.locator('body').textContent()) ?? '', /logged in to Waxseal as alice@example\.com/);
    await page.screenshot({ path: join(shots, '2-logged-in.png'), fullPage: true });
    await page.context().close();

    const r = await login.done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).identity, 'alice@example.com');
    const cache = join(configDir, 'token.json');
    assert.equal(statSync(cache).mode & 0o777, 0o600, 'token cached, for the owner only');
    assert.match(readFileSync(cache, 'utf8'), /"idToken":"ey/);

    const artifact = join(dir, 'artifact.txt');
    writeFileSync(artifact, 'signed after a browser login\n');
    const signed = await runCli(['sign-blob', artifact, '--bundle', `${artifact}.sigstore.json`, '--signing-config', dev.signingConfig], {
      env: { WAXSEAL_CONFIG_DIR: configDir },
    });
    assert.equal(signed.code, 0, `sign-blob with the cached token: ${signed.stderr}`);
  });

  test('"bob" is refused on the page (by the browser, and by the server when the browser does not check)', async () => {
    const configDir = join(dir, 'config-bob');
    const login = await startLogin(dev.issuer, configDir);
    const page = await openLogin(login.url);
    const email = page.getByLabel('E-mail address');
    await email.fill('bob');
    await page.getByRole('button', { name: 'Log in' }).click();
    assert.equal(
      await email.evaluate((i) => (i as unknown as { validity: { typeMismatch: boolean } }).validity.typeMismatch),
      true,
      'the browser flags "bob"',
    );
    assert.match(page.url(), /\/interaction\/[^/]+$/, 'the browser did not submit "bob"');

    // The server's own check, as a browser without form validation would meet it.
    await page.locator('form').evaluate((f) => f.setAttribute('novalidate', ''));
    await page.getByRole('button', { name: 'Log in' }).click();
    const problem = page.getByRole('alert');
    await problem.waitFor();
    assert.match((await problem.textContent()) ?? '', /"bob" is not an e-mail address/);
    assert.equal(await email.inputValue(), 'bob', 'what was typed is kept for correcting');
    await checkLoginPage(page);
    await page.screenshot({ path: join(shots, '3-bob-refused.png'), fullPage: true });

    // The login goes on with a real address.
    await email.fill('bob@example.com');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'Logged in' }).waitFor();
    await page.context().close();
    const r = await login.done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).identity, 'bob@example.com');
  });

  test('Cancel: the page says the login was cancelled and the CLI fails with an identity error', async () => {
    const configDir = join(dir, 'config-cancel');
    const login = await startLogin(dev.issuer, configDir);
    const page = await openLogin(login.url);
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.getByRole('heading', { name: 'Login cancelled' }).waitFor();
    assert.equal(await page.getByRole('heading', { name: 'Logged in' }).count(), 0);
    assert.match((await page.locator('body').textContent()) ?? '', /you are not logged in/);
    assert.doesNotMatch((await page.locator('body').textContent()) ?? '', /complete/i);
    await page.screenshot({ path: join(shots, '4-cancelled.png'), fullPage: true });
    await page.context().close();

    const r = await login.done;
    assert.equal(r.code, 4, r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.at(-1), 'waxseal: ERR_TOKEN_INVALID: login cancelled in the browser');
    assert.equal(JSON.parse(r.stdout).ok, false);
    assert.ok(!existsSync(join(configDir, 'token.json')), 'no token cached');
  });

  test('the landing page at / says what runs where and how to sign, with working links', async () => {
    const context = await browser.newContext({ viewport: { width: 1000, height: 900 } });
    const page = await context.newPage();
    page.setDefaultTimeout(20_000);
    page.on('request', (r) => requested.push(r.url()));
    const res = await page.goto(`${dev.url}/`);
    assert.equal(res?.status(), 200);
    assert.match(res?.headers()['content-security-policy'] ?? '', /default-src 'none'/);
    const text = (await page.locator('body').textContent()) ?? '';
    for (const fact of [
      dev.issuer,
      `${dev.url}/api/v1/timestamp`,
      `${dev.url}/tuf`,
      'Transparency log',
      'npx waxseal sign-blob',
      'verify-blob',
    ])
      assert.ok(text.includes(fact), `the landing page names ${fact}`);
    await page.screenshot({ path: join(shots, '5-landing.png'), fullPage: true });
    // Each trust document link answers with the document.
    for (const name of ['trusted_root.json', 'signing_config.json', 'TUF root']) {
      const href = await page.getByRole('link', { name, exact: true }).getAttribute('href');
      const doc = await fetch(new URL(href!, dev.url));
      assert.equal(doc.status, 200, `${name} at ${href}`);
      assert.equal(typeof (await doc.json()), 'object');
    }
    await context.close();
  });

  test('no page requested anything outside the instance and the CLI loopback listener', () => {
    assert.ok(requested.length >= 8, `requests were recorded (${requested.length})`);
    const allowed = new Set([new URL(dev.url).origin, ...loopbackOrigins]);
    const outside = requested.filter((u) => !allowed.has(new URL(u).origin));
    assert.deepEqual(outside, []);
  });

  test('oidc-provider printed no warnings on start or during the logins', () => {
    assert.doesNotMatch(dev.output(), /oidc-provider (WARNING|NOTICE)|MUST change|SHOULD change/);
  });
});
