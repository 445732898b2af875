// A real registry for tests: Debian's docker-registry (distribution 2.8) on 127.0.0.1, with
// filesystem storage in a temp dir and optional htpasswd basic auth; images written as OCI
// layouts by hand and pushed with skopeo (a multi-platform index with --all).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import bcrypt from 'bcryptjs';

const run = promisify(execFile);

export interface TestRegistry {
  /** host:port */
  host: string;
  dir: string;
  user?: string;
  password?: string;
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Why registry tests cannot run here (a tool is missing), or undefined when they can. */
export function registryToolsMissing(): string | undefined {
  const paths = (process.env.PATH ?? '').split(':');
  for (const tool of ['docker-registry', 'skopeo']) {
    if (!paths.some((p) => existsSync(join(p, tool)))) return `${tool} is not installed (apt-get install -y ${tool})`;
  }
  return undefined;
}

export async function startRegistry(o: { auth?: boolean } = {}): Promise<TestRegistry> {
  const dir = mkdtempSync(join(tmpdir(), 'wx-registry-'));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  let authYaml = '';
  const user = 'alice';
  const password = 'registry-secret';
  if (o.auth) {
    writeFileSync(join(dir, 'htpasswd'), `${user}:${bcrypt.hashSync(password, 4)}\n`);
    authYaml = `auth:\n  htpasswd:\n    realm: waxseal-test\n    path: ${join(dir, 'htpasswd')}\n`;
  }
  writeFileSync(
    join(dir, 'config.yml'),
    `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\n  delete:\n    enabled: true\nhttp:\n  addr: ${host}\n${authYaml}`,
  );
  const child: ChildProcess = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      const r = await fetch(`http://${host}/v2/`, { signal: AbortSignal.timeout(1000) });
      if (r.status === 200 || r.status === 401) break;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`docker-registry did not start: ${stderr.slice(0, 500)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    host,
    dir,
    ...(o.auth ? { user, password } : {}),
    async close() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const sha = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

function blob(layout: string, bytes: Uint8Array | string): { digest: string; size: number } {
  const hex = sha(bytes);
  writeFileSync(join(layout, 'blobs', 'sha256', hex), bytes);
  return { digest: `sha256:${hex}`, size: Buffer.byteLength(bytes) };
}

/** A one-file tar archive (ustar), enough to be a real layer. */
function tarOf(name: string, content: string): Buffer {
  const data = Buffer.from(content);
  const h = Buffer.alloc(512);
  h.write(name, 0);
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write('0', 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([h, data, pad, Buffer.alloc(1024)]);
}

/**
 * Writes an OCI layout with an image per platform (an index over them when more than one) under
 * tag `tag`; `seed` makes the content (and so the digests) distinct.
 */
export function writeLayout(layout: string, tag: string, seed: string, platforms: string[] = ['linux/amd64']): void {
  mkdirSync(join(layout, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const manifests = platforms.map((p) => {
    const [os, architecture] = p.split('/') as [string, string];
    const layerBytes = tarOf('hello.txt', `hello from ${seed} on ${p}\n`);
    const layer = blob(layout, layerBytes);
    const config = blob(
      layout,
      JSON.stringify({ architecture, os, rootfs: { type: 'layers', diff_ids: [layer.digest] }, config: { Labels: { seed } } }),
    );
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
    });
    return { mediaType: 'application/vnd.oci.image.manifest.v1+json', ...blob(layout, manifest), platform: { architecture, os } };
  });
  let top: { mediaType: string; digest: string; size: number };
  if (manifests.length === 1) {
    const { platform: _p, ...m } = manifests[0]!;
    top = m;
  } else {
    const index = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests });
    top = { mediaType: 'application/vnd.oci.image.index.v1+json', ...blob(layout, index) };
  }
  writeFileSync(
    join(layout, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [{ ...top, annotations: { 'org.opencontainers.image.ref.name': tag } }] }),
  );
}

/** Pushes an OCI layout's tag to the registry with skopeo; returns the pushed top-level digest. */
export async function pushLayout(reg: TestRegistry, layout: string, tag: string, dest: string, all = false): Promise<string> {
  const creds = reg.user ? ['--dest-creds', `${reg.user}:${reg.password}`] : [];
  const digestFile = join(layout, `${tag}.digest`);
  await run(
    'skopeo',
    [
      'copy',
      '--quiet',
      ...(all ? ['--all'] : []),
      '--dest-tls-verify=false',
      ...creds,
      '--digestfile',
      digestFile,
      `oci:${layout}:${tag}`,
      `docker://${reg.host}/${dest}`,
    ],
    { timeout: 60_000 },
  );
  return readFileSync(digestFile, 'utf8').trim();
}

/** Writes and pushes a fresh image; returns its digest. */
export async function pushImage(reg: TestRegistry, dest: string, seed: string, platforms?: string[]): Promise<string> {
  const layout = mkdtempSync(join(reg.dir, 'layout-'));
  writeLayout(layout, 'v1', seed, platforms);
  return pushLayout(reg, layout, 'v1', dest, (platforms?.length ?? 1) > 1);
}
