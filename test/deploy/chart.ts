// `helm template` without Helm: the chart's values merged as Helm merges them, checked against
// values.schema.json as Helm checks them, and its templates rendered by @ctrl/golang-template (a
// maintained TypeScript implementation of a subset of Go's text/template). The chart keeps to the
// part of Go templates on which that implementation and Go's own agree (deploy/helm/
// waxseal-admission/README.md, "Template subset"); lintTemplate() enforces it, so a template that
// renders here renders the same under Helm.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { type Json, type Obj, REPO, yamlDocs } from './k8s.ts';

export const CHART = join(REPO, 'deploy/helm/waxseal-admission');

// Loaded by name so that this file compiles, and the tests can say what to install, where the
// root devDependency is missing.
const RENDERER = '@ctrl/golang-template';
type Render = (template: string, data: Record<string, unknown>) => string;
let renderGoTemplate: Render | undefined;
try {
  renderGoTemplate = ((await import(RENDERER)) as { parse: Render }).parse;
} catch {}
/** Why the chart cannot be rendered here, or false. */
export const CANNOT_RENDER: string | false = renderGoTemplate ? false : `${RENDERER} is not installed (npm install -D ${RENDERER})`;

export interface Release {
  name: string;
  namespace: string;
}

export interface Rendered {
  /** Template file name -> its rendered text. */
  files: Record<string, string>;
  objects: Obj[];
  values: Obj;
}

const isMap = (v: Json | undefined): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Helm's coalescing: maps merge key by key, anything else (lists too) replaces; null deletes. */
export function mergeValues(base: Obj, over: Obj): Obj {
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === null) delete out[k];
    else if (isMap(v) && isMap(out[k])) out[k] = mergeValues(out[k] as Obj, v);
    else out[k] = v;
  }
  return out;
}

export function defaultValues(): Obj {
  return parseYaml(readFileSync(join(CHART, 'values.yaml'), 'utf8')) as Obj;
}

