// The AdmissionReview model (admission.k8s.io/v1) as the Kubernetes API server sends it to an image
// admission webhook: parse and validate a review, find every image of the seven workload kinds
// policy-controller judges (with the JSON path of each), decide which requests are not judged at
// all (deletes, connects, status and scale subresources, deleted objects, scale-downs), and build
// the answer: allowed or denied with a message naming each container path, warnings, and the
// RFC 6902 patch that pins tags to digests. Pure: bytes and objects in, objects out.
import { WaxsealError, parseJsonBounded, toBase64, utf8 } from '@waxseal/core';
import { parseReference } from '@waxseal/oci';

/** The API server sends at most this much (etcd's 1.5 MiB object limit, object and oldObject). */
export const ADMISSION_MAX_BODY = 3 << 20;

/**
 * Bounds for one review. Real objects nest < 20 levels (managedFields included) and hold a few
 * thousand values; the value cap bounds the heap one 3 MiB body can cost.
 */
export const ADMISSION_JSON_LIMITS = { maxBytes: ADMISSION_MAX_BODY, maxDepth: 64, maxValues: 262_144 } as const;

/** Most images judged in one object; a bigger pod spec is denied rather than judged for minutes. */
export const DEFAULT_MAX_IMAGES = 256;

/** What the API server truncates at (kubernetes.io "Warnings": 256 characters each, 4096 in all). */
const MAX_WARNING_CHARS = 256;
const MAX_WARNINGS_TOTAL = 4096;
/** The denial message is shown to users by kubectl: keep it readable and bounded. */
const MAX_MESSAGE_CHARS = 16_384;

export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

export interface GroupVersionResource {
  group: string;
  version: string;
  resource: string;
}

export type AdmissionOperation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';

