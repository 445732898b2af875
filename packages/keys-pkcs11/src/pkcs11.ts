// PKCS#11 (HSM) signer backend: keys named by RFC 7512 URIs, signing through the pkcs11js
// binding. The private key never leaves the token; we hash in Node and ask the token to sign the
// digest (CKM_ECDSA, CKM_RSA_PKCS over a DigestInfo) unless it offers a hash-and-sign mechanism,
// since SoftHSM 2.6 and many HSMs only offer the raw mechanisms for EC.
//
//   pkcs11:token=waxseal;object=ca-key?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=env:WAXSEAL_PKCS11_PIN
//
// A PKCS#11 module is initialised once per process and shared by every signer that uses it;
// login state is per token and application, so we count the signers per token and log out only
// when the last one closes.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createHash, createPublicKey, randomBytes, timingSafeEqual } from 'node:crypto';
import {
  defaultHash,
  digest,
  HASH_OID,
  toBase64Url,
  bitString,
  nullValue,
  octetString,
  oid as derOid,
  parseDer,
  readOctetString,
  readOid,
  seq,
  TAG,
  WaxsealError,
  OID,
  parseCertificate,
  type HashName,
  type KeyKind,
  type PublicKeyInfo,
} from '@waxseal/core';
import { assertSignatureMatches, canonicalPublicKey, errorText, rawEcdsaToDer, ResourcePool, type Signer } from '@waxseal/keys';

type Api = typeof import('pkcs11js');
type Lib = InstanceType<Api['PKCS11']>;
type Handle = Buffer;

/** Where a PKCS#11 key lives, parsed from an RFC 7512 URI. */
export interface Pkcs11Location {
  /** Token label (CK_TOKEN_INFO.label, without its blank padding). */
  token?: string;
  /** Token serial number. */
  serial?: string;
  manufacturer?: string;
  model?: string;
  slotId?: number;
  /** Key label (CKA_LABEL). */
  object?: string;
  /** Key identifier (CKA_ID), raw bytes. */
  id?: Uint8Array;
  /** Absolute path of the PKCS#11 module (shared library). */
  modulePath: string;
  pinSource?: string;
  pinValue?: string;
  /** The URI with any pin-value removed: safe for logs and audit records. */
  keyRef: string;
}

const PATH_ATTRS = new Set([
  'token',
  'serial',
  'manufacturer',
  'model',
  'slot-id',
  'object',
  'id',
  'type',
  // Accepted for compatibility with URIs other tools print (p11tool, p11-kit); one module is loaded, so they do not select anything.
  'library-description',
  'library-manufacturer',
  'library-version',
  'slot-description',
  'slot-manufacturer',
]);
const QUERY_ATTRS = new Set(['module-path', 'module-name', 'pin-source', 'pin-value']);
const MODULE_DIRS = [
  '/usr/lib/x86_64-linux-gnu/pkcs11',
  '/usr/lib/aarch64-linux-gnu/pkcs11',
  '/usr/lib/pkcs11',
  '/usr/lib64/pkcs11',
  '/usr/lib/softhsm',
  '/usr/local/lib/softhsm',
];

function pctDecodeBytes(s: string, what: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '%') {
      const hex = s.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new WaxsealError('ERR_CONFIG', `pkcs11 URI: bad percent-encoding in ${what}`);
      out.push(parseInt(hex, 16));
      i += 2;
    } else {
      out.push(...Buffer.from(c, 'utf8'));
    }
  }
  return Uint8Array.from(out);
}

function pctDecode(s: string, what: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(pctDecodeBytes(s, what));
  } catch (e) {
    if (e instanceof WaxsealError) throw e;
    throw new WaxsealError('ERR_CONFIG', `pkcs11 URI: ${what} is not valid UTF-8`);
  }
}

