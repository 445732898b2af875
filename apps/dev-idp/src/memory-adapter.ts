// Storage for the dev IdP's sessions, interactions, codes and grants: process memory, which is
// what a dev instance wants (a restart logs everyone out; ID tokens stay valid, being signed JWTs).
// Written for Waxseal so oidc-provider's development adapter, and its warning, are not in play.
import type { Adapter, AdapterPayload } from 'oidc-provider';

interface Entry {
  payload: AdapterPayload;
  /** Epoch ms after which the entry is gone; undefined = as long as the process. */
  expiresAt: number | undefined;
}

/** One provider's storage, shared by the models oidc-provider asks for (keys are model-qualified). */
class Store extends Map<string, Entry> {
  writesSinceSweep = 0;

  sweep(now: number): void {
    for (const [k, e] of this) if (e.expiresAt !== undefined && e.expiresAt <= now) this.delete(k);
  }
}

/** The `adapter` setting of one provider: every model kept in one new in-memory store. */
export function memoryAdapter(): (model: string) => Adapter {
  const store = new Store();
  return (model) => new MemoryAdapter(store, model);
}

class MemoryAdapter implements Adapter {
  readonly #store: Store;
  readonly #model: string;

  constructor(store: Store, model: string) {
    this.#store = store;
    this.#model = model;
  }

  #key(id: string): string {
    return `${this.#model}:${id}`;
  }

  #get(key: string): AdapterPayload | undefined {
    const e = this.#store.get(key);
    if (!e) return undefined;
    if (e.expiresAt !== undefined && e.expiresAt <= Date.now()) {
      this.#store.delete(key);
      return undefined;
    }
    return e.payload;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    const now = Date.now();
    // Expired entries are dropped now and then, so a long-running dev instance does not grow.
    if (++this.#store.writesSinceSweep >= 256) {
      this.#store.writesSinceSweep = 0;
      this.#store.sweep(now);
    }
    const key = this.#key(id);
    const expiresAt = expiresIn ? now + expiresIn * 1000 : undefined;
    this.#store.set(key, { payload: structuredClone(payload), expiresAt });
    // Secondary lookups oidc-provider needs: by grant (revocation), user code (device flow), uid (sessions).
    if (payload.grantId) this.#store.set(`grant-index:${payload.grantId}:${key}`, { payload: {}, expiresAt });
    if (payload.userCode) this.#store.set(`user-code:${payload.userCode}`, { payload: { jti: id }, expiresAt });
    if (payload.uid) this.#store.set(`uid:${this.#model}:${payload.uid}`, { payload: { jti: id }, expiresAt });
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    // A copy, as a database would give: what oidc-provider changes is stored only through upsert.
    const p = this.#get(this.#key(id));
    return p && structuredClone(p);
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    const id = this.#get(`user-code:${userCode}`)?.jti;
    return id === undefined ? undefined : this.find(id);
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    const id = this.#get(`uid:${this.#model}:${uid}`)?.jti;
    return id === undefined ? undefined : this.find(id);
  }

  async consume(id: string): Promise<void> {
    const p = this.#get(this.#key(id));
    if (p) p.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id: string): Promise<void> {
    this.#store.delete(this.#key(id));
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    const prefix = `grant-index:${grantId}:`;
    for (const k of [...this.#store.keys()]) {
      if (!k.startsWith(prefix)) continue;
      this.#store.delete(k);
      this.#store.delete(k.slice(prefix.length));
    }
  }
}