let valuesValidator: ((v: unknown) => string[]) | undefined;
/** The errors of values.schema.json over `values` (what `helm install` reports). */
export function valuesErrors(values: Obj): string[] {
  if (!valuesValidator) {
    const ajv = new Ajv({ allErrors: true, strict: true });
    const validate = ajv.compile(JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8')));
    valuesValidator = (v) => (validate(v) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`));
  }
  return valuesValidator(values);
}

const PATH = '\\.(?:Values|Release|Chart)(?:\\.[A-Za-z][A-Za-z0-9]*)+';
const COND = new RegExp(`^(?:${PATH}|not ${PATH}|(?:and|or) ${PATH} ${PATH})$`);
const PATH_RE = new RegExp(PATH, 'g');

function lookup(values: Json, path: string[]): Json | undefined {
  let v: Json | undefined = values;
  for (const p of path) v = isMap(v) ? v[p] : undefined;
  return v;
}

/**
 * The template subset. Actions: {{ .Values.a.b }}, {{ .Release.Name }}, {{ .Release.Namespace }},
 * {{ .Chart.Version }}, {{ .Chart.AppVersion }}; {{ if C }} / {{ else }} / {{ end }} where C is a
 * path, `not` a path, or `and`/`or` of two paths; {{ range .Values.list }} over a list of
 * strings with {{ . }} inside. No whitespace trimming, pipelines, functions, variables or
 * comments. Every .Values path exists in values.yaml, `if` never tests a map (Go treats an empty
 * map as false, the TypeScript renderer as true), and `range` only walks lists. Returns the
 * violations.
 */
export function lintTemplate(text: string, defaults: Obj): string[] {
  const errors: string[] = [];
  const stack: string[] = [];
  // A YAML formatter turns {{ x }} into the flow mapping { { x } }: the action is gone.
  for (const m of text.matchAll(/\{\s+\{/g))
    errors.push(`line ${text.slice(0, m.index).split('\n').length}: "{ {" (a reformatted action?)`);
  for (const m of text.matchAll(/\{\{(.*?)\}\}/gs)) {
    const raw = m[1]!;
    const line = text.slice(0, m.index).split('\n').length;
    const at = `line ${line} {{${raw}}}`;
    if (raw !== raw.trim() && !/^ \S(.*\S)? $/.test(raw)) errors.push(`${at}: write actions as {{ x }} (one space, no trimming)`);
    const a = raw.trim();
    let paths: string[] = [];
    if (a === 'end') {
      if (!stack.pop()) errors.push(`${at}: end without if/range`);
    } else if (a === 'else') {
      if (stack.at(-1) !== 'if') errors.push(`${at}: else outside if`);
    } else if (a.startsWith('if ')) {
      const cond = a.slice(3);
      if (!COND.test(cond)) errors.push(`${at}: condition outside the subset`);
      paths = cond.match(PATH_RE) ?? [];
      stack.push('if');
    } else if (a.startsWith('range ')) {
      const p = a.slice(6);
      if (!new RegExp(`^${PATH}$`).test(p) || !p.startsWith('.Values.')) errors.push(`${at}: range over a .Values path only`);
      const v = lookup(defaults, p.split('.').slice(2));
      if (!Array.isArray(v)) errors.push(`${at}: range over something that is not a list in values.yaml`);
      stack.push('range');
    } else if (a === '.') {
      if (!stack.includes('range')) errors.push(`${at}: {{ . }} outside range`);
    } else if (new RegExp(`^${PATH}$`).test(a)) {
      if (stack.includes('range')) errors.push(`${at}: inside range only {{ . }} is in the subset`);
      paths = [a];
    } else {
      errors.push(`${at}: outside the subset`);
    }
    for (const p of paths) {
      const parts = p.split('.').slice(1);
      if (parts[0] === 'Values') {
        const v = lookup(defaults, parts.slice(1));
        if (v === undefined) errors.push(`${at}: ${p} is not in values.yaml`);
        if (a.startsWith('if ') && isMap(v ?? null)) errors.push(`${at}: if over a map`);
      } else if (!['Release.Name', 'Release.Namespace', 'Chart.Version', 'Chart.AppVersion', 'Chart.Name'].includes(parts.join('.'))) {
        errors.push(`${at}: ${p} is not a built-in object the renderer provides`);
      }
    }
  }
  if (stack.length > 0) errors.push(`unterminated ${stack.join(', ')}`);
  return errors;
}

export function templateFiles(): string[] {
  return readdirSync(join(CHART, 'templates'))
    .filter((f) => f.endsWith('.yaml'))
    .sort();
}

/** Renders the chart as `helm template <release> deploy/helm/waxseal-admission -n <ns> -f <overrides>` would. */
export function renderChart(overrides: Obj = {}, release: Release = { name: 'waxseal', namespace: 'waxseal-system' }): Rendered {
  const values = mergeValues(defaultValues(), overrides);
  const bad = valuesErrors(values);
  if (bad.length > 0) throw new Error(`values.schema.json rejects the values: ${bad.join('; ')}`);
  const chart = parseYaml(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')) as Obj;
  const context = {
    Values: values,
    Release: { Name: release.name, Namespace: release.namespace, Service: 'Helm' },
    Chart: { Name: chart['name'], Version: chart['version'], AppVersion: chart['appVersion'] },
  };
  const files: Record<string, string> = {};
  const objects: Obj[] = [];
  for (const f of templateFiles()) {
    const text = readFileSync(join(CHART, 'templates', f), 'utf8');
    const lint = lintTemplate(text, defaultValues());
    if (lint.length > 0) throw new Error(`templates/${f}: ${lint.join('; ')}`);
    if (!renderGoTemplate) throw new Error(String(CANNOT_RENDER));
    files[f] = renderGoTemplate(text, context);
    // Helm drops documents that render empty.
    objects.push(...yamlDocs(files[f], `templates/${f}`));
  }
  return { files, objects, values };
}
