// A small subset of Go's text/template, enough for Fulcio's ci-provider claim templates:
//   {{ .claim }}  {{ index . "a/b" }}  {{ if eq .x "y" }}..{{ else if .z }}..{{ else }}..{{ end }}
//   parentheses, pipelines with `|`, string/number/bool literals, trim markers {{- -}}, comments.
// Functions: index, eq, ne, not, and, or, len, print. Executed the way Fulcio runs it
// (option missingkey=error): `.missing` is an error, `index . "missing"` yields "" as in Go.
// Templates are parsed once at configuration load; parse errors are configuration errors.
// Hand-written: no maintained JavaScript implementation of Go's text/template exists, and Fulcio's
// templates must evaluate exactly as Go evaluates them.
import { WaxsealError } from '@waxseal/core';

export type TemplateData = Readonly<Record<string, string>>;
type Value = string | number | boolean | TemplateData | null;

type Node =
  | { kind: 'text'; text: string }
  | { kind: 'action'; pipe: Pipeline }
  | { kind: 'if'; pipe: Pipeline; then: Node[]; otherwise: Node[] };

type Operand =
  | { kind: 'dot' }
  | { kind: 'field'; names: string[] }
  | { kind: 'literal'; value: string | number | boolean }
  | { kind: 'ident'; name: string }
  | { kind: 'paren'; pipe: Pipeline };

type Command = Operand[];
type Pipeline = Command[];

export interface CompiledTemplate {
  readonly source: string;
  /** True when the source contains an action (`{{`); otherwise Fulcio treats it as a claim name. */
  readonly isTemplate: boolean;
  execute(data: TemplateData): string;
}

const FUNCTIONS = new Set(['index', 'eq', 'ne', 'not', 'and', 'or', 'len', 'print']);

class TemplateSyntaxError extends Error {}
/** Raised while executing; the message names the missing claim or the failing operation. */
export class TemplateExecError extends Error {}

// ---------- lexing of one action's body ----------

type Tok =
  | { t: 'field'; names: string[] }
  | { t: 'dot' }
  | { t: 'str'; v: string }
  | { t: 'num'; v: number }
  | { t: 'ident'; v: string }
  | { t: '(' }
  | { t: ')' }
  | { t: '|' };

function lexAction(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
    } else if (c === '(' || c === ')' || c === '|') {
      out.push({ t: c });
      i++;
    } else if (c === '.') {
      const m = /^(?:\.[A-Za-z_][A-Za-z0-9_]*)+/.exec(src.slice(i));
      if (m) {
        out.push({ t: 'field', names: m[0].slice(1).split('.') });
        i += m[0].length;
      } else {
        out.push({ t: 'dot' });
        i++;
      }
    } else if (c === '"') {
      const m = /^"(?:[^"\\\n]|\\.)*"/.exec(src.slice(i));
      if (!m) throw new TemplateSyntaxError('unterminated quoted string');
      try {
        out.push({ t: 'str', v: JSON.parse(m[0].replace(/\\'/g, "'")) as string });
      } catch {
        throw new TemplateSyntaxError(`bad string literal ${m[0]}`);
      }
      i += m[0].length;
    } else if (c === '`') {
      const end = src.indexOf('`', i + 1);
      if (end < 0) throw new TemplateSyntaxError('unterminated raw string');
      out.push({ t: 'str', v: src.slice(i + 1, end) });
      i = end + 1;
    } else if (/[-+0-9]/.test(c)) {
      const m = /^[-+]?(?:0x[0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)/.exec(src.slice(i));
      if (!m) throw new TemplateSyntaxError(`unexpected ${JSON.stringify(c)}`);
      out.push({ t: 'num', v: Number(m[0]) });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i))!;
      out.push({ t: 'ident', v: m[0] });
      i += m[0].length;
    } else if (c === '$') {
      throw new TemplateSyntaxError('template variables are not supported');
    } else {
      throw new TemplateSyntaxError(`unexpected ${JSON.stringify(c)} in action`);
    }
  }
  return out;
}

