// Test fixtures around the dev instance, for this app's tests and the CLI's end-to-end tests.
import { before, after } from 'node:test';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDevStack, type DevStack } from '../src/dev/devstack.ts';

export interface DevStackFixture {
  /** A fresh temporary folder (the instance's data is in its `instance` subfolder). */
  readonly dir: string;
  readonly stack: DevStack;
}

/**
 * A dev instance on a free port for the tests of one file: started in a `before` hook (after
 * `prepare` has filled its data folder, e.g. with signing rules; `ready` runs once it is up),
 * closed and removed in an `after` hook. The fields are set once the hook has run. Top-level
 * `before` hooks do not wait for each other, so anything that needs the stack goes in `ready`.
 */
export function useDevStack(
  prefix: string,
  hooks: { prepare?: (dataDir: string) => void; ready?: (fx: DevStackFixture) => void } = {},
): DevStackFixture {
  const fx = {} as { dir: string; stack: DevStack };
  before(async () => {
    fx.dir = mkdtempSync(join(tmpdir(), prefix));
    const dataDir = join(fx.dir, 'instance');
    if (hooks.prepare) {
      mkdirSync(dataDir, { recursive: true });
      hooks.prepare(dataDir);
    }
    fx.stack = await startDevStack({ dataDir, port: 0 });
    hooks.ready?.(fx);
  });
  after(async () => {
    await fx.stack?.close();
    if (fx.dir) rmSync(fx.dir, { recursive: true, force: true });
  });
  return fx;
}
