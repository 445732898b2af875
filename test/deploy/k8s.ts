// What an API server does with a custom resource, in the parts the tests need: the CRD's
// structural-schema rules, pruning of unknown fields, and OpenAPI v3 validation (ajv standing in
// for the API server's validator); and the built-in kinds checked against the models that
// @kubernetes/client-node generates from Kubernetes' own OpenAPI (field names, types, required).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { parseAllDocuments } from 'yaml';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type Obj = { [k: string]: Json };
type Schema = { [k: string]: unknown };

export const REPO = join(import.meta.dirname, '../..');

/** Every document of a YAML text; a document with a syntax error throws. Empty documents are dropped. */
export function yamlDocs(text: string, what: string): Obj[] {
  const out: Obj[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`${what}: ${doc.errors[0]!.message}`);
    const v = doc.toJSON() as Json;
    if (v === null) continue;
    if (typeof v !== 'object' || Array.isArray(v)) throw new Error(`${what}: a document is not a mapping`);
    out.push(v);
  }
  return out;
}

export function readYaml(path: string): Obj[] {
  return yamlDocs(readFileSync(path, 'utf8'), path);
}

const JUNCTORS = ['allOf', 'anyOf', 'oneOf', 'not'] as const;
// Inside a junctor Kubernetes allows value validations only.
const FORBIDDEN_IN_JUNCTORS = [
  'type',
  'description',
  'default',
  'additionalProperties',
  'nullable',
  'x-kubernetes-preserve-unknown-fields',
];

/**
 * The structural-schema rules of apiextensions.k8s.io/v1 that our schemas could break: a type on
 * every node, no properties beside additionalProperties, junctors without types, defaults or
 * descriptions, and every field a junctor names also declared outside it. Returns the violations.
 */
export function structuralViolations(schema: Schema, path = ''): string[] {
  const v: string[] = [];
  const preserve = schema['x-kubernetes-preserve-unknown-fields'] === true;
  if (typeof schema['type'] !== 'string' && !preserve && schema['x-kubernetes-int-or-string'] !== true) v.push(`${path || '/'}: no type`);
  if (schema['properties'] && schema['additionalProperties'] !== undefined) v.push(`${path}: properties and additionalProperties`);
  const props = (schema['properties'] ?? {}) as Record<string, Schema>;
  for (const [k, s] of Object.entries(props)) v.push(...structuralViolations(s, `${path}.${k}`));
  if (schema['items']) v.push(...structuralViolations(schema['items'] as Schema, `${path}[]`));
  if (typeof schema['additionalProperties'] === 'object')
    v.push(...structuralViolations(schema['additionalProperties'] as Schema, `${path}{}`));
  const walkJunctor = (j: Schema, at: string): void => {
    for (const f of FORBIDDEN_IN_JUNCTORS) if (f in j) v.push(`${at}: ${f} inside a junctor`);
    for (const r of (j['required'] ?? []) as string[]) if (!(r in props)) v.push(`${at}: requires undeclared field ${r}`);
    for (const p of Object.keys((j['properties'] ?? {}) as Schema)) if (!(p in props)) v.push(`${at}: constrains undeclared field ${p}`);
    for (const name of JUNCTORS) {
      const sub = j[name];
      if (sub === undefined) continue;
      for (const [i, s] of (Array.isArray(sub) ? sub : [sub]).entries()) walkJunctor(s as Schema, `${at}.${name}[${i}]`);
    }
  };
  for (const name of JUNCTORS) {
    const sub = schema[name];
    if (sub === undefined) continue;
    for (const [i, s] of (Array.isArray(sub) ? sub : [sub]).entries()) walkJunctor(s as Schema, `${path}.${name}[${i}]`);
  }
  return v;
}

/**
 * Drops what the API server drops: fields not declared in the schema (unless the node preserves
 * unknown fields). Returns the pruned copy and the JSON paths that were dropped. ObjectMeta is
 * kept whole: the API server validates it itself.
 */
export function prune(value: Json, schema: Schema, path = ''): { value: Json; pruned: string[] } {
  const pruned: string[] = [];
  const walk = (v: Json, s: Schema, p: string): Json => {
    if (Array.isArray(v)) return s['items'] ? v.map((x, i) => walk(x, s['items'] as Schema, `${p}[${i}]`)) : v;
    if (v === null || typeof v !== 'object') return v;
    if (s['x-kubernetes-preserve-unknown-fields'] === true || p === '.metadata') return v;
    const props = s['properties'] as Record<string, Schema> | undefined;
    const extra = s['additionalProperties'];
    const out: Obj = {};
    for (const [k, x] of Object.entries(v)) {
      if (props?.[k]) out[k] = walk(x, props[k], `${p}.${k}`);
      else if (typeof extra === 'object') out[k] = walk(x, extra as Schema, `${p}.${k}`);
      else if (extra === true) out[k] = x;
      else pruned.push(`${p}.${k}`);
    }
    return out;
  };
  return { value: walk(value, schema, path), pruned };
}