/** Parses an RFC 7512 `pkcs11:` URI (path attributes `;`-separated, query attributes `&`-separated). */
export function parsePkcs11Uri(raw: string): Pkcs11Location {
  if (!/^pkcs11:/i.test(raw)) throw new WaxsealError('ERR_CONFIG', `not a pkcs11: URI: ${raw.slice(0, 40)}`);
  const rest = raw.slice('pkcs11:'.length);
  const q = rest.indexOf('?');
  const pathPart = q < 0 ? rest : rest.slice(0, q);
  const queryPart = q < 0 ? '' : rest.slice(q + 1);
  const path = new Map<string, string>();
  for (const part of pathPart.split(';')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new WaxsealError('ERR_CONFIG', `pkcs11 URI: path attribute ${JSON.stringify(part)} has no value`);
    const name = part.slice(0, eq).toLowerCase();
    if (!PATH_ATTRS.has(name) && !name.startsWith('x-')) throw new WaxsealError('ERR_CONFIG', `pkcs11 URI: unknown path attribute ${name}`);
    if (path.has(name)) throw new WaxsealError('ERR_CONFIG', `pkcs11 URI: path attribute ${name} is repeated`);
    path.set(name, part.slice(eq + 1));
  }
  const query = new Map<string, string>();
  for (const part of queryPart.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new WaxsealError('ERR_CONFIG', `pkcs11 URI: query attribute ${JSON.stringify(part.split('=')[0])} has no value`);
    const name = part.slice(0, eq).toLowerCase();
    if (!QUERY_ATTRS.has(name) && !name.startsWith('x-'))
      throw new WaxsealError('ERR_CONFIG', `pkcs11 URI: unknown query attribute ${name}`);
    if (query.has(name)) throw new WaxsealError('ERR_CONFIG', `pkcs11 URI: query attribute ${name} is repeated`);
    query.set(name, part.slice(eq + 1));
  }
  const str = (m: Map<string, string>, k: string) => (m.has(k) ? pctDecode(m.get(k)!, k) : undefined);

  const type = str(path, 'type');
  if (type !== undefined && type !== 'private') {
    throw new WaxsealError(
      'ERR_CONFIG',
      `pkcs11 URI: type=${type} cannot sign; a signing key URI names a private key (type=private or no type)`,
    );
  }
  const slotIdText = str(path, 'slot-id');
  if (slotIdText !== undefined && !/^\d+$/.test(slotIdText))
    throw new WaxsealError('ERR_CONFIG', 'pkcs11 URI: slot-id must be a decimal number');
  const idBytes = path.has('id') ? pctDecodeBytes(path.get('id')!, 'id') : undefined;
  const pinSource = str(query, 'pin-source');
  const pinValue = str(query, 'pin-value');
  if (pinSource !== undefined && pinValue !== undefined)
    throw new WaxsealError('ERR_CONFIG', 'pkcs11 URI: give pin-source or pin-value, not both');

  const loc: Pkcs11Location = {
    modulePath: resolveModule(str(query, 'module-path'), str(query, 'module-name')),
    keyRef: redactPin(raw),
  };
  const set = <K extends keyof Pkcs11Location>(k: K, v: Pkcs11Location[K] | undefined) => {
    if (v !== undefined) loc[k] = v;
  };
  set('token', str(path, 'token'));
  set('serial', str(path, 'serial'));
  set('manufacturer', str(path, 'manufacturer'));
  set('model', str(path, 'model'));
  set('slotId', slotIdText === undefined ? undefined : Number(slotIdText));
  set('object', str(path, 'object'));
  set('id', idBytes);
  set('pinSource', pinSource);
  set('pinValue', pinValue);
  if (loc.object === undefined && loc.id === undefined) {
    throw new WaxsealError('ERR_CONFIG', 'pkcs11 URI: name the key with object=<label> and/or id=<percent-encoded CKA_ID>');
  }
  return loc;
}

function redactPin(raw: string): string {
  const q = raw.indexOf('?');
  if (q < 0) return raw;
  const kept = raw
    .slice(q + 1)
    .split('&')
    .filter((p) => !/^pin-value=/i.test(p));
  return kept.length ? `${raw.slice(0, q)}?${kept.join('&')}` : raw.slice(0, q);
}

function resolveModule(modulePath: string | undefined, moduleName: string | undefined): string {
  if (modulePath !== undefined) {
    if (!modulePath.startsWith('/')) throw new WaxsealError('ERR_CONFIG', `pkcs11 URI: module-path must be absolute (got ${modulePath})`);
    return modulePath;
  }
  if (moduleName !== undefined) {
    if (moduleName.includes('/'))
      throw new WaxsealError('ERR_CONFIG', 'pkcs11 URI: module-name is a bare name; use module-path for a path');
    for (const dir of MODULE_DIRS) {
      for (const file of [`${moduleName}.so`, `lib${moduleName}.so`, moduleName]) {
        if (existsSync(`${dir}/${file}`)) return `${dir}/${file}`;
      }
    }
    throw new WaxsealError('ERR_CONFIG', `pkcs11 URI: no PKCS#11 module named ${moduleName} in ${MODULE_DIRS.join(', ')}`);
  }
  const fromEnv = process.env['WAXSEAL_PKCS11_MODULE'];
  if (fromEnv) return fromEnv;
  throw new WaxsealError('ERR_CONFIG', 'pkcs11 URI: no module: add ?module-path=/path/to/module.so (or set WAXSEAL_PKCS11_MODULE)');
}

