// Hand-written on purpose: @waxseal/verify must have no runtime dependency outside @waxseal/*; the re2js package is the test oracle.
//
// Regular expressions with Go's RE2 syntax and semantics (the regexp package that cosign, Fulcio,
// gitsign and policy-controller use), so an identity pattern copied from them means the same
// here. Matching runs a Thompson NFA over code points: time is bounded by the pattern's compiled
// size times the input length, whatever either contains, so attacker-controlled values (SANs,
// token claims) cannot make it backtrack. Only the yes/no answer is computed (no submatches).
import { WaxsealError } from './errors.ts';
import { CharSet, isWordChar } from './regexp/charset.ts';
import { type Assertion, type Node, parseRegexp, RegexpSyntaxError } from './regexp/parse.ts';

/** Default bound on compiled states; with it, one input character costs at most this much work. */
export const MAX_REGEXP_STATES = 10_000;

export interface RegexpOptions {
  /** Refuse patterns that compile to more NFA states than this (default MAX_REGEXP_STATES). */
  maxStates?: number;
}

export interface RegexpRun {
  matched: boolean;
  /** NFA states visited: at most 2 × size × (input code points + 1). */
  steps: number;
}

const CHAR = 0; // out2: -1, or the one code point matched
const SPLIT = 1;
const ASSERT = 2; // out2: the assertion
const MATCH = 3;

const ASSERTIONS: Record<Assertion, number> = {
  beginText: 0,
  endText: 1,
  beginLine: 2,
  endLine: 3,
  wordBoundary: 4,
  noWordBoundary: 5,
};

/** A compiled RE2 pattern. Immutable; `test` and `fullMatch` may be called any number of times. */
export interface Regexp {
  /** The pattern as written. */
  readonly source: string;
  /** Number of NFA states: the work per input character is at most twice this. */
  readonly size: number;
  /** Whether the pattern matches anywhere in `input` (Go's MatchString: unanchored). */
  test(input: string): boolean;
  /** Whether the pattern matches all of `input` (as Go's `^(?:pattern)$`). */
  fullMatch(input: string): boolean;
  /** The answer and the work done, for tests that check the linear bound without timing anything. */
  run(input: string, whole: boolean): RegexpRun;
}

class CompiledRegexp implements Regexp {
  readonly source: string;
  readonly #kind: Uint8Array;
  readonly #out: Int32Array;
  readonly #out2: Int32Array;
  readonly #sets: (CharSet | undefined)[];
  readonly #start: number;
  // Work lists reused between runs (a run never calls back into the matcher).
  #scratch: { mark: Uint32Array; a: Int32Array; b: Int32Array; stack: Int32Array } | undefined;

  constructor(source: string, program: Program) {
    this.source = source;
    this.#kind = Uint8Array.from(program.kind);
    this.#out = Int32Array.from(program.out);
    this.#out2 = Int32Array.from(program.out2);
    this.#sets = program.sets;
    this.#start = program.start;
  }

  get size(): number {
    return this.#kind.length;
  }

  test(input: string): boolean {
    return this.run(input, false).matched;
  }

  fullMatch(input: string): boolean {
    return this.run(input, true).matched;
  }

  run(input: string, whole: boolean): RegexpRun {
    const kind = this.#kind;
    const out = this.#out;
    const out2 = this.#out2;
    const sets = this.#sets;
    const size = kind.length;
    const n = input.length;
    const scratch = this.#scratch ?? {
      mark: new Uint32Array(size),
      a: new Int32Array(size),
      b: new Int32Array(size),
      // Each state, visited once, pushes at most its two successors.
      stack: new Int32Array(2 * size + 1),
    };
    this.#scratch = undefined;
    const { mark, stack } = scratch;
    mark.fill(0);
    let gen = 0;
    let clist = scratch.a;
    let nlist = scratch.b;
    let ccount = 0;
    let ncount = 0;
    let steps = 0;
    let matched = false;

    // The context of the position being entered: the code points before and after it (-1 at the ends).
    let prev = -1;
    let next = -1;
    let atEnd = false;
    const assertionHolds = (a: number): boolean => {
      switch (a) {
        case 0:
          return prev === -1;
        case 1:
          return atEnd;
        case 2:
          return prev === -1 || prev === 0x0a;
        case 3:
          return atEnd || next === 0x0a;
        case 4:
          return isWordChar(prev) !== isWordChar(next);
        default:
          return isWordChar(prev) === isWordChar(next);
      }
    };
    // Adds `s` and everything reachable from it without consuming input to nlist.
    const addClosure = (s: number): void => {
      let sp = 0;
      stack[sp++] = s;
      while (sp > 0) {
        const i = stack[--sp]!;
        if (mark[i] === gen) continue;
        mark[i] = gen;
        steps++;
        switch (kind[i]) {
          case SPLIT:
            stack[sp++] = out2[i]!;
            stack[sp++] = out[i]!;
            break;
          case ASSERT:
            if (assertionHolds(out2[i]!)) stack[sp++] = out[i]!;
            break;
          case MATCH:
            if (!whole || atEnd) matched = true;
            break;
          default:
            nlist[ncount++] = i;
        }
      }
    };

