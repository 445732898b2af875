// Service selection for sign-blob: flags and environment first, then the signing config read
// through the strict codecs (a SigningConfig or a ClientTrustConfig), chosen by the
// protobuf-specs rules. Broken documents fail with their own error code and the file's name.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { throwsWithCode } from '@waxseal/testkit';
import {
  buildSigningConfig,
  serializeSigningConfig,
  CLIENT_TRUST_CONFIG_MEDIA_TYPE_V01,
  TRUSTED_ROOT_MEDIA_TYPE_V01,
} from '../../../packages/bundle/src/index.ts';
import { readSigningConfig, resolveSigning } from './config.ts';

let dir: string;
/** No installed trust and no variables: only what each test passes counts. */
let env: NodeJS.ProcessEnv;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'wx-cli-config-'));
  env = { WAXSEAL_CONFIG_DIR: join(dir, 'config') };
});
after(() => rmSync(dir, { recursive: true, force: true }));

const config = () =>
  serializeSigningConfig(
    buildSigningConfig({
      operator: 'acme',
      validFrom: new Date('2024-01-01T00:00:00Z'),
      caUrl: 'https://sign.acme.test',
      oidcUrl: 'https://sign.acme.test/oidc',
      tsaUrl: 'https://sign.acme.test/api/v1/timestamp',
      rekor: [
        { url: 'https://log-v1.acme.test', majorApiVersion: 1 },
        { url: 'https://log-v2.acme.test', majorApiVersion: 2 },
      ],
    }),
  );

function file(name: string, value: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof value === 'string' ? value : JSON.stringify(value));
  return path;
}

test('a signing config picks the CA, the TSA, the OIDC issuer and the newest log API', () => {
  const path = file('signing_config.json', config());
  assert.deepEqual(resolveSigning({ signingConfig: path }, env), {
    caUrl: 'https://sign.acme.test',
    tsaUrl: 'https://sign.acme.test/api/v1/timestamp',
    oidcUrl: 'https://sign.acme.test/oidc',
    rekor: { url: 'https://log-v2.acme.test', majorApiVersion: 2 },
  });
  // The same through WAXSEAL_SIGNING_CONFIG, and the signing config inside a ClientTrustConfig.
  assert.equal(resolveSigning({}, { ...env, WAXSEAL_SIGNING_CONFIG: path }).caUrl, 'https://sign.acme.test');
  const trustedRoot = {
    mediaType: TRUSTED_ROOT_MEDIA_TYPE_V01,
    tlogs: [],
    certificateAuthorities: [],
    ctlogs: [],
    timestampAuthorities: [],
  };
  const ctc = file('client_trust.json', { mediaType: CLIENT_TRUST_CONFIG_MEDIA_TYPE_V01, trustedRoot, signingConfig: config() });
  assert.equal(readSigningConfig(ctc).tsaUrls[0]!.url, 'https://sign.acme.test/api/v1/timestamp');
});

test('flags and variables win over the config; --no-tlog-upload drops the log', () => {
  const path = file('signing_config.json', config());
  const r = resolveSigning(
    { signingConfig: path, fulcioUrl: 'https://other-ca', rekorUrl: 'https://other-log' },
    { ...env, SIGSTORE_TIMESTAMP_SERVER_URL: 'https://other-tsa/ts' },
  );
  assert.deepEqual(
    [r.caUrl, r.tsaUrl, r.rekor],
    ['https://other-ca', 'https://other-tsa/ts', { url: 'https://other-log', majorApiVersion: 1 }],
  );
  assert.equal(resolveSigning({ signingConfig: path, tlogUpload: false }, env).rekor, undefined);
  // Without any config, flags alone are enough.
  const bare = resolveSigning({ fulcioUrl: 'https://ca', timestampServerUrl: 'https://tsa/ts' }, env);
  assert.deepEqual(bare, { caUrl: 'https://ca', tsaUrl: 'https://tsa/ts', oidcUrl: undefined, rekor: undefined });
});

test('services are chosen as valid at the given time', () => {
  const path = file('signing_config.json', config());
  throwsWithCode(
    () => resolveSigning({ signingConfig: path }, env, new Date('2023-06-01T00:00:00Z')),
    'ERR_SIGNING_CONFIG_INVALID',
    /no CA service for API versions 1 valid at 2023-06-01/,
  );
});

test('broken documents fail with their code, naming the file and the field', () => {
  const missingTsaConfig = (({ tsaConfig: _, ...rest }) => rest)(config());
  const e = throwsWithCode(
    () => resolveSigning({ signingConfig: file('no-tsa-config.json', missingTsaConfig) }, env),
    'ERR_SIGNING_CONFIG_INVALID',
    /no-tsa-config\.json: tsaConfig: is required/,
  );
  assert.equal(e.detail?.field, 'tsaConfig');
  throwsWithCode(
    () =>
      resolveSigning(
        { signingConfig: file('v01.json', { ...config(), mediaType: 'application/vnd.dev.sigstore.signingconfig.v0.1+json' }) },
        env,
      ),
    'ERR_SIGNING_CONFIG_INVALID',
    /unsupported signing config media type/,
  );
  throwsWithCode(
    () => resolveSigning({ signingConfig: file('array.json', []) }, env),
    'ERR_SIGNING_CONFIG_INVALID',
    /must be a JSON object/,
  );
  throwsWithCode(() => resolveSigning({ signingConfig: file('text.json', 'caUrls:') }, env), 'ERR_JSON_PARSE');
  throwsWithCode(() => resolveSigning({ signingConfig: join(dir, 'absent.json') }, env), 'ERR_IO');
  throwsWithCode(() => resolveSigning({}, env), 'ERR_CONFIG', /no CA URL/);
  throwsWithCode(() => resolveSigning({ fulcioUrl: 'https://ca' }, env), 'ERR_CONFIG', /no timestamp authority URL/);
});