/** Reads the user PIN the URI points at (environment variable, file, or inline value). */
export function readPin(loc: Pick<Pkcs11Location, 'pinSource' | 'pinValue'>): string {
  if (loc.pinValue !== undefined) return loc.pinValue;
  const src = loc.pinSource;
  if (src === undefined) {
    throw new WaxsealError('ERR_CONFIG', 'pkcs11 URI: no PIN: add pin-source=env:VARIABLE or pin-source=file:/path/to/pin');
  }
  if (src.startsWith('env:')) {
    const name = src.slice(4);
    const v = process.env[name];
    if (v === undefined || v === '') throw new WaxsealError('ERR_CONFIG', `PKCS#11 PIN: environment variable ${name} is not set`);
    return v;
  }
  if (src.startsWith('|')) throw new WaxsealError('ERR_CONFIG', 'PKCS#11 PIN: pin-source=|command is not supported; use env: or file:');
  let path: string;
  if (src.startsWith('file://')) path = fileURLToPath(src);
  else if (src.startsWith('file:')) path = src.slice(5);
  else if (src.startsWith('/')) path = src;
  else throw new WaxsealError('ERR_CONFIG', `PKCS#11 PIN: pin-source must be env:VARIABLE or file:/path (got ${src.split(':')[0]}:...)`);
  try {
    return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  } catch (e) {
    throw new WaxsealError('ERR_CONFIG', `PKCS#11 PIN: cannot read PIN file ${path}`, { cause: e });
  }
}

// ---------- module and token bookkeeping ----------

let apiPromise: Promise<Api> | undefined;

function loadApi(): Promise<Api> {
  apiPromise ??= import('pkcs11js').then(
    (m) => ((m as { default?: Api }).default ?? m) as Api,
    (e: unknown) => {
      apiPromise = undefined;
      throw new WaxsealError('ERR_CONFIG', `the PKCS#11 binding (npm pkcs11js) cannot be loaded: ${errorText(e)}`, { cause: e });
    },
  );
  return apiPromise;
}

interface ModuleState {
  path: string;
  lib: Lib;
  users: number;
  /** Per slot: how many signers (or key generations) rely on the login, and a hash of the PIN the token accepted. */
  logins: Map<string, { holders: number; acceptedPin?: Buffer }>;
}

const modules = new Map<string, ModuleState>();

function rvCode(e: unknown): number | undefined {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'number' ? c : undefined;
}

function acquireModule(api: Api, path: string): ModuleState {
  const existing = modules.get(path);
  if (existing) {
    existing.users++;
    return existing;
  }
  if (!existsSync(path)) throw new WaxsealError('ERR_CONFIG', `PKCS#11 module ${path} does not exist`);
  const lib = new api.PKCS11();
  try {
    lib.load(path);
  } catch (e) {
    throw new WaxsealError('ERR_CONFIG', `cannot load PKCS#11 module ${path}: ${errorText(e)}`, { cause: e });
  }
  try {
    lib.C_Initialize({ flags: api.CKF_OS_LOCKING_OK });
  } catch (e) {
    if (rvCode(e) !== api.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
      try {
        lib.close();
      } catch {
        // nothing more to release
      }
      throw new WaxsealError('ERR_CONFIG', `PKCS#11 module ${path} failed to initialise: ${errorText(e)}`, { cause: e });
    }
  }
  const state: ModuleState = { path, lib, users: 1, logins: new Map() };
  modules.set(path, state);
  return state;
}

function releaseModule(m: ModuleState): void {
  if (--m.users > 0) return;
  modules.delete(m.path);
  try {
    m.lib.C_Finalize();
  } catch {
    // already finalised or the token went away: nothing left to do
  }
  try {
    m.lib.close();
  } catch {
    // ditto
  }
}

function ulong(b: Buffer): number {
  return b.length >= 8 ? Number(b.readBigUInt64LE(0)) : b.readUInt32LE(0);
}

const trimInfo = (s: string) => s.replace(/[ \0]+$/, '');

function describeTokenQuery(loc: Pkcs11Location): string {
  const parts = [
    loc.token !== undefined ? `token=${loc.token}` : '',
    loc.serial !== undefined ? `serial=${loc.serial}` : '',
    loc.manufacturer !== undefined ? `manufacturer=${loc.manufacturer}` : '',
    loc.model !== undefined ? `model=${loc.model}` : '',
    loc.slotId !== undefined ? `slot-id=${loc.slotId}` : '',
  ].filter(Boolean);
  return parts.length ? parts.join(';') : 'any token';
}

function findSlot(api: Api, lib: Lib, loc: Pkcs11Location): { slot: Handle; slotKey: string; label: string } {
  const seen: string[] = [];
  const matches: Array<{ slot: Handle; label: string }> = [];
  for (const slot of lib.C_GetSlotList(true)) {
    let info;
    try {
      info = lib.C_GetTokenInfo(slot);
    } catch {
      continue;
    }
    if (!(info.flags & api.CKF_TOKEN_INITIALIZED)) continue;
    const label = trimInfo(info.label);
    seen.push(`${label} (serial ${trimInfo(info.serialNumber)})`);
    if (loc.token !== undefined && label !== loc.token) continue;
    if (loc.serial !== undefined && trimInfo(info.serialNumber) !== loc.serial) continue;
    if (loc.manufacturer !== undefined && trimInfo(info.manufacturerID) !== loc.manufacturer) continue;
    if (loc.model !== undefined && trimInfo(info.model) !== loc.model) continue;
    if (loc.slotId !== undefined && ulong(slot) !== loc.slotId) continue;
    matches.push({ slot, label });
  }
  if (matches.length === 0) {
    throw new WaxsealError(
      'ERR_CONFIG',
      `no initialised PKCS#11 token matches ${describeTokenQuery(loc)} in ${loc.modulePath} (tokens present: ${seen.length ? seen.join(', ') : 'none'})`,
    );
  }
  if (matches.length > 1) {
    throw new WaxsealError(
      'ERR_CONFIG',
      `several PKCS#11 tokens match ${describeTokenQuery(loc)}; add serial=<serial number> to the key URI`,
    );
  }
  const m = matches[0]!;
  return { slot: m.slot, slotKey: m.slot.toString('hex'), label: m.label };
}

