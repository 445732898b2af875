// Who may sign with this instance: allow and deny rules over the verified identity (issuer,
// subject, SAN), any token claim and any Fulcio certificate extension. Pure and synchronous:
// the CA calls the compiled rules on every certificate request.
//
// Semantics (docs/trust.md has the user-facing version):
// - A rule matches when every condition it states matches (AND). A rule must state at least one
//   condition, and unknown fields are refused, so a typo cannot turn into "match everything".
// - Deny wins: if any deny rule matches, the request is refused.
// - Otherwise, if any allow rule matches, the request is allowed.
// - Otherwise the default applies: deny when there is at least one allow rule, allow when there
//   is none (no rules at all = allow all; deny rules alone = a deny list). `default` overrides.
// - Matchers: a plain string or {exact} compares exactly (case-sensitive); {glob} where `*`
//   matches any run of characters except `/`, `**` any run including `/`, `?` one character
//   except `/`, and `\` escapes the next character; {regexp} in JavaScript syntax (`u` mode),
//   always anchored by us to the whole value (`^(?:…)$`), restricted to constructs we can match
//   in linear time (no backreferences, lookaround or \p{…}). A list of matchers matches if any
//   does. Claims that are arrays match if any element matches; numbers and booleans are
//   compared in their JSON text form; a missing claim or extension never matches.
// - Globs and regexps run on our own NFA simulation (time linear in the value length times the
//   pattern size), never on a backtracking engine, so no pattern/value pair can hang the CA.
//   Values longer than MAX_VALUE_LENGTH are refused outright (fail closed).
import { parse as parseYaml } from 'yaml';
import { WaxsealError, FULCIO_OID } from '@waxseal/core';

// ---------------------------------------------------------------------------------------------
// Public types

export type StringMatcherConfig = string | { exact: string } | { glob: string } | { regexp: string };
export type MatcherConfig = StringMatcherConfig | StringMatcherConfig[];

export interface SigningRuleConfig {
  /** Shown in decisions and audit records (default `allow[i]` / `deny[i]`). */
  name?: string;
  issuer?: MatcherConfig;
  /** The token subject (`sub`) or the principal's subject. */
  subject?: MatcherConfig;
  /** The certificate SAN value (email, URI, ...). */
  san?: MatcherConfig;
  /** Token claims by top-level claim name. */
  claims?: Record<string, MatcherConfig>;
  /** Fulcio certificate extensions by name (e.g. `sourceRepositoryRef`) or OID. */
  extensions?: Record<string, MatcherConfig>;
}

export interface SigningRulesConfig {
  allow?: SigningRuleConfig[];
  deny?: SigningRuleConfig[];
  /** What happens when no rule matches (default: 'deny' if there are allow rules, else 'allow'). */
  default?: 'allow' | 'deny';
}

export interface SigningContext {
  issuer: string;
  subject: string;
  san: string;
  claims: Record<string, unknown>;
  extensions: Record<string, string>;
}

export interface SigningDecision {
  allowed: boolean;
  /** The rule that decided (its name, or `allow[i]` / `deny[i]`); absent when the default decided. */
  rule?: string;
  reason: string;
}

export type SigningRules = (ctx: SigningContext) => SigningDecision;

/** Longest identity value (issuer, SAN, claim, extension) the rules will look at. */
export const MAX_VALUE_LENGTH = 4096;
const MAX_PATTERN_LENGTH = 1024;
const MAX_NFA_STATES = 2048;
const MAX_REPEAT = 100;

// ---------------------------------------------------------------------------------------------
// A linear-time matcher: patterns compile to a Thompson NFA over code points.

type CharTest = (cp: number) => boolean;

type Node =
  | { t: 'char'; test: CharTest }
  | { t: 'cat'; items: Node[] }
  | { t: 'alt'; alts: Node[] }
  | { t: 'rep'; node: Node; min: number; max: number };

type State = { k: 'char'; test: CharTest; out: number } | { k: 'split'; out1: number; out2: number } | { k: 'match' };

class Nfa {
  readonly states: State[] = [];
  start = 0;

  add(s: State): number {
    if (this.states.length >= MAX_NFA_STATES) throw new PatternError('pattern is too large');
    this.states.push(s);
    return this.states.length - 1;
  }
}

