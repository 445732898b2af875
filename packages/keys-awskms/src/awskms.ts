// AWS KMS signer backend, key URIs in sigstore's form:
//   awskms:///alias/fulcio-ca                 (endpoint from the SDK defaults, region from AWS_REGION)
//   awskms:///arn:aws:kms:eu-west-1:111122223333:key/1234abcd-…   (region taken from the ARN)
//   awskms://localhost:4566/alias/foo?region=us-east-1&message-type=raw   (emulator over http)
// Query parameters (ours, sigstore has none): region, message-type=digest|raw, endpoint-scheme=http|https.
// Credentials come from the AWS SDK's default provider chain (environment, profile, instance role).
// The SDK is imported on first use only.
import { digest, WaxsealError, type HashName, type KeyKind, type PublicKeyInfo } from '@waxseal/core';
import { assertSignatureMatches, canonicalPublicKey, errorText, type Signer } from '@waxseal/keys';

type Sdk = typeof import('@aws-sdk/client-kms');
type Client = InstanceType<Sdk['KMSClient']>;

/** Key specs Waxseal signs with, and how. */
const SPECS = {
  ECC_NIST_P256: { kind: 'ecdsa-p256', hash: 'sha256', algorithm: 'ECDSA_SHA_256' },
  ECC_NIST_P384: { kind: 'ecdsa-p384', hash: 'sha384', algorithm: 'ECDSA_SHA_384' },
  ECC_NIST_P521: { kind: 'ecdsa-p521', hash: 'sha512', algorithm: 'ECDSA_SHA_512' },
  RSA_2048: { kind: 'rsa', hash: 'sha256', algorithm: 'RSASSA_PKCS1_V1_5_SHA_256' },
  RSA_3072: { kind: 'rsa', hash: 'sha256', algorithm: 'RSASSA_PKCS1_V1_5_SHA_256' },
  RSA_4096: { kind: 'rsa', hash: 'sha256', algorithm: 'RSASSA_PKCS1_V1_5_SHA_256' },
} as const satisfies Record<string, { kind: KeyKind; hash: HashName; algorithm: string }>;

export type AwsSigningKeySpec = keyof typeof SPECS;

/** AWS KMS signs at most 4096 bytes of raw message. */
export const AWS_RAW_MESSAGE_LIMIT = 4096;

