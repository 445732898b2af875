// CEL (Common Expression Language) policies over @bufbuild/cel: compile once, evaluate against
// plain JSON-like bindings. Used by `waxseal verify-attestation --policy` and by admission
// policies. Pure: no I/O; `matches()` runs on @waxseal/core's RE2 engine (linear time, Go syntax),
// so a pattern means what it means in policy-controller and cannot backtrack.
import { type CelEnv, type CelValue, celEnv, isCelError, isCelList, isCelMap, isCelUint, parse, plan } from '@bufbuild/cel';
import { strings } from '@bufbuild/cel/ext';
import { compileRegexp, WaxsealError } from '@waxseal/core';

/** Longest expression accepted: policies are short; this bounds parse time on hostile input. */
export const MAX_CEL_SOURCE = 64 * 1024;

const CHECK = 'policy.cel';

/** A compiled CEL expression; reusable, immutable. */
export interface CelProgram {
  /** The expression as written. */
  readonly source: string;
  /** What the expression is, for messages (a file name, a policy field). */
  readonly what: string;
  /** @internal the planned evaluator. */
  readonly run: (vars: Record<string, unknown>) => unknown;
}

let sharedEnv: CelEnv | undefined;
function env(): CelEnv {
  sharedEnv ??= celEnv({
    funcs: strings,
    re2: { compile: (pattern: string) => compileRegexp(pattern) },
  });
  return sharedEnv;
}

function oneLine(s: string): string {
  const flat = s.replace(/\s+/g, ' ').trim();
  return flat.length > 300 ? `${flat.slice(0, 300)}…` : flat;
}

/**
 * Parses and plans `source`. Throws WaxsealError ERR_INVALID_INPUT (check 'policy.cel') with a
 * one-line message naming `what` on a syntax error or an empty/oversized expression.
 */
export function compileCel(source: string, what: string): CelProgram {
  if (typeof source !== 'string') throw new TypeError('compileCel: source must be a string');
  const fail = (why: string): never => {
    throw new WaxsealError('ERR_INVALID_INPUT', `${what}: invalid CEL expression: ${oneLine(why)}`, { check: CHECK });
  };
  if (source.length > MAX_CEL_SOURCE) fail(`longer than ${MAX_CEL_SOURCE} characters`);
  if (source.trim() === '') fail('empty expression');
  let run: (vars: Record<string, unknown>) => unknown;
  try {
    const evaluator = plan(env(), parse(source));
    run = (vars) => evaluator(vars as never);
  } catch (e) {
    // The parser reports "<input>:line:col: ..."; name the source instead.
    if (e instanceof RangeError) return fail('expression nested too deeply');
    const msg = e instanceof Error ? e.message : String(e);
    return fail(msg.replace(/^<input>:/, 'at '));
  }
  return Object.freeze({ source, what, run });
}

/** Converts a CEL result to plain JS: maps to objects (or Map for non-string keys), lists to arrays. */
function toPlain(v: CelValue | unknown, depth = 0): unknown {
  if (depth > 100) throw new WaxsealError('ERR_INVALID_INPUT', 'CEL result nested too deeply', { check: CHECK });
  if (isCelUint(v)) return v.value;
  if (isCelList(v)) {
    const out: unknown[] = [];
    for (const e of v) out.push(toPlain(e, depth + 1));
    return out;
  }
  if (isCelMap(v)) {
    const entries: [unknown, unknown][] = [];
    for (const [k, e] of v) entries.push([toPlain(k, depth + 1), toPlain(e, depth + 1)]);
    if (entries.every(([k]) => typeof k === 'string')) return Object.fromEntries(entries);
    return new Map(entries);
  }
  return v;
}

/**
 * Evaluates `program` with `vars` bound (JSON-like values: objects, arrays, strings, numbers as
 * CEL doubles, bigints as CEL ints, booleans, null). Returns the result as plain JS (a boolean,
 * string, number, bigint, array, object...). Throws WaxsealError ERR_INVALID_INPUT (check
 * 'policy.cel') when evaluation fails (missing field, no matching overload, division by zero...).
 */
export function evaluateCel(program: CelProgram, vars: Record<string, unknown>): unknown {
  let result: unknown;
  try {
    result = program.run(vars);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new WaxsealError('ERR_INVALID_INPUT', `${program.what}: CEL evaluation failed: ${oneLine(msg)}`, { check: CHECK, cause: e });
  }
  if (isCelError(result)) {
    throw new WaxsealError('ERR_INVALID_INPUT', `${program.what}: CEL evaluation failed: ${oneLine(result.message)}`, {
      check: CHECK,
      cause: result,
    });
  }
  return toPlain(result);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (v instanceof Map) return 'a map';
  if (typeof v === 'object') return 'a map';
  if (typeof v === 'bigint') return `int ${v}`;
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…` : v)}`;
  return `${typeof v} ${String(v)}`;
}

/**
 * Whether `program` allows: only the boolean `true` does. `false`, a non-boolean result or an
 * evaluation error is a denial, with the reason.
 */
export function celAllows(program: CelProgram, vars: Record<string, unknown>): { ok: true } | { ok: false; reason: string } {
  let result: unknown;
  try {
    result = evaluateCel(program, vars);
  } catch (e) {
    return { ok: false, reason: e instanceof Error ? e.message : String(e) };
  }
  if (result === true) return { ok: true };
  if (result === false) return { ok: false, reason: `${program.what}: CEL expression evaluated to false` };
  return { ok: false, reason: `${program.what}: CEL expression must evaluate to a bool, got ${describe(result)}` };
}