export interface AdmissionUserInfo {
  username?: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

/** `request` of an AdmissionReview v1 (fields the API server sends; unknown ones are ignored). */
export interface AdmissionRequest {
  uid: string;
  kind: GroupVersionKind;
  resource: GroupVersionResource;
  subResource?: string;
  requestKind?: GroupVersionKind;
  requestResource?: GroupVersionResource;
  requestSubResource?: string;
  name?: string;
  namespace?: string;
  operation: AdmissionOperation;
  userInfo: AdmissionUserInfo;
  object?: unknown;
  oldObject?: unknown;
  dryRun?: boolean;
  options?: unknown;
}

export interface AdmissionReview {
  /** admission.k8s.io/v1 (v1beta1 is read too; the answer echoes the version asked). */
  apiVersion: string;
  kind: 'AdmissionReview';
  request: AdmissionRequest;
}

export interface AdmissionStatus {
  code?: number;
  message?: string;
  reason?: string;
  status?: 'Success' | 'Failure';
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: AdmissionStatus;
  warnings?: string[];
  patchType?: 'JSONPatch';
  /** Base64 of the RFC 6902 JSON patch. */
  patch?: string;
}

export interface AdmissionReviewResponse {
  apiVersion: string;
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

const API_VERSIONS = new Set(['admission.k8s.io/v1', 'admission.k8s.io/v1beta1']);
const OPERATIONS = new Set<string>(['CREATE', 'UPDATE', 'DELETE', 'CONNECT']);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A review that cannot be judged. `detail.uid` is set when the request's uid could be read, so the server can still answer it. */
function invalid(message: string, uid?: string, apiVersion?: string): WaxsealError {
  return new WaxsealError('ERR_INVALID_INPUT', `malformed AdmissionReview: ${message}`, {
    check: 'admission.review',
    ...(uid === undefined ? {} : { detail: { uid, ...(apiVersion ? { apiVersion } : {}) } }),
  });
}

function str(o: Record<string, unknown>, key: string, where: string, uid?: string, apiVersion?: string): string {
  const v = o[key];
  if (typeof v !== 'string') throw invalid(`${where}.${key} must be a string`, uid, apiVersion);
  return v;
}

function optStr(o: Record<string, unknown>, key: string, where: string, uid: string, apiVersion: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw invalid(`${where}.${key} must be a string`, uid, apiVersion);
  return v;
}

function gvk(v: unknown, where: string, uid: string, apiVersion: string): GroupVersionKind {
  if (!isObject(v)) throw invalid(`${where} must be an object {group, version, kind}`, uid, apiVersion);
  return {
    group: typeof v.group === 'string' ? v.group : '',
    version: str(v, 'version', where, uid, apiVersion),
    kind: str(v, 'kind', where, uid, apiVersion),
  };
}

function gvr(v: unknown, where: string, uid: string, apiVersion: string): GroupVersionResource {
  if (!isObject(v)) throw invalid(`${where} must be an object {group, version, resource}`, uid, apiVersion);
  return {
    group: typeof v.group === 'string' ? v.group : '',
    version: str(v, 'version', where, uid, apiVersion),
    resource: str(v, 'resource', where, uid, apiVersion),
  };
}

/**
 * Parses an AdmissionReview from the request body (bytes or text within ADMISSION_JSON_LIMITS) or
 * an already-parsed value. Throws ERR_INVALID_INPUT (check `admission.review`, with `detail.uid`
 * once the uid is known), ERR_JSON_PARSE or ERR_BODY_TOO_LARGE.
 */
export function parseAdmissionReview(input: Uint8Array | string | unknown): AdmissionReview {
  const value =
    typeof input === 'string' || input instanceof Uint8Array
      ? parseJsonBounded(input, { ...ADMISSION_JSON_LIMITS, what: 'AdmissionReview' })
      : input;
  if (!isObject(value)) throw invalid('the body must be a JSON object');
  if (value.kind !== 'AdmissionReview') throw invalid(`kind must be "AdmissionReview", not ${JSON.stringify(value.kind)}`);
  const apiVersion = value.apiVersion;
  if (typeof apiVersion !== 'string' || !API_VERSIONS.has(apiVersion)) {
    throw invalid(`apiVersion must be admission.k8s.io/v1, not ${JSON.stringify(apiVersion)}`);
  }
  const r = value.request;
  if (!isObject(r)) throw invalid('request is missing');
  const uid = r.uid;
  if (typeof uid !== 'string' || uid.length === 0 || uid.length > 256) throw invalid('request.uid must be a non-empty string');
  const operation = str(r, 'operation', 'request', uid, apiVersion);
  if (!OPERATIONS.has(operation))
    throw invalid(`request.operation ${JSON.stringify(operation)} is not one of CREATE, UPDATE, DELETE, CONNECT`, uid, apiVersion);
  const userInfo = r.userInfo === undefined ? {} : r.userInfo;
  if (!isObject(userInfo)) throw invalid('request.userInfo must be an object', uid, apiVersion);
  if (r.object !== undefined && r.object !== null && !isObject(r.object))
    throw invalid('request.object must be an object', uid, apiVersion);
  if (r.oldObject !== undefined && r.oldObject !== null && !isObject(r.oldObject)) {
    throw invalid('request.oldObject must be an object', uid, apiVersion);
  }
  if (r.dryRun !== undefined && r.dryRun !== null && typeof r.dryRun !== 'boolean')
    throw invalid('request.dryRun must be a boolean', uid, apiVersion);
  const request: AdmissionRequest = {
    uid,
    kind: gvk(r.kind, 'request.kind', uid, apiVersion),
    resource: gvr(r.resource, 'request.resource', uid, apiVersion),
    operation: operation as AdmissionOperation,
    userInfo: userInfo as AdmissionUserInfo,
  };
  const sub = optStr(r, 'subResource', 'request', uid, apiVersion);
  if (sub) request.subResource = sub;
  if (r.requestKind != null) request.requestKind = gvk(r.requestKind, 'request.requestKind', uid, apiVersion);
  if (r.requestResource != null) request.requestResource = gvr(r.requestResource, 'request.requestResource', uid, apiVersion);
  const reqSub = optStr(r, 'requestSubResource', 'request', uid, apiVersion);
  if (reqSub) request.requestSubResource = reqSub;
  const name = optStr(r, 'name', 'request', uid, apiVersion);
  if (name) request.name = name;
  const namespace = optStr(r, 'namespace', 'request', uid, apiVersion);
  if (namespace) request.namespace = namespace;
  if (isObject(r.object)) request.object = r.object;
  if (isObject(r.oldObject)) request.oldObject = r.oldObject;
  if (typeof r.dryRun === 'boolean') request.dryRun = r.dryRun;
  if (r.options !== undefined) request.options = r.options;
  return { apiVersion, kind: 'AdmissionReview', request };
}

/** Where the uid and version of a review that failed to parse can still be read, to answer it as a review. */
export function reviewIdentity(e: unknown): { uid: string; apiVersion: string } | undefined {
  if (!(e instanceof WaxsealError) || !e.detail) return undefined;
  const { uid, apiVersion } = e.detail;
  return typeof uid === 'string' ? { uid, apiVersion: typeof apiVersion === 'string' ? apiVersion : 'admission.k8s.io/v1' } : undefined;
}

// ---------------------------------------------------------------------------------------------
// Workloads and their images

/** The kinds judged, and where each keeps its pod spec (policy-controller's duck types). */
const WORKLOADS: Record<string, { groups: Record<string, string[]>; podSpec: string[]; scalable: boolean }> = {
  Pod: { groups: { '': ['v1'] }, podSpec: ['spec'], scalable: false },
  ReplicaSet: { groups: { apps: ['v1'] }, podSpec: ['spec', 'template', 'spec'], scalable: true },
  Deployment: { groups: { apps: ['v1'] }, podSpec: ['spec', 'template', 'spec'], scalable: true },
  StatefulSet: { groups: { apps: ['v1'] }, podSpec: ['spec', 'template', 'spec'], scalable: true },
  DaemonSet: { groups: { apps: ['v1'] }, podSpec: ['spec', 'template', 'spec'], scalable: false },
  Job: { groups: { batch: ['v1'] }, podSpec: ['spec', 'template', 'spec'], scalable: false },
  CronJob: { groups: { batch: ['v1', 'v1beta1'] }, podSpec: ['spec', 'jobTemplate', 'spec', 'template', 'spec'], scalable: false },
};

export const SUPPORTED_KINDS = Object.keys(WORKLOADS);

/** Subresources whose requests carry images that are judged (a pod's ephemeral containers, added by `kubectl debug`). */
const JUDGED_SUBRESOURCES: Record<string, string[]> = { Pod: ['ephemeralcontainers'] };

export type ImageField = 'initContainers' | 'containers' | 'ephemeralContainers' | 'volumes';

export interface ContainerImage {
  /** The image reference as written in the object. */
  image: string;
  /** Dotted path, as policy-controller names fields: `spec.template.spec.containers[0].image`. */
  path: string;
  /** RFC 6901 pointer to the same field, for the patch: `/spec/template/spec/containers/0/image`. */
  pointer: string;
  field: ImageField;
  index: number;
  /** The container's or volume's name, when it has one. */
  name?: string;
}

export interface Workload {
  kind: string;
  apiVersion: string;
  namespace: string;
  name: string;
  /** The object's own labels (a Deployment's, not its template's), as policy-controller matches them. */
  labels: Record<string, string>;
  /** Dotted path of the pod spec (`spec`, `spec.template.spec`, `spec.jobTemplate.spec.template.spec`). */
  podSpecPath: string;
  images: ContainerImage[];
  /** `imagePullSecrets[].name` of the pod spec. */
  imagePullSecrets: string[];
  /** The pod spec's service account (`default` when unset), whose imagePullSecrets also count. */
  serviceAccountName: string;
  /** The object as sent (for policies with includeSpec/includeObjectMeta). */
  object: Record<string, unknown>;
}

export type ReviewPlan =
  | { action: 'skip'; reason: string }
  | { action: 'deny'; code: number; reason: string; message: string }
  | { action: 'judge'; workload: Workload };

export interface PlanOptions {
  /** Most images judged in one object (default DEFAULT_MAX_IMAGES). */
  maxImages?: number;
}

function stringMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isObject(v)) return out;
  for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  return out;
}

