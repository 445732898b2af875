// Runs the real `waxseal` CLI in a child process (Node 24, the TypeScript sources).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ErrorCode } from '@waxseal/core';
import { fetchDevToken } from '../../../dev-idp/src/dev-idp.ts';
import { exitCodeFor } from '../../src/ui.ts';

const MAIN = new URL('../../src/main.ts', import.meta.url).pathname;

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(
  args: string[],
  opts: { env?: Record<string, string | undefined>; input?: string; timeoutMs?: number; onStderr?: (chunk: string) => void } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...process.env, NO_COLOR: '1', ...opts.env })) if (v !== undefined) env[k] = v;
    const child = spawn(process.execPath, [MAIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      opts.onStderr?.(d.toString());
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`waxseal ${args.join(' ')} timed out\n${stderr}`));
    }, opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/**
 * Asserts that a CLI run failed with the WaxsealError `code`: the exit status that code maps to,
 * and the one-line report `waxseal: <code>: <message>` on stderr (message matching `message`).
 */
export function failedWithCode(r: CliResult, code: ErrorCode, message?: RegExp, what = 'waxseal'): void {
  const line = r.stderr.split('\n').find((l) => l.startsWith('waxseal: '));
  assert.ok(line?.startsWith(`waxseal: ${code}: `), `${what}: expected "waxseal: ${code}: …" on stderr, got:\n${r.stderr}`);
  assert.equal(r.code, exitCodeFor(code), `${what}: exit status for ${code}\n${r.stderr}`);
  if (message) assert.match(line!.slice(`waxseal: ${code}: `.length), message, `${what}: message`);
}

/** `waxseal sign-blob` of `artifact` into `bundle` with an identity token, against a signing config. */
export function signBlob(artifact: string, bundle: string, signingConfig: string, token: string): Promise<CliResult> {
  return runCli(['sign-blob', artifact, '--bundle', bundle, '--signing-config', signingConfig, '--identity-token', token]);
}

/** Signs `artifact` into `bundle` as `email`, with a token from the instance's dev IdP; the signing must succeed. */
export async function signBlobAs(
  instance: { issuer: string; signingConfigPath: string },
  email: string,
  artifact: string,
  bundle: string,
): Promise<void> {
  const r = await signBlob(artifact, bundle, instance.signingConfigPath, await fetchDevToken(instance.issuer, email));
  assert.equal(r.code, 0, r.stderr);
}