function parsePipeline(toks: Tok[], pos: { i: number }, closing: ')' | 'end'): Pipeline {
  const pipe: Pipeline = [];
  let cmd: Command = [];
  for (;;) {
    const tok = toks[pos.i];
    if (tok === undefined || tok.t === ')') {
      if (tok?.t === ')' && closing !== ')') throw new TemplateSyntaxError('unexpected )');
      if (tok === undefined && closing === ')') throw new TemplateSyntaxError('unclosed (');
      if (tok) pos.i++;
      break;
    }
    pos.i++;
    switch (tok.t) {
      case '|':
        if (cmd.length === 0) throw new TemplateSyntaxError('missing command before |');
        pipe.push(cmd);
        cmd = [];
        break;
      case '(':
        cmd.push({ kind: 'paren', pipe: parsePipeline(toks, pos, ')') });
        break;
      case 'dot':
        cmd.push({ kind: 'dot' });
        break;
      case 'field':
        cmd.push({ kind: 'field', names: tok.names });
        break;
      case 'str':
      case 'num':
        cmd.push({ kind: 'literal', value: tok.v });
        break;
      case 'ident':
        if (tok.v === 'true' || tok.v === 'false') cmd.push({ kind: 'literal', value: tok.v === 'true' });
        else if (FUNCTIONS.has(tok.v)) cmd.push({ kind: 'ident', name: tok.v });
        else throw new TemplateSyntaxError(`function "${tok.v}" not defined`);
        break;
    }
  }
  if (cmd.length === 0) throw new TemplateSyntaxError('missing value for command');
  pipe.push(cmd);
  for (const c of pipe) {
    for (let k = 1; k < c.length; k++) {
      if (c[k]!.kind === 'ident')
        throw new TemplateSyntaxError(`function "${(c[k] as { name: string }).name}" used as an argument; use parentheses`);
    }
    if (c[0]!.kind !== 'ident' && c.length > 1) throw new TemplateSyntaxError("can't give argument to non-function");
  }
  return pipe;
}

// ---------- template structure ----------

interface RawAction {
  body: string;
}

function splitTemplate(src: string): (string | RawAction)[] {
  const parts: (string | RawAction)[] = [];
  let i = 0;
  let trimNextText = false;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    let text = open < 0 ? src.slice(i) : src.slice(i, open);
    if (trimNextText) text = text.replace(/^\s+/, '');
    trimNextText = false;
    if (open < 0) {
      if (text) parts.push(text);
      break;
    }
    let bodyStart = open + 2;
    // "{{- " trims the whitespace before the action (the dash must be followed by a space).
    if (/^- /.test(src.slice(bodyStart, bodyStart + 2)) || /^-\t|^-\n/.test(src.slice(bodyStart, bodyStart + 2))) {
      text = text.replace(/\s+$/, '');
      bodyStart += 1;
    }
    if (text) parts.push(text);
    let close: number;
    let body: string;
    if (src.startsWith('/*', bodyStart) || src.startsWith('/*', bodyStart + 1)) {
      const end = src.indexOf('*/', bodyStart);
      if (end < 0) throw new TemplateSyntaxError('unclosed comment');
      close = src.indexOf('}}', end);
      if (close < 0) throw new TemplateSyntaxError('unclosed action');
      if (src.slice(end + 2, close).trim() !== '' && src.slice(end + 2, close).trim() !== '-')
        throw new TemplateSyntaxError('text after comment');
      body = src.slice(end + 2, close).trim() === '-' ? ' -' : '';
    } else {
      close = findActionEnd(src, bodyStart);
      body = src.slice(bodyStart, close);
    }
    const after = close + 2;
    if (/\s-$/.test(body)) {
      body = body.slice(0, -1);
      trimNextText = true;
    }
    if (body.trim() !== '') parts.push({ body });
    i = after;
  }
  return parts;
}

// The end of an action, skipping "}}" inside quoted or raw strings.
function findActionEnd(src: string, from: number): number {
  let i = from;
  while (i < src.length) {
    const c = src[i]!;
    if (c === '"') {
      i++;
      while (i < src.length && src[i] !== '"') i += src[i] === '\\' ? 2 : 1;
      i++;
    } else if (c === '`') {
      const end = src.indexOf('`', i + 1);
      if (end < 0) break;
      i = end + 1;
    } else if (src.startsWith('}}', i)) {
      return i;
    } else {
      i++;
    }
  }
  throw new TemplateSyntaxError('unclosed action');
}

