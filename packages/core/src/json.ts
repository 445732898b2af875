// Bounded JSON parsing: the one way Waxseal parses JSON it did not write itself (request bodies,
// bundles, trusted roots, TUF metadata, log entries). JSON.parse has no nesting limit and
// allocates an array or object per level before it can fail, so 4 MB of "[" costs ~120 MB of heap
// and a long GC pause. Here a linear pre-scan counts nesting (and, when asked, values) outside
// strings and refuses the text before JSON.parse allocates anything; oversize input is refused
// before it is even decoded. The scan agrees with JSON.parse on where strings start and end for
// every valid prefix, and JSON.parse stops at the first syntax error, so the parser never nests
// deeper than the scan saw.
import { WaxsealError, type ErrorCode } from './errors.ts';

/** Nesting accepted by default: far beyond any Sigstore document or request (they nest < 10). */
export const DEFAULT_JSON_MAX_DEPTH = 64;

/** JSON.parse's reviver, with the source text of primitives (`context.source`, Node >= 21). */
export type JsonReviver = JsonLimits['reviver'];

export interface JsonLimits {
  /** Largest accepted text in UTF-8 bytes; refused before decoding or scanning. */
  maxBytes: number;
  /** Deepest accepted nesting of arrays and objects (a scalar is 0, `[]` is 1). Default 64. */
  maxDepth?: number;
  /**
   * Most values accepted, counted from above as 1 + arrays + objects + separating commas (every
   * value JSON.parse would allocate). Unlimited by default; servers set it so that a body of
   * many tiny values cannot cost many times its size in heap.
   */
  maxValues?: number;
  /** The code of every refusal. Default: ERR_BODY_TOO_LARGE for size, ERR_INVALID_INPUT for the other limits, ERR_JSON_PARSE for bad JSON. */
  code?: ErrorCode;
  /** What the text is, for messages (default "JSON text"). */
  what?: string;
  /** Passed to JSON.parse (after the scan). A WaxsealError it throws propagates unchanged. */
  reviver?(this: unknown, key: string, value: unknown, context?: { source?: string }): unknown;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const COMMA = 0x2c;

/** UTF-8 length of a JS string (a lone surrogate counts as 2, which only matters for invalid text). */
function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) n += c < 0x800 || (c & 0xf800) === 0xd800 ? 1 : 2;
  }
  return n;
}

/**
 * The incremental pre-scan: feed the text in pieces (e.g. request body chunks as they arrive) and
 * it throws as soon as a limit is passed, so a refused body is never buffered whole. Strings are
 * skipped with indexOf (each position is searched at most once per character kind: linear).
 * UTF-8 bytes and JS strings scan alike: multi-byte sequences never contain ASCII bytes.
 */
export class JsonScanner {
  readonly #maxBytes: number;
  readonly #maxDepth: number;
  readonly #maxValues: number;
  readonly #code: ErrorCode | undefined;
  readonly #what: string;
  #bytes = 0;
  #depth = 0;
  #values = 1;
  #inString = false;
  #escaped = false;

  constructor(limits: JsonLimits) {
    this.#maxBytes = limits.maxBytes;
    this.#maxDepth = limits.maxDepth ?? DEFAULT_JSON_MAX_DEPTH;
    this.#maxValues = limits.maxValues ?? Number.POSITIVE_INFINITY;
    this.#code = limits.code;
    this.#what = limits.what ?? 'JSON text';
  }