function dig(o: unknown, path: string[]): unknown {
  let cur = o;
  for (const p of path) {
    if (!isObject(cur)) return undefined;
    cur = cur[p];
  }
  return cur;
}

function replicas(o: unknown): number | undefined {
  const r = dig(o, ['spec', 'replicas']);
  return typeof r === 'number' ? r : undefined;
}

/** Order-insensitive deep equality of two JSON values (for "is the pod template unchanged"). */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => sameJson(x, b[i]));
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    return ka.every((k) => Object.hasOwn(b, k) && sameJson(a[k], b[k]));
  }
  return false;
}

class TooMany extends Error {}

/** Every image of a pod spec, in policy-controller's order: initContainers, containers, ephemeralContainers, volumes. */
export function podSpecImages(
  podSpec: unknown,
  base: string[],
  maxImages = DEFAULT_MAX_IMAGES,
): { images: ContainerImage[]; problems: string[] } {
  const images: ContainerImage[] = [];
  const problems: string[] = [];
  if (!isObject(podSpec)) return { images, problems };
  const dotted = base.join('.');
  const pointerBase = base.length ? `/${base.join('/')}` : '';
  const push = (c: ContainerImage) => {
    if (images.length >= maxImages) throw new TooMany();
    images.push(c);
  };
  for (const field of ['initContainers', 'containers', 'ephemeralContainers'] as const) {
    const list = podSpec[field];
    if (list === undefined || list === null) continue;
    if (!Array.isArray(list)) {
      problems.push(`${dotted}.${field} must be a list`);
      continue;
    }
    list.forEach((c, index) => {
      const path = `${dotted}.${field}[${index}].image`;
      if (!isObject(c)) {
        problems.push(`${dotted}.${field}[${index}] must be an object`);
        return;
      }
      // An unset image (allowed by the API for some controllers' templates) has nothing to judge.
      if (c.image === undefined || c.image === null || c.image === '') return;
      if (typeof c.image !== 'string') {
        problems.push(`${path} must be a string`);
        return;
      }
      push({
        image: c.image,
        path,
        pointer: `${pointerBase}/${field}/${index}/image`,
        field,
        index,
        ...(typeof c.name === 'string' ? { name: c.name } : {}),
      });
    });
  }
  const volumes = podSpec.volumes;
  if (Array.isArray(volumes)) {
    volumes.forEach((v, index) => {
      const ref = dig(v, ['image', 'reference']);
      if (ref === undefined || ref === null || ref === '') return;
      const path = `${dotted}.volumes[${index}].image.reference`;
      if (typeof ref !== 'string') {
        problems.push(`${path} must be a string`);
        return;
      }
      push({
        image: ref,
        path,
        pointer: `${pointerBase}/volumes/${index}/image/reference`,
        field: 'volumes',
        index,
        ...(isObject(v) && typeof v.name === 'string' ? { name: v.name } : {}),
      });
    });
  } else if (volumes !== undefined && volumes !== null) {
    problems.push(`${dotted}.volumes must be a list`);
  }
  return { images, problems };
}

