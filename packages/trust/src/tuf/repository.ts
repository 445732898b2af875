// A TUF repository in a directory, written the way TUF clients (tuf-js/@sigstore/tuf, go-tuf in
// cosign/sigstore-go, python-tuf in sigstore-python) fetch it with consistent snapshots:
//
//   <dir>/1.root.json … N.root.json   every root version ever published (clients walk them)
//   <dir>/root.json                   copy of the newest root (for bootstrapping a client)
//   <dir>/N.targets.json, targets.json
//   <dir>/N.snapshot.json, snapshot.json
//   <dir>/timestamp.json              the only file clients fetch without a version
//   <dir>/targets/<sha256>.<name>     target files, content-addressed
//
// Old versioned files are kept so a client that read an older timestamp can still finish its
// update. Every write goes to a temporary file, is fsynced and renamed into place, and files are
// published bottom-up (targets, then targets.json, snapshot, timestamp last), so a reader never
// sees metadata that points at files not yet written. One process should own a repository
// directory; within the process all changes are serialised.
import { mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { MetaFile, Root, Snapshot, TargetFile, Targets, Timestamp, type Key, type Metadata } from '@tufjs/models';
import { WaxsealError, toHex, sha256 } from '@waxseal/core';
import type { Signer } from '@waxseal/keys';
import {
  TUF_SPEC_VERSION,
  encodeMetadata,
  formatExpires,
  parseMetadata,
  rootRole,
  signMetadata,
  tufKeyForSigner,
  verifyThreshold,
  type RoleName,
} from './metadata.ts';

const DAY = 86_400;

/** Lifetimes of each role's metadata, in seconds. */
export interface TufExpiries {
  root: number;
  targets: number;
  snapshot: number;
  timestamp: number;
}

/**
 * Defaults for a private instance: root and targets are re-signed rarely; snapshot and
 * timestamp are online roles kept fresh by `refreshTimestamp()` (run it daily, e.g. from cron).
 */
export const DEFAULT_TUF_EXPIRIES: TufExpiries = { root: 365 * DAY, targets: 365 * DAY, snapshot: 30 * DAY, timestamp: 7 * DAY };

/** One signer or several (for a role with a threshold above 1). */
export type SignerSet = Signer | readonly Signer[];

export interface TufOnlineSigners {
  targetsSigner?: SignerSet;
  snapshotSigner?: SignerSet;
  timestampSigner?: SignerSet;
}

export interface TufRepositoryOptions extends TufOnlineSigners {
  expiries?: Partial<TufExpiries>;
  /** Clock, for tests and for signing metadata that becomes valid later. */
  now?: () => Date;
}

export interface TufInitOptions {
  /** The root keys. All of them sign root v1. */
  rootSigners: readonly Signer[];
  targetsSigner: SignerSet;
  snapshotSigner: SignerSet;
  timestampSigner: SignerSet;
  /** Defaults: root = a majority of the root keys, the other roles 1. */
  thresholds?: Partial<Record<RoleName, number>>;
  expiries?: Partial<TufExpiries>;
  /** Target files to publish in version 1 (name -> bytes). */
  targets?: Record<string, Uint8Array>;
}

export interface TufRotateRootOptions {
  /** Signers for the current root keys: at least the current root threshold of them. */
  currentRootSigners: readonly Signer[];
  /** The new root keys (default: the current ones). All of them sign the new root. */
  newRootSigners?: readonly Signer[];
  /** New keys for the online roles (default: keep the current keys and signers). */
  targetsSigner?: SignerSet;
  snapshotSigner?: SignerSet;
  timestampSigner?: SignerSet;
  /** Thresholds of the new root (defaults as for init). */
  thresholds?: Partial<Record<RoleName, number>>;
}

export interface TufTargetStatus {
  length: number;
  sha256: string;
}

export interface TufStatus {
  rootVersion: number;
  targetsVersion: number;
  snapshotVersion: number;
  timestampVersion: number;
  expires: Record<RoleName, string>;
  targets: Record<string, TufTargetStatus>;
  /** Key IDs per role in the current root. */
  keyids: Record<RoleName, string[]>;
}

/** Target names we publish: flat, ASCII, safe in URLs and file names on every platform. */
export const TARGET_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

function checkTargetName(name: string): void {
  if (typeof name !== 'string' || !TARGET_NAME_RE.test(name)) {
    throw new WaxsealError(
      'ERR_INVALID_INPUT',
      `invalid TUF target name ${JSON.stringify(name)} (letters, digits, '.', '_', '-'; no paths)`,
    );
  }
}

function signerList(s: SignerSet | undefined): Signer[] {
  if (s === undefined) return [];
  return Array.isArray(s) ? [...(s as readonly Signer[])] : [s as Signer];
}

type OnlineRole = 'targets' | 'snapshot' | 'timestamp';

const keyIdOf = (s: Signer): string => tufKeyForSigner(s).keyID;

async function writeAtomic(path: string, data: Uint8Array): Promise<void> {
  const tmp = `${path}.${toHex(randomBytes(6))}.tmp`;
  const fh = await open(tmp, 'wx', 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

function metaFile(version: number, bytes: Uint8Array): MetaFile {
  return new MetaFile({ version, length: bytes.length, hashes: { sha256: toHex(sha256(bytes)) } });
}

interface Loaded {
  root: Metadata<Root>;
  targets: Metadata<Targets>;
  snapshot: Metadata<Snapshot>;
  timestamp: Metadata<Timestamp>;
  targetsBytes: Uint8Array;
  snapshotBytes: Uint8Array;
}

export class TufRepository {
  readonly directory: string;
  readonly #expiries: TufExpiries;
  readonly #now: () => Date;
  #signers: Record<OnlineRole, Signer[]>;
  #state: Loaded | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(directory: string, opts: TufRepositoryOptions = {}) {
    this.directory = directory;
    this.#expiries = { ...DEFAULT_TUF_EXPIRIES, ...opts.expiries };
    this.#now = opts.now ?? (() => new Date());
    this.#signers = {
      targets: signerList(opts.targetsSigner),
      snapshot: signerList(opts.snapshotSigner),
      timestamp: signerList(opts.timestampSigner),
    };
    for (const [role, secs] of Object.entries(this.#expiries)) {
      if (!Number.isFinite(secs)) throw new WaxsealError('ERR_CONFIG', `TUF ${role} expiry must be a number of seconds`);
    }
  }

  /** Runs mutations one at a time so versions never collide. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #expiry(role: RoleName, expiries = this.#expiries): string {
    return formatExpires(new Date(this.#now().getTime() + expiries[role] * 1000));
  }

  /** Creates version 1 of every role. Refuses a directory that already holds a repository. */
  init(opts: TufInitOptions): Promise<TufStatus> {
    return this.#serial(async () => {
      if (await exists(join(this.directory, '1.root.json'))) {
        throw new WaxsealError('ERR_CONFLICT', `a TUF repository already exists in ${this.directory}`);
      }
      if (opts.rootSigners.length === 0) throw new WaxsealError('ERR_CONFIG', 'TUF init needs at least one root signer');
      const expiries = { ...this.#expiries, ...opts.expiries };
      Object.assign(this.#expiries, expiries);
      this.#signers = {
        targets: signerList(opts.targetsSigner),
        snapshot: signerList(opts.snapshotSigner),
        timestamp: signerList(opts.timestampSigner),
      };
      const rootSigned = this.#buildRoot(1, opts.rootSigners, this.#signers, opts.thresholds);
      const root = await signMetadata(rootSigned, opts.rootSigners);
      verifyThreshold(root, 'root', root, 'root v1');
      await mkdir(join(this.directory, 'targets'), { recursive: true });
      await this.#writeRoot(root);
      const files = opts.targets ?? {};
      const targets: Record<string, TargetFile> = {};
      for (const [name, bytes] of Object.entries(files)) targets[name] = await this.#writeTargetFile(name, bytes);
      const state = { root } as Partial<Loaded>;
      await this.#publishTargets(state, targets, 1);
      await this.#publishSnapshot(state, 1);
      await this.#publishTimestamp(state, 1);
      this.#state = state as Loaded;
      return this.#status();
    });
  }

  #buildRoot(
    version: number,
    rootSigners: readonly Signer[],
    online: Record<OnlineRole, Signer[]>,
    thresholds: Partial<Record<RoleName, number>> = {},
  ): Root {
    const keys: Record<string, Key> = {};
    const roles: Record<string, { keyids: string[]; threshold: number }> = {};
    const sets: Record<RoleName, Signer[]> = { root: [...rootSigners], ...online };
    for (const role of ['root', 'targets', 'snapshot', 'timestamp'] as const) {
      const roleKeys = sets[role].map((s) => tufKeyForSigner(s));
      if (roleKeys.length === 0) throw new WaxsealError('ERR_CONFIG', `TUF role ${role} needs at least one key`);
      const keyIDs = [...new Set(roleKeys.map((k) => k.keyID))].sort();
      for (const k of roleKeys) keys[k.keyID] = k;
      const dflt = role === 'root' ? Math.floor(keyIDs.length / 2) + 1 : 1;
      const threshold = thresholds[role] ?? dflt;
      if (!Number.isSafeInteger(threshold) || threshold < 1 || threshold > keyIDs.length) {
        throw new WaxsealError('ERR_CONFIG', `TUF ${role} threshold ${threshold} must be between 1 and its ${keyIDs.length} key(s)`);
      }
      roles[role] = { keyids: keyIDs, threshold };
    }
    // Through fromJSON because the models do not export their Role class (thresholds are set at construction).
    return Root.fromJSON({
      spec_version: TUF_SPEC_VERSION,
      version,
      expires: this.#expiry('root'),
      keys: Object.fromEntries(Object.entries(keys).map(([id, k]) => [id, k.toJSON()])),
      roles,
      consistent_snapshot: true,
    });
  }

  async #writeRoot(root: Metadata<Root>): Promise<void> {
    await this.#writeVersioned('root', root.signed.version, root);
  }

  /** Writes a role's metadata as <version>.<role>.json (consistent snapshots) and <role>.json; returns its bytes. */
  async #writeVersioned(
    role: 'root' | 'targets' | 'snapshot',
    version: number,
    md: Metadata<Root | Targets | Snapshot>,
  ): Promise<Uint8Array> {
    const bytes = encodeMetadata(md);
    await writeAtomic(join(this.directory, `${version}.${role}.json`), bytes);
    await writeAtomic(join(this.directory, `${role}.json`), bytes);
    return bytes;
  }

  async #writeTargetFile(name: string, bytes: Uint8Array, custom?: Record<string, unknown>): Promise<TargetFile> {
    checkTargetName(name);
    if (!(bytes instanceof Uint8Array)) throw new TypeError(`target ${name} must be bytes`);
    const hash = toHex(sha256(bytes));
    const path = join(this.directory, 'targets', `${hash}.${name}`);
    if (!(await exists(path))) await writeAtomic(path, bytes);
    // `custom` is not a TargetFile field of the models: it travels as an unrecognised field.
    const extra = (custom === undefined ? {} : { custom }) as TargetFile['unrecognizedFields'];
    return new TargetFile({ path: name, length: bytes.length, hashes: { sha256: hash }, unrecognizedFields: extra });
  }

  /** Signers of `role` checked against the root: every one must hold a key of the role, and enough of them. */
  #roleSigners(root: Root, role: OnlineRole): Signer[] {
    const signers = this.#signers[role];
    const r = rootRole(root, role);
    if (signers.length === 0) throw new WaxsealError('ERR_CONFIG', `no ${role} signer configured for the TUF repository`);
    for (const s of signers) {
      const id = keyIdOf(s);
      if (!r.keyIDs.includes(id))
        throw new WaxsealError('ERR_CONFIG', `${s.keyRef} (key ${id.slice(0, 16)}…) is not a ${role} key of root v${root.version}`);
    }
    return signers;
  }

  /** Fails early (before any file is written) when an online role cannot be signed. */
  #checkOnlineSigners(root: Root, roles: readonly OnlineRole[] = ['targets', 'snapshot', 'timestamp']): void {
    for (const role of roles) {
      const n = new Set(this.#roleSigners(root, role).map(keyIdOf)).size;
      const { threshold } = rootRole(root, role);
      if (n < threshold) throw new WaxsealError('ERR_CONFIG', `${role} needs ${threshold} signer(s), ${n} configured`);
    }
  }

  async #sign<T extends Targets | Snapshot | Timestamp>(root: Metadata<Root>, role: OnlineRole, signed: T): Promise<Metadata<T>> {
    const md = await signMetadata(signed, this.#roleSigners(root.signed, role));
    // Re-verify what the signers produced: a misconfigured backend must not publish junk.
    verifyThreshold(root, role, md, `${role} v${signed.version}`);
    return md;
  }

  /** The fields every new version of an online role starts with. */
  #header(role: OnlineRole, version: number): { specVersion: string; version: number; expires: string } {
    return { specVersion: TUF_SPEC_VERSION, version, expires: this.#expiry(role) };
  }

  async #publishTargets(state: Partial<Loaded>, targets: Record<string, TargetFile>, version: number): Promise<void> {
    const md = await this.#sign(state.root!, 'targets', new Targets({ ...this.#header('targets', version), targets }));
    const bytes = await this.#writeVersioned('targets', version, md);
    state.targets = md;
    state.targetsBytes = bytes;
  }

  async #publishSnapshot(state: Partial<Loaded>, version: number): Promise<void> {
    const meta = { 'targets.json': metaFile(state.targets!.signed.version, state.targetsBytes!) };
    const md = await this.#sign(state.root!, 'snapshot', new Snapshot({ ...this.#header('snapshot', version), meta }));
    const bytes = await this.#writeVersioned('snapshot', version, md);
    state.snapshot = md;
    state.snapshotBytes = bytes;
  }

  async #publishTimestamp(state: Partial<Loaded>, version: number): Promise<void> {
    const snapshotMeta = metaFile(state.snapshot!.signed.version, state.snapshotBytes!);
    const md = await this.#sign(state.root!, 'timestamp', new Timestamp({ ...this.#header('timestamp', version), snapshotMeta }));
    // timestamp.json is the entry point: writing it last makes the whole update visible at once.
    await writeAtomic(join(this.directory, 'timestamp.json'), encodeMetadata(md));
    state.timestamp = md;
  }

  async #load(): Promise<Loaded> {
    if (this.#state) return this.#state;
    const read = async (name: string): Promise<Uint8Array> => {
      try {
        return new Uint8Array(await readFile(join(this.directory, name)));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
          throw new WaxsealError('ERR_CONFIG', `no TUF repository in ${this.directory} (missing ${name}; run init first)`);
        }
        throw new WaxsealError('ERR_IO', `cannot read ${name} in ${this.directory}`, { cause: e });
      }
    };
    const root = parseMetadata(await read('root.json'), 'root');
    verifyThreshold(root, 'root', root, `root v${root.signed.version}`);
    const targetsBytes = await read('targets.json');
    const snapshotBytes = await read('snapshot.json');
    const state: Loaded = {
      root,
      targets: parseMetadata(targetsBytes, 'targets'),
      snapshot: parseMetadata(snapshotBytes, 'snapshot'),
      timestamp: parseMetadata(await read('timestamp.json'), 'timestamp'),
      targetsBytes,
      snapshotBytes,
    };
    this.#state = state;
    return state;
  }

  /** Adds or replaces target files and republishes targets, snapshot and timestamp. */
  addTargets(files: Record<string, Uint8Array>, opts: { custom?: Record<string, Record<string, unknown>> } = {}): Promise<TufStatus> {
    return this.#serial(async () => {
      for (const name of Object.keys(files)) checkTargetName(name);
      const st = await this.#load();
      this.#checkOnlineSigners(st.root.signed);
      const targets = { ...st.targets.signed.targets };
      for (const [name, bytes] of Object.entries(files)) targets[name] = await this.#writeTargetFile(name, bytes, opts.custom?.[name]);
      await this.#republish(st, targets);
      return this.#status();
    });
  }

  /** Removes targets (their content-addressed files stay for clients mid-update). */
  removeTargets(names: readonly string[]): Promise<TufStatus> {
    return this.#serial(async () => {
      const st = await this.#load();
      this.#checkOnlineSigners(st.root.signed);
      const targets = { ...st.targets.signed.targets };
      for (const n of names) {
        if (!(n in targets)) throw new WaxsealError('ERR_NOT_FOUND', `no TUF target named ${JSON.stringify(n)}`);
        delete targets[n];
      }
      await this.#republish(st, targets);
      return this.#status();
    });
  }

  async #republish(st: Loaded, targets: Record<string, TargetFile>): Promise<void> {
    const next: Partial<Loaded> = { ...st };
    await this.#publishTargets(next, targets, st.targets.signed.version + 1);
    await this.#publishSnapshot(next, st.snapshot.signed.version + 1);
    await this.#publishTimestamp(next, st.timestamp.signed.version + 1);
    this.#state = next as Loaded;
  }

  /**
   * Publishes root version N+1, signed by a threshold of the current root keys and by every new
   * root key (TUF 5.3.4/5.3.5: clients check both), then re-signs targets, snapshot and
   * timestamp under the new root so clients holding either root can finish an update.
   */
  rotateRoot(opts: TufRotateRootOptions): Promise<TufStatus> {
    return this.#serial(async () => {
      const st = await this.#load();
      const old = st.root.signed;
      const newRootSigners = opts.newRootSigners ?? opts.currentRootSigners;
      const oldRole = rootRole(old, 'root');
      const currentIds = new Set(opts.currentRootSigners.map(keyIdOf));
      for (const s of opts.currentRootSigners) {
        if (!oldRole.keyIDs.includes(keyIdOf(s)))
          throw new WaxsealError('ERR_CONFIG', `${s.keyRef} is not a root key of root v${old.version}`);
      }
      if (currentIds.size < oldRole.threshold) {
        throw new WaxsealError(
          'ERR_CONFIG',
          `rotating root v${old.version} needs ${oldRole.threshold} current root signer(s), got ${currentIds.size}`,
        );
      }
      const online = {
        targets: opts.targetsSigner === undefined ? this.#signers.targets : signerList(opts.targetsSigner),
        snapshot: opts.snapshotSigner === undefined ? this.#signers.snapshot : signerList(opts.snapshotSigner),
        timestamp: opts.timestampSigner === undefined ? this.#signers.timestamp : signerList(opts.timestampSigner),
      };
      // The online roles are re-signed under the new root, so their signers must be at hand.
      for (const role of ['targets', 'snapshot', 'timestamp'] as const) {
        if (online[role].length === 0) throw new WaxsealError('ERR_CONFIG', `rotateRoot needs a ${role} signer (none configured)`);
      }
      const signed = this.#buildRoot(old.version + 1, newRootSigners, online, opts.thresholds);
      const root = await signMetadata(signed, [...opts.currentRootSigners, ...newRootSigners]);
      // TUF 5.3.4/5.3.5, as clients check it: a threshold of the old root keys and of the new ones.
      verifyThreshold(st.root, 'root', root, `root v${signed.version} (by the keys of root v${old.version})`);
      verifyThreshold(root, 'root', root, `root v${signed.version} (by its own keys)`);
      await this.#writeRoot(root);
      this.#signers = online;
      const next: Partial<Loaded> = { ...st, root };
      await this.#publishTargets(next, st.targets.signed.targets, st.targets.signed.version + 1);
      await this.#publishSnapshot(next, st.snapshot.signed.version + 1);
      await this.#publishTimestamp(next, st.timestamp.signed.version + 1);
      this.#state = next as Loaded;
      return this.#status();
    });
  }

  /**
   * Re-signs timestamp.json with a fresh expiry. Snapshot (and targets) are re-signed too when
   * they would expire before the new timestamp does, since a fresh timestamp pointing at expired
   * metadata is useless. Root expiry cannot be fixed here (its keys are offline): see status().
   */
  refreshTimestamp(): Promise<TufStatus> {
    return this.#serial(async () => {
      const st = await this.#load();
      const next: Partial<Loaded> = { ...st };
      const tsExpiry = Date.parse(this.#expiry('timestamp'));
      const targetsStale = Date.parse(st.targets.signed.expires) < tsExpiry;
      if (targetsStale) await this.#publishTargets(next, st.targets.signed.targets, st.targets.signed.version + 1);
      if (targetsStale || Date.parse(st.snapshot.signed.expires) < tsExpiry)
        await this.#publishSnapshot(next, st.snapshot.signed.version + 1);
      await this.#publishTimestamp(next, st.timestamp.signed.version + 1);
      this.#state = next as Loaded;
      return this.#status();
    });
  }

  #status(): TufStatus {
    const st = this.#state!;
    const targets: Record<string, TufTargetStatus> = {};
    for (const [name, t] of Object.entries(st.targets.signed.targets)) targets[name] = { length: t.length, sha256: t.hashes['sha256']! };
    const keyids = (role: RoleName) => [...rootRole(st.root.signed, role).keyIDs];
    return {
      rootVersion: st.root.signed.version,
      targetsVersion: st.targets.signed.version,
      snapshotVersion: st.snapshot.signed.version,
      timestampVersion: st.timestamp.signed.version,
      expires: {
        root: st.root.signed.expires,
        targets: st.targets.signed.expires,
        snapshot: st.snapshot.signed.expires,
        timestamp: st.timestamp.signed.expires,
      },
      targets,
      keyids: { root: keyids('root'), targets: keyids('targets'), snapshot: keyids('snapshot'), timestamp: keyids('timestamp') },
    };
  }

  /** Versions, expiries, targets and key IDs of the repository as published. */
  status(): Promise<TufStatus> {
    return this.#serial(async () => {
      await this.#load();
      return this.#status();
    });
  }

  /** Bytes of a published root (default: the newest), e.g. to hand to clients as their initial root. */
  async rootBytes(version?: number): Promise<Uint8Array> {
    const name = version === undefined ? 'root.json' : `${version}.root.json`;
    if (version !== undefined && (!Number.isSafeInteger(version) || version < 1))
      throw new WaxsealError('ERR_INVALID_INPUT', 'root version must be a positive integer');
    try {
      return new Uint8Array(await readFile(join(this.directory, name)));
    } catch (e) {
      throw new WaxsealError('ERR_NOT_FOUND', `no ${name} in ${this.directory}`, { cause: e });
    }
  }

  /** Bytes of a current target (verified against its published hash). */
  async readTarget(name: string): Promise<Uint8Array> {
    const st = await this.#serial(() => this.#load());
    const info = Object.hasOwn(st.targets.signed.targets, name) ? st.targets.signed.targets[name] : undefined;
    if (!info) throw new WaxsealError('ERR_NOT_FOUND', `no TUF target named ${JSON.stringify(name)}`);
    const hash = info.hashes['sha256']!;
    const bytes = new Uint8Array(await readFile(join(this.directory, 'targets', `${hash}.${name}`)));
    if (toHex(sha256(bytes)) !== hash) throw new WaxsealError('ERR_TUF', `target file ${name} does not match its published hash`);
    return bytes;
  }
}
