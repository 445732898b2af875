// Test helpers shared by every package's tests. Every negative test asserts the stable error code
// (sigstore-js's toThrowWithCode), not just that something threw.
import assert from 'node:assert/strict';
import { WaxsealError, type ErrorCode } from '@waxseal/core';

function check(e: unknown, code: ErrorCode, message: RegExp | undefined, what: string): WaxsealError {
  assert.ok(
    e instanceof WaxsealError,
    `${what}: expected a WaxsealError ${code}, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`,
  );
  assert.equal(e.code, code, `${what}: expected ${code}, got ${e.code}: ${e.message}`);
  if (message) assert.match(e.message, message, `${what}: message`);
  return e;
}

/** Asserts that `fn` throws a WaxsealError with `code` (and a message matching `message`); returns it. */
export function throwsWithCode(fn: () => unknown, code: ErrorCode, message?: RegExp, what = 'call'): WaxsealError {
  try {
    fn();
  } catch (e) {
    return check(e, code, message, what);
  }
  assert.fail(`${what}: expected a WaxsealError ${code}, but nothing was thrown`);
}

/** Asserts that `promise` (or the promise `fn` returns) rejects with a WaxsealError with `code`; returns it. */
export async function rejectsWithCode(
  promise: Promise<unknown> | (() => Promise<unknown>),
  code: ErrorCode,
  message?: RegExp,
  what = 'call',
): Promise<WaxsealError> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (e) {
    return check(e, code, message, what);
  }
  assert.fail(`${what}: expected a rejection with WaxsealError ${code}, but it resolved`);
}
