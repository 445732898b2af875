// Google Cloud KMS signer backend, key URIs in sigstore's form naming one key version:
//   gcpkms://projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/V
// plus our optional `?endpoint=host:port` (http for loopback hosts, else https; `endpoint-scheme`
// overrides) to reach a private endpoint or a test server. The client runs in REST mode
// (HTTP/1.1 + JSON, no gRPC), with credentials from Application Default Credentials.
// Integrity follows Google's guidance: CRC32C of the digest goes with the request, the response
// must confirm it (verifiedDigestCrc32c / verifiedDataCrc32c), name the same key version, and
// carry a signature whose CRC32C matches; the public key PEM is checked against pemCrc32c.
// The SDK is imported on first use only.
import { digest, WaxsealError, decodePem, type HashName, type KeyKind, type PublicKeyInfo } from '@waxseal/core';
import { assertSignatureMatches, canonicalPublicKey, errorText, type Signer } from '@waxseal/keys';

type Sdk = typeof import('@google-cloud/kms');
type Client = InstanceType<Sdk['KeyManagementServiceClient']>;

/** The key version algorithms Waxseal signs with: curve/RSA, the digest sent, and the proto enum number. */
const ALGORITHMS = {
  EC_SIGN_P256_SHA256: { kind: 'ecdsa-p256', hash: 'sha256', number: 12 },
  EC_SIGN_P384_SHA384: { kind: 'ecdsa-p384', hash: 'sha384', number: 13 },
  RSA_SIGN_PKCS1_2048_SHA256: { kind: 'rsa', hash: 'sha256', number: 5 },
  RSA_SIGN_PKCS1_3072_SHA256: { kind: 'rsa', hash: 'sha256', number: 6 },
  RSA_SIGN_PKCS1_4096_SHA256: { kind: 'rsa', hash: 'sha256', number: 7 },
  RSA_SIGN_PKCS1_4096_SHA512: { kind: 'rsa', hash: 'sha512', number: 16 },
  // Ed25519 signs the message itself (sent as `data`), like our Ed25519 signers do.
  EC_SIGN_ED25519: { kind: 'ed25519', hash: 'sha512', number: 40 },
} as const satisfies Record<string, { kind: KeyKind; hash: HashName; number: number }>;

export type GcpSigningAlgorithm = keyof typeof ALGORITHMS;

/** Google Cloud KMS caps `data` for asymmetricSign at 64 KiB. */
const GCP_DATA_LIMIT = 64 * 1024;

