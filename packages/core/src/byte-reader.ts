// A cursor over big-endian binary structures (TLS vectors in SCT lists, SSH wire strings,
// OpenPGP packets). The input is attacker-controlled: every read is bounds-checked, and an
// overrun is a WaxsealError with the code and subject the caller names, never a RangeError or
// a silently short value.
import { WaxsealError, type ErrorCode } from './errors.ts';

export class ByteReader {
  readonly buf: Uint8Array;
  /** Offset of the next byte to read. */
  pos = 0;
  readonly #code: ErrorCode;
  readonly #what: string;

  /** `what` names the structure in error messages ("SCT list", "ssh: key blob"). */
  constructor(buf: Uint8Array, code: ErrorCode, what: string) {
    this.buf = buf;
    this.#code = code;
    this.#what = what;
  }

  /** Throws this reader's error: `<what>: <message>`. */
  fail(message: string): never {
    throw new WaxsealError(this.#code, `${this.#what}: ${message}`);
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  get done(): boolean {
    return this.pos === this.buf.length;
  }

  /** Throws unless every byte has been read. */
  expectEnd(message = 'trailing data'): void {
    if (this.pos !== this.buf.length) this.fail(message);
  }

  /** The next `n` bytes, as a view into the input. */
  bytes(n: number): Uint8Array {
    if (n > this.buf.length - this.pos) this.fail(`truncated: ${n} bytes needed at offset ${this.pos}, ${this.remaining} left`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** Everything not read yet. */
  rest(): Uint8Array {
    return this.bytes(this.remaining);
  }

  u8(): number {
    if (this.pos >= this.buf.length) this.fail(`truncated: 1 byte needed at offset ${this.pos}, 0 left`);
    return this.buf[this.pos++]!;
  }

  u16(): number {
    return this.uint(2);
  }

  u24(): number {
    return this.uint(3);
  }

  u32(): number {
    return this.uint(4);
  }

  /** A uint64 as a number; values beyond 2^53 - 1 are an error rather than rounded. */
  u64(): number {
    const v = this.uint(8);
    if (!Number.isSafeInteger(v)) this.fail('64-bit integer too large');
    return v;
  }

  /** An unsigned big-endian integer of `n` bytes (at most 8; exact up to 2^53 - 1). */
  uint(n: number): number {
    const b = this.bytes(n);
    let v = 0;
    for (let i = 0; i < n; i++) v = v * 256 + b[i]!;
    return v;
  }

  /** A vector with a `lenBytes`-byte length prefix (TLS opaque<..>, SSH string): its contents. */
  vector(lenBytes: 1 | 2 | 3 | 4): Uint8Array {
    return this.bytes(this.uint(lenBytes));
  }
}
