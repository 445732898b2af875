// Shared by the codec tests: documents as plain JSON, and recognisable filler bytes.

/** A JSON document as the codec tests build and edit it. */
export type Json = Record<string, any>;

/** `length` bytes, all `fill`: distinct fills keep the fields of a fixture apart. */
export const bytes = (length: number, fill: number): Uint8Array => new Uint8Array(length).fill(fill);

/** The same bytes in base64, as they stand in protobuf JSON. */
export const b64 = (length: number, fill: number): string => Buffer.alloc(length, fill).toString('base64');