function parseNodes(parts: (string | RawAction)[]): Node[] {
  let pos = 0;
  const parseList = (inIf: boolean): { nodes: Node[]; ended: 'end' | 'else' | 'elseif' | 'eof'; elsePipe?: Pipeline } => {
    const nodes: Node[] = [];
    while (pos < parts.length) {
      const p = parts[pos++]!;
      if (typeof p === 'string') {
        nodes.push({ kind: 'text', text: p });
        continue;
      }
      const toks = lexAction(p.body);
      const head = toks[0];
      if (head?.t === 'ident' && head.v === 'end') {
        if (!inIf || toks.length !== 1) throw new TemplateSyntaxError('unexpected {{end}}');
        return { nodes, ended: 'end' };
      }
      if (head?.t === 'ident' && head.v === 'else') {
        if (!inIf) throw new TemplateSyntaxError('unexpected {{else}}');
        if (toks.length === 1) return { nodes, ended: 'else' };
        const next = toks[1];
        if (next?.t === 'ident' && next.v === 'if') {
          return { nodes, ended: 'elseif', elsePipe: parsePipeline(toks, { i: 2 }, 'end') };
        }
        throw new TemplateSyntaxError('unexpected tokens after else');
      }
      if (head?.t === 'ident' && head.v === 'if') {
        nodes.push(parseIf(parsePipeline(toks, { i: 1 }, 'end')));
        continue;
      }
      if (head?.t === 'ident' && ['range', 'with', 'define', 'template', 'block', 'break', 'continue'].includes(head.v)) {
        throw new TemplateSyntaxError(`{{${head.v}}} is not supported`);
      }
      nodes.push({ kind: 'action', pipe: parsePipeline(toks, { i: 0 }, 'end') });
    }
    if (inIf) throw new TemplateSyntaxError('unexpected EOF: {{if}} without {{end}}');
    return { nodes, ended: 'eof' };
  };
  const parseIf = (pipe: Pipeline): Node => {
    const body = parseList(true);
    if (body.ended === 'end') return { kind: 'if', pipe, then: body.nodes, otherwise: [] };
    if (body.ended === 'elseif') {
      // {{else if x}} ... shares the outer {{end}}.
      return { kind: 'if', pipe, then: body.nodes, otherwise: [parseIf(body.elsePipe!)] };
    }
    const rest = parseList(true);
    if (rest.ended !== 'end') throw new TemplateSyntaxError('expected {{end}} after {{else}}');
    return { kind: 'if', pipe, then: body.nodes, otherwise: rest.nodes };
  };
  return parseList(false).nodes;
}

// ---------- execution ----------

function truthy(v: Value): boolean {
  if (v === null) return false;
  if (typeof v === 'string') return v.length > 0;
  if (typeof v === 'number') return v !== 0;
  if (typeof v === 'boolean') return v;
  return Object.keys(v).length > 0;
}

function typeName(v: Value): string {
  if (v === null) return 'nil';
  if (typeof v === 'object') return 'map[string]string';
  return typeof v === 'number' ? 'number' : typeof v === 'boolean' ? 'bool' : 'string';
}

function isMap(v: Value): v is TemplateData {
  return v !== null && typeof v === 'object';
}

function callFunction(name: string, args: Value[]): Value {
  switch (name) {
    case 'index': {
      if (args.length < 1) throw new TemplateExecError('index: missing arguments');
      let cur: Value = args[0]!;
      for (const k of args.slice(1)) {
        if (!isMap(cur)) throw new TemplateExecError(`index: can't index item of type ${typeName(cur)}`);
        if (typeof k !== 'string') throw new TemplateExecError('index: map key must be a string');
        // Go's index returns the zero value for a missing map key (missingkey does not apply).
        cur = Object.hasOwn(cur, k) ? cur[k]! : '';
      }
      return cur;
    }
    case 'eq':
    case 'ne': {
      if (args.length < 2) throw new TemplateExecError(`${name}: missing arguments`);
      const [a, ...rest] = args as [Value, ...Value[]];
      const comparable = (x: Value) => x === null || typeof x !== 'object';
      let hit = false;
      for (const b of rest) {
        if (!comparable(a) || !comparable(b)) throw new TemplateExecError(`${name}: non-comparable type`);
        if (a !== null && b !== null && typeof a !== typeof b) throw new TemplateExecError(`${name}: incompatible types for comparison`);
        if (a === b) hit = true;
      }
      if (name === 'ne' && rest.length !== 1) throw new TemplateExecError('ne: wrong number of arguments');
      return name === 'eq' ? hit : !hit;
    }
    case 'not':
      if (args.length !== 1) throw new TemplateExecError('not: wrong number of arguments');
      return !truthy(args[0]!);
    case 'and': {
      if (args.length < 1) throw new TemplateExecError('and: missing arguments');
      for (const a of args) if (!truthy(a)) return a;
      return args[args.length - 1]!;
    }
    case 'or': {
      if (args.length < 1) throw new TemplateExecError('or: missing arguments');
      for (const a of args) if (truthy(a)) return a;
      return args[args.length - 1]!;
    }
    case 'len': {
      if (args.length !== 1) throw new TemplateExecError('len: wrong number of arguments');
      const a = args[0]!;
      if (typeof a === 'string') return Buffer.byteLength(a);
      if (isMap(a)) return Object.keys(a).length;
      throw new TemplateExecError(`len of type ${typeName(a)}`);
    }
    case 'print':
      return args.map(printValue).join('');
    default:
      throw new TemplateExecError(`function "${name}" not defined`);
  }
}

