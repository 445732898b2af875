// HTTP for the signing client: timeouts on every call, bounded retries with backoff on 429/5xx
// and network errors (as sigstore-go does), and server error bodies surfaced in one line.
import { WaxsealError } from '@waxseal/core';

export interface PostOptions {
  headers?: Record<string, string>;
  timeoutMs?: number;
  retries?: number;
  fetch?: typeof fetch;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** POSTs and returns the response body bytes of a 2xx answer; throws a one-line error otherwise. */
export async function postBytes(
  url: string,
  body: Uint8Array | string,
  opts: PostOptions & { what: string },
): Promise<{ status: number; body: Uint8Array; headers: Headers }> {
  const f = opts.fetch ?? fetch;
  const retries = opts.retries ?? 2;
  let lastError = '';
  for (let attempt = 0; attempt <= retries; attempt++) {
    if (attempt > 0) await sleep(200 * 2 ** (attempt - 1));
    let res: Response;
    try {
      res = await f(url, {
        method: 'POST',
        headers: opts.headers,
        body: typeof body === 'string' ? body : Buffer.from(body),
        signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000),
      });
    } catch (e) {
      lastError = `${opts.what} at ${url} is unreachable: ${(e as Error).cause ? String(((e as Error).cause as Error).message ?? (e as Error).cause) : (e as Error).message}`;
      continue;
    }
    const bytes = new Uint8Array(await res.arrayBuffer());
    if (res.ok) return { status: res.status, body: bytes, headers: res.headers };
    const text = Buffer.from(bytes).toString('utf8');
    let message = text.slice(0, 300);
    try {
      const j = JSON.parse(text) as { message?: string; error?: string };
      message = j.message ?? j.error ?? message;
    } catch {
      // not JSON
    }
    lastError = `${opts.what} refused the request (HTTP ${res.status}): ${message}`;
    if (res.status !== 429 && res.status < 500) {
      throw new WaxsealError(
        res.status === 403 ? 'ERR_POLICY_DENIED' : res.status === 401 ? 'ERR_TOKEN_INVALID' : 'ERR_INVALID_INPUT',
        lastError,
        { detail: { status: res.status } },
      );
    }
  }
  throw new WaxsealError('ERR_UNAVAILABLE', lastError);
}