function newAjv(): Ajv {
  const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false, strictTypes: false, validateFormats: true });
  // The Kubernetes extensions are annotations for the validator.
  for (const k of [
    'x-kubernetes-preserve-unknown-fields',
    'x-kubernetes-int-or-string',
    'x-kubernetes-list-type',
    'x-kubernetes-map-type',
  ]) {
    ajv.addKeyword(k);
  }
  // The formats Kubernetes checks (k8s.io/kube-openapi/pkg/validation/strfmt).
  ajv.addFormat('byte', /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/);
  ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isInteger(n) });
  ajv.addFormat('int32', { type: 'number', validate: (n: number) => Number.isInteger(n) && Math.abs(n) < 2 ** 31 });
  return ajv;
}

export interface CrValidation {
  ok: boolean;
  errors: string[];
  pruned: string[];
  /** The object as the API server would store it. */
  value: Json;
}

/** Validators for the custom resources of a set of CRDs, keyed by apiVersion and kind. */
export class CrdSet {
  readonly #byKey = new Map<string, { schema: Schema; validate: ValidateFunction; scope: string }>();
  readonly crds: Obj[];

  constructor(crds: Obj[]) {
    this.crds = crds;
    const ajv = newAjv();
    for (const crd of crds) {
      const spec = crd['spec'] as Schema;
      const names = spec['names'] as Schema;
      for (const ver of spec['versions'] as Schema[]) {
        const schema = (ver['schema'] as Schema)['openAPIV3Schema'] as Schema;
        this.#byKey.set(`${spec['group']}/${ver['name']}/${names['kind']}`, {
          schema,
          validate: ajv.compile(schema),
          scope: spec['scope'] as string,
        });
      }
    }
  }

  has(apiVersion: string, kind: string): boolean {
    return this.#byKey.has(`${apiVersion}/${kind}`);
  }

  scope(apiVersion: string, kind: string): string | undefined {
    return this.#byKey.get(`${apiVersion}/${kind}`)?.scope;
  }

  validate(obj: Obj): CrValidation {
    const entry = this.#byKey.get(`${obj['apiVersion']}/${obj['kind']}`);
    if (!entry) return { ok: false, errors: [`no CRD serves ${obj['apiVersion']} ${obj['kind']}`], pruned: [], value: obj };
    const { value, pruned } = prune(obj, entry.schema);
    const ok = entry.validate(value) as boolean;
    return { ok, errors: ok ? [] : formatErrors(entry.validate.errors ?? []), pruned, value };
  }
}

function formatErrors(errors: ErrorObject[]): string[] {
  return errors.map((e) => `${e.instancePath || '/'} ${e.message ?? e.keyword}${e.params ? ` ${JSON.stringify(e.params)}` : ''}`);
}

// ---- built-in kinds, from @kubernetes/client-node's generated models ----

interface Attr {
  name: string;
  baseName: string;
  type: string;
  format: string;
}
type Model = { attributeTypeMap?: Attr[] };

const MODELS_DIR = join(dirname(fileURLToPath(import.meta.resolve('@kubernetes/client-node'))), 'gen/models');
const requiredCache = new Map<string, Set<string>>();

/** The required fields of a model: the properties its generated .d.ts declares without `?`. */
function requiredOf(model: string): Set<string> {
  let req = requiredCache.get(model);
  if (!req) {
    req = new Set();
    const dts = readFileSync(join(MODELS_DIR, `${model}.d.ts`), 'utf8');
    for (const m of dts.matchAll(/^\s+'([^']+)'(\??):/gm)) if (m[2] === '') req.add(m[1]!);
    requiredCache.set(model, req);
  }
  return req;
}

function model(name: string): Attr[] | undefined {
  return ((k8s as unknown as Record<string, Model | undefined>)[name] ?? undefined)?.attributeTypeMap;
}