export interface AwsKmsLocation {
  /** Full endpoint URL (http://localhost:4566) or undefined for the SDK's regional default. */
  endpoint?: string;
  region: string;
  /** Key id, alias/name, or key/alias ARN, exactly as the URI gives it. */
  keyId: string;
  messageType: 'DIGEST' | 'RAW';
  keyRef: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MRK = /^mrk-[0-9a-f]{32}$/i;
const ALIAS = /^alias\/[A-Za-z0-9/_-]{1,250}$/;
const ARN = /^arn:aws[a-z-]*:kms:([a-z0-9-]+):\d{12}:(key\/(?:[0-9a-f-]{36}|mrk-[0-9a-f]{32})|alias\/[A-Za-z0-9/_-]{1,250})$/i;
const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/i;

/** Parses an `awskms://` URI. `allowEmptyKey` is for key creation, where the key does not exist yet. */
export function parseAwsKmsUri(raw: string, allowEmptyKey = false): AwsKmsLocation {
  const m = /^awskms:\/\/([^/?#]*)\/([^?#]*)(?:\?([^#]*))?$/i.exec(raw);
  if (!m) throw new WaxsealError('ERR_CONFIG', `invalid AWS KMS key URI ${raw}: expected awskms://[host:port]/<key id, alias/name or ARN>`);
  const host = m[1]!;
  const keyId = decodeURIComponent(m[2]!);
  const params = new URLSearchParams(m[3] ?? '');
  for (const k of params.keys()) {
    if (!['region', 'message-type', 'endpoint-scheme'].includes(k))
      throw new WaxsealError('ERR_CONFIG', `AWS KMS key URI: unknown parameter ${k}`);
  }
  const arn = ARN.exec(keyId);
  if (!(keyId === '' && allowEmptyKey) && !UUID.test(keyId) && !MRK.test(keyId) && !ALIAS.test(keyId) && !arn) {
    const hint = host === 'alias' || host === 'arn:aws:kms' ? ' (the default endpoint needs three slashes: awskms:///alias/<name>)' : '';
    throw new WaxsealError('ERR_CONFIG', `AWS KMS key URI: ${JSON.stringify(keyId)} is not a key id, alias/<name> or KMS ARN${hint}`);
  }
  const region = params.get('region') ?? arn?.[1] ?? process.env['AWS_REGION'] ?? process.env['AWS_DEFAULT_REGION'];
  if (!region) throw new WaxsealError('ERR_CONFIG', `AWS KMS key URI ${raw}: no region: add ?region=<region> or set AWS_REGION`);
  if (arn && arn[1] !== region)
    throw new WaxsealError('ERR_CONFIG', `AWS KMS key URI: region ${region} differs from the ARN's region ${arn[1]}`);
  const mt = (params.get('message-type') ?? 'digest').toLowerCase();
  if (mt !== 'digest' && mt !== 'raw')
    throw new WaxsealError('ERR_CONFIG', `AWS KMS key URI: message-type must be digest or raw (got ${mt})`);
  const scheme = params.get('endpoint-scheme') ?? (LOOPBACK.test(host) ? 'http' : 'https');
  if (scheme !== 'http' && scheme !== 'https')
    throw new WaxsealError('ERR_CONFIG', 'AWS KMS key URI: endpoint-scheme must be http or https');
  if (host !== '' && !/^[A-Za-z0-9.-]+(:\d+)?$|^\[[0-9a-fA-F:]+\](:\d+)?$/.test(host))
    throw new WaxsealError('ERR_CONFIG', `AWS KMS key URI: bad endpoint ${host}`);
  const loc: AwsKmsLocation = { region, keyId, messageType: mt === 'raw' ? 'RAW' : 'DIGEST', keyRef: raw };
  if (host !== '') loc.endpoint = `${scheme}://${host}`;
  return loc;
}

let sdkPromise: Promise<Sdk> | undefined;

function loadSdk(): Promise<Sdk> {
  sdkPromise ??= import('@aws-sdk/client-kms').catch((e: unknown) => {
    sdkPromise = undefined;
    throw new WaxsealError('ERR_CONFIG', `the AWS KMS SDK (npm @aws-sdk/client-kms) cannot be loaded: ${errorText(e)}`, { cause: e });
  });
  return sdkPromise;
}

async function makeClient(loc: AwsKmsLocation): Promise<Client> {
  const sdk = await loadSdk();
  return new sdk.KMSClient({
    region: loc.region,
    ...(loc.endpoint ? { endpoint: loc.endpoint } : {}),
    maxAttempts: 3,
    // Bounded waits: a CA must fail a request, not hang, when KMS is unreachable.
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 15_000 },
  });
}

function awsErrorName(e: unknown): string {
  return (e as { name?: unknown } | null)?.name && typeof (e as { name: unknown }).name === 'string' ? (e as { name: string }).name : '';
}

/** Maps an SDK failure while opening or creating a key to a WaxsealError. */
function openError(e: unknown, loc: AwsKmsLocation, doing: string): WaxsealError {
  if (e instanceof WaxsealError) return e;
  const name = awsErrorName(e);
  const where = `AWS KMS key ${loc.keyId || '(new)'}${loc.endpoint ? ` at ${loc.endpoint}` : ''} (region ${loc.region})`;
  switch (name) {
    case 'NotFoundException':
      return new WaxsealError('ERR_CONFIG', `${where} not found`, { cause: e });
    case 'AccessDeniedException':
    case 'UnrecognizedClientException':
    case 'InvalidSignatureException':
    case 'CredentialsProviderError':
    case 'ExpiredTokenException':
      return new WaxsealError('ERR_CONFIG', `${doing} ${where}: access denied or no valid AWS credentials (${name}: ${errorText(e)})`, {
        cause: e,
      });
    case 'DisabledException':
    case 'KMSInvalidStateException':
      return new WaxsealError('ERR_CONFIG', `${where} is disabled or pending deletion (${errorText(e)})`, { cause: e });
    case 'UnsupportedOperationException':
    case 'InvalidKeyUsageException':
      return new WaxsealError('ERR_CONFIG', `${where} cannot be used for signing (${errorText(e)})`, { cause: e });
    default:
      return new WaxsealError('ERR_SIGNER', `${doing} ${where} failed: ${name ? `${name}: ` : ''}${errorText(e)}`, { cause: e });
  }
}

class AwsKmsSigner implements Signer {
  readonly kind: KeyKind;
  readonly publicKeySpki: Uint8Array;
  readonly hash: HashName;
  readonly keyRef: string;
  readonly #client: Client;
  readonly #sdk: Sdk;
  readonly #pinnedKeyId: string;
  readonly #algorithm: string;
  readonly #messageType: 'DIGEST' | 'RAW';
  readonly #pub: PublicKeyInfo;
  #closed = false;

  constructor(
    sdk: Sdk,
    client: Client,
    loc: AwsKmsLocation,
    pinnedKeyId: string,
    spec: (typeof SPECS)[AwsSigningKeySpec],
    pub: PublicKeyInfo,
  ) {
    this.#sdk = sdk;
    this.#client = client;
    this.#pinnedKeyId = pinnedKeyId;
    this.#algorithm = spec.algorithm;
    this.#messageType = loc.messageType;
    this.#pub = pub;
    this.kind = pub.kind;
    this.hash = spec.hash;
    this.publicKeySpki = pub.spki;
    this.keyRef = loc.keyRef;
  }

  async sign(message: Uint8Array): Promise<Uint8Array> {
    if (this.#closed) throw new WaxsealError('ERR_SIGNER', `signer ${this.keyRef} is closed`);
    let payload: Uint8Array;
    if (this.#messageType === 'RAW') {
      if (message.length > AWS_RAW_MESSAGE_LIMIT) {
        throw new WaxsealError(
          'ERR_SIGNER',
          `${this.keyRef}: message-type=raw signs at most ${AWS_RAW_MESSAGE_LIMIT} bytes and this message has ${message.length}; use message-type=digest (the default) with real AWS KMS`,
        );
      }
      payload = message;
    } else {
      payload = digest(this.hash, message);
    }
    let out;
    try {
      out = await this.#client.send(
        new this.#sdk.SignCommand({
          KeyId: this.#pinnedKeyId,
          Message: payload,
          MessageType: this.#messageType,
          SigningAlgorithm: this.#algorithm as (typeof SPECS)[AwsSigningKeySpec]['algorithm'],
        }),
      );
    } catch (e) {
      throw new WaxsealError(
        'ERR_SIGNER',
        `AWS KMS Sign with ${this.keyRef} failed: ${awsErrorName(e) ? `${awsErrorName(e)}: ` : ''}${errorText(e)}`,
        { cause: e },
      );
    }
    if (!out.Signature || out.Signature.length === 0)
      throw new WaxsealError('ERR_SIGNER', `AWS KMS Sign with ${this.keyRef} returned no signature`);
    const signature = new Uint8Array(out.Signature);
    assertSignatureMatches(this.#pub, this.hash, message, signature, this.keyRef);
    return signature;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#client.destroy();
  }
}

/** Opens the AWS KMS key an `awskms://` URI names: fetches and checks its public key and spec. */
export async function openAwsKmsSigner(raw: string): Promise<Signer> {
  const loc = parseAwsKmsUri(raw);
  const sdk = await loadSdk();
  const client = await makeClient(loc);
  try {
    let res;
    try {
      res = await client.send(new sdk.GetPublicKeyCommand({ KeyId: loc.keyId }));
    } catch (e) {
      throw openError(e, loc, 'reading the public key of');
    }
    const usage = res.KeyUsage;
    // Older servers (and moto) fill only the deprecated CustomerMasterKeySpec.
    const specName = res.KeySpec ?? res.CustomerMasterKeySpec;
    if (usage !== undefined && usage !== 'SIGN_VERIFY') {
      throw new WaxsealError('ERR_CONFIG', `AWS KMS key ${loc.keyId} has key usage ${usage}; a signing key needs KeyUsage SIGN_VERIFY`);
    }
    if (!specName || !(specName in SPECS)) {
      throw new WaxsealError(
        'ERR_CONFIG',
        `AWS KMS key ${loc.keyId} has key spec ${specName ?? 'unknown'}; Waxseal signs with ${Object.keys(SPECS).join(', ')}`,
      );
    }
    const spec = SPECS[specName as AwsSigningKeySpec];
    if (res.SigningAlgorithms?.length && !res.SigningAlgorithms.includes(spec.algorithm)) {
      throw new WaxsealError(
        'ERR_CONFIG',
        `AWS KMS key ${loc.keyId} does not offer ${spec.algorithm} (offers ${res.SigningAlgorithms.join(', ')})`,
      );
    }
    if (!res.PublicKey) throw new WaxsealError('ERR_SIGNER', `AWS KMS returned no public key for ${loc.keyId}`);
    const pub = canonicalPublicKey(new Uint8Array(res.PublicKey), `AWS KMS key ${loc.keyId}`);
    if (pub.kind !== spec.kind)
      throw new WaxsealError('ERR_SIGNER', `AWS KMS key ${loc.keyId}: public key is ${pub.kind} but the key spec says ${specName}`);
    if (pub.kind === 'rsa' && (pub.rsaBits ?? 0) < 2048) throw new WaxsealError('ERR_KEY_WEAK', 'RSA keys must be at least 2048 bits');
    // Sign with the key the alias resolved to now: the certificate binds this public key, so a
    // later alias re-point must not silently switch keys under a running CA.
    return new AwsKmsSigner(sdk, client, loc, res.KeyId ?? loc.keyId, spec, pub);
  } catch (e) {
    client.destroy();
    throw e;
  }
}

/**
 * Creates an asymmetric signing key (KeyUsage SIGN_VERIFY) in AWS KMS and opens a signer for it.
 * With an alias URI (`awskms://…/alias/name`) the alias is created too and the signer's keyRef is
 * that URI; with an empty key part (`awskms://…/`) the keyRef names the new key's ARN.
 * ERR_CONFLICT when the alias exists already.
 */
export async function createAwsKmsKey(
  raw: string,
  keySpec: AwsSigningKeySpec = 'ECC_NIST_P256',
  description = 'Waxseal signing key',
): Promise<Signer> {
  const loc = parseAwsKmsUri(raw, true);
  if (!(keySpec in SPECS)) throw new WaxsealError('ERR_CONFIG', `unsupported AWS KMS key spec ${String(keySpec)}`);
  const alias = ALIAS.test(loc.keyId) ? loc.keyId : ARN.exec(loc.keyId)?.[2]?.startsWith('alias/') ? ARN.exec(loc.keyId)![2]! : undefined;
  if (loc.keyId !== '' && alias === undefined) {
    throw new WaxsealError(
      'ERR_CONFIG',
      'AWS KMS chooses the id of a new key: name an alias (awskms://…/alias/<name>) or leave the key part empty',
    );
  }
  const sdk = await loadSdk();
  const client = await makeClient(loc);
  try {
    if (alias) {
      const exists = await client.send(new sdk.DescribeKeyCommand({ KeyId: alias })).then(
        () => true,
        (e: unknown) => {
          if (awsErrorName(e) === 'NotFoundException') return false;
          throw openError(e, loc, 'checking');
        },
      );
      if (exists) throw new WaxsealError('ERR_CONFLICT', `AWS KMS alias ${alias} exists already`);
    }
    let created;
    try {
      created = await client.send(new sdk.CreateKeyCommand({ KeySpec: keySpec, KeyUsage: 'SIGN_VERIFY', Description: description }));
    } catch (e) {
      throw openError(e, loc, 'creating');
    }
    const meta = created.KeyMetadata;
    if (!meta?.KeyId) throw new WaxsealError('ERR_SIGNER', 'AWS KMS CreateKey returned no key id');
    if (alias) {
      try {
        await client.send(new sdk.CreateAliasCommand({ AliasName: alias, TargetKeyId: meta.KeyId }));
      } catch (e) {
        throw openError(e, loc, `creating alias ${alias} for`);
      }
      return await openAwsKmsSigner(raw);
    }
    const q = raw.indexOf('?');
    const base = q < 0 ? raw : raw.slice(0, q);
    return await openAwsKmsSigner(`${base}${meta.Arn ?? meta.KeyId}${q < 0 ? '' : raw.slice(q)}`);
  } finally {
    client.destroy();
  }
}
