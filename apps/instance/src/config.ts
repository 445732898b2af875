// The configuration file of a Waxseal instance (`waxseal serve --config waxseal.yaml`), validated
// at start-up: every key is a URI (relative file:// URIs and paths are relative to the file),
// unknown keys are errors (a typo must not silently drop a setting), and every problem is one
// ERR_CONFIG line naming the setting. Paths are checked when the instance starts (startInstance).
// docs/configuration.md is the reference; this type is its source.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isScalar, parseDocument, type Document } from 'yaml';
import { WaxsealError, isWaxsealError } from '@waxseal/core';
import { resolveKeyUri } from '@waxseal/keys';
import { checkTreeId } from '@waxseal/rekor';

export interface RetiredChain {
  /** PEM chain of a previous CA/TSA key, still trusted for signatures made before `end`. */
  chain: string;
  /** When that key stopped signing (RFC 3339). */
  end: string;
}

export interface RetiredKey {
  /** PEM public key of a previous log key. */
  publicKey: string;
  start: string;
  end: string;
}

export interface InstanceConfig {
  /** Where to listen (default 127.0.0.1:8080). */
  listen: { host: string; port: number };
  /** Public base URL clients use (default: the listener's own URL). */
  url: string | undefined;
  /** Folder for state: audit database, TUF repository, log data. */
  data: string;
  /** Operator name written into the trust documents (e.g. example.com). */
  operator: string;
  ca: {
    key: string;
    chain: string;
    retired: RetiredChain[];
    issuers: string | undefined;
    /** Include the built-in GitHub Actions issuer (default true). */
    githubActions: boolean;
    signingRules: string | undefined;
  };
  tsa: { key: string; chain: string; retired: RetiredChain[] };
  log:
    | {
        key: string;
        /** Checkpoint origin (default: the url's host name, else the listener's host). */
        hostname: string;
        /** Rekor v1 tree ID to require; a new log records a random one, kept with its data. */
        treeId: string | undefined;
        retired: RetiredKey[];
      }
    | undefined;
  tuf: { keys: string } | undefined;
  audit: { db: string; anchor: string | undefined };
}

const bad = (msg: string): never => {
  throw new WaxsealError('ERR_CONFIG', msg);
};

function obj(v: unknown, where: string, allowed: string[]): Record<string, unknown> {
  if (v === undefined || v === null) bad(`${where} is required`);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(`${where} must be a mapping`);
  for (const k of Object.keys(v as object))
    if (!allowed.includes(k)) bad(`${where}: unknown setting ${JSON.stringify(k)} (known: ${allowed.join(', ')})`);
  return v as Record<string, unknown>;
}

function str(o: Record<string, unknown>, k: string, where: string): string {
  const v = o[k];
  if (typeof v !== 'string' || !v) bad(`${where}.${k} is required and must be a string`);
  return v as string;
}

function optStr(o: Record<string, unknown>, k: string, where: string): string | undefined {
  const v = o[k];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !v) bad(`${where}.${k} must be a non-empty string`);
  return v as string;
}

function time(v: unknown, where: string): string {
  const s = v instanceof Date ? v.toISOString() : v;
  if (typeof s !== 'string' || Number.isNaN(Date.parse(s))) bad(`${where} must be an RFC 3339 time`);
  return new Date(s as string).toISOString();
}

/** Other key URIs pass through; paths and relative file:// URIs are relative to the config file. */
function keyUri(o: Record<string, unknown>, where: string, base: string): string {
  const v = str(o, 'key', where);
  try {
    return resolveKeyUri(v, base);
  } catch (e) {
    if (isWaxsealError(e)) bad(`${where}.key: ${e.message}`);
    throw e;
  }
}

function list(v: unknown, where: string): unknown[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) bad(`${where} must be a list`);
  return v as unknown[];
}

/**
 * log.tree-id as the exact decimal text. YAML reads an unquoted integer as a double, which
 * cannot hold every int64 (1234567890123456789 reads as 1234567890123456800): such a value is
 * refused with the quoted form to write instead.
 */
function treeIdSetting(doc: Document): string | undefined {
  const node = doc.getIn(['log', 'tree-id'], true);
  if (node === undefined) return undefined;
  const value = isScalar(node) ? node.value : undefined;
  let text: string;
  if (typeof value === 'string') text = value;
  else if (typeof value === 'number' || typeof value === 'bigint') {
    const source = isScalar(node) && typeof node.source === 'string' ? node.source : String(value);
    if (typeof value === 'number' && !Number.isSafeInteger(value))
      bad(`log.tree-id ${source} is too large for a YAML number and would lose digits: quote it (tree-id: "${source}")`);
    text = String(value);
  } else return bad('log.tree-id must be a positive decimal integer (quote it: tree-id: "1234567890123456789")');
  try {
    checkTreeId(text);
  } catch (e) {
    if (isWaxsealError(e)) bad(`log.tree-id: ${e.message}`);
    throw e;
  }
  return text;
}