class PatternError extends Error {}

/** Compiles `node` so that it continues at `next`; returns the entry state. */
function compileNode(nfa: Nfa, node: Node, next: number): number {
  switch (node.t) {
    case 'char':
      return nfa.add({ k: 'char', test: node.test, out: next });
    case 'cat': {
      let entry = next;
      for (let i = node.items.length - 1; i >= 0; i--) entry = compileNode(nfa, node.items[i]!, entry);
      return entry;
    }
    case 'alt': {
      let entry = compileNode(nfa, node.alts[node.alts.length - 1]!, next);
      for (let i = node.alts.length - 2; i >= 0; i--)
        entry = nfa.add({ k: 'split', out1: compileNode(nfa, node.alts[i]!, next), out2: entry });
      return entry;
    }
    case 'rep': {
      let entry: number;
      if (node.max === Infinity) {
        // x* : split -> (x -> back to split) | next
        const split = nfa.add({ k: 'split', out1: -1, out2: next });
        const body = compileNode(nfa, node.node, split);
        (nfa.states[split] as { out1: number }).out1 = body;
        entry = split;
      } else {
        // x{0,k} as nested optionals (x(x(x)?)?)?: every level may exit to `next`.
        entry = next;
        for (let i = node.max; i > node.min; i--) {
          const body = compileNode(nfa, node.node, entry);
          entry = nfa.add({ k: 'split', out1: body, out2: next });
        }
      }
      for (let i = 0; i < node.min; i++) entry = compileNode(nfa, node.node, entry);
      return entry;
    }
  }
}

function matchNfa(nfa: Nfa, input: string): boolean {
  const n = nfa.states.length;
  const mark = new Int32Array(n).fill(-1);
  let current: number[] = [];
  let gen = 0;
  const addState = (list: number[], s: number): void => {
    // Iterative epsilon closure (deep chains must not overflow the stack).
    const stack = [s];
    while (stack.length) {
      const i = stack.pop()!;
      if (mark[i] === gen) continue;
      mark[i] = gen;
      const st = nfa.states[i]!;
      if (st.k === 'split') {
        stack.push(st.out2, st.out1);
      } else list.push(i);
    }
  };
  addState(current, nfa.start);
  for (const ch of input) {
    const cp = ch.codePointAt(0)!;
    gen++;
    const nextList: number[] = [];
    for (const i of current) {
      const st = nfa.states[i]!;
      if (st.k === 'char' && st.test(cp)) addState(nextList, st.out);
    }
    current = nextList;
    if (current.length === 0) return false;
  }
  return current.some((i) => nfa.states[i]!.k === 'match');
}

function buildNfa(root: Node): Nfa {
  const nfa = new Nfa();
  const match = nfa.add({ k: 'match' });
  nfa.start = compileNode(nfa, root, match);
  return nfa;
}

// --- glob -> Node

const notSlash: CharTest = (cp) => cp !== 0x2f;
const anyChar: CharTest = () => true;

function globToNode(glob: string): Node {
  const items: Node[] = [];
  const cps = [...glob];
  for (let i = 0; i < cps.length; i++) {
    const c = cps[i]!;
    if (c === '\\') {
      const lit = cps[++i];
      if (lit === undefined) throw new PatternError('glob ends with a lone backslash');
      const cp = lit.codePointAt(0)!;
      items.push({ t: 'char', test: (x) => x === cp });
    } else if (c === '*') {
      if (cps[i + 1] === '*') {
        while (cps[i + 1] === '*') i++;
        items.push({ t: 'rep', node: { t: 'char', test: anyChar }, min: 0, max: Infinity });
      } else {
        items.push({ t: 'rep', node: { t: 'char', test: notSlash }, min: 0, max: Infinity });
      }
    } else if (c === '?') {
      items.push({ t: 'char', test: notSlash });
    } else {
      const cp = c.codePointAt(0)!;
      items.push({ t: 'char', test: (x) => x === cp });
    }
  }
  return { t: 'cat', items };
}

// --- regexp (JavaScript `u`-mode syntax, linear-time subset) -> Node

