// RE2 syntax (Go regexp/syntax with the Perl flags that regexp.Compile uses) parsed to a small
// tree. Whatever RE2 refuses is refused here with RE2's wording, plus a hint for the features
// people expect from backtracking engines (backreferences, lookaround, possessive repetition).
import {
  PERL_CLASSES,
  POSIX_CLASSES,
  anyChar,
  foldedClass,
  literalPred,
  MAX_RUNE,
  negate,
  notNewline,
  rangesPred,
  rangesSource,
  union,
  unicodeClass,
  type CharPred,
  type UnicodeClass,
} from './charset.ts';

export type Assertion = 'beginText' | 'endText' | 'beginLine' | 'endLine' | 'wordBoundary' | 'noWordBoundary';

export type Node =
  | { t: 'empty'; h: number }
  /** lit: the one code point the node matches, when it is a plain literal. */
  | { t: 'char'; pred: CharPred; lit?: number; h: number }
  | { t: 'assert'; kind: Assertion; h: number }
  | { t: 'cat'; items: Node[]; h: number }
  | { t: 'alt'; alts: Node[]; h: number }
  /** max -1 = unbounded; counted = written {n,m} (only those count towards the 1000 limit). */
  | { t: 'rep'; node: Node; min: number; max: number; counted: boolean; h: number }
  | { t: 'capture'; node: Node; h: number };

/** A syntax error; the caller turns it into a WaxsealError. */
export class RegexpSyntaxError extends Error {}

/** Largest count in x{n,m}, and largest product of nested counts (as in Go). */
export const MAX_REPEAT = 1000;
/** Deepest parse tree (as in Go). */
export const MAX_HEIGHT = 1000;

const FOLD = 1;
const MULTILINE = 2;
const DOT_NL = 4;
const UNGREEDY = 8;