// ---------- CRC32C (Castagnoli), as Google's integrity fields use ----------

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC32C of `data`, as an unsigned 32-bit number. */
export function crc32c(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC32C_TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// ---------- URI ----------

export interface GcpKmsLocation {
  /** Resource name of the key version, `projects/…/cryptoKeyVersions/V`. */
  name: string;
  /** host[:port] of an explicit endpoint, and its scheme. */
  endpoint?: { host: string; port?: number; protocol: 'http' | 'https' };
  keyRef: string;
}

const SEGMENT = '[A-Za-z0-9_-]{1,63}';
const NAME_RE = new RegExp(
  `^projects/(${SEGMENT})/locations/(${SEGMENT})/keyRings/(${SEGMENT})/cryptoKeys/(${SEGMENT})/cryptoKeyVersions/(\\d{1,10})$`,
);
const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/i;

export function parseGcpKmsUri(raw: string): GcpKmsLocation {
  const m = /^gcpkms:\/\/([^?#]*)(?:\?([^#]*))?$/i.exec(raw);
  if (!m)
    throw new WaxsealError(
      'ERR_CONFIG',
      `invalid GCP KMS key URI ${raw}: expected gcpkms://projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/V`,
    );
  const name = m[1]!;
  if (!NAME_RE.test(name)) {
    const hint = /\/cryptoKeys\/[^/]+$/.test(name) ? ' (name the key version: …/cryptoKeyVersions/<n>)' : '';
    throw new WaxsealError(
      'ERR_CONFIG',
      `GCP KMS key URI: ${JSON.stringify(name)} is not a key version name projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/V${hint}`,
    );
  }
  const params = new URLSearchParams(m[2] ?? '');
  for (const k of params.keys()) {
    if (k !== 'endpoint' && k !== 'endpoint-scheme') throw new WaxsealError('ERR_CONFIG', `GCP KMS key URI: unknown parameter ${k}`);
  }
  const loc: GcpKmsLocation = { name, keyRef: raw };
  const ep = params.get('endpoint');
  if (ep !== null) {
    const em = /^([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\])(?::(\d{1,5}))?$/.exec(ep);
    if (!em) throw new WaxsealError('ERR_CONFIG', `GCP KMS key URI: endpoint must be host[:port] (got ${ep})`);
    const scheme = params.get('endpoint-scheme') ?? (LOOPBACK.test(em[1]!) ? 'http' : 'https');
    if (scheme !== 'http' && scheme !== 'https')
      throw new WaxsealError('ERR_CONFIG', 'GCP KMS key URI: endpoint-scheme must be http or https');
    loc.endpoint = { host: em[1]!.replace(/^\[|\]$/g, ''), protocol: scheme };
    if (em[2] !== undefined) loc.endpoint.port = Number(em[2]);
  }
  return loc;
}

// ---------- client ----------

let sdkPromise: Promise<Sdk> | undefined;

function loadSdk(): Promise<Sdk> {
  sdkPromise ??= import('@google-cloud/kms').then(
    (m) =>
      ((m as { KeyManagementServiceClient?: unknown }).KeyManagementServiceClient ? m : ((m as { default?: Sdk }).default ?? m)) as Sdk,
    (e: unknown) => {
      sdkPromise = undefined;
      throw new WaxsealError('ERR_CONFIG', `the Google Cloud KMS SDK (npm @google-cloud/kms) cannot be loaded: ${errorText(e)}`, {
        cause: e,
      });
    },
  );
  return sdkPromise;
}

export interface GcpKmsOptions {
  /** Extra KeyManagementServiceClient options (e.g. `authClient`, `credentials`), applied last. */
  clientOptions?: Record<string, unknown>;
}

/** Per-call bounds: a CA must fail a request rather than wait for minutes on an unreachable KMS. */
const CALL_OPTIONS = { timeout: 15_000, maxRetries: 2 };

const GRPC_STATUS: Record<number, string> = {
  3: 'INVALID_ARGUMENT',
  5: 'NOT_FOUND',
  7: 'PERMISSION_DENIED',
  9: 'FAILED_PRECONDITION',
  16: 'UNAUTHENTICATED',
};
const HTTP_STATUS: Record<number, string> = { 400: 'INVALID_ARGUMENT', 401: 'UNAUTHENTICATED', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND' };

/**
 * The API status of a failed call and a readable message. In REST mode errors arrive either as
 * GoogleError (numeric gRPC code) or as the HTTP client's error whose message is the JSON error
 * body `{"error": {"code": 404, "message": "...", "status": "NOT_FOUND"}}`.
 */
function describeGcpError(e: unknown): { status?: string; message: string } {
  const text = errorText(e);
  let message = text;
  let status: string | undefined;
  try {
    const body = JSON.parse(text) as { error?: { message?: unknown; status?: unknown } };
    if (typeof body.error?.message === 'string') message = body.error.message;
    if (typeof body.error?.status === 'string') status = body.error.status;
  } catch {
    // not a JSON body
  }
  const o = (e ?? {}) as { code?: unknown; status?: unknown };
  if (!status && typeof o.status === 'number') status = HTTP_STATUS[o.status];
  if (!status && typeof o.code === 'number') status = o.code >= 100 ? HTTP_STATUS[o.code] : GRPC_STATUS[o.code];
  return status === undefined ? { message } : { status, message };
}

function gcpError(e: unknown, loc: GcpKmsLocation, doing: string, defaultCode: 'ERR_CONFIG' | 'ERR_SIGNER'): WaxsealError {
  if (e instanceof WaxsealError) return e;
  const { status, message } = describeGcpError(e);
  const where = `GCP KMS key version ${loc.name}${loc.endpoint ? ` at ${loc.endpoint.protocol}://${loc.endpoint.host}${loc.endpoint.port ? `:${loc.endpoint.port}` : ''}` : ''}`;
  if (status === 'NOT_FOUND') return new WaxsealError('ERR_CONFIG', `${where} not found (${message})`, { cause: e });
  if (status === 'PERMISSION_DENIED' || status === 'UNAUTHENTICATED') {
    return new WaxsealError('ERR_CONFIG', `${doing} ${where}: permission denied or no valid Google credentials (${message})`, { cause: e });
  }
  if (status === 'FAILED_PRECONDITION')
    return new WaxsealError('ERR_CONFIG', `${where} cannot be used (disabled, destroyed, or not an asymmetric signing key) (${message})`, {
      cause: e,
    });
  if (/Could not load the default credentials|Unable to detect a Project Id/i.test(message)) {
    return new WaxsealError('ERR_CONFIG', `${doing} ${where}: no Google credentials (set GOOGLE_APPLICATION_CREDENTIALS): ${message}`, {
      cause: e,
    });
  }
  return new WaxsealError(defaultCode, `${doing} ${where} failed: ${status ? `${status}: ` : ''}${message}`, { cause: e });
}

function int64(v: unknown): number | undefined {
  // Int64Value arrives as { value: "123" } (longs as strings), or a bare string/number.
  const inner = v !== null && typeof v === 'object' && 'value' in v ? (v as { value: unknown }).value : v;
  if (typeof inner === 'number') return inner;
  if (typeof inner === 'string' && /^\d+$/.test(inner)) return Number(inner);
  if (inner !== null && typeof inner === 'object' && 'toString' in inner) {
    const s = String(inner);
    if (/^\d+$/.test(s)) return Number(s);
  }
  return undefined;
}

function algorithmName(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return Object.entries(ALGORITHMS).find(([, a]) => a.number === v)?.[0] ?? `algorithm #${v}`;
  return 'unknown algorithm';
}

class GcpKmsSigner implements Signer {
  readonly kind: KeyKind;
  readonly publicKeySpki: Uint8Array;
  readonly hash: HashName;
  readonly keyRef: string;
  readonly #client: Client;
  readonly #loc: GcpKmsLocation;
  readonly #pub: PublicKeyInfo;
  #closed = false;

  constructor(client: Client, loc: GcpKmsLocation, hash: HashName, pub: PublicKeyInfo) {
    this.#client = client;
    this.#loc = loc;
    this.#pub = pub;
    this.kind = pub.kind;
    this.hash = hash;
    this.publicKeySpki = pub.spki;
    this.keyRef = loc.keyRef;
  }

  async sign(message: Uint8Array): Promise<Uint8Array> {
    if (this.#closed) throw new WaxsealError('ERR_SIGNER', `signer ${this.keyRef} is closed`);
    const pure = this.kind === 'ed25519';
    let request: Record<string, unknown>;
    if (pure) {
      if (message.length > GCP_DATA_LIMIT)
        throw new WaxsealError(
          'ERR_SIGNER',
          `${this.keyRef}: Ed25519 keys in GCP KMS sign at most ${GCP_DATA_LIMIT} bytes (message has ${message.length})`,
        );
      request = { name: this.#loc.name, data: message, dataCrc32c: { value: String(crc32c(message)) } };
    } else {
      const d = digest(this.hash, message);
      request = { name: this.#loc.name, digest: { [this.hash]: d }, digestCrc32c: { value: String(crc32c(d)) } };
    }
    let res: Record<string, unknown>;
    try {
      [res] = (await this.#client.asymmetricSign(request, CALL_OPTIONS)) as unknown as [Record<string, unknown>];
    } catch (e) {
      throw gcpError(e, this.#loc, 'asymmetricSign with', 'ERR_SIGNER');
    }
    // Integrity checks from Google's "verifying end-to-end data integrity" guidance.
    const verified = pure ? res['verifiedDataCrc32c'] : res['verifiedDigestCrc32c'];
    if (verified !== true) {
      throw new WaxsealError(
        'ERR_SIGNER',
        `GCP KMS did not confirm the request checksum for ${this.keyRef} (${pure ? 'verifiedDataCrc32c' : 'verifiedDigestCrc32c'} is not true): the request was corrupted in transit`,
      );
    }
    if (res['name'] !== this.#loc.name)
      throw new WaxsealError('ERR_SIGNER', `GCP KMS answered for key version ${String(res['name'])}, not ${this.#loc.name}`);
    const sigValue = res['signature'];
    if (!(sigValue instanceof Uint8Array) || sigValue.length === 0)
      throw new WaxsealError('ERR_SIGNER', `GCP KMS returned no signature for ${this.keyRef}`);
    const signature = new Uint8Array(sigValue);
    if (int64(res['signatureCrc32c']) !== crc32c(signature)) {
      throw new WaxsealError(
        'ERR_SIGNER',
        `GCP KMS signature for ${this.keyRef} fails its CRC32C check: the response was corrupted in transit`,
      );
    }
    assertSignatureMatches(this.#pub, this.hash, message, signature, this.keyRef);
    return signature;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#client.close();
  }
}

/** Opens the GCP KMS key version a `gcpkms://` URI names: fetches, checks and parses its public key. */
export async function openGcpKmsSigner(raw: string, opts: GcpKmsOptions = {}): Promise<Signer> {
  const loc = parseGcpKmsUri(raw);
  const sdk = await loadSdk();
  const clientOptions: Record<string, unknown> = { fallback: true };
  if (loc.endpoint) {
    clientOptions['apiEndpoint'] = loc.endpoint.host;
    clientOptions['protocol'] = loc.endpoint.protocol;
    clientOptions['port'] = loc.endpoint.port ?? (loc.endpoint.protocol === 'http' ? 80 : 443);
  }
  Object.assign(clientOptions, opts.clientOptions);
  let client: Client;
  try {
    client = new sdk.KeyManagementServiceClient(clientOptions as ConstructorParameters<Sdk['KeyManagementServiceClient']>[0]);
  } catch (e) {
    throw gcpError(e, loc, 'creating a client for', 'ERR_CONFIG');
  }
  try {
    let res: Record<string, unknown>;
    try {
      [res] = (await client.getPublicKey({ name: loc.name }, CALL_OPTIONS)) as unknown as [Record<string, unknown>];
    } catch (e) {
      throw gcpError(e, loc, 'reading the public key of', 'ERR_SIGNER');
    }
    const algName = algorithmName(res['algorithm']);
    const alg = (ALGORITHMS as Record<string, (typeof ALGORITHMS)[GcpSigningAlgorithm] | undefined>)[algName];
    if (!alg) {
      throw new WaxsealError(
        'ERR_CONFIG',
        `GCP KMS key version ${loc.name} uses ${algName}; Waxseal signs with ${Object.keys(ALGORITHMS).join(', ')} (PKCS#1 v1.5 for RSA)`,
      );
    }
    if (res['name'] !== undefined && res['name'] !== '' && res['name'] !== loc.name) {
      throw new WaxsealError('ERR_SIGNER', `GCP KMS returned the public key of ${String(res['name'])}, not ${loc.name}`);
    }
    const pem = res['pem'];
    if (typeof pem !== 'string' || pem === '') throw new WaxsealError('ERR_SIGNER', `GCP KMS returned no public key PEM for ${loc.name}`);
    if (int64(res['pemCrc32c']) !== crc32c(new TextEncoder().encode(pem))) {
      throw new WaxsealError(
        'ERR_SIGNER',
        `GCP KMS public key for ${loc.name} fails its CRC32C check: the response was corrupted in transit`,
      );
    }
    let spki: Uint8Array;
    try {
      spki = decodePem(pem, ['PUBLIC KEY']).der;
    } catch (e) {
      throw new WaxsealError('ERR_SIGNER', `GCP KMS public key for ${loc.name} is not a PEM PUBLIC KEY`, { cause: e });
    }
    const pub = canonicalPublicKey(spki, `GCP KMS key version ${loc.name}`);
    if (pub.kind !== alg.kind)
      throw new WaxsealError('ERR_SIGNER', `GCP KMS key version ${loc.name}: public key is ${pub.kind} but the algorithm is ${algName}`);
    return new GcpKmsSigner(client, loc, alg.hash, pub);
  } catch (e) {
    await client.close().catch(() => undefined);
    throw e;
  }
}