const isDigit: CharTest = (cp) => cp >= 0x30 && cp <= 0x39;
const isWord: CharTest = (cp) => (cp >= 0x30 && cp <= 0x39) || (cp >= 0x41 && cp <= 0x5a) || (cp >= 0x61 && cp <= 0x7a) || cp === 0x5f;
const SPACE = new Set([0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0xa0, 0x1680, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000, 0xfeff]);
const isSpace: CharTest = (cp) => SPACE.has(cp) || (cp >= 0x2000 && cp <= 0x200a);
const isLineTerminator = (cp: number) => cp === 0x0a || cp === 0x0d || cp === 0x2028 || cp === 0x2029;
const not =
  (f: CharTest): CharTest =>
  (cp) =>
    !f(cp);
const SYNTAX_CHARS = '^$\\.*+?()[]{}|/';

class RegexpParser {
  readonly #cps: string[];
  #i = 0;

  constructor(src: string) {
    this.#cps = [...src];
  }

  parse(): Node {
    // Leading ^ and trailing $ are redundant (we anchor) and accepted; elsewhere they are refused.
    if (this.#cps[0] === '^') this.#i = 1;
    let end = this.#cps.length;
    if (end > this.#i && this.#cps[end - 1] === '$' && !this.#escapedAt(end - 1)) end--;
    const node = this.#disjunction(end);
    if (this.#i !== end) throw new PatternError(`unexpected ${JSON.stringify(this.#cps[this.#i])}`);
    return node;
  }

  #escapedAt(pos: number): boolean {
    let n = 0;
    for (let j = pos - 1; j >= 0 && this.#cps[j] === '\\'; j--) n++;
    return n % 2 === 1;
  }

  #disjunction(end: number): Node {
    const alts: Node[] = [this.#alternative(end)];
    while (this.#i < end && this.#cps[this.#i] === '|') {
      this.#i++;
      alts.push(this.#alternative(end));
    }
    return alts.length === 1 ? alts[0]! : { t: 'alt', alts };
  }

  #alternative(end: number): Node {
    const items: Node[] = [];
    while (this.#i < end && this.#cps[this.#i] !== '|' && this.#cps[this.#i] !== ')') {
      const atom = this.#atom(end);
      items.push(this.#quantified(atom, end));
    }
    return { t: 'cat', items };
  }

  #quantified(atom: Node, end: number): Node {
    const c = this.#cps[this.#i];
    if (this.#i >= end || c === undefined) return atom;
    let min: number;
    let max: number;
    if (c === '*') [min, max] = [0, Infinity];
    else if (c === '+') [min, max] = [1, Infinity];
    else if (c === '?') [min, max] = [0, 1];
    else if (c === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(this.#cps.slice(this.#i, end).join(''));
      if (!m) throw new PatternError('malformed {n,m} quantifier');
      min = Number(m[1]);
      max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
      if (min > MAX_REPEAT || (max !== Infinity && max > MAX_REPEAT))
        throw new PatternError(`repetition counts above ${MAX_REPEAT} are not supported`);
      if (max < min) throw new PatternError('quantifier range out of order');
      this.#i += [...m[0]].length - 1;
    } else return atom;
    this.#i++;
    if (this.#cps[this.#i] === '?' && this.#i < end) this.#i++; // lazy: same language
    return { t: 'rep', node: atom, min, max };
  }

  #atom(end: number): Node {
    const c = this.#cps[this.#i++]!;
    switch (c) {
      case '.':
        return { t: 'char', test: (cp) => !isLineTerminator(cp) };
      case '(': {
        if (this.#cps[this.#i] === '?') {
          const next = this.#cps[this.#i + 1];
          if (next === ':') this.#i += 2;
          else if (next === '<' && this.#cps[this.#i + 2] !== '=' && this.#cps[this.#i + 2] !== '!') {
            const close = this.#cps.indexOf('>', this.#i);
            if (close < 0) throw new PatternError('malformed named group');
            this.#i = close + 1;
          } else throw new PatternError('lookaround assertions are not supported');
        }
        const inner = this.#disjunction(end);
        if (this.#cps[this.#i] !== ')') throw new PatternError('unbalanced parenthesis');
        this.#i++;
        return inner;
      }
      case '[':
        return this.#charClass();
      case '\\':
        return { t: 'char', test: this.#escape(false) };
      case '^':
      case '$':
        throw new PatternError(`${c} is only allowed at the start/end (patterns are anchored anyway)`);
      case '*':
      case '+':
      case '?':
      case '{':
        throw new PatternError(`nothing to repeat before ${c}`);
      case ')':
      case ']':
      case '}':
        throw new PatternError(`unbalanced ${c}`);
      default: {
        const cp = c.codePointAt(0)!;
        return { t: 'char', test: (x) => x === cp };
      }
    }
  }

  /** After a backslash: a class escape (\d…) or a single code point. Returns a CharTest. */
  #escape(inClass: boolean): CharTest {
    const c = this.#cps[this.#i++];
    if (c === undefined) throw new PatternError('pattern ends with a lone backslash');
    switch (c) {
      case 'd':
        return isDigit;
      case 'D':
        return not(isDigit);
      case 'w':
        return isWord;
      case 'W':
        return not(isWord);
      case 's':
        return isSpace;
      case 'S':
        return not(isSpace);
      case 'b':
        if (inClass) return (cp) => cp === 0x08;
        throw new PatternError('word boundary assertions are not supported');
      case 'B':
        throw new PatternError('word boundary assertions are not supported');
      case 'k':
        throw new PatternError('backreferences are not supported');
      case 'p':
      case 'P':
        throw new PatternError('Unicode property escapes are not supported');
      default: {
        const cp = this.#escapedCodePoint(c, inClass);
        return (x) => x === cp;
      }
    }
  }

  #escapedCodePoint(c: string, inClass: boolean): number {
    const hex = (n: number): number => {
      const s = this.#cps.slice(this.#i, this.#i + n).join('');
      if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(s)) throw new PatternError(`malformed \\${c} escape`);
      this.#i += n;
      return parseInt(s, 16);
    };
    switch (c) {
      case 'n':
        return 0x0a;
      case 'r':
        return 0x0d;
      case 't':
        return 0x09;
      case 'v':
        return 0x0b;
      case 'f':
        return 0x0c;
      case '0':
        if (isDigit(this.#cps[this.#i]?.codePointAt(0) ?? -1)) throw new PatternError('octal escapes are not supported');
        return 0;
      case 'x':
        return hex(2);
      case 'c': {
        const l = this.#cps[this.#i++];
        if (!l || !/^[A-Za-z]$/.test(l)) throw new PatternError('malformed \\c escape');
        return l.codePointAt(0)! % 32;
      }
      case 'u': {
        if (this.#cps[this.#i] === '{') {
          const close = this.#cps.indexOf('}', this.#i);
          const s = close < 0 ? '' : this.#cps.slice(this.#i + 1, close).join('');
          if (!/^[0-9a-fA-F]{1,6}$/.test(s) || parseInt(s, 16) > 0x10ffff) throw new PatternError('malformed \\u{…} escape');
          this.#i = close + 1;
          return parseInt(s, 16);
        }
        const hi = hex(4);
        // A surrogate pair written as two \u escapes is one code point in u-mode.
        if (hi >= 0xd800 && hi <= 0xdbff && this.#cps[this.#i] === '\\' && this.#cps[this.#i + 1] === 'u') {
          const save = this.#i;
          this.#i += 2;
          const lo = hex(4);
          if (lo >= 0xdc00 && lo <= 0xdfff) return (hi - 0xd800) * 0x400 + (lo - 0xdc00) + 0x10000;
          this.#i = save;
        }
        return hi;
      }
      default:
        if (/^[1-9]$/.test(c)) throw new PatternError('backreferences are not supported');
        if (SYNTAX_CHARS.includes(c) || (inClass && c === '-')) return c.codePointAt(0)!;
        throw new PatternError(`invalid escape \\${c}`);
    }
  }

  #charClass(): Node {
    let negate = false;
    if (this.#cps[this.#i] === '^') {
      negate = true;
      this.#i++;
    }
    const tests: CharTest[] = [];
    const single = (): { cp?: number; test: CharTest } => {
      const c = this.#cps[this.#i++];
      if (c === undefined) throw new PatternError('unterminated character class');
      if (c === '\\') {
        const esc = this.#cps[this.#i];
        if (esc !== undefined && 'dDwWsS'.includes(esc)) return { test: this.#escape(true) };
        if (esc === 'p' || esc === 'P') throw new PatternError('Unicode property escapes are not supported');
        this.#i++;
        const cp = esc === 'b' ? 0x08 : this.#escapedCodePoint(esc ?? '', true);
        return { cp, test: (x) => x === cp };
      }
      const cp = c.codePointAt(0)!;
      return { cp, test: (x) => x === cp };
    };
    while (this.#cps[this.#i] !== ']') {
      if (this.#i >= this.#cps.length) throw new PatternError('unterminated character class');
      const a = single();
      if (this.#cps[this.#i] === '-' && this.#cps[this.#i + 1] !== ']' && this.#i + 1 < this.#cps.length) {
        this.#i++;
        const b = single();
        if (a.cp === undefined || b.cp === undefined) throw new PatternError('character class escape used in a range');
        const [lo, hi] = [a.cp, b.cp];
        if (lo > hi) throw new PatternError('character class range out of order');
        tests.push((x) => x >= lo && x <= hi);
      } else tests.push(a.test);
    }
    this.#i++;
    const inClass: CharTest = (cp) => tests.some((t) => t(cp));
    return { t: 'char', test: negate ? not(inClass) : inClass };
  }
}

// ---------------------------------------------------------------------------------------------
// Compilation of the configuration

interface CompiledMatcher {
  describe: string;
  test(value: string): boolean;
}

function compileStringMatcher(m: unknown, where: string): CompiledMatcher {
  if (typeof m === 'string') return { describe: 'exact', test: (v) => v === m };
  if (typeof m !== 'object' || m === null || Array.isArray(m)) throw configError(where, 'must be a string, {exact}, {glob} or {regexp}');
  const keys = Object.keys(m);
  if (keys.length !== 1) throw configError(where, `must have exactly one of exact, glob, regexp (got ${keys.join(', ') || 'none'})`);
  const kind = keys[0]!;
  const pattern = (m as Record<string, unknown>)[kind];
  if (typeof pattern !== 'string') throw configError(where, `${kind} must be a string`);
  if (pattern.length > MAX_PATTERN_LENGTH) throw configError(where, `${kind} pattern is longer than ${MAX_PATTERN_LENGTH} characters`);
  switch (kind) {
    case 'exact':
      return { describe: 'exact', test: (v) => v === pattern };
    case 'glob': {
      const nfa = compilePattern(() => globToNode(pattern), where, 'glob');
      return { describe: 'glob', test: (v) => matchNfa(nfa, v) };
    }
    case 'regexp': {
      // Our parser accepts a subset of JavaScript syntax; RegExp itself rejects what is not JS.
      try {
        new RegExp(pattern, 'u');
      } catch (e) {
        throw configError(where, `invalid regexp ${JSON.stringify(pattern)}: ${(e as Error).message}`);
      }
      const nfa = compilePattern(() => new RegexpParser(pattern).parse(), where, 'regexp');
      return { describe: 'regexp', test: (v) => matchNfa(nfa, v) };
    }
    default:
      throw configError(where, `unknown matcher ${JSON.stringify(kind)} (use exact, glob or regexp)`);
  }
}

function compilePattern(parse: () => Node, where: string, kind: string): Nfa {
  try {
    return buildNfa(parse());
  } catch (e) {
    if (e instanceof PatternError) throw configError(where, `unsupported ${kind}: ${e.message}`);
    throw e;
  }
}

function compileMatcher(m: unknown, where: string): CompiledMatcher {
  if (Array.isArray(m)) {
    if (m.length === 0) throw configError(where, 'an empty list of matchers matches nothing; remove the condition or add a matcher');
    const all = m.map((x, i) => compileStringMatcher(x, `${where}[${i}]`));
    return { describe: 'any of', test: (v) => all.some((x) => x.test(v)) };
  }
  return compileStringMatcher(m, where);
}

function configError(where: string, msg: string): WaxsealError {
  return new WaxsealError('ERR_CONFIG', `signing rules: ${where} ${msg}`);
}

const RULE_FIELDS = new Set(['name', 'issuer', 'subject', 'san', 'claims', 'extensions']);
const OID_TO_EXTENSION = new Map<string, string>(Object.entries(FULCIO_OID).map(([name, oid]) => [oid, name]));
const EXTENSION_NAMES = new Set<string>(Object.keys(FULCIO_OID));

interface Condition {
  label: string;
  get(ctx: SigningContext): unknown;
  matcher: CompiledMatcher;
}

interface CompiledRule {
  id: string;
  conditions: Condition[];
}

function compileRule(r: unknown, where: string): CompiledRule {
  if (typeof r !== 'object' || r === null || Array.isArray(r)) throw configError(where, 'must be an object');
  const rule = r as Record<string, unknown>;
  for (const k of Object.keys(rule))
    if (!RULE_FIELDS.has(k)) throw configError(where, `has unknown field ${JSON.stringify(k)} (allowed: ${[...RULE_FIELDS].join(', ')})`);
  if (rule['name'] !== undefined && (typeof rule['name'] !== 'string' || rule['name'] === ''))
    throw configError(where, 'name must be a non-empty string');
  const id = (rule['name'] as string | undefined) ?? where;
  const conditions: Condition[] = [];
  for (const field of ['issuer', 'subject', 'san'] as const) {
    if (rule[field] !== undefined)
      conditions.push({ label: field, get: (ctx) => ctx[field], matcher: compileMatcher(rule[field], `${where}.${field}`) });
  }
  const mapOf = (field: 'claims' | 'extensions'): Record<string, unknown> | undefined => {
    const v = rule[field];
    if (v === undefined) return undefined;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw configError(`${where}.${field}`, 'must be a map of name -> matcher');
    return v as Record<string, unknown>;
  };
  for (const [claim, m] of Object.entries(mapOf('claims') ?? {})) {
    conditions.push({
      label: `claim ${JSON.stringify(claim)}`,
      get: (ctx) => (ctx.claims && Object.hasOwn(ctx.claims, claim) ? ctx.claims[claim] : undefined),
      matcher: compileMatcher(m, `${where}.claims.${claim}`),
    });
  }
  for (const [key, m] of Object.entries(mapOf('extensions') ?? {})) {
    const name = OID_TO_EXTENSION.get(key) ?? key;
    const oid = (FULCIO_OID as Record<string, string>)[name];
    if (!EXTENSION_NAMES.has(name) && !/^\d+(\.\d+)+$/.test(key)) {
      throw configError(
        `${where}.extensions`,
        `unknown Fulcio extension ${JSON.stringify(key)} (use a name such as sourceRepositoryRef, or an OID)`,
      );
    }
    const get = (ctx: SigningContext): unknown => {
      for (const k of [name, oid, key]) if (k !== undefined && ctx.extensions && Object.hasOwn(ctx.extensions, k)) return ctx.extensions[k];
      return undefined;
    };
    conditions.push({ label: `extension ${name}`, get, matcher: compileMatcher(m, `${where}.extensions.${key}`) });
  }
  if (conditions.length === 0) throw configError(where, 'states no condition; to match everyone use issuer: {glob: "**"}');
  return { id, conditions };
}

/** The strings a claim value offers for matching (arrays: every scalar element). */
function candidates(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (typeof v === 'number' || typeof v === 'boolean') return [JSON.stringify(v)];
  if (Array.isArray(v))
    return v.flatMap((x) => (typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean' ? candidates(x) : []));
  return [];
}

/** The first condition of `rule` that does not match, or undefined when the rule matches. */
function firstMismatch(rule: CompiledRule, ctx: SigningContext): Condition | undefined {
  for (const c of rule.conditions) {
    if (!candidates(c.get(ctx)).some((v) => c.matcher.test(v))) return c;
  }
  return undefined;
}

function tooLong(ctx: SigningContext): string | undefined {
  const check = (label: string, v: unknown): string | undefined =>
    candidates(v).some((s) => s.length > MAX_VALUE_LENGTH) ? label : undefined;
  for (const f of ['issuer', 'subject', 'san'] as const) {
    const l = check(f, ctx[f]);
    if (l) return l;
  }
  for (const [k, v] of Object.entries(ctx.claims ?? {})) {
    const l = check(`claim ${JSON.stringify(k)}`, v);
    if (l) return l;
  }
  for (const [k, v] of Object.entries(ctx.extensions ?? {})) {
    const l = check(`extension ${k}`, v);
    if (l) return l;
  }
  return undefined;
}

/** Validates a rules configuration (already parsed from YAML/JSON) and compiles it. ERR_CONFIG on any error. */
export function compileSigningRules(config: unknown): SigningRules {
  if (config === undefined || config === null) config = {};
  if (typeof config !== 'object' || Array.isArray(config)) throw configError('configuration', 'must be a map with allow/deny lists');
  const c = config as Record<string, unknown>;
  for (const k of Object.keys(c))
    if (!['allow', 'deny', 'default'].includes(k))
      throw configError('configuration', `has unknown field ${JSON.stringify(k)} (allowed: allow, deny, default)`);
  const list = (k: 'allow' | 'deny'): CompiledRule[] => {
    const v = c[k];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw configError(k, 'must be a list of rules');
    return v.map((r, i) => compileRule(r, `${k}[${i}]`));
  };
  const allow = list('allow');
  const deny = list('deny');
  const dflt = c['default'];
  if (dflt !== undefined && dflt !== 'allow' && dflt !== 'deny') throw configError('default', 'must be "allow" or "deny"');
  const defaultAllows = dflt === undefined ? allow.length === 0 : dflt === 'allow';

  return (ctx: SigningContext): SigningDecision => {
    const long = tooLong(ctx);
    if (long) return { allowed: false, reason: `${long} is longer than ${MAX_VALUE_LENGTH} characters` };
    for (const r of deny) {
      if (!firstMismatch(r, ctx)) return { allowed: false, rule: r.id, reason: `matches deny rule ${JSON.stringify(r.id)}` };
    }
    let closest: { rule: CompiledRule; failed: Condition; index: number } | undefined;
    for (const r of allow) {
      const miss = firstMismatch(r, ctx);
      if (!miss) return { allowed: true, rule: r.id, reason: `matches allow rule ${JSON.stringify(r.id)}` };
      // "Closest" = the rule that got furthest through its conditions: the likeliest intended one.
      const index = r.conditions.indexOf(miss);
      if (!closest || index > closest.index) closest = { rule: r, failed: miss, index };
    }
    if (defaultAllows)
      return {
        allowed: true,
        reason: allow.length === 0 && deny.length === 0 ? 'no signing rules configured' : 'no rule matches and the default is allow',
      };
    // Name the field that failed, never the pattern: the requester should not learn the policy.
    const hint = closest ? ` (closest rule ${JSON.stringify(closest.rule.id)}: ${closest.failed.label} does not match)` : '';
    return { allowed: false, reason: `no allow rule matches${hint}` };
  };
}

/** Parses rules from YAML or JSON text (YAML is a superset of JSON) and compiles them. */
export function parseSigningRules(text: string): SigningRules {
  let doc: unknown;
  try {
    doc = parseYaml(text, { maxAliasCount: 100 });
  } catch (e) {
    throw new WaxsealError('ERR_CONFIG', `signing rules are not valid YAML/JSON: ${(e as Error).message}`, { cause: e });
  }
  return compileSigningRules(doc);
}

/** How an identity is named in refusals and audit records. */
export function describeIdentity(ctx: Pick<SigningContext, 'issuer' | 'san' | 'subject'>): string {
  return `${ctx.san || ctx.subject || '(no identity)'} (issuer ${ctx.issuer})`;
}

/**
 * The CA-facing check: returns the decision when signing is allowed and throws
 * WaxsealError('ERR_POLICY_DENIED', "<identity> is not allowed to sign: <reason>") otherwise.
 */
export function signingAuthorizer(rules: SigningRules | SigningRulesConfig): (ctx: SigningContext) => SigningDecision {
  const decide = typeof rules === 'function' ? rules : compileSigningRules(rules);
  return (ctx) => {
    const d = decide(ctx);
    if (!d.allowed) {
      throw new WaxsealError('ERR_POLICY_DENIED', `${describeIdentity(ctx)} is not allowed to sign: ${d.reason}`, {
        detail: d.rule === undefined ? { reason: d.reason } : { rule: d.rule, reason: d.reason },
      });
    }
    return d;
  };
}
