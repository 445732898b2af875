// Test helpers for the CA: an OIDC issuer served from node:http on 127.0.0.1 (discovery + JWKS),
// tokens minted with jose, client keys with proofs of possession, and openssl wrappers.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHmac, generateKeyPairSync, sign as nodeSign, type KeyObject } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, exportJWK, type JWK } from 'jose';

export interface TestIssuer {
  /** The issuer URL (`iss`), e.g. http://127.0.0.1:1234 or with a path. */
  url: string;
  /** Number of JWKS fetches served. */
  jwksFetches: number;
  discoveryFetches: number;
  /** Mints a token signed with the current key (overrides win over the defaults). */
  mint(
    claims: Record<string, unknown>,
    opts?: { alg?: string; kid?: string; key?: KeyObject; expiresIn?: number; iss?: string; header?: Record<string, unknown> },
  ): Promise<string>;
  /** Generates a new signing key; publishes it in the JWKS only if `publish`. */
  rotate(publish: boolean): Promise<void>;
  /** Publishes the keys generated so far. */
  publishAll(): Promise<void>;
  privateKey: KeyObject;
  publicKey: KeyObject;
  kid: string;
  close(): Promise<void>;
}

export async function startTestIssuer(
  opts: { path?: string; discoveryIssuer?: (url: string) => string; algs?: string[] } = {},
): Promise<TestIssuer> {
  const keys: { kid: string; privateKey: KeyObject; publicKey: KeyObject }[] = [];
  let published: JWK[] = [];
  let counter = 0;
  const newKey = () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const kid = `key-${++counter}`;
    keys.push({ kid, privateKey, publicKey });
    return keys[keys.length - 1]!;
  };
  const jwk = async (k: { kid: string; publicKey: KeyObject }): Promise<JWK> => ({
    ...(await exportJWK(k.publicKey)),
    kid: k.kid,
    alg: 'ES256',
    use: 'sig',
  });
  let current = newKey();
  published = [await jwk(current)];

  const path = opts.path ?? '';
  let url = '';
  const state = { jwksFetches: 0, discoveryFetches: 0 };
  const server: Server = createServer((req, res) => {
    const send = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    if (req.url === `${path}/.well-known/openid-configuration`) {
      state.discoveryFetches++;
      send(200, {
        issuer: opts.discoveryIssuer ? opts.discoveryIssuer(url) : url,
        jwks_uri: `${url}/jwks`,
        id_token_signing_alg_values_supported: opts.algs ?? ['ES256', 'RS256'],
        response_types_supported: ['id_token'],
        subject_types_supported: ['public'],
      });
    } else if (req.url === `${path}/jwks`) {
      state.jwksFetches++;
      send(200, { keys: published });
    } else {
      send(404, { error: 'not found' });
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`;

  const issuer: TestIssuer = {
    url,
    get jwksFetches() {
      return state.jwksFetches;
    },
    get discoveryFetches() {
      return state.discoveryFetches;
    },
    get privateKey() {
      return current.privateKey;
    },
    get publicKey() {
      return current.publicKey;
    },
    get kid() {
      return current.kid;
    },
    async mint(claims, o = {}) {
      const now = Math.floor(Date.now() / 1000);
      const payload = { iss: o.iss ?? url, aud: 'sigstore', iat: now, exp: now + (o.expiresIn ?? 600), ...claims };
      const alg = o.alg ?? 'ES256';
      return new SignJWT(payload)
        .setProtectedHeader({ alg, kid: o.kid ?? current.kid, typ: 'JWT', ...o.header })
        .sign(o.key ?? current.privateKey);
    },
    async rotate(publish) {
      current = newKey();
      if (publish) published = [...published, await jwk(current)];
    },
    async publishAll() {
      published = await Promise.all(keys.map(jwk));
    },
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
  return issuer;
}

/** An unsigned-alg token (alg none) for the given claims. */
export function unsignedToken(claims: Record<string, unknown>): string {
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
}

/** An HS256 token whose HMAC secret is `secret` (e.g. an issuer's public key PEM). */
export function hmacToken(claims: Record<string, unknown>, secret: Uint8Array | string, kid?: string): string {
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const signingInput = `${b64({ alg: 'HS256', typ: 'JWT', ...(kid ? { kid } : {}) })}.${b64(claims)}`;
  const mac = createHmac('sha256', secret).update(signingInput).digest('base64url');
  return `${signingInput}.${mac}`;
}

export interface ClientKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  pem: string;
  /** Proof of possession: base64 signature over `challenge` with the key's default algorithm. */
  prove(challenge: string): string;
}

export function clientKey(kind: 'p256' | 'p384' | 'p521' | 'ed25519' | 'rsa2048' | 'rsa1024' | 'secp256k1' = 'p256'): ClientKey {
  let pair: { privateKey: KeyObject; publicKey: KeyObject };
  let hash: string | null = 'sha256';
  switch (kind) {
    case 'p256':
      pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      break;
    case 'p384':
      pair = generateKeyPairSync('ec', { namedCurve: 'P-384' });
      hash = 'sha384';
      break;
    case 'p521':
      pair = generateKeyPairSync('ec', { namedCurve: 'P-521' });
      hash = 'sha512';
      break;
    case 'secp256k1':
      pair = generateKeyPairSync('ec', { namedCurve: 'secp256k1' });
      break;
    case 'ed25519':
      pair = generateKeyPairSync('ed25519');
      hash = null;
      break;
    case 'rsa2048':
      pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
      break;
    case 'rsa1024':
      pair = generateKeyPairSync('rsa', { modulusLength: 1024 });
      break;
  }
  return {
    ...pair,
    pem: pair.publicKey.export({ format: 'pem', type: 'spki' }) as string,
    prove: (challenge) => nodeSign(hash, Buffer.from(challenge, 'utf8'), pair.privateKey).toString('base64'),
  };
}

/** A public-key signing request body. */
export function publicKeyRequest(token: string | undefined, key: ClientKey, challenge: string): Record<string, unknown> {
  return {
    ...(token !== undefined ? { credentials: { oidcIdentityToken: token } } : {}),
    publicKeyRequest: { publicKey: { algorithm: 'ECDSA', content: key.pem }, proofOfPossession: key.prove(challenge) },
  };
}

/** A PKCS#10 CSR for `key` made by openssl, as the base64-of-PEM the API expects. */
export function opensslCsr(key: ClientKey, subject = '/CN=ignored', digest: 'sha256' | 'sha384' | 'sha512' = 'sha256'): string {
  return withTempDir((dir) => {
    const keyFile = join(dir, 'key.pem');
    writeFileSync(keyFile, key.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string);
    const digestArgs = key.privateKey.asymmetricKeyType === 'ed25519' ? [] : [`-${digest}`];
    const pem = execFileSync('openssl', ['req', '-new', '-key', keyFile, '-subj', subject, ...digestArgs], { encoding: 'utf8' });
    return Buffer.from(pem).toString('base64');
  });
}

export function withTempDir<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'wx-ca-test-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs `openssl verify -CAfile root -untrusted intermediates leaf` and returns its output (throws on failure). */
export function opensslVerify(certificates: string[]): string {
  return withTempDir((dir) => {
    const [leaf, ...rest] = certificates;
    const root = rest[rest.length - 1]!;
    const intermediates = rest.slice(0, -1);
    writeFileSync(join(dir, 'leaf.pem'), leaf!);
    writeFileSync(join(dir, 'root.pem'), root);
    writeFileSync(join(dir, 'inter.pem'), intermediates.join(''));
    const args = [
      'verify',
      '-CAfile',
      join(dir, 'root.pem'),
      ...(intermediates.length ? ['-untrusted', join(dir, 'inter.pem')] : []),
      join(dir, 'leaf.pem'),
    ];
    return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  });
}

export function opensslText(pem: string): string {
  return execFileSync('openssl', ['x509', '-noout', '-text'], { input: pem, encoding: 'utf8' });
}
