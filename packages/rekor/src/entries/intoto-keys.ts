// Search-index keys from an in-toto statement carried in a DSSE payload: "<alg>:<digest>" for
// every subject (and SLSA v0.2 material), as Rekor's dsse/intoto types index them.
import { INTOTO_PAYLOAD_TYPE, parseJsonBounded } from '@waxseal/core';

const MAX_KEYS = 256;

export function intotoSubjectKeys(payloadType: string, payload: Uint8Array): string[] {
  if (payloadType !== INTOTO_PAYLOAD_TYPE) return [];
  let statement: unknown;
  try {
    statement = parseJsonBounded(payload, { maxBytes: payload.length });
  } catch {
    return [];
  }
  const out: string[] = [];
  const collect = (list: unknown) => {
    if (!Array.isArray(list)) return;
    for (const item of list) {
      const digest = (item as { digest?: unknown } | null)?.digest;
      if (typeof digest !== 'object' || digest === null) continue;
      for (const [alg, value] of Object.entries(digest)) {
        if (typeof value === 'string' && out.length < MAX_KEYS) out.push(`${alg}:${value}`.toLowerCase());
      }
    }
  };
  const s = statement as { subject?: unknown; predicate?: { materials?: unknown } } | null;
  collect(s?.subject);
  collect(s?.predicate?.materials);
  return out;
}
