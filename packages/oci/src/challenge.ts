// WWW-Authenticate challenges (RFC 7235) as registries send them: `Basic realm="..."` or
// `Bearer realm="...",service="...",scope="..."`. Pure.

export interface Challenge {
  scheme: 'basic' | 'bearer';
  params: Record<string, string>;
}

/**
 * The first usable challenge in a WWW-Authenticate header (Bearer preferred over Basic, as
 * docker does), or undefined when there is none or none this client can answer.
 */
export function parseChallenge(header: string | null | undefined): Challenge | undefined {
  if (!header || header.length > 8192) return undefined;
  const found: Challenge[] = [];
  // auth-scheme followed by comma-separated auth-params (token=token / token=quoted-string).
  const re = /\s*([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)(?:\s+|$)((?:\s*,?\s*[A-Za-z0-9_-]+\s*=\s*(?:"(?:[^"\\]|\\.)*"|[^\s,]*))*)/y;
  let pos = 0;
  while (pos < header.length) {
    re.lastIndex = pos;
    const m = re.exec(header);
    if (!m || m[0].length === 0) break;
    pos = re.lastIndex;
    while (header[pos] === ',' || header[pos] === ' ') pos++;
    const scheme = m[1]!.toLowerCase();
    const params: Record<string, string> = {};
    for (const p of m[2]!.matchAll(/([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/g)) {
      params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]!;
    }
    if (scheme === 'basic' || scheme === 'bearer') found.push({ scheme, params });
  }
  const bearer = found.find((c) => c.scheme === 'bearer' && c.params.realm);
  return bearer ?? found.find((c) => c.scheme === 'basic');
}
