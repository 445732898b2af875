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
//   except `/`, and `\` escapes the next character; {regexp} in Go RE2 syntax (as Fulcio and
//   cosign), always matched against the whole value (as `^(?:…)$`); what RE2 refuses
//   (backreferences, lookaround, possessive repetition) is refused at load. A list of matchers
//   matches if any does. Claims that are arrays match if any element matches; numbers and
//   booleans are compared in their JSON text form; a missing claim or extension never matches.
// - Globs and regexps run on @waxseal/core's RE2 engine (time linear in the value length times
//   the pattern size), never on a backtracking engine, so no pattern/value pair can hang the CA.
//   Values longer than MAX_VALUE_LENGTH are refused outright (fail closed).
import { parse as parseYaml } from 'yaml';
import { compileRegexp, FULCIO_OID, isWaxsealError, quoteRegexp, WaxsealError } from '@waxseal/core';

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
/** Bound on a compiled pattern, so matching costs at most this much per character of a value. */
const MAX_NFA_STATES = 2048;

// ---------------------------------------------------------------------------------------------
// Globs and regexps both run on @waxseal/core's RE2 engine (a linear-time NFA): a glob is
// translated to an RE2 pattern, and every pattern must match the whole value.

class PatternError extends Error {}

/** The RE2 pattern for a glob: `*` is `[^/]*`, `**` is `(?s:.*)`, `?` is `[^/]`, the rest literal. */
function globToRegexp(glob: string): string {
  let out = '';
  const cps = [...glob];
  for (let i = 0; i < cps.length; i++) {
    const c = cps[i]!;
    if (c === '\\') {
      const lit = cps[++i];
      if (lit === undefined) throw new PatternError('glob ends with a lone backslash');
      out += quoteRegexp(lit);
    } else if (c === '*') {
      if (cps[i + 1] === '*') {
        while (cps[i + 1] === '*') i++;
        out += '(?s:.*)';
      } else out += '[^/]*';
    } else if (c === '?') out += '[^/]';
    else out += quoteRegexp(c);
  }
  return out;
}

function compileWhole(pattern: string, where: string, kind: string): (v: string) => boolean {
  try {
    const re = compileRegexp(pattern, { maxStates: MAX_NFA_STATES });
    return (v) => re.fullMatch(v);
  } catch (e) {
    if (isWaxsealError(e)) throw configError(where, kind === 'regexp' ? e.message : `unsupported ${kind}: ${e.message}`);
    throw e;
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
      let translated: string;
      try {
        translated = globToRegexp(pattern);
      } catch (e) {
        if (e instanceof PatternError) throw configError(where, `unsupported glob: ${e.message}`);
        throw e;
      }
      return { describe: 'glob', test: compileWhole(translated, where, 'glob') };
    }
    case 'regexp':
      return { describe: 'regexp', test: compileWhole(pattern, where, 'regexp') };
    default:
      throw configError(where, `unknown matcher ${JSON.stringify(kind)} (use exact, glob or regexp)`);
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