function evalOperand(op: Operand, data: TemplateData): Value {
  switch (op.kind) {
    case 'dot':
      return data;
    case 'literal':
      return op.value;
    case 'paren':
      return evalPipeline(op.pipe, data);
    case 'ident':
      return callFunction(op.name, []);
    case 'field': {
      let cur: Value = data;
      for (const name of op.names) {
        if (!isMap(cur)) throw new TemplateExecError(`can't evaluate field ${name} in type ${typeName(cur)}`);
        if (!Object.hasOwn(cur, name)) throw new TemplateExecError(`map has no entry for key "${name}"`);
        cur = cur[name]!;
      }
      return cur;
    }
  }
}

function evalPipeline(pipe: Pipeline, data: TemplateData): Value {
  let prev: Value | undefined;
  for (const cmd of pipe) {
    const head = cmd[0]!;
    if (head.kind === 'ident') {
      const args = cmd.slice(1).map((o) => evalOperand(o, data));
      if (prev !== undefined) args.push(prev);
      prev = callFunction(head.name, args);
    } else {
      if (prev !== undefined) throw new TemplateExecError("can't give argument to non-function");
      prev = evalOperand(head, data);
    }
  }
  return prev ?? null;
}

function printValue(v: Value): string {
  if (v === null) return '<no value>';
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') return goFormatValue(v);
  return goFormatValue(v);
}

function run(nodes: Node[], data: TemplateData, out: string[]): void {
  for (const n of nodes) {
    if (n.kind === 'text') out.push(n.text);
    else if (n.kind === 'action') out.push(printValue(evalPipeline(n.pipe, data)));
    else run(truthy(evalPipeline(n.pipe, data)) ? n.then : n.otherwise, data, out);
  }
}

/** Parses a template; throws ERR_CONFIG with the reason on syntax errors. */
export function compileTemplate(source: string, what = 'template'): CompiledTemplate {
  let nodes: Node[];
  try {
    nodes = parseNodes(splitTemplate(source));
  } catch (e) {
    if (e instanceof TemplateSyntaxError) throw new WaxsealError('ERR_CONFIG', `${what}: ${e.message} in ${JSON.stringify(source)}`);
    throw e;
  }
  return {
    source,
    isTemplate: source.includes('{{'),
    execute(data) {
      const out: string[] = [];
      run(nodes, data, out);
      return out.join('');
    },
  };
}

// ---------- Go value formatting (fmt %v and strconv 'f' -1) ----------

/** strconv.FormatFloat(v, 'f', -1, 64): shortest round-trip digits, never an exponent. */
export function formatFloatF(v: number): string {
  if (!Number.isFinite(v)) return Number.isNaN(v) ? 'NaN' : v > 0 ? '+Inf' : '-Inf';
  if (Number.isInteger(v)) return BigInt(v).toString();
  const s = String(v);
  if (!s.includes('e')) return s;
  const m = /^(-?)(\d)(?:\.(\d+))?e([-+]\d+)$/.exec(v.toExponential())!;
  const digits = m[2]! + (m[3] ?? '');
  const exp = Number(m[4]);
  if (exp < 0) return `${m[1]}0.${'0'.repeat(-exp - 1)}${digits}`;
  return `${m[1]}${digits.padEnd(exp + 1, '0').slice(0, exp + 1)}${digits.length > exp + 1 ? `.${digits.slice(exp + 1)}` : ''}`;
}

/** fmt's %v for a float64: strconv 'g' with the shortest digits, exponent form when exp < -4 or exp >= 6. */
function formatFloatV(v: number): string {
  if (!Number.isFinite(v)) return Number.isNaN(v) ? 'NaN' : v > 0 ? '+Inf' : '-Inf';
  if (v === 0) return Object.is(v, -0) ? '-0' : '0';
  const m = /^(-?)(\d)(?:\.(\d+))?e([-+]\d+)$/.exec(v.toExponential())!;
  const exp = Number(m[4]);
  if (exp < -4 || exp >= 6) {
    const e = Math.abs(exp);
    return `${m[1]}${m[2]}${m[3] ? `.${m[3]}` : ''}e${exp < 0 ? '-' : '+'}${e < 10 ? `0${e}` : e}`;
  }
  return formatFloatF(v);
}

/** Go's fmt %v rendering of a JSON value (maps print as map[k:v] with sorted keys). */
export function goFormatValue(v: unknown): string {
  if (v === null || v === undefined) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') return formatFloatV(v);
  if (Array.isArray(v)) return `[${v.map(goFormatValue).join(' ')}]`;
  if (typeof v === 'object') {
    const keys = Object.keys(v as object).sort();
    return `map[${keys.map((k) => `${k}:${goFormatValue((v as Record<string, unknown>)[k])}`).join(' ')}]`;
  }
  return String(v);
}

/**
 * Fulcio's claim flattening for ci-provider templates: every top-level claim becomes a string;
 * floats without a fractional part print as integers, other values as Go's %v would.
 */
export function claimToString(v: unknown): string {
  if (typeof v === 'number') return formatFloatF(v);
  return goFormatValue(v);
}
