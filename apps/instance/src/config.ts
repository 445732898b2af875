// The configuration file of a Waxseal instance (`waxseal serve --config waxseal.yaml`), validated
// at start-up: every path must exist, every key is a URI, unknown keys are errors (a typo must
// not silently drop a setting). docs/configuration.md is the reference; this type is its source.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { WaxsealError } from '@waxseal/core';

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
  log: { key: string; hostname: string; treeId: string | undefined; retired: RetiredKey[] } | undefined;
  tuf: { keys: string } | undefined;
  audit: { db: string; anchor: string | undefined };
}

const bad = (msg: string): never => {
  throw new WaxsealError('ERR_CONFIG', msg);
};

function obj(v: unknown, where: string, allowed: string[]): Record<string, unknown> {
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

/** Key URIs pass through; plain paths become file:// URIs relative to the config file. */
function keyUri(v: string, base: string): string {
  return /^[a-z][a-z0-9+.-]*:/i.test(v) ? v : `file://${resolve(base, v)}`;
}

function retiredChains(v: unknown, where: string, base: string): RetiredChain[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) bad(`${where} must be a list`);
  return (v as unknown[]).map((x, i) => {
    const o = obj(x, `${where}[${i}]`, ['chain', 'end']);
    return { chain: resolve(base, str(o, 'chain', `${where}[${i}]`)), end: time(o.end, `${where}[${i}].end`) };
  });
}

export function parseInstanceConfig(text: string, configPath: string): InstanceConfig {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new WaxsealError('ERR_CONFIG', `${configPath} is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  const base = dirname(resolve(configPath));
  const top = obj(doc, 'config', ['listen', 'url', 'data', 'operator', 'ca', 'tsa', 'log', 'tuf', 'audit']);
  const listenRaw = top.listen === undefined ? {} : obj(top.listen, 'listen', ['host', 'port']);
  const host = (listenRaw.host as string | undefined) ?? '127.0.0.1';
  const port = listenRaw.port === undefined ? 8080 : Number(listenRaw.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) bad('listen.port must be a port number');
  const data = resolve(base, optStr(top, 'data', 'config') ?? './waxseal-data');
  const ca = obj(top.ca, 'ca', ['key', 'chain', 'retired', 'issuers', 'github-actions', 'signing-rules']);
  const tsa = obj(top.tsa, 'tsa', ['key', 'chain', 'retired']);
  const log = top.log === undefined ? undefined : obj(top.log, 'log', ['key', 'hostname', 'tree-id', 'retired']);
  const tuf = top.tuf === undefined ? undefined : obj(top.tuf, 'tuf', ['keys']);
  const audit = top.audit === undefined ? {} : obj(top.audit, 'audit', ['db', 'anchor']);
  const url = optStr(top, 'url', 'config');
  if (url !== undefined) {
    try {
      new URL(url);
    } catch {
      bad(`url ${JSON.stringify(url)} is not a URL`);
    }
  }
  const issuers = optStr(ca, 'issuers', 'ca');
  const rules = optStr(ca, 'signing-rules', 'ca');
  const anchor = optStr(audit, 'anchor', 'audit');
  return {
    listen: { host, port },
    url: url?.replace(/\/$/, ''),
    data,
    operator: optStr(top, 'operator', 'config') ?? (url ? new URL(url).hostname : host),
    ca: {
      key: keyUri(str(ca, 'key', 'ca'), base),
      chain: resolve(base, str(ca, 'chain', 'ca')),
      retired: retiredChains(ca.retired, 'ca.retired', base),
      issuers: issuers ? resolve(base, issuers) : undefined,
      githubActions: ca['github-actions'] === undefined ? true : ca['github-actions'] === true,
      signingRules: rules ? resolve(base, rules) : undefined,
    },
    tsa: {
      key: keyUri(str(tsa, 'key', 'tsa'), base),
      chain: resolve(base, str(tsa, 'chain', 'tsa')),
      retired: retiredChains(tsa.retired, 'tsa.retired', base),
    },
    log: log
      ? {
          key: keyUri(str(log, 'key', 'log'), base),
          hostname: optStr(log, 'hostname', 'log') ?? (url ? new URL(url).hostname : host),
          treeId: log['tree-id'] === undefined ? undefined : String(log['tree-id']),
          retired: ((log.retired as unknown[] | undefined) ?? []).map((x, i) => {
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
