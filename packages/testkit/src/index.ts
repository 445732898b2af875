// Test helpers shared by every package's tests (and, for servers in child processes, the benchmarks).
// Every negative test asserts the stable error code (sigstore-js's toThrowWithCode), not just that
// something threw.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
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
  const status = ERROR_CODES[code].status;
  return (await errorAnswer(res, status, `${status} ${code}`, code, message, what)) as { code: ErrorCode; message: string };
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
  return (await errorAnswer(res, status, String(status), bodyCode, message, what)) as { code: number; message: string };
}

/** The checks both error formats share: HTTP status, body code, a string message (matching `message`). */
async function errorAnswer(
  res: HttpAnswer | Promise<HttpAnswer>,
  status: number,
  expected: string,
  bodyCode: unknown,
  message: RegExp | undefined,
  what: string,
): Promise<{ code?: unknown; message?: unknown }> {
  const r = await res;
  const body = await errorBody(r, what);
  assert.equal(r.status, status, `${what}: expected HTTP ${expected}, got ${r.status}: ${JSON.stringify(body)}`);
  assert.equal(body.code, bodyCode, `${what}: ${JSON.stringify(body)}`);
  assert.equal(typeof body.message, 'string', `${what}: error message`);
  if (message) assert.match(body.message as string, message, `${what}: message`);
  return body;
}

// ---------- HTTP ----------

/** An HTTP answer read whole: the body as bytes and text, and as JSON when it parses (else undefined). */
export interface HttpReply {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: tests read the answer by path, and a wrong path fails the test anyway
  json: any;
  text: string;
  bytes: Uint8Array;
}

/** Fetches `url` and reads the whole answer, whatever its status or body. */
export async function fetchReply(url: string, init?: RequestInit): Promise<HttpReply> {
  const res = await fetch(url, init);
  const bytes = new Uint8Array(await res.arrayBuffer());
  const text = new TextDecoder().decode(bytes);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, json, text, bytes };
}

/** POSTs `body` as JSON (a string is sent as it is, to test malformed bodies) and reads the answer. */
export function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<HttpReply> {
  return fetchReply(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

// ---------- files ----------

/** The permission bits of a file's mode (0o600 for a private key). */
export const fileMode = (path: string): number => statSync(path).mode & 0o777;

/**
 * A fresh temporary folder for the tests of one file, removed after them; with `umask`, the
 * process umask is that meanwhile (000: a file's mode can come only from the code that made it).
 * `dir` is set once the `before` hook has run.
 */
export function useTempDir(prefix: string, opts: { umask?: number } = {}): { readonly dir: string } {
  const fx = { dir: '' };
  let saved: number | undefined;
  before(() => {
    if (opts.umask !== undefined) saved = process.umask(opts.umask);
    fx.dir = mkdtempSync(join(tmpdir(), prefix));
  });
  after(() => {
    if (saved !== undefined) process.umask(saved);
    if (fx.dir) rmSync(fx.dir, { recursive: true, force: true });
  });
  return fx;
}

// ---------- servers in child processes ----------

/**
 * Runs `node <script> ...args` and waits for the "LISTENING <url>" line it prints when ready. With
 * `stderr: 'pipe'` its stderr is kept for the error when it does not start (else it is inherited).
 */
export function spawnListening(
  script: string,
  args: string[] = [],
  opts: { env?: Record<string, string>; stderr?: 'inherit' | 'pipe'; timeoutMs?: number; name?: string } = {},
): Promise<{ child: ChildProcess; url: string }> {
  const name = opts.name ?? script;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], {
      stdio: ['ignore', 'pipe', opts.stderr ?? 'inherit'],
      env: { ...process.env, ...opts.env },
    });
    let out = '';
    let err = '';
    const why = () => (err ? `: ${err}` : '');
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not start within ${timeoutMs / 1000} s${why()}`));
    }, timeoutMs);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /LISTENING (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1]! });
      }
    });
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code} before listening${why()}`));
    });
  });
}

// ---------- JSON documents and their codecs ----------

/** protobuf-specs TransparencyLogEntry fields in declaration order, the order protojson writes them. */
export const TLOG_ENTRY_JSON_FIELDS = [
  'logIndex',
  'logId',
  'kindVersion',
  'integratedTime',
  'inclusionPromise',
  'inclusionProof',
  'canonicalizedBody',
] as const;

/** A deep copy of `doc` without the field at `path` (dotted, with [i] indexes: 'a.b[0].c'). */
export function withoutField<T>(doc: T, path: string): T {
  const out = structuredClone(doc);
  const keys = path.split(/\.|\[(\d+)\]/).filter((k) => k !== undefined && k !== '');
  let o = out as Record<string, unknown>;
  for (const k of keys.slice(0, -1)) o = o[k] as Record<string, unknown>;
  delete o[keys[keys.length - 1]!];
  return out;
}

/**
 * Asserts that `parse` refuses `doc` with each listed field removed, with `code` and the field
 * named in `detail.field`: the path itself, or the field given with it (where the parser notices
 * the gap, e.g. the parent).
 */
export function assertRequiredFields<T>(
  parse: (doc: T) => unknown,
  code: ErrorCode,
  doc: T,
  cases: readonly (readonly [path: string, field?: string])[],
): void {
  for (const [path, field = path] of cases) {
    const e = throwsWithCode(() => parse(withoutField(doc, path)), code, undefined, path);
    assert.equal(e.detail?.field, field, `${path}: ${e.message}`);
  }
}

/**
 * A checker for malformed input: `bad(mutate, message)` edits a fresh `base()` (or `from()`) and
 * asserts that `parse` refuses it with `code` and a message matching `message`.
 */
export function mutationRefuser<T>(
  parse: (doc: T) => unknown,
  code: ErrorCode,
  base: () => T,
): (mutate: (doc: T) => void, message: RegExp, from?: () => T) => void {
  return (mutate, message, from = base) => {
    const d = from();
    mutate(d);
    throwsWithCode(() => parse(d), code, message);
  };
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

/**
 * RE2 patterns grown from `atom`s (for differential tests against re2js): concatenations,
 * alternations (grouped and bare), groups under a `quantifier` and, when given, groups opened by
 * a `flagGroup` prefix such as "(?i:".
 */
export function regexpPatterns(o: {
  atom: fc.Arbitrary<string>;
  quantifier: fc.Arbitrary<string>;
  flagGroup?: fc.Arbitrary<string>;
}): fc.Arbitrary<string> {
  return fc.letrec<{ re: string }>((tie) => ({
    re: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      o.atom,
      fc.tuple(tie('re'), tie('re')).map(([x, y]) => x + y),
      fc.tuple(tie('re'), tie('re')).map(([x, y]) => `(?:${x}|${y})`),
      fc.tuple(tie('re'), tie('re')).map(([x, y]) => `${x}|${y}`),
      fc.tuple(tie('re'), o.quantifier).map(([x, q]) => `(${x})${q}`),
      ...(o.flagGroup ? [fc.tuple(o.flagGroup, tie('re')).map(([f, x]) => `${f}${x})`)] : []),
    ),
  })).re;
}