const ch = (s: string): number => s.codePointAt(0)!;
const isAlnum = (c: number): boolean => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
const isOctal = (c: number | undefined): c is number => c !== undefined && c >= 0x30 && c <= 0x37;
const isDigit = (c: number | undefined): c is number => c !== undefined && c >= 0x30 && c <= 0x39;
function unhex(c: number | undefined): number {
  if (c === undefined) return -1;
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/** The height of a node over `children`, refused beyond MAX_HEIGHT (deep trees are refused, not recursed into). */
function over(children: readonly Node[]): number {
  let h = 0;
  for (const c of children) if (c.h > h) h = c.h;
  if (h >= MAX_HEIGHT) throw new RegexpSyntaxError('expression nests too deeply');
  return h + 1;
}

const charNode = (pred: CharPred): Node => ({ t: 'char', pred, h: 1 });
const assertNode = (kind: Assertion): Node => ({ t: 'assert', kind, h: 1 });

function cat(items: Node[]): Node {
  if (items.length === 0) return { t: 'empty', h: 1 };
  return items.length === 1 ? items[0]! : { t: 'cat', items, h: over(items) };
}

function alt(alts: Node[]): Node {
  return alts.length === 1 ? alts[0]! : { t: 'alt', alts, h: over(alts) };
}

const BACKSLASH_ASSERTIONS: Readonly<Record<number, Assertion>> = {
  [0x41]: 'beginText', // \A
  [0x7a]: 'endText', // \z
  [0x62]: 'wordBoundary', // \b
  [0x42]: 'noWordBoundary', // \B
};

/** Go's repeatIsValid: at most `n` copies of the innermost thing across nested counted repeats. */
function repeatIsValid(node: Node, n: number): boolean {
  let budget = n;
  if (node.t === 'rep' && node.counted) {
    let m = node.max;
    if (m === 0) return true;
    if (m < 0) m = node.min;
    if (m > budget) return false;
    if (m > 0) budget = Math.trunc(budget / m);
  }
  switch (node.t) {
    case 'cat':
      return node.items.every((x) => repeatIsValid(x, budget));
    case 'alt':
      return node.alts.every((x) => repeatIsValid(x, budget));
    case 'rep':
    case 'capture':
      return repeatIsValid(node.node, budget);
    default:
      return true;
  }
}

const C_ESCAPES: Readonly<Record<string, number>> = { a: 7, f: 12, n: 10, r: 13, t: 9, v: 11 };

// Why a construct from other regexp dialects is refused, after "(?" and after a backslash.
const PERL_SYNTAX_HINTS: Readonly<Record<string, string>> = {
  '=': 'lookaround assertions are not supported',
  '!': 'lookaround assertions are not supported',
  '>': 'atomic groups are not supported',
  '#': 'comments are not supported',
  '|': 'branch reset groups are not supported',
  '(': 'conditionals are not supported',
  R: 'recursion is not supported',
  '&': 'recursion is not supported',
  x: 'the x flag is not supported (RE2 flags are i, m, s and U)',
  P: 'named backreferences and recursion are not supported',
};

const ESCAPE_HINTS: Readonly<Record<string, string>> = {
  k: 'backreferences are not supported',
  Z: 'use \\z for the end of the text',
  u: 'use \\x{…} for a code point',
  c: 'use \\x{…} for a control character',
  e: 'use \\x1B',
  G: 'not supported',
  K: 'not supported',
  X: 'not supported',
  R: 'not supported',
  h: 'use [\\t ] or \\p{Zs}',
};

interface Frame {
  alts: Node[];
  items: Node[];
  /** Flags to restore at the closing parenthesis. */
  flags: number;
  capture: boolean;
}

class Parser {
  readonly #cps: number[];
  #pos = 0;
  #flags = 0;
  readonly #frames: Frame[] = [{ alts: [], items: [], flags: 0, capture: false }];

  constructor(src: string) {
    this.#cps = [];
    for (let i = 0; i < src.length; i++) {
      const c = src.codePointAt(i)!;
      if (c >= 0xd800 && c <= 0xdfff) throw new RegexpSyntaxError('invalid UTF-16 (a lone surrogate)');
      if (c > 0xffff) i++;
      this.#cps.push(c);
    }
  }

  #text(from: number, to: number, limit = Number.POSITIVE_INFINITY): string {
    let s = '';
    for (let i = from; i < to && i < from + limit; i++) s += String.fromCodePoint(this.#cps[i]!);
    return to - from > limit ? `${s}…` : s;
  }

  #fail(problem: string, from: number, to: number, hint?: string): never {
    throw new RegexpSyntaxError(`${problem}: \`${this.#text(from, to, 100)}\`${hint ? ` (${hint})` : ''}`);
  }

  get #frame(): Frame {
    return this.#frames[this.#frames.length - 1]!;
  }

  #push(node: Node): void {
    this.#frame.items.push(node);
  }

  #literal(c: number): void {
    const fold = (this.#flags & FOLD) !== 0;
    const pred = literalPred(c, fold);
    this.#push(fold ? charNode(pred) : { t: 'char', pred, lit: c, h: 1 });
  }

  parse(): Node {
    const cps = this.#cps;
    let lastRepeat = -1; // where the previous token started, when it was a repetition operator
    while (this.#pos < cps.length) {
      const start = this.#pos;
      let repeat = -1;
      const c = cps[start]!;
      switch (c) {
        case ch('('):
          if (cps[start + 1] === ch('?')) this.#perlFlags();
          else {
            this.#frames.push({ alts: [], items: [], flags: this.#flags, capture: true });
            this.#pos++;
          }
          break;
        case ch('|'):
          this.#frame.alts.push(cat(this.#frame.items));
          this.#frame.items = [];
          this.#pos++;
          break;
        case ch(')'): {
          if (this.#frames.length === 1) this.#fail('unexpected )', 0, cps.length);
          const f = this.#frames.pop()!;
          const body = alt([...f.alts, cat(f.items)]);
          this.#flags = f.flags;
          this.#push(f.capture ? { t: 'capture', node: body, h: over([body]) } : body);
          this.#pos++;
          break;
        }
        case ch('^'):
          this.#push(assertNode(this.#flags & MULTILINE ? 'beginLine' : 'beginText'));
          this.#pos++;
          break;
        case ch('$'):
          this.#push(assertNode(this.#flags & MULTILINE ? 'endLine' : 'endText'));
          this.#pos++;
          break;
        case ch('.'):
          this.#push(charNode(this.#flags & DOT_NL ? anyChar : notNewline));
          this.#pos++;
          break;
        case ch('['):
          this.#class();
          break;
        case ch('*'):
        case ch('+'):
        case ch('?'): {
          this.#pos++;
          const [min, max] = c === ch('*') ? [0, -1] : c === ch('+') ? [1, -1] : [0, 1];
          this.#repeat(min, max, false, start, lastRepeat);
          repeat = start;
          break;
        }
        case ch('{'): {
          const counts = this.#counts();
          if (!counts) {
            this.#literal(c); // not a well-formed {n,m}: a literal brace, as in Go
            this.#pos++;
            break;
          }
          const [min, max] = counts;
          if (min < 0 || min > MAX_REPEAT || max > MAX_REPEAT || (max >= 0 && min > max))
            this.#fail('invalid repeat count', start, this.#pos, `counts go up to ${MAX_REPEAT}`);
          this.#repeat(min, max, true, start, lastRepeat);
          repeat = start;
          break;
        }
        case ch('\\'):
          this.#backslash();
          break;
        default:
          this.#literal(c);
          this.#pos++;
      }
      lastRepeat = repeat;
    }
    if (this.#frames.length > 1) this.#fail('missing closing )', 0, cps.length);
    const f = this.#frame;
    return alt([...f.alts, cat(f.items)]);
  }

  /** Parses {n}, {n,} or {n,m} at the cursor (advancing past it), or returns undefined. */
  #counts(): [number, number] | undefined {
    const cps = this.#cps;
    let i = this.#pos + 1;
    const int = (): number | undefined => {
      if (!isDigit(cps[i])) return undefined;
      if (cps[i] === ch('0') && isDigit(cps[i + 1])) return undefined; // no leading zeros
      let n = 0;
      // Capped: anything this big is reported as an invalid count.
      while (isDigit(cps[i])) n = Math.min(n * 10 + cps[i++]! - 0x30, 1e9);
      return n;
    };
    const min = int();
    if (min === undefined) return undefined;
    let max = min;
    if (cps[i] === ch(',')) {
      i++;
      if (cps[i] === ch('}')) max = -1;
      else {
        const m = int();
        if (m === undefined) return undefined;
        max = m;
      }
    }
    if (cps[i] !== ch('}')) return undefined;
    this.#pos = i + 1;
    return [min, max];
  }

  #repeat(min: number, max: number, counted: boolean, start: number, lastRepeat: number): void {
    if (this.#cps[this.#pos] === ch('?')) this.#pos++; // non-greedy: the same language
    if (lastRepeat >= 0) {
      const possessive = this.#cps[start] === ch('+') && this.#pos === start + 1;
      this.#fail(
        'invalid nested repetition operator',
        lastRepeat,
        this.#pos,
        possessive ? 'possessive repetition is not supported' : undefined,
      );
    }
    const items = this.#frame.items;
    if (items.length === 0) this.#fail('missing argument to repetition operator', start, this.#pos);
    const sub = items.pop()!;
    const node: Node = { t: 'rep', node: sub, min, max, counted, h: over([sub]) };
    if (counted && (min >= 2 || max >= 2) && !repeatIsValid(node, MAX_REPEAT))
      this.#fail('invalid repeat count', start, this.#pos, `nested counts may multiply to at most ${MAX_REPEAT}`);
    items.push(node);
  }

  /** At "(?": flags, a non-capturing group, or a named capture. */
  #perlFlags(): void {
    const cps = this.#cps;
    const start = this.#pos;
    const at = (k: number): number | undefined => cps[start + k];
    const lookbehind = at(2) === ch('<') && (at(3) === ch('=') || at(3) === ch('!'));
    if (lookbehind) this.#fail('invalid or unsupported Perl syntax', start, start + 4, 'lookaround assertions are not supported');
    const startsWithP = cps.length - start > 4 && at(2) === ch('P') && at(3) === ch('<');
    const startsWithName = cps.length - start > 3 && at(2) === ch('<');
    if (startsWithP || startsWithName) {
      const nameStart = start + (startsWithP ? 4 : 3);
      const end = cps.indexOf(ch('>'), start);
      if (end < 0) this.#fail('invalid named capture', start, cps.length);
      const name = cps.slice(nameStart, end);
      if (name.length === 0 || !name.every((c) => c === ch('_') || isAlnum(c))) this.#fail('invalid named capture', start, end + 1);
      // Go allows a name to repeat; names do not matter for matching.
      this.#frames.push({ alts: [], items: [], flags: this.#flags, capture: true });
      this.#pos = end + 1;
      return;
    }
    let flags = this.#flags;
    let negated = false;
    let sawFlag = false;
    let i = start + 2;
    while (i < cps.length) {
      const c = cps[i++]!;
      switch (c) {
        case ch('i'):
          flags = negated ? flags & ~FOLD : flags | FOLD;
          sawFlag = true;
          continue;
        case ch('m'):
          flags = negated ? flags & ~MULTILINE : flags | MULTILINE;
          sawFlag = true;
          continue;
        case ch('s'):
          flags = negated ? flags & ~DOT_NL : flags | DOT_NL;
          sawFlag = true;
          continue;
        case ch('U'):
          flags = negated ? flags & ~UNGREEDY : flags | UNGREEDY;
          sawFlag = true;
          continue;
        case ch('-'):
          if (negated) break;
          negated = true;
          sawFlag = false;
          continue;
        case ch(':'):
        case ch(')'):
          if (negated && !sawFlag) break;
          if (c === ch(':')) this.#frames.push({ alts: [], items: [], flags: this.#flags, capture: false });
          this.#flags = flags;
          this.#pos = i;
          return;
      }
      const d = String.fromCodePoint(c);
      const hint = i === start + 3 ? (PERL_SYNTAX_HINTS[d] ?? (isDigit(c) || d === '+' ? PERL_SYNTAX_HINTS['R'] : undefined)) : undefined;
      this.#fail('invalid or unsupported Perl syntax', start, i, hint);
    }
    this.#fail('invalid or unsupported Perl syntax', start, i);
  }

  #backslash(): void {
    const cps = this.#cps;
    const start = this.#pos;
    const next = cps[start + 1];
    const kind = next === undefined ? undefined : BACKSLASH_ASSERTIONS[next];
    if (kind) {
      this.#push(assertNode(kind));
      this.#pos = start + 2;
      return;
    }
    switch (next) {
      case ch('C'):
        this.#fail('invalid escape sequence', start, start + 2, '\\C (any byte) is not supported');
        break;
      case ch('Q'): {
        let i = start + 2;
        while (i < cps.length && !(cps[i] === ch('\\') && cps[i + 1] === ch('E'))) this.#literal(cps[i++]!);
        this.#pos = Math.min(i + 2, cps.length);
        return;
      }
    }
    const group = this.#unicodeClass() ?? this.#perlClass();
    if (group) {
      this.#push(charNode(group));
      return;
    }
    this.#literal(this.#escape());
  }

  /** \pX, \p{Name}, \PX, \P{Name}, \p{^Name} at the cursor, or undefined. */
  #unicodeClass(): CharPred | undefined {
    const cps = this.#cps;
    const start = this.#pos;
    if (cps[start] !== ch('\\') || (cps[start + 1] !== ch('p') && cps[start + 1] !== ch('P'))) return undefined;
    let negated = cps[start + 1] === ch('P');
    let name: string;
    let end: number;
    if (cps[start + 2] !== ch('{')) {
      end = Math.min(start + 3, cps.length);
      name = this.#text(start + 2, end);
    } else {
      const close = cps.indexOf(ch('}'), start);
      if (close < 0) this.#fail('invalid character class range', start, cps.length);
      end = close + 1;
      name = this.#text(start + 3, close);
    }
    if (name.startsWith('^')) {
      negated = !negated;
      name = name.slice(1);
    }
    const cls = unicodeClass(name);
    if (!cls) this.#fail('invalid character class range', start, end, 'unknown Unicode class');
    this.#pos = end;
    return this.#group(cls, negated);
  }

  /** \d \D \s \S \w \W at the cursor, or undefined. */
  #perlClass(): CharPred | undefined {
    const c = this.#cps[this.#pos + 1];
    if (this.#cps[this.#pos] !== ch('\\') || c === undefined) return undefined;
    const name = String.fromCodePoint(c);
    const ranges = PERL_CLASSES[name.toLowerCase()];
    if (!ranges || !'dswDSW'.includes(name)) return undefined;
    this.#pos += 2;
    return this.#group({ pred: rangesPred(ranges), source: rangesSource(ranges) }, name !== name.toLowerCase());
  }

  /** Case folding applies before negation, as in Go: (?i)\W does not match 'ſ' (it folds to 's'). */
  #group(cls: UnicodeClass, negated: boolean): CharPred {
    const p = this.#flags & FOLD ? foldedClass(cls.source) : cls.pred;
    return negated ? negate(p) : p;
  }

  /** An escape that stands for one code point (the cursor is at the backslash). */
  #escape(): number {
    const cps = this.#cps;
    const start = this.#pos;
    let i = start + 1;
    if (i >= cps.length) throw new RegexpSyntaxError('trailing backslash at end of expression');
    const c = cps[i++]!;
    const done = (v: number): number => {
      this.#pos = i;
      return v;
    };
    if (c < 0x80 && !isAlnum(c)) return done(c); // escaped punctuation is itself
    if (isOctal(c) && (c === ch('0') || isOctal(cps[i]))) {
      // \0, or \1-\7 followed by another octal digit: up to three octal digits.
      let v = c - 0x30;
      for (let k = 1; k < 3 && isOctal(cps[i]); k++) v = v * 8 + cps[i++]! - 0x30;
      return done(v);
    }
    if (c === ch('x')) {
      if (cps[i] === ch('{')) {
        i++;
        let v = 0;
        let digits = 0;
        while (i < cps.length && cps[i] !== ch('}')) {
          const d = unhex(cps[i++]);
          v = v * 16 + d;
          if (d < 0 || v > MAX_RUNE) this.#fail('invalid escape sequence', start, i);
          digits++;
        }
        if (i >= cps.length || digits === 0) this.#fail('invalid escape sequence', start, Math.min(i + 1, cps.length));
        i++;
        return done(v);
      }
      const [x, y] = [unhex(cps[i]), unhex(cps[i + 1])];
      if (x < 0 || y < 0) this.#fail('invalid escape sequence', start, Math.min(i + 2, cps.length));
      i += 2;
      return done(x * 16 + y);
    }
    const name = String.fromCodePoint(c);
    const simple = Object.hasOwn(C_ESCAPES, name) ? C_ESCAPES[name] : undefined;
    if (simple !== undefined) return done(simple);
    const hint = isDigit(c) ? 'backreferences are not supported' : ESCAPE_HINTS[name];
    this.#fail('invalid escape sequence', start, i, hint);
  }

  /** A character class at the cursor ("["), pushed as one char node. */
  #class(): void {
    const cps = this.#cps;
    const start = this.#pos;
    let i = start + 1;
    let negated = false;
    if (cps[i] === ch('^')) {
      negated = true;
      i++;
    }
    const fold = (this.#flags & FOLD) !== 0;
    const items: CharPred[] = [];
    const ranges: [number, number][] = [];
    let first = true; // ']' is literal first in the class
    while (i >= cps.length || cps[i] !== ch(']') || first) {
      first = false;
      if (i >= cps.length) this.#fail('missing closing ]', start, cps.length);
      // POSIX [:alpha:] and [:^alpha:].
      if (cps[i] === ch('[') && cps[i + 1] === ch(':') && i + 2 < cps.length) {
        let close = -1;
        for (let k = i + 2; k + 1 < cps.length; k++)
          if (cps[k] === ch(':') && cps[k + 1] === ch(']')) {
            close = k;
            break;
          }
        if (close >= 0) {
          const neg = cps[i + 2] === ch('^');
          const name = this.#text(i + (neg ? 3 : 2), close);
          const posix = Object.hasOwn(POSIX_CLASSES, name) ? POSIX_CLASSES[name] : undefined;
          if (!posix) this.#fail('invalid character class range', i, close + 2, 'unknown POSIX class');
          items.push(this.#group({ pred: rangesPred(posix), source: rangesSource(posix) }, neg));
          i = close + 2;
          continue;
        }
      }
      this.#pos = i;
      const group = this.#unicodeClass() ?? this.#perlClass();
      if (group) {
        items.push(group);
        i = this.#pos;
        continue;
      }
      // A single character or a range.
      const rangeStart = i;
      const lo = this.#classChar(i, start);
      i = this.#pos;
      let hi = lo;
      if (i + 1 < cps.length && cps[i] === ch('-') && cps[i + 1] !== ch(']')) {
        hi = this.#classChar(i + 1, start);
        i = this.#pos;
        if (hi < lo) this.#fail('invalid character class range', rangeStart, i);
      }
      ranges.push([lo, hi]);
    }
    if (ranges.length) items.unshift(fold ? foldedClass(rangesSource(ranges)) : rangesPred(ranges));
    const pred = items.length === 0 ? () => false : union(items);
    this.#push(charNode(negated ? negate(pred) : pred));
    this.#pos = i + 1;
  }

  #classChar(i: number, classStart: number): number {
    const cps = this.#cps;
    if (i >= cps.length) this.#fail('missing closing ]', classStart, cps.length);
    this.#pos = i;
    if (cps[i] === ch('\\')) return this.#escape();
    this.#pos = i + 1;
    return cps[i]!;
  }
}

export function parseRegexp(src: string): Node {
  return new Parser(src).parse();
}