  /** Scans the next piece of the text; throws a WaxsealError when a limit is passed. */
  push(chunk: Uint8Array | string): void {
    this.#bytes += typeof chunk === 'string' ? utf8Length(chunk) : chunk.length;
    if (this.#bytes > this.#maxBytes) this.#refuse('ERR_BODY_TOO_LARGE', `is larger than ${this.#maxBytes} bytes`);
    if (typeof chunk === 'string') this.#scanString(chunk);
    else this.#scanBytes(chunk);
  }

  #refuse(code: ErrorCode, why: string): never {
    throw new WaxsealError(this.#code ?? code, `${this.#what} ${why}`);
  }

  #structural(c: number): void {
    if (c === QUOTE) this.#inString = true;
    else if (c === OPEN_BRACKET || c === OPEN_BRACE) {
      if (++this.#depth > this.#maxDepth) this.#refuse('ERR_INVALID_INPUT', `nests deeper than ${this.#maxDepth} levels`);
      if (++this.#values > this.#maxValues) this.#refuse('ERR_INVALID_INPUT', `holds more than ${this.#maxValues} values`);
    } else if (c === CLOSE_BRACKET || c === CLOSE_BRACE) {
      // Unbalanced closers make the text invalid (JSON.parse refuses it); never go below zero.
      if (this.#depth > 0) this.#depth--;
    } else if (c === COMMA) {
      if (++this.#values > this.#maxValues) this.#refuse('ERR_INVALID_INPUT', `holds more than ${this.#maxValues} values`);
    }
  }

  #scanBytes(b: Uint8Array): void {
    const n = b.length;
    let i = 0;
    // Next quote / backslash at or after i (-1: none left in this chunk), searched lazily.
    let quote = -2;
    let slash = -2;
    while (i < n) {
      if (!this.#inString) {
        this.#structural(b[i++]!);
        continue;
      }
      if (this.#escaped) {
        this.#escaped = false;
        i++;
        continue;
      }
      if (quote !== -1 && quote < i) quote = b.indexOf(QUOTE, i);
      if (slash !== -1 && slash < i) slash = b.indexOf(BACKSLASH, i);
      if (slash !== -1 && (quote === -1 || slash < quote)) {
        this.#escaped = true;
        i = slash + 1;
      } else if (quote === -1) {
        return; // the rest of the chunk is inside the string
      } else {
        this.#inString = false;
        i = quote + 1;
      }
    }
  }

  #scanString(s: string): void {
    const n = s.length;
    let i = 0;
    let quote = -2;
    let slash = -2;
    while (i < n) {
      if (!this.#inString) {
        this.#structural(s.charCodeAt(i++));
        continue;
      }
      if (this.#escaped) {
        this.#escaped = false;
        i++;
        continue;
      }
      if (quote !== -1 && quote < i) quote = s.indexOf('"', i);
      if (slash !== -1 && slash < i) slash = s.indexOf('\\', i);
      if (slash !== -1 && (quote === -1 || slash < quote)) {
        this.#escaped = true;
        i = slash + 1;
      } else if (quote === -1) {
        return;
      } else {
        this.#inString = false;
        i = quote + 1;
      }
    }
  }
}

// Fatal: JSON must be UTF-8 (RFC 8259 8.1). ignoreBOM keeps a BOM, which JSON.parse refuses, so
// bytes and strings are treated alike.
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * JSON.parse of text or UTF-8 bytes within `limits`: size first (before decoding), then nesting
 * depth and value count in one linear scan, then JSON.parse. Every refusal is a WaxsealError
 * (see JsonLimits.code); for accepted input the result is exactly JSON.parse's.
 */
export function parseJsonBounded(input: string | Uint8Array, limits: JsonLimits): unknown {
  const what = limits.what ?? 'JSON text';
  // A string's UTF-8 length is at least its length: refuse the obvious before counting.
  if (input.length > limits.maxBytes) {
    throw new WaxsealError(limits.code ?? 'ERR_BODY_TOO_LARGE', `${what} is larger than ${limits.maxBytes} bytes`);
  }
  new JsonScanner(limits).push(input);
  let text: string;
  if (typeof input === 'string') text = input;
  else {
    try {
      text = UTF8.decode(input);
    } catch (e) {
      throw new WaxsealError(limits.code ?? 'ERR_JSON_PARSE', `${what} is not valid UTF-8`, { cause: e });
    }
  }
  try {
    return limits.reviver ? JSON.parse(text, limits.reviver as (this: unknown, key: string, value: unknown) => unknown) : JSON.parse(text);
  } catch (e) {
    if (e instanceof WaxsealError) throw e;
    throw new WaxsealError(limits.code ?? 'ERR_JSON_PARSE', `${what} is not valid JSON`, { cause: e });
  }
}