/** The client-node model of each built-in kind the deployment uses. */
export const KIND_MODELS: Record<string, string> = {
  'v1/Namespace': 'V1Namespace',
  'v1/ServiceAccount': 'V1ServiceAccount',
  'v1/Service': 'V1Service',
  'v1/ConfigMap': 'V1ConfigMap',
  'v1/Secret': 'V1Secret',
  'apps/v1/Deployment': 'V1Deployment',
  'policy/v1/PodDisruptionBudget': 'V1PodDisruptionBudget',
  'rbac.authorization.k8s.io/v1/ClusterRole': 'V1ClusterRole',
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': 'V1ClusterRoleBinding',
  'rbac.authorization.k8s.io/v1/Role': 'V1Role',
  'rbac.authorization.k8s.io/v1/RoleBinding': 'V1RoleBinding',
  'admissionregistration.k8s.io/v1/ValidatingWebhookConfiguration': 'V1ValidatingWebhookConfiguration',
  'admissionregistration.k8s.io/v1/MutatingWebhookConfiguration': 'V1MutatingWebhookConfiguration',
  'apiextensions.k8s.io/v1/CustomResourceDefinition': 'V1CustomResourceDefinition',
};

// Enumerations that Kubernetes' OpenAPI leaves to prose, for the fields we set.
const ENUMS: Record<string, string[]> = {
  'V1ValidatingWebhook.failurePolicy': ['Fail', 'Ignore'],
  'V1MutatingWebhook.failurePolicy': ['Fail', 'Ignore'],
  'V1ValidatingWebhook.sideEffects': ['None', 'NoneOnDryRun'],
  'V1MutatingWebhook.sideEffects': ['None', 'NoneOnDryRun'],
  'V1ValidatingWebhook.matchPolicy': ['Exact', 'Equivalent'],
  'V1MutatingWebhook.matchPolicy': ['Exact', 'Equivalent'],
  'V1MutatingWebhook.reinvocationPolicy': ['Never', 'IfNeeded'],
  'V1RuleWithOperations.scope': ['Cluster', 'Namespaced', '*'],
  'V1RuleWithOperations.operations': ['CREATE', 'UPDATE', 'DELETE', 'CONNECT', '*'],
  'V1LabelSelectorRequirement.operator': ['In', 'NotIn', 'Exists', 'DoesNotExist'],
  'V1ServiceSpec.type': ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'],
  'V1ServicePort.protocol': ['TCP', 'UDP', 'SCTP'],
  'V1ContainerPort.protocol': ['TCP', 'UDP', 'SCTP'],
  'V1HTTPGetAction.scheme': ['HTTP', 'HTTPS'],
  'V1Container.imagePullPolicy': ['Always', 'IfNotPresent', 'Never'],
  'V1SeccompProfile.type': ['RuntimeDefault', 'Unconfined', 'Localhost'],
  'V1DeploymentStrategy.type': ['RollingUpdate', 'Recreate'],
};

/**
 * Checks a built-in object against its client-node model: unknown fields (what `kubectl apply
 * --validate=strict` rejects), wrong types, missing required fields, and the enums above.
 */
export function validateBuiltin(obj: Obj): string[] {
  const key = `${obj['apiVersion']}/${obj['kind']}`;
  const name = KIND_MODELS[key];
  if (!name) return [`${key}: not a kind the deployment is expected to use`];
  const errors: string[] = [];
  checkModel(obj, name, '', errors);
  const meta = obj['metadata'] as Obj | undefined;
  if (!meta || typeof meta['name'] !== 'string' || meta['name'] === '') errors.push('.metadata.name: required');
  return errors;
}

function checkModel(v: Json, modelName: string, path: string, errors: string[]): void {
  const attrs = model(modelName);
  if (!attrs) {
    errors.push(`${path}: no model ${modelName}`);
    return;
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    errors.push(`${path || '/'}: expected an object (${modelName})`);
    return;
  }
  const byName = new Map(attrs.map((a) => [a.baseName, a]));
  for (const [k, x] of Object.entries(v)) {
    const a = byName.get(k);
    if (!a) errors.push(`${path}.${k}: unknown field of ${modelName}`);
    else checkType(x, a.type, a.format, `${path}.${k}`, errors, `${modelName}.${k}`);
  }
  for (const r of requiredOf(modelName)) {
    const a = attrs.find((x) => x.name === r);
    if (a && !(a.baseName in v)) errors.push(`${path}.${a.baseName}: required by ${modelName}`);
  }
}