/** A logged-in hold on one token: opens sessions, keeps the module initialised until released. */
class TokenLease {
  readonly api: Api;
  readonly module: ModuleState;
  readonly slot: Handle;
  readonly slotKey: string;
  readonly label: string;
  readonly #pin: string;
  #released = false;

  private constructor(api: Api, module: ModuleState, slot: { slot: Handle; slotKey: string; label: string }, pin: string) {
    this.api = api;
    this.module = module;
    this.slot = slot.slot;
    this.slotKey = slot.slotKey;
    this.label = slot.label;
    this.#pin = pin;
  }

  static async open(loc: Pkcs11Location): Promise<TokenLease> {
    const pin = readPin(loc);
    const api = await loadApi();
    const module = acquireModule(api, loc.modulePath);
    let slot;
    try {
      slot = findSlot(api, module.lib, loc);
    } catch (e) {
      releaseModule(module);
      throw e;
    }
    const lease = new TokenLease(api, module, slot, pin);
    const login = module.logins.get(slot.slotKey);
    if (login) login.holders++;
    else module.logins.set(slot.slotKey, { holders: 1 });
    return lease;
  }

  /** Opens a read-write session and makes sure the user is logged in on the token. */
  openSession(): Handle {
    const { api, module } = this;
    let session: Handle;
    try {
      session = module.lib.C_OpenSession(this.slot, api.CKF_SERIAL_SESSION | api.CKF_RW_SESSION);
    } catch (e) {
      throw new WaxsealError('ERR_SIGNER', `cannot open a session on PKCS#11 token ${this.label}: ${errorText(e)}`, { cause: e });
    }
    const login = module.logins.get(this.slotKey);
    const pinHash = createHash('sha256').update(this.#pin).digest();
    try {
      module.lib.C_Login(session, api.CKU_USER, this.#pin);
      if (login) login.acceptedPin = pinHash;
    } catch (e) {
      const rv = rvCode(e);
      // Login state is shared by the whole process, so a second login "succeeds" whatever the
      // PIN; compare with the PIN the token accepted so that a wrong PIN is still reported.
      if (rv === api.CKR_USER_ALREADY_LOGGED_IN && login?.acceptedPin && !timingSafeEqual(login.acceptedPin, pinHash)) {
        this.closeSession(session);
        throw new WaxsealError('ERR_CONFIG', `wrong PIN for PKCS#11 token ${this.label}`);
      }
      if (rv !== api.CKR_USER_ALREADY_LOGGED_IN) {
        this.closeSession(session);
        if (rv === api.CKR_PIN_INCORRECT) throw new WaxsealError('ERR_CONFIG', `wrong PIN for PKCS#11 token ${this.label}`);
        if (rv === api.CKR_PIN_LOCKED) throw new WaxsealError('ERR_CONFIG', `the user PIN of PKCS#11 token ${this.label} is locked`);
        throw new WaxsealError('ERR_CONFIG', `login to PKCS#11 token ${this.label} failed: ${errorText(e)}`, { cause: e });
      }
    }
    return session;
  }

  closeSession(session: Handle): void {
    try {
      this.module.lib.C_CloseSession(session);
    } catch {
      // the session is gone already
    }
  }

  /** Logs out (when this was the last holder on the token), closes `sessions`, releases the module. */
  release(sessions: Handle[]): void {
    if (this.#released) return;
    this.#released = true;
    const { module } = this;
    const login = module.logins.get(this.slotKey);
    const left = (login?.holders ?? 1) - 1;
    if (login && left > 0) login.holders = left;
    else module.logins.delete(this.slotKey);
    if (left === 0) {
      let s: Handle | undefined = sessions[0];
      let temporary = false;
      if (s === undefined) {
        try {
          s = module.lib.C_OpenSession(this.slot, this.api.CKF_SERIAL_SESSION);
          temporary = true;
        } catch {
          s = undefined;
        }
      }
      if (s !== undefined) {
        try {
          module.lib.C_Logout(s);
        } catch {
          // not logged in any more
        }
        if (temporary) this.closeSession(s);
      }
    }
    for (const s of sessions) this.closeSession(s);
    releaseModule(module);
  }
}

// ---------- key lookup ----------

function findObjects(lib: Lib, session: Handle, template: Array<{ type: number; value?: number | boolean | string | Buffer }>): Handle[] {
  lib.C_FindObjectsInit(session, template);
  try {
    return lib.C_FindObjects(session, 16);
  } finally {
    lib.C_FindObjectsFinal(session);
  }
}

function getAttr(lib: Lib, session: Handle, obj: Handle, type: number): Buffer | undefined {
  try {
    return lib.C_GetAttributeValue(session, obj, [{ type }])[0]?.value;
  } catch {
    return undefined;
  }
}

function describeKeyQuery(loc: Pkcs11Location): string {
  return [
    loc.object !== undefined ? `label ${JSON.stringify(loc.object)}` : '',
    loc.id !== undefined ? `id ${Buffer.from(loc.id).toString('hex')}` : '',
  ]
    .filter(Boolean)
    .join(' and ');
}

function keyTemplate(api: Api, cls: number, label: string | undefined, id: Uint8Array | undefined) {
  const t: Array<{ type: number; value: number | string | Buffer }> = [{ type: api.CKA_CLASS, value: cls }];
  if (label !== undefined) t.push({ type: api.CKA_LABEL, value: label });
  if (id !== undefined) t.push({ type: api.CKA_ID, value: Buffer.from(id) });
  return t;
}

const CURVES: Record<string, { kind: KeyKind; size: number }> = {
  [OID.p256]: { kind: 'ecdsa-p256', size: 32 },
  [OID.p384]: { kind: 'ecdsa-p384', size: 48 },
  [OID.p521]: { kind: 'ecdsa-p521', size: 66 },
};

function ecPublicKey(params: Buffer, pointAttr: Buffer, what: string): PublicKeyInfo {
  let curveOid: string;
  try {
    curveOid = readOid(parseDer(params), 'CKA_EC_PARAMS');
  } catch {
    throw new WaxsealError('ERR_CONFIG', `${what}: CKA_EC_PARAMS is not a named curve OID (explicit curve parameters are not supported)`);
  }
  const curve = CURVES[curveOid];
  if (!curve)
    throw new WaxsealError('ERR_CONFIG', `${what}: unsupported elliptic curve ${curveOid} (Waxseal supports P-256, P-384 and P-521)`);
  // CKA_EC_POINT is a DER OCTET STRING holding the point; some tokens return the bare point.
  let point: Uint8Array = pointAttr;
  if (pointAttr.length !== 2 * curve.size + 1 && pointAttr[0] === TAG.OCTET_STRING) {
    try {
      point = readOctetString(parseDer(pointAttr), 'CKA_EC_POINT');
    } catch {
      point = pointAttr;
    }
  }
  const spki = seq(seq(derOid(OID.ecPublicKey), derOid(curveOid)), bitString(point));
  return canonicalPublicKey(spki, what);
}

function rsaPublicKey(modulus: Buffer, exponent: Buffer, what: string): PublicKeyInfo {
  const strip = (b: Buffer) => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    return b.subarray(i);
  };
  let der: Uint8Array;
  try {
    const key = createPublicKey({ key: { kty: 'RSA', n: toBase64Url(strip(modulus)), e: toBase64Url(strip(exponent)) }, format: 'jwk' });
    der = new Uint8Array(key.export({ format: 'der', type: 'spki' }));
  } catch (e) {
    throw new WaxsealError('ERR_CONFIG', `${what}: RSA modulus/exponent are not a valid public key`, { cause: e });
  }
  return canonicalPublicKey(der, what);
}

interface FoundKey {
  handle: Handle;
  pub: PublicKeyInfo;
}

function locateKey(lease: TokenLease, session: Handle, loc: Pkcs11Location): FoundKey {
  const { api } = lease;
  const { lib } = lease.module;
  const where = `PKCS#11 token ${lease.label}`;
  const found = findObjects(lib, session, keyTemplate(api, api.CKO_PRIVATE_KEY, loc.object, loc.id));
  if (found.length === 0) throw new WaxsealError('ERR_CONFIG', `no private key with ${describeKeyQuery(loc)} on ${where}`);
  if (found.length > 1)
    throw new WaxsealError(
      'ERR_CONFIG',
      `${found.length} private keys match ${describeKeyQuery(loc)} on ${where}; add id=<CKA_ID> to the key URI`,
    );
  const handle = found[0]!;
  const what = `key ${describeKeyQuery(loc)} on ${where}`;
  const canSign = getAttr(lib, session, handle, api.CKA_SIGN);
  if (canSign && canSign.length > 0 && canSign[0] === 0)
    throw new WaxsealError('ERR_CONFIG', `${what} is not allowed to sign (CKA_SIGN is false)`);
  const keyTypeAttr = getAttr(lib, session, handle, api.CKA_KEY_TYPE);
  const keyType = keyTypeAttr ? ulong(keyTypeAttr) : -1;
  const id = getAttr(lib, session, handle, api.CKA_ID);
  const label = getAttr(lib, session, handle, api.CKA_LABEL)?.toString('utf8');
  // The public half: the matching public key object (by CKA_ID, else label), else a certificate.
  const partner = (cls: number): Handle | undefined => {
    const byId = id?.length ? findObjects(lib, session, keyTemplate(api, cls, undefined, id)) : [];
    if (byId.length === 1) return byId[0];
    const byLabel = label ? findObjects(lib, session, keyTemplate(api, cls, label, undefined)) : [];
    return byLabel.length === 1 ? byLabel[0] : undefined;
  };
  const fromCertificate = (): PublicKeyInfo | undefined => {
    const cert = partner(api.CKO_CERTIFICATE);
    const value = cert && getAttr(lib, session, cert, api.CKA_VALUE);
    if (!value) return undefined;
    try {
      return canonicalPublicKey(parseCertificate(value).spki, what);
    } catch {
      return undefined;
    }
  };

  let pub: PublicKeyInfo | undefined;
  if (keyType === api.CKK_EC) {
    const params = getAttr(lib, session, handle, api.CKA_EC_PARAMS);
    const pubObj = partner(api.CKO_PUBLIC_KEY);
    const point = pubObj && getAttr(lib, session, pubObj, api.CKA_EC_POINT);
    const pubParams = (pubObj && getAttr(lib, session, pubObj, api.CKA_EC_PARAMS)) ?? params;
    if (point && pubParams) pub = ecPublicKey(pubParams, point, what);
    else pub = fromCertificate();
    if (pub && params) {
      const curve = CURVES[readOid(parseDer(params), 'CKA_EC_PARAMS')];
      if (curve && curve.kind !== pub.kind)
        throw new WaxsealError('ERR_CONFIG', `${what}: public key object does not belong to the private key (curve differs)`);
    }
  } else if (keyType === api.CKK_RSA) {
    const n = getAttr(lib, session, handle, api.CKA_MODULUS);
    const e = getAttr(lib, session, handle, api.CKA_PUBLIC_EXPONENT);
    if (n && e) pub = rsaPublicKey(n, e, what);
    else {
      const pubObj = partner(api.CKO_PUBLIC_KEY);
      const pn = pubObj && getAttr(lib, session, pubObj, api.CKA_MODULUS);
      const pe = pubObj && getAttr(lib, session, pubObj, api.CKA_PUBLIC_EXPONENT);
      pub = pn && pe ? rsaPublicKey(pn, pe, what) : fromCertificate();
    }
    if (pub && (pub.rsaBits ?? 0) < 2048) throw new WaxsealError('ERR_KEY_WEAK', `${what}: RSA keys must be at least 2048 bits`);
  } else {
    throw new WaxsealError(
      'ERR_CONFIG',
      `${what} has key type ${keyType}; Waxseal signs with EC (P-256/P-384/P-521) or RSA keys on PKCS#11`,
    );
  }
  if (!pub)
    throw new WaxsealError(
      'ERR_CONFIG',
      `${what}: no public key object or certificate with the same CKA_ID/label to read the public key from`,
    );
  return { handle, pub };
}

// ---------- the signer ----------

const SESSION_GONE = (api: Api, rv: number | undefined) =>
  rv === api.CKR_SESSION_HANDLE_INVALID ||
  rv === api.CKR_SESSION_CLOSED ||
  rv === api.CKR_USER_NOT_LOGGED_IN ||
  rv === api.CKR_DEVICE_REMOVED ||
  rv === api.CKR_TOKEN_NOT_PRESENT;

/** How many sessions one signer keeps for concurrent signatures. */
const MAX_SESSIONS = 4;

class Pkcs11Signer implements Signer {
  readonly kind: KeyKind;
  readonly publicKeySpki: Uint8Array;
  readonly hash: HashName;
  readonly keyRef: string;
  readonly #lease: TokenLease;
  readonly #key: Handle;
  readonly #pub: PublicKeyInfo;
  readonly #pool: ResourcePool<Handle>;
  readonly #mechanism: number;
  readonly #inFlight = new Set<Promise<unknown>>();
  #closed = false;

  constructor(lease: TokenLease, firstSession: Handle, key: FoundKey, keyRef: string, mechanism: number) {
    this.#lease = lease;
    this.#key = key.handle;
    this.#pub = key.pub;
    this.kind = key.pub.kind;
    this.hash = defaultHash(key.pub.kind);
    this.publicKeySpki = key.pub.spki;
    this.keyRef = keyRef;
    this.#mechanism = mechanism;
    let first: Handle | undefined = firstSession;
    this.#pool = new ResourcePool(MAX_SESSIONS, () => {
      if (first) {
        const s = first;
        first = undefined;
        return s;
      }
      return lease.openSession();
    });
  }