    gen++;
    next = n > 0 ? input.codePointAt(0)! : -1;
    atEnd = n === 0;
    addClosure(this.#start);
    let pos = 0;
    while (!matched && pos < n) {
      [clist, nlist] = [nlist, clist];
      ccount = ncount;
      ncount = 0;
      const cp = input.codePointAt(pos)!;
      pos += cp > 0xffff ? 2 : 1;
      gen++;
      prev = cp;
      next = pos < n ? input.codePointAt(pos)! : -1;
      atEnd = pos >= n;
      for (let k = 0; k < ccount; k++) {
        const i = clist[k]!;
        steps++;
        const lit = out2[i]!;
        if (lit >= 0 ? cp === lit : sets[i]!.test(cp)) addClosure(out[i]!);
      }
      // Unanchored search: a new attempt may start at every position.
      if (!whole) addClosure(this.#start);
      else if (ncount === 0) break;
    }
    this.#scratch = scratch;
    return { matched, steps };
  }
}

interface Program {
  kind: number[];
  out: number[];
  out2: number[];
  sets: (CharSet | undefined)[];
  start: number;
}

class Compiler {
  readonly p: Program = { kind: [], out: [], out2: [], sets: [], start: 0 };
  readonly #max: number;
  readonly #sets = new Map<unknown, CharSet>();

  constructor(max: number) {
    this.#max = max;
  }

  add(kind: number, out: number, out2 = -1, set?: CharSet): number {
    if (this.p.kind.length >= this.#max)
      throw new RegexpSyntaxError(`expression too large (more than ${this.#max} NFA states once repetitions are expanded)`);
    this.p.kind.push(kind);
    this.p.out.push(out);
    this.p.out2.push(out2);
    this.p.sets.push(set);
    return this.p.kind.length - 1;
  }

  /** Compiles `node` to continue at `next`; returns its entry state. */
  node(node: Node, next: number): number {
    switch (node.t) {
      case 'empty':
        return next;
      case 'char': {
        if (node.lit !== undefined) return this.add(CHAR, next, node.lit);
        let set = this.#sets.get(node.pred);
        if (!set) {
          set = new CharSet(node.pred);
          this.#sets.set(node.pred, set);
        }
        return this.add(CHAR, next, -1, set);
      }
      case 'assert':
        return this.add(ASSERT, next, ASSERTIONS[node.kind]);
      case 'capture':
        return this.node(node.node, next);
      case 'cat': {
        let entry = next;
        for (let i = node.items.length - 1; i >= 0; i--) entry = this.node(node.items[i]!, entry);
        return entry;
      }
      case 'alt': {
        let entry = this.node(node.alts[node.alts.length - 1]!, next);
        for (let i = node.alts.length - 2; i >= 0; i--) entry = this.add(SPLIT, this.node(node.alts[i]!, next), entry);
        return entry;
      }
      case 'rep':
        return this.#repeat(node.node, node.min, node.max, next);
    }
  }

  #repeat(sub: Node, min: number, max: number, next: number): number {
    let entry = next;
    let copies = min;
    if (max < 0) {
      // x* is a loop; x{n,} is n-1 copies then x+ (one copy looping back).
      const split = this.add(SPLIT, -1, next);
      const body = this.node(sub, split);
      this.p.out[split] = body;
      if (min === 0) return split;
      entry = body;
      copies = min - 1;
    } else {
      // x{n,m}: n copies, then (m-n) nested optionals x(x(x)?)?)?.
      for (let i = max; i > min; i--) entry = this.add(SPLIT, this.node(sub, entry), next);
    }
    for (let i = 0; i < copies; i++) entry = this.node(sub, entry);
    return entry;
  }
}

function shortPattern(pattern: string): string {
  return JSON.stringify(pattern.length > 200 ? `${pattern.slice(0, 200)}…` : pattern);
}

/**
 * Compiles an RE2 pattern (Go regexp syntax). Throws WaxsealError ERR_INVALID_INPUT naming the
 * problem for a bad pattern and for what RE2 does not support (backreferences, lookaround,
 * possessive or atomic groups, \C) or for one too large to match in bounded time.
 */
export function compileRegexp(pattern: string, options: RegexpOptions = {}): Regexp {
  if (typeof pattern !== 'string') throw new TypeError('compileRegexp: pattern must be a string');
  try {
    const tree = parseRegexp(pattern);
    const c = new Compiler(options.maxStates ?? MAX_REGEXP_STATES);
    const match = c.add(MATCH, -1);
    c.p.start = c.node(tree, match);
    return new CompiledRegexp(pattern, c.p);
  } catch (e) {
    if (!(e instanceof RegexpSyntaxError)) throw e;
    throw new WaxsealError('ERR_INVALID_INPUT', `invalid regexp ${shortPattern(pattern)}: ${e.message}`, {
      detail: { reason: e.message },
    });
  }
}

/** `s` with every RE2 metacharacter escaped, so it matches itself (Go's regexp.QuoteMeta). */
export function quoteRegexp(s: string): string {
  return s.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&');
}