function checkType(v: Json, type: string, format: string, path: string, errors: string[], enumKey: string): void {
  const allowed = ENUMS[enumKey];
  const array = /^Array<(.+)>$/.exec(type);
  if (array) {
    if (!Array.isArray(v)) errors.push(`${path}: expected a list`);
    else v.forEach((x, i) => checkType(x, array[1]!, format, `${path}[${i}]`, errors, enumKey));
    return;
  }
  if (/^\{ \[key: string\]: (.+); \}$/.test(type)) {
    const inner = /^\{ \[key: string\]: (.+); \}$/.exec(type)![1]!;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) errors.push(`${path}: expected a map`);
    else for (const [k, x] of Object.entries(v)) checkType(x, inner, '', `${path}.${k}`, errors, '');
    return;
  }
  switch (type) {
    case 'string':
      if (typeof v !== 'string') errors.push(`${path}: expected a string, got ${JSON.stringify(v)}`);
      else if (format === 'byte' && !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) errors.push(`${path}: not base64`);
      else if (allowed && !allowed.includes(v)) errors.push(`${path}: ${JSON.stringify(v)} is not one of ${allowed.join(', ')}`);
      return;
    case 'number':
      if (typeof v !== 'number' || ((format === 'int32' || format === 'int64') && !Number.isInteger(v)))
        errors.push(`${path}: expected ${format || 'a number'}, got ${JSON.stringify(v)}`);
      return;
    case 'boolean':
      if (typeof v !== 'boolean') errors.push(`${path}: expected a boolean, got ${JSON.stringify(v)}`);
      return;
    case 'IntOrString':
      if (typeof v !== 'string' && !(typeof v === 'number' && Number.isInteger(v))) errors.push(`${path}: expected an int or a string`);
      return;
    case 'Date':
      if (typeof v !== 'string') errors.push(`${path}: expected a timestamp`);
      return;
    case 'any':
    case 'object':
      return;
    default:
      checkModel(v, type, path, errors);
  }
}

// ---- cert-manager's kinds, for the fields the deployment sets (cert-manager is not installed here) ----

const issuerRef = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: { name: { type: 'string', minLength: 1 }, kind: { enum: ['Issuer', 'ClusterIssuer'] }, group: { type: 'string' } },
};
const CERT_MANAGER: Record<string, Schema> = {
  Issuer: {
    type: 'object',
    additionalProperties: false,
    minProperties: 1,
    maxProperties: 1,
    properties: {
      selfSigned: { type: 'object', additionalProperties: false, properties: {} },
      ca: {
        type: 'object',
        additionalProperties: false,
        required: ['secretName'],
        properties: { secretName: { type: 'string', minLength: 1 } },
      },
    },
  },
  Certificate: {
    type: 'object',
    additionalProperties: false,
    required: ['secretName', 'issuerRef'],
    properties: {
      secretName: { type: 'string', minLength: 1 },
      isCA: { type: 'boolean' },
      commonName: { type: 'string', maxLength: 64 },
      dnsNames: { type: 'array', items: { type: 'string', minLength: 1 } },
      duration: { type: 'string', pattern: '^[0-9]+(h|m|s)$' },
      renewBefore: { type: 'string', pattern: '^[0-9]+(h|m|s)$' },
      privateKey: {
        type: 'object',
        additionalProperties: false,
        properties: {
          algorithm: { enum: ['RSA', 'ECDSA', 'Ed25519'] },
          size: { type: 'integer' },
          rotationPolicy: { enum: ['Never', 'Always'] },
        },
      },
      issuerRef,
    },
  },
};
let certManagerAjv: Ajv | undefined;

/**
 * Validates any object the deployment produces: our custom resources against the CRDs, the
 * built-in kinds against client-node's models, cert-manager's against the schemas above.
 */
export function validateObject(obj: Obj, crdSet?: CrdSet): string[] {
  const apiVersion = String(obj['apiVersion']);
  if (crdSet?.has(apiVersion, String(obj['kind']))) return crdSet.validate(obj).errors;
  if (apiVersion === 'cert-manager.io/v1') {
    const schema = CERT_MANAGER[String(obj['kind'])];
    if (!schema) return [`cert-manager.io/v1 ${obj['kind']}: not a kind the deployment uses`];
    certManagerAjv ??= new Ajv({ allErrors: true, strict: true });
    const validate =
      certManagerAjv.getSchema(String(obj['kind'])) ??
      (certManagerAjv.addSchema(schema, String(obj['kind'])), certManagerAjv.getSchema(String(obj['kind']))!);
    const errors: string[] = [];
    const meta = obj['metadata'] as Obj | undefined;
    if (!meta || typeof meta['name'] !== 'string' || typeof meta['namespace'] !== 'string')
      errors.push('.metadata: name and namespace required');
    for (const k of Object.keys(obj)) if (!['apiVersion', 'kind', 'metadata', 'spec'].includes(k)) errors.push(`.${k}: unknown field`);
    if (!validate(obj['spec'])) errors.push(...(validate.errors ?? []).map((e) => `.spec${e.instancePath} ${e.message}`));
    return errors;
  }
  return validateBuiltin(obj);
}