  async sign(message: Uint8Array): Promise<Uint8Array> {
    if (this.#closed) throw new WaxsealError('ERR_SIGNER', `signer ${this.keyRef} is closed`);
    const p = this.#sign(message);
    this.#inFlight.add(p);
    try {
      return await p;
    } finally {
      this.#inFlight.delete(p);
    }
  }

  async #sign(message: Uint8Array): Promise<Uint8Array> {
    const { api } = this.#lease;
    const input = this.#input(message);
    for (let attempt = 0; ; attempt++) {
      const session = await this.#pool.acquire();
      let raw: Buffer;
      try {
        raw = await this.#signOnce(session, input);
      } catch (e) {
        const rv = rvCode(e);
        if (SESSION_GONE(api, rv)) {
          // The token dropped the session (HSM restart, token re-inserted): retry once on a fresh one.
          this.#lease.closeSession(session);
          this.#pool.discard();
          if (attempt === 0) continue;
        } else {
          this.#pool.release(session);
        }
        throw new WaxsealError('ERR_SIGNER', `PKCS#11 signing with ${this.keyRef} failed: ${errorText(e)}`, { cause: e });
      }
      this.#pool.release(session);
      const signature = this.kind === 'rsa' ? new Uint8Array(raw) : rawEcdsaToDer(this.#checkEcLength(raw));
      assertSignatureMatches(this.#pub, this.hash, message, signature, this.keyRef);
      return signature;
    }
  }

  #input(message: Uint8Array): Buffer {
    const { api } = this.#lease;
    if (this.#mechanism === api.CKM_ECDSA) return Buffer.from(digest(this.hash, message));
    if (this.#mechanism === api.CKM_RSA_PKCS) {
      return Buffer.from(seq(seq(derOid(HASH_OID[this.hash]), nullValue()), octetString(digest(this.hash, message))));
    }
    return Buffer.from(message); // CKM_SHAxxx_RSA_PKCS hashes on the token
  }

  #checkEcLength(raw: Buffer): Buffer {
    const size = this.kind === 'ecdsa-p256' ? 32 : this.kind === 'ecdsa-p384' ? 48 : 66;
    if (raw.length !== 2 * size)
      throw new WaxsealError('ERR_SIGNER', `PKCS#11 token returned a ${raw.length}-byte ECDSA signature, expected ${2 * size}`);
    return raw;
  }

  #signOnce(session: Handle, input: Buffer): Promise<Buffer> {
    const { lib } = this.#lease.module;
    lib.C_SignInit(session, { mechanism: this.#mechanism }, this.#key);
    return new Promise((resolve, reject) => {
      // The callback form runs C_Sign on libuv's thread pool, keeping the event loop free.
      lib.C_Sign(session, input, Buffer.alloc(1024), (err, data) => (err ? reject(err) : resolve(data)));
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#inFlight]);
    this.#lease.release(this.#pool.close());
  }
}

export interface Pkcs11SignerOptions {
  /**
   * RSA only: 'digest-info' (default) hashes in Node and signs a DigestInfo with CKM_RSA_PKCS, so
   * only a few bytes cross to the HSM; 'hash-and-sign' sends the message to CKM_SHA256_RSA_PKCS
   * (or SHA-384/512). Either falls back to the other when the token lacks the mechanism.
   */
  rsaMechanism?: 'digest-info' | 'hash-and-sign';
}

function chooseMechanism(lease: TokenLease, pub: PublicKeyInfo, opts: Pkcs11SignerOptions): number {
  const { api } = lease;
  let mechs: number[];
  try {
    mechs = lease.module.lib.C_GetMechanismList(lease.slot);
  } catch (e) {
    throw new WaxsealError('ERR_CONFIG', `cannot list mechanisms of PKCS#11 token ${lease.label}: ${errorText(e)}`, { cause: e });
  }
  if (pub.kind === 'rsa') {
    const hashAndSign = { sha256: api.CKM_SHA256_RSA_PKCS, sha384: api.CKM_SHA384_RSA_PKCS, sha512: api.CKM_SHA512_RSA_PKCS }[
      defaultHash(pub.kind)
    ];
    const order = opts.rsaMechanism === 'hash-and-sign' ? [hashAndSign, api.CKM_RSA_PKCS] : [api.CKM_RSA_PKCS, hashAndSign];
    const m = order.find((x) => mechs.includes(x));
    if (m !== undefined) return m;
    throw new WaxsealError('ERR_CONFIG', `PKCS#11 token ${lease.label} offers neither CKM_SHA256_RSA_PKCS nor CKM_RSA_PKCS`);
  }
  if (mechs.includes(api.CKM_ECDSA)) return api.CKM_ECDSA;
  throw new WaxsealError('ERR_CONFIG', `PKCS#11 token ${lease.label} does not offer CKM_ECDSA`);
}

/** Opens a signer for the private key a `pkcs11:` URI names (logs in, finds the key, reads its public key). */
export async function openPkcs11Signer(raw: string, opts: Pkcs11SignerOptions = {}): Promise<Signer> {
  const loc = parsePkcs11Uri(raw);
  const lease = await TokenLease.open(loc);
  let session: Handle | undefined;
  try {
    session = lease.openSession();
    const key = locateKey(lease, session, loc);
    const mechanism = chooseMechanism(lease, key.pub, opts);
    return new Pkcs11Signer(lease, session, key, loc.keyRef, mechanism);
  } catch (e) {
    lease.release(session === undefined ? [] : [session]);
    if (e instanceof WaxsealError) throw e;
    throw new WaxsealError('ERR_SIGNER', `opening ${loc.keyRef} failed: ${errorText(e)}`, { cause: e });
  }
}

export type Pkcs11KeyKind = 'ecdsa-p256' | 'ecdsa-p384' | 'rsa-2048' | 'rsa-3072' | 'rsa-4096';

/**
 * Generates a key pair on the token the URI names, labelled `object` and identified by `id`
 * (a random 16-byte CKA_ID when the URI has none), non-extractable and sensitive, then opens a
 * signer for it. Refuses (ERR_CONFLICT) when a private key with that label or id exists.
 */
export async function generatePkcs11Key(raw: string, kind: Pkcs11KeyKind = 'ecdsa-p256'): Promise<Signer> {
  const loc = parsePkcs11Uri(raw);
  if (loc.object === undefined) throw new WaxsealError('ERR_CONFIG', 'pkcs11 URI: a new key needs a label: add object=<label>');
  const lease = await TokenLease.open(loc);
  let session: Handle | undefined;
  try {
    session = lease.openSession();
    const { api } = lease;
    const { lib } = lease.module;
    const clash = [
      ...findObjects(lib, session, keyTemplate(api, api.CKO_PRIVATE_KEY, loc.object, undefined)),
      ...(loc.id ? findObjects(lib, session, keyTemplate(api, api.CKO_PRIVATE_KEY, undefined, loc.id)) : []),
    ];
    if (clash.length)
      throw new WaxsealError('ERR_CONFLICT', `PKCS#11 token ${lease.label} already holds a private key with ${describeKeyQuery(loc)}`);
    const id = Buffer.from(loc.id ?? randomBytes(16));
    const common = [
      { type: api.CKA_TOKEN, value: true },
      { type: api.CKA_LABEL, value: loc.object },
      { type: api.CKA_ID, value: id },
    ];
    const priv = [
      ...common,
      { type: api.CKA_PRIVATE, value: true },
      { type: api.CKA_SIGN, value: true },
      { type: api.CKA_SENSITIVE, value: true },
      { type: api.CKA_EXTRACTABLE, value: false },
    ];
    let mechanism: number;
    let pubTemplate;
    if (kind === 'ecdsa-p256' || kind === 'ecdsa-p384') {
      mechanism = api.CKM_EC_KEY_PAIR_GEN;
      pubTemplate = [
        ...common,
        { type: api.CKA_VERIFY, value: true },
        { type: api.CKA_EC_PARAMS, value: Buffer.from(derOid(kind === 'ecdsa-p256' ? OID.p256 : OID.p384)) },
      ];
    } else {
      const bits = { 'rsa-2048': 2048, 'rsa-3072': 3072, 'rsa-4096': 4096 }[kind];
      if (bits === undefined) throw new WaxsealError('ERR_CONFIG', `unsupported PKCS#11 key kind ${String(kind)}`);
      mechanism = api.CKM_RSA_PKCS_KEY_PAIR_GEN;
      pubTemplate = [
        ...common,
        { type: api.CKA_VERIFY, value: true },
        { type: api.CKA_MODULUS_BITS, value: bits },
        { type: api.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
      ];
    }
    const s = session;
    await new Promise<void>((resolve, reject) =>
      lib.C_GenerateKeyPair(s, { mechanism }, pubTemplate, priv, (err) => (err ? reject(err) : resolve())),
    ).catch((e: unknown) => {
      throw new WaxsealError('ERR_SIGNER', `generating a ${kind} key on PKCS#11 token ${lease.label} failed: ${errorText(e)}`, {
        cause: e,
      });
    });
    // Open the signer while this lease still holds the module, so it is not finalised in between.
    const uri = loc.id ? raw : withId(raw, id);
    return await openPkcs11Signer(uri);
  } finally {
    lease.release(session === undefined ? [] : [session]);
  }
}

/** Adds `id=` (percent-encoded) to a pkcs11 URI's path. */
function withId(raw: string, id: Uint8Array): string {
  const q = raw.indexOf('?');
  const enc = [...id].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
  return q < 0 ? `${raw};id=${enc}` : `${raw.slice(0, q)};id=${enc}${raw.slice(q)}`;
}