/** A host-like name: letters, digits, dots, hyphens (a checkpoint origin, a listener's host). */
function hostName(o: Record<string, unknown>, k: string, where: string): string | undefined {
  const v = optStr(o, k, where);
  if (v !== undefined && !/^[A-Za-z0-9._:[\]-]{1,253}$/.test(v)) bad(`${where}.${k} ${JSON.stringify(v)} is not a host name`);
  return v;
}

function retiredChains(v: unknown, where: string, base: string): RetiredChain[] {
  return list(v, where).map((x, i) => {
    const o = obj(x, `${where}[${i}]`, ['chain', 'end']);
    return { chain: resolve(base, str(o, 'chain', `${where}[${i}]`)), end: time(o.end, `${where}[${i}].end`) };
  });
}

export function parseInstanceConfig(text: string, configPath: string): InstanceConfig {
  let yamlDoc: Document;
  let doc: unknown;
  try {
    yamlDoc = parseDocument(text, { uniqueKeys: true });
    if (yamlDoc.errors.length > 0) throw yamlDoc.errors[0];
    doc = yamlDoc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw new WaxsealError('ERR_CONFIG', `${configPath} is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) bad(`${configPath} is empty (see docs/configuration.md)`);
  const base = dirname(resolve(configPath));
  const top = obj(doc, 'config', ['listen', 'url', 'data', 'operator', 'ca', 'tsa', 'log', 'tuf', 'audit']);
  const listenRaw = top.listen === undefined ? {} : obj(top.listen, 'listen', ['host', 'port']);
  const host = hostName(listenRaw, 'host', 'listen') ?? '127.0.0.1';
  const portRaw = listenRaw.port ?? 8080;
  const port = typeof portRaw === 'string' && /^\d{1,5}$/.test(portRaw) ? Number(portRaw) : portRaw;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535)
    bad(`listen.port must be a port number (0-65535), got ${JSON.stringify(portRaw)}`);
  const data = resolve(base, optStr(top, 'data', 'config') ?? './waxseal-data');
  const ca = obj(top.ca, 'ca', ['key', 'chain', 'retired', 'issuers', 'github-actions', 'signing-rules']);
  const tsa = obj(top.tsa, 'tsa', ['key', 'chain', 'retired']);
  const log = top.log === undefined ? undefined : obj(top.log, 'log', ['key', 'hostname', 'tree-id', 'retired']);
  const tuf = top.tuf === undefined ? undefined : obj(top.tuf, 'tuf', ['keys']);
  const audit = top.audit === undefined ? {} : obj(top.audit, 'audit', ['db', 'anchor']);
  const url = optStr(top, 'url', 'config');
  if (url !== undefined && !(URL.canParse(url) && /^https?:$/.test(new URL(url).protocol)))
    bad(`url ${JSON.stringify(url)} is not an http(s) URL`);
  const githubActions = ca['github-actions'] ?? true;
  if (typeof githubActions !== 'boolean') bad('ca.github-actions must be true or false');
  const issuers = optStr(ca, 'issuers', 'ca');
  const rules = optStr(ca, 'signing-rules', 'ca');
  const anchor = optStr(audit, 'anchor', 'audit');
  return {
    listen: { host, port: port as number },
    url: url?.replace(/\/$/, ''),
    data,
    operator: optStr(top, 'operator', 'config') ?? (url ? new URL(url).hostname : host),
    ca: {
      key: keyUri(ca, 'ca', base),
      chain: resolve(base, str(ca, 'chain', 'ca')),
      retired: retiredChains(ca.retired, 'ca.retired', base),
      issuers: issuers ? resolve(base, issuers) : undefined,
      githubActions: githubActions as boolean,
      signingRules: rules ? resolve(base, rules) : undefined,
    },
    tsa: {
      key: keyUri(tsa, 'tsa', base),
      chain: resolve(base, str(tsa, 'chain', 'tsa')),
      retired: retiredChains(tsa.retired, 'tsa.retired', base),
    },
    log: log
      ? {
          key: keyUri(log, 'log', base),
          hostname: hostName(log, 'hostname', 'log') ?? (url ? new URL(url).hostname : host),
          treeId: treeIdSetting(yamlDoc),
          retired: list(log.retired, 'log.retired').map((x, i) => {
            const o = obj(x, `log.retired[${i}]`, ['public-key', 'start', 'end']);
            return {
              publicKey: resolve(base, str(o, 'public-key', `log.retired[${i}]`)),
              start: time(o.start, `log.retired[${i}].start`),
              end: time(o.end, `log.retired[${i}].end`),
            };
          }),
        }
      : undefined,
    tuf: tuf ? { keys: resolve(base, str(tuf, 'keys', 'tuf')) } : undefined,
    audit: { db: resolve(base, optStr(audit, 'db', 'audit') ?? `${data}/audit.db`), anchor: anchor ? resolve(base, anchor) : undefined },
  };
}

export function loadInstanceConfig(path: string): InstanceConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new WaxsealError('ERR_CONFIG', `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  return parseInstanceConfig(text, path);
}
