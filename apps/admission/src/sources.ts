// Where policies come from. A PolicySource keeps the current policy store and tells the server
// when it changes; a bad edit keeps the last good store serving (and is reported), so a typo in a
// ConfigMap never opens or closes the cluster by accident.
//
// DirectorySource: a folder of YAML (or JSON) files, typically a mounted ConfigMap. Kubernetes
// updates such a mount by swapping the `..data` symlink, so the folder is watched as a whole and
// re-read (debounced) on any event, with a poll as a fallback for filesystems that drop events.
import { watch, readdirSync, readFileSync, statSync, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { WaxsealError } from '@waxseal/core';

/** A policy file: its name (for messages) and its text (YAML, possibly several documents). */
export interface PolicyDocument {
  name: string;
  text: string;
}

/** The part of a policy store the server relies on. */
export interface GenerationalStore {
  /** Changes whenever any input document changes. */
  generation: string;
}

export interface SourceStatus {
  /** Has a store ever loaded (readiness)? */
  ready: boolean;
  generation?: string;
  /** The error of the last load, when it failed (the previous store, if any, still serves). */
  error?: string;
  loadedAt?: Date;
  /** How many loads succeeded. */
  loads: number;
}

export interface PolicySource<S extends GenerationalStore = GenerationalStore> {
  /** First load; resolves once a store is loaded, rejects with the reason when the first load fails. */
  start(): Promise<S>;
  current(): S | undefined;
  /** Called with each new store (a different generation). */
  onChange(listener: (store: S) => void): void;
  status(): SourceStatus;
  close(): Promise<void>;
}

/** Files larger than this are refused (a ConfigMap holds at most 1 MiB in all). */
const MAX_FILE_BYTES = 1 << 20;
const MAX_FILES = 1000;

/** Reads the policy files of a folder: *.yaml, *.yml and *.json, not hidden (ConfigMap mounts keep their internals in `..*`). */
export function readPolicyDir(dir: string): PolicyDocument[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    throw new WaxsealError('ERR_CONFIG', `cannot read the policy folder ${dir}: ${(e as Error).message}`, { cause: e });
  }
  const docs: PolicyDocument[] = [];
  for (const name of names.sort()) {
    if (name.startsWith('.') || !/\.(ya?ml|json)$/i.test(name)) continue;
    const path = join(dir, name);
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(path); // follows the ConfigMap's symlinks
    } catch {
      continue; // removed between readdir and stat
    }
    if (!st.isFile()) continue;
    if (st.size > MAX_FILE_BYTES) throw new WaxsealError('ERR_CONFIG', `policy file ${name} is larger than ${MAX_FILE_BYTES} bytes`);
    if (docs.length >= MAX_FILES) throw new WaxsealError('ERR_CONFIG', `the policy folder ${dir} has more than ${MAX_FILES} files`);
    docs.push({ name, text: readFileSync(path, 'utf8') });
  }
  return docs;
}

export interface DirectorySourceOptions<S> {
  dir: string;
  /** Turns the documents into a store (@waxseal/policy's loadPolicyStore); throws on invalid policies. */
  load: (docs: PolicyDocument[]) => S;
  /** Poll interval (default 5 s; 0 turns the poll off). */
  pollMs?: number;
  /** Reports reloads and load errors. */
  log?: (event: 'loaded' | 'error', detail: string) => void;
}

export class DirectorySource<S extends GenerationalStore> implements PolicySource<S> {
  readonly #opts: DirectorySourceOptions<S>;
  readonly #listeners: ((s: S) => void)[] = [];
  #store: S | undefined;
  #status: SourceStatus = { ready: false, loads: 0 };
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  /** Snapshot of the inputs last read, to skip reloading unchanged folders on every poll. */
  #lastInput = '';

  constructor(opts: DirectorySourceOptions<S>) {
    this.#opts = opts;
  }

  async start(): Promise<S> {
    this.reload();
    try {
      this.#watcher = watch(this.#opts.dir, () => this.#schedule());
      this.#watcher.on('error', () => {});
    } catch {
      // Unwatchable folder: the poll covers it.
    }
    const poll = this.#opts.pollMs ?? 5000;
    if (poll > 0) {
      this.#timer = setInterval(() => this.reload(), poll);
      this.#timer.unref();
    }
    if (!this.#store) throw new WaxsealError('ERR_CONFIG', this.#status.error ?? 'no policies loaded');
    return this.#store;
  }

  #schedule(): void {
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => this.reload(), 100);
    this.#debounce.unref();
  }

  /** Re-reads the folder now; returns whether a new store was loaded. */
  reload(): boolean {
    let docs: PolicyDocument[];
    let store: S;
    try {
      docs = readPolicyDir(this.#opts.dir);
      const input = JSON.stringify(docs);
      if (input === this.#lastInput && this.#store) return false;
      store = this.#opts.load(docs);
      this.#lastInput = input;
    } catch (e) {
      const msg = (e as Error).message;
      if (this.#status.error !== msg) this.#opts.log?.('error', msg);
      this.#status = { ...this.#status, error: msg };
      return false;
    }
    const changed = store.generation !== this.#store?.generation;
    this.#store = store;
    this.#status = { ready: true, generation: store.generation, loadedAt: new Date(), loads: this.#status.loads + 1 };
    if (changed) {
      this.#opts.log?.('loaded', `${docs.length} policy files, generation ${store.generation}`);
      for (const l of this.#listeners) l(store);
    }
    return changed;
  }

  current(): S | undefined {
    return this.#store;
  }

  onChange(listener: (store: S) => void): void {
    this.#listeners.push(listener);
  }

  status(): SourceStatus {
    return { ...this.#status };
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    clearTimeout(this.#debounce);
    this.#watcher?.close();
  }
}

/** A fixed store (tests, `waxseal policy test`-style embedding). */
export class StaticSource<S extends GenerationalStore> implements PolicySource<S> {
  readonly #store: S;
  constructor(store: S) {
    this.#store = store;
  }
  async start(): Promise<S> {
    return this.#store;
  }
  current(): S {
    return this.#store;
  }
  onChange(): void {}
  status(): SourceStatus {
    return { ready: true, generation: this.#store.generation, loads: 1 };
  }
  async close(): Promise<void> {}
}
