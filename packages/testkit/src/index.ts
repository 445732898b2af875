// Test helpers shared by every package's tests. Every negative test asserts the stable error code
// (sigstore-js's toThrowWithCode), not just that something threw.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ERROR_CODES, WaxsealError, type ErrorCode } from '@waxseal/core';

/** What else a WaxsealError must carry besides its code. */
export interface ErrorExpectation {
  /** The message must match. */
  message?: RegExp | undefined;
  /** The name of the failed check (verification errors). */
  check?: string | undefined;
  /** Each listed field of `detail` must deep-equal the given value (other fields are ignored). */
  detail?: Record<string, unknown> | undefined;
}

/**
 * Asserts that `e` (an error already caught, a rejection reason, a per-item error of a batch
 * API) is a WaxsealError with `code` and what `expect` asks for; returns it.
 */
export function assertWaxsealError(e: unknown, code: ErrorCode, expect?: RegExp | ErrorExpectation, what = 'error'): WaxsealError {
  assert.ok(
    e instanceof WaxsealError,
    `${what}: expected a WaxsealError ${code}, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`,
  );
  assert.equal(e.code, code, `${what}: expected ${code}, got ${e.code}: ${e.message}`);
  const x = expect instanceof RegExp ? { message: expect } : (expect ?? {});
  if (x.message) assert.match(e.message, x.message, `${what}: message`);
  if (x.check !== undefined) assert.equal(e.check, x.check, `${what}: check (${e.message})`);
  for (const [k, v] of Object.entries(x.detail ?? {})) assert.deepEqual(e.detail?.[k], v, `${what}: detail.${k} (${e.message})`);
  return e;
}

/**
 * Asserts that `fn` throws a WaxsealError with `code` (and, when given, a message matching the
 * regexp or the fields of the expectation); returns it.
 */
export function throwsWithCode(fn: () => unknown, code: ErrorCode, expect?: RegExp | ErrorExpectation, what = 'call'): WaxsealError {
  try {
    fn();
  } catch (e) {
    return assertWaxsealError(e, code, expect, what);
  }
  assert.fail(`${what}: expected a WaxsealError ${code}, but nothing was thrown`);
}

/** Asserts that `promise` (or the promise `fn` returns) rejects with a WaxsealError with `code`; returns it. */
export async function rejectsWithCode(
  promise: Promise<unknown> | (() => Promise<unknown>),
  code: ErrorCode,
  expect?: RegExp | ErrorExpectation,
  what = 'call',
): Promise<WaxsealError> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (e) {
    return assertWaxsealError(e, code, expect, what);
  }
  assert.fail(`${what}: expected a rejection with WaxsealError ${code}, but it resolved`);
}

/** An HTTP answer as the tests hold it: a fetch Response, or one already read ({status, json}). */
export type HttpAnswer = Response | { status: number; json?: unknown };

async function errorBody(res: HttpAnswer, what: string): Promise<{ code?: unknown; message?: unknown }> {
  let body: unknown;
  if (res instanceof Response) {
    const text = await res.text();
    try {
      body = JSON.parse(text);
    } catch {
      assert.fail(`${what}: HTTP ${res.status} error body is not JSON: ${text.slice(0, 200)}`);
    }
  } else body = res.json;
  assert.ok(typeof body === 'object' && body !== null, `${what}: error body is not a JSON object`);
  return body as { code?: unknown; message?: unknown };
}

/**
 * Asserts a Waxseal-format HTTP error answer: the status the code maps to and the body
 * {"code": "ERR_…", "message": …} (message matching `message` when given). Returns the body.
 */
export async function respondsWithCode(
  res: HttpAnswer | Promise<HttpAnswer>,
  code: ErrorCode,
  message?: RegExp,
  what = 'request',
): Promise<{ code: ErrorCode; message: string }> {
  const r = await res;
  const body = await errorBody(r, what);
  assert.equal(
    r.status,
    ERROR_CODES[code].status,
    `${what}: expected HTTP ${ERROR_CODES[code].status} ${code}, got ${r.status}: ${JSON.stringify(body)}`,
  );
  assert.equal(body.code, code, `${what}: ${JSON.stringify(body)}`);
  assert.equal(typeof body.message, 'string', `${what}: error message`);
  if (message) assert.match(body.message as string, message, `${what}: message`);
  return body as { code: ErrorCode; message: string };
}

/**
 * Asserts an HTTP error answer in a wire format that carries a numeric code instead of ours:
 * Rekor v1 ({"code": <HTTP status>, "message"}) or grpc-gateway (Fulcio, Rekor v2:
 * {"code": <gRPC code>, "message", "details"}). Returns the body.
 */
export async function respondsWithStatus(
  res: HttpAnswer | Promise<HttpAnswer>,
  status: number,
  bodyCode: number,
  message?: RegExp,
  what = 'request',
): Promise<{ code: number; message: string }> {
  const r = await res;
  const body = await errorBody(r, what);
  assert.equal(r.status, status, `${what}: expected HTTP ${status}, got ${r.status}: ${JSON.stringify(body)}`);
  assert.equal(body.code, bodyCode, `${what}: ${JSON.stringify(body)}`);
  assert.equal(typeof body.message, 'string', `${what}: error message`);
  if (message) assert.match(body.message as string, message, `${what}: message`);
  return body as { code: number; message: string };
}