/**
 * Decides what to do with a review: skip it (not ours to judge), deny it outright (an object we
 * cannot read, an unknown kind, too many images), or judge the images of its workload.
 */
export function planReview(review: AdmissionReview, opts: PlanOptions = {}): ReviewPlan {
  const r = review.request;
  const maxImages = opts.maxImages ?? DEFAULT_MAX_IMAGES;
  if (r.operation === 'DELETE' || r.operation === 'CONNECT') return { action: 'skip', reason: `${r.operation} is not judged` };
  const kind = r.kind.kind;
  const w = WORKLOADS[kind];
  const versions = w?.groups[r.kind.group];
  if (!w || !versions?.includes(r.kind.version)) {
    const gv = r.kind.group ? `${r.kind.group}/${r.kind.version}` : r.kind.version;
    return {
      action: 'deny',
      code: 400,
      reason: 'BadRequest',
      message: `unsupported kind ${gv} ${kind}: this webhook judges ${SUPPORTED_KINDS.join(', ')}`,
    };
  }
  if (r.subResource && !JUDGED_SUBRESOURCES[kind]?.includes(r.subResource)) {
    return { action: 'skip', reason: `the ${r.subResource} subresource is not judged` };
  }
  const obj = r.object;
  if (!isObject(obj))
    return { action: 'deny', code: 400, reason: 'BadRequest', message: `request.object is missing for ${r.operation} of a ${kind}` };
  const meta = isObject(obj.metadata) ? obj.metadata : {};
  // An object on its way out (finalizers pending) is not judged, as policy-controller does.
  if (meta.deletionTimestamp !== undefined && meta.deletionTimestamp !== null)
    return { action: 'skip', reason: 'the object is being deleted' };
  // Scaling down an existing workload is always allowed (it only removes pods), but only when the
  // pod template is unchanged: a scale-down must not smuggle in a new image.
  if (w.scalable && r.operation === 'UPDATE' && isObject(r.oldObject)) {
    const now = replicas(obj);
    const before = replicas(r.oldObject);
    if (
      now !== undefined &&
      before !== undefined &&
      now < before &&
      sameJson(dig(obj, ['spec', 'template']), dig(r.oldObject, ['spec', 'template']))
    ) {
      return { action: 'skip', reason: `scaling down from ${before} to ${now} replicas` };
    }
  }
  const podSpec = dig(obj, w.podSpec);
  if (podSpec !== undefined && !isObject(podSpec)) {
    return { action: 'deny', code: 400, reason: 'BadRequest', message: `${w.podSpec.join('.')} of the ${kind} must be an object` };
  }
  let found: ReturnType<typeof podSpecImages>;
  try {
    found = podSpecImages(podSpec, w.podSpec, maxImages);
  } catch (e) {
    if (!(e instanceof TooMany)) throw e;
    return {
      action: 'deny',
      code: 400,
      reason: 'BadRequest',
      message: `the ${kind} has more than ${maxImages} container images; this webhook judges at most ${maxImages} per object`,
    };
  }
  if (found.problems.length > 0) {
    return {
      action: 'deny',
      code: 400,
      reason: 'BadRequest',
      message: `the ${kind} is malformed: ${found.problems.slice(0, 10).join('; ')}`,
    };
  }
  const podSpecObj = isObject(podSpec) ? podSpec : {};
  const pullSecrets = Array.isArray(podSpecObj.imagePullSecrets)
    ? podSpecObj.imagePullSecrets.flatMap((s) => (isObject(s) && typeof s.name === 'string' && s.name ? [s.name] : []))
    : [];
  const sa = podSpecObj.serviceAccountName ?? podSpecObj.serviceAccount;
  return {
    action: 'judge',
    workload: {
      kind,
      apiVersion: r.kind.group ? `${r.kind.group}/${r.kind.version}` : r.kind.version,
      // Older API servers left request.namespace empty for some requests; the object has it.
      namespace: r.namespace || (typeof meta.namespace === 'string' ? meta.namespace : '') || 'default',
      name:
        r.name ||
        (typeof meta.name === 'string' ? meta.name : '') ||
        (typeof meta.generateName === 'string' ? `${meta.generateName}*` : ''),
      labels: stringMap(meta.labels),
      podSpecPath: w.podSpec.join('.'),
      images: found.images,
      imagePullSecrets: [...new Set(pullSecrets)],
      serviceAccountName: typeof sa === 'string' && sa ? sa : 'default',
      object: obj,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Namespace opt-in

/** `key=value` (or `key` alone, any value) as given on the command line. */
export interface LabelRequirement {
  key: string;
  value?: string;
}

export const DEFAULT_INCLUDE_LABEL: LabelRequirement = { key: 'policy.sigstore.dev/include', value: 'true' };

export function parseLabelRequirement(s: string): LabelRequirement {
  const eq = s.indexOf('=');
  const key = eq < 0 ? s : s.slice(0, eq);
  if (!/^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(key) || key.length > 316) {
    throw new WaxsealError('ERR_INVALID_INPUT', `invalid label key ${JSON.stringify(key)} (expected [prefix/]name)`);
  }
  return eq < 0 ? { key } : { key, value: s.slice(eq + 1) };
}

export function labelsSatisfy(labels: Record<string, string>, req: LabelRequirement): boolean {
  const v = labels[req.key];
  return v !== undefined && (req.value === undefined || v === req.value);
}

// ---------------------------------------------------------------------------------------------
// Answers

/** The part of an engine verdict the answer needs (apps/admission's ImageVerdict has these fields). */
export interface ImageOutcome {
  allowed: boolean;
  errors: string[];
  warnings: string[];
  digest?: string;
}

export interface ContainerOutcome {
  container: ContainerImage;
  outcome: ImageOutcome;
}

function oneLine(s: string): string {
  return s.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

function clip(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

/** Warnings as the API server passes them on (HTTP Warning headers): one line each, bounded, no repeats. */
export function boundWarnings(warnings: string[]): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  let total = 0;
  for (const w of warnings) {
    const line = clip(oneLine(w), MAX_WARNING_CHARS);
    if (!line || seen.has(line)) continue;
    if (total + line.length > MAX_WARNINGS_TOTAL) {
      out.push(clip(`${warnings.length - seen.size} more warnings not shown`, MAX_WARNING_CHARS));
      break;
    }
    seen.add(line);
    total += line.length;
    out.push(line);
  }
  return out;
}

/** The uid and version an answer must echo. */
export function reviewId(review: Pick<AdmissionReview, 'apiVersion' | 'request'>): { uid: string; apiVersion: string } {
  return { uid: review.request.uid, apiVersion: review.apiVersion };
}

export function allowResponse(review: Pick<AdmissionReview, 'apiVersion' | 'request'>, warnings: string[] = []): AdmissionReviewResponse {
  const w = boundWarnings(warnings);
  return {
    apiVersion: review.apiVersion,
    kind: 'AdmissionReview',
    response: { uid: review.request.uid, allowed: true, ...(w.length ? { warnings: w } : {}) },
  };
}

/** A denial; `code` 403 for policy failures, 400 for requests that cannot be judged. */
export function denyResponse(
  id: { uid: string; apiVersion: string },
  message: string,
  code = 403,
  reason = code === 400 ? 'BadRequest' : 'Forbidden',
  warnings: string[] = [],
): AdmissionReviewResponse {
  const w = boundWarnings(warnings);
  return {
    apiVersion: id.apiVersion,
    kind: 'AdmissionReview',
    response: {
      uid: id.uid,
      allowed: false,
      status: { status: 'Failure', code, reason, message: clip(message, MAX_MESSAGE_CHARS) },
      ...(w.length ? { warnings: w } : {}),
    },
  };
}

/**
 * The validating answer over every container's outcome: denied when any image is, with one line
 * per failed container (`spec.containers[0].image: <image>: <why>`); warnings prefixed with the path.
 */
export function validationResponse(
  review: AdmissionReview,
  outcomes: ContainerOutcome[],
  extraWarnings: string[] = [],
): AdmissionReviewResponse {
  const failures: string[] = [];
  const warnings: string[] = [...extraWarnings];
  for (const { container, outcome } of outcomes) {
    for (const w of outcome.warnings) warnings.push(`${container.path}: ${container.image}: ${w}`);
    if (!outcome.allowed) {
      const why = outcome.errors.length ? outcome.errors.map(oneLine).join('; ') : 'denied';
      failures.push(`${container.path}: ${container.image}: ${why}`);
    }
  }
  if (failures.length === 0) return allowResponse(review, warnings);
  const head = failures.length === 1 ? 'image policy denied 1 image' : `image policy denied ${failures.length} images`;
  return denyResponse(reviewId(review), `${head}:\n${failures.join('\n')}`, 403, 'Forbidden', warnings);
}

/**
 * The reference with its digest pinned, policy-controller's way: a tag is kept and the digest
 * appended (`repo:tag@sha256:…`); a reference without tag or digest gets the digest alone. Returns
 * undefined when nothing changes (already pinned) or the reference or digest is unusable.
 */
export function pinnedReference(image: string, digest: string): string | undefined {
  if (!/^sha256:[0-9a-f]{64}$/.test(digest)) return undefined;
  let ref: ReturnType<typeof parseReference>;
  try {
    ref = parseReference(image);
  } catch {
    return undefined;
  }
  if (ref.digest) return undefined;
  return `${image}@${digest}`;
}

export interface JsonPatchOp {
  op: 'replace';
  path: string;
  value: string;
}

/** The RFC 6902 ops that pin each resolved image (only those that change). */
export function pinPatch(pins: { container: ContainerImage; digest: string | undefined }[]): JsonPatchOp[] {
  const ops: JsonPatchOp[] = [];
  for (const { container, digest } of pins) {
    if (!digest) continue;
    const value = pinnedReference(container.image, digest);
    if (value !== undefined) ops.push({ op: 'replace', path: container.pointer, value });
  }
  return ops;
}

/** The mutating answer: always allowed; carries the patch when there is one. */
export function mutationResponse(review: AdmissionReview, ops: JsonPatchOp[], warnings: string[] = []): AdmissionReviewResponse {
  const res = allowResponse(review, warnings);
  if (ops.length > 0) {
    res.response.patchType = 'JSONPatch';
    res.response.patch = toBase64(utf8(JSON.stringify(ops)));
  }
  return res;
}

/**
 * Why a reference cannot be judged as it stands, or undefined: unparsable, or (when `requireDigest`,
 * as policy-controller's validating webhook does) not pinned to a digest, since a tag can move
 * between admission and the pull.
 */
export function referenceProblem(image: string, requireDigest: boolean): string | undefined {
  let ref: ReturnType<typeof parseReference>;
  try {
    ref = parseReference(image);
  } catch (e) {
    return (e as Error).message;
  }
  if (requireDigest && !ref.digest)
    return `${image} must be an image digest (the mutating webhook pins tags; it could not resolve this one)`;
  return undefined;
}