// ---------- hostile input for property tests ----------

/**
 * Runs a parser on hostile input: returns its result, or undefined when it refused the input
 * with a WaxsealError. Any other exception (a TypeError, RangeError...) fails the test: parsers
 * of untrusted input have exactly one way to say no.
 */
export function parseOrRefuse<T>(parse: () => T, what = 'parse'): T | undefined {
  try {
    return parse();
  } catch (e) {
    assertWaxsealErrorAny(e, what);
    return undefined;
  }
}

function assertWaxsealErrorAny(e: unknown, what: string): void {
  assert.ok(
    e instanceof WaxsealError,
    `${what}: expected a WaxsealError, got ${e instanceof Error ? `${e.name}: ${e.message}\n${e.stack}` : String(e)}`,
  );
}

type Edit = { kind: 0 | 1 | 2 | 3 | 4 | 5; at: number; len: number; bytes: Uint8Array };

const editArb: fc.Arbitrary<Edit> = fc.record({
  kind: fc.constantFrom(0, 1, 2, 3, 4, 5) as fc.Arbitrary<Edit['kind']>,
  at: fc.nat(),
  len: fc.integer({ min: 1, max: 8 }),
  bytes: fc.uint8Array({ minLength: 1, maxLength: 4 }),
});

function applyEdit(b: Uint8Array, e: Edit): Uint8Array {
  const at = b.length === 0 ? 0 : e.at % (b.length + 1);
  const cut = (from: number, to: number) => Uint8Array.from([...b.subarray(0, from), ...b.subarray(to)]);
  const put = (ins: Uint8Array) => Uint8Array.from([...b.subarray(0, at), ...ins, ...b.subarray(at)]);
  switch (e.kind) {
    case 0: // flip one bit
      if (at < b.length) return Uint8Array.from(b, (x, i) => (i === at ? x ^ (1 << (e.len % 8)) : x));
      return b;
    case 1: // overwrite bytes
      return Uint8Array.from(b, (x, i) => (i >= at && i < at + e.bytes.length ? e.bytes[i - at]! : x));
    case 2: // insert bytes
      return put(e.bytes);
    case 3: // delete a range
      return cut(at, Math.min(b.length, at + e.len));
    case 4: // truncate
      return b.subarray(0, at);
    default: // duplicate a slice in place (repeats length-prefixed structures)
      return put(b.subarray(at, Math.min(b.length, at + e.len * 4)));
  }
}

/** A seed with one to four random edits: bit flips, overwrites, insertions, deletions, truncation, repeats. */
export function mutatedBytes(seeds: readonly Uint8Array[]): fc.Arbitrary<Uint8Array> {
  assert.ok(seeds.length > 0, 'mutatedBytes needs at least one seed');
  return fc
    .tuple(fc.nat({ max: seeds.length - 1 }), fc.array(editArb, { minLength: 1, maxLength: 4 }))
    .map(([i, edits]) => edits.reduce(applyEdit, seeds[i]!));
}

/** Random bytes (up to `maxLength`), the seeds themselves, and mutations of them. */
export function hostileBytes(seeds: readonly Uint8Array[], maxLength = 256): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    { weight: 1, arbitrary: fc.uint8Array({ maxLength }) },
    { weight: 1, arbitrary: fc.constantFrom(...seeds) },
    { weight: 6, arbitrary: mutatedBytes(seeds) },
  );
}

const TEXT_UNITS = ['\n', '\r', ' ', '\t', '=', '+', '/', '-', '—', 'A', 'a', '0', '9', 'x', '.', ':', '<', '@', '\u00e9', '\ud800'];

/**
 * Text near `seeds`: a seed with one to four edits at the UTF-16 level (inserting, replacing or
 * deleting characters, including the separators text formats care about), or random text.
 */
export function hostileText(seeds: readonly string[], extraUnits: readonly string[] = []): fc.Arbitrary<string> {
  assert.ok(seeds.length > 0, 'hostileText needs at least one seed');
  const unit = fc.constantFrom(...TEXT_UNITS, ...extraUnits);
  const piece = fc.array(unit, { minLength: 1, maxLength: 4 }).map((a) => a.join(''));
  const edit = fc.record({ kind: fc.constantFrom(0, 1, 2, 3), at: fc.nat(), len: fc.integer({ min: 1, max: 6 }), text: piece });
  const mutated = fc.tuple(fc.nat({ max: seeds.length - 1 }), fc.array(edit, { minLength: 1, maxLength: 4 })).map(([i, edits]) =>
    edits.reduce((s, e) => {
      const at = e.at % (s.length + 1);
      if (e.kind === 0) return s.slice(0, at) + e.text + s.slice(at);
      if (e.kind === 1) return s.slice(0, at) + e.text + s.slice(at + e.text.length);
      if (e.kind === 2) return s.slice(0, at) + s.slice(at + e.len);
      return s.slice(0, at);
    }, seeds[i]!),
  );
  return fc.oneof(
    { weight: 1, arbitrary: fc.array(unit, { maxLength: 64 }).map((a) => a.join('')) },
    { weight: 1, arbitrary: fc.constantFrom(...seeds) },
    { weight: 6, arbitrary: mutated },
  );
}
