/**
 * A minimal protocol-buffers writer: varints, fixed32 floats and
 * length-delimited fields (strings, bytes, nested messages). It is all the
 * ONNX exporter needs, so kdeno carries no protobuf dependency.
 *
 * Repeated scalar fields are written unpacked, one key per value, which is
 * the proto2 default that ONNX's `onnx.proto` uses (parsers accept both).
 *
 * @module
 */

const WIRE_VARINT = 0;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

const encoder = new TextEncoder();

/** Builds one message; nested messages are built first and embedded. */
export class ProtoWriter {
  #chunks: Uint8Array[] = [];
  #scratch: number[] = [];
  #length = 0;

  #flush(): void {
    if (this.#scratch.length) {
      this.#chunks.push(Uint8Array.from(this.#scratch));
      this.#length += this.#scratch.length;
      this.#scratch = [];
    }
  }

  #varint(v: bigint | number): void {
    // int64 semantics: negative values as 10-byte two's complement
    let x = BigInt.asUintN(64, BigInt(v));
    while (x >= 0x80n) {
      this.#scratch.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.#scratch.push(Number(x));
  }

  #key(field: number, wire: number): void {
    this.#varint((field << 3) | wire);
  }

  /**
   * Writes an integer field (int32, int64, enum, bool).
   *
   * @param field The field number.
   * @param value The value; negative numbers take ten bytes, as in protobuf.
   * @returns This writer.
   */
  int(field: number, value: number | bigint): this {
    if (typeof value === "number" && !Number.isSafeInteger(value)) {
      throw new RangeError(`Cannot write protobuf int: ${value}`);
    }
    this.#key(field, WIRE_VARINT);
    this.#varint(value);
    return this;
  }

  /**
   * Writes a float field (fixed32).
   *
   * @param field The field number.
   * @param value The value, rounded to float32.
   * @returns This writer.
   */
  float(field: number, value: number): this {
    this.#key(field, WIRE_FIXED32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.#scratch.push(...b);
    return this;
  }

  /**
   * Writes a length-delimited field.
   *
   * @param field The field number.
   * @param data The bytes (or a nested message's encoding).
   * @returns This writer.
   */
  bytes(field: number, data: Uint8Array): this {
    this.#key(field, WIRE_LEN);
    this.#varint(data.length);
    this.#flush();
    this.#chunks.push(data);
    this.#length += data.length;
    return this;
  }

  /**
   * Writes a UTF-8 string field.
   *
   * @param field The field number.
   * @param value The string.
   * @returns This writer.
   */
  string(field: number, value: string): this {
    return this.bytes(field, encoder.encode(value));
  }

  /**
   * Writes a nested message field.
   *
   * @param field The field number.
   * @param message The nested message's writer.
   * @returns This writer.
   */
  message(field: number, message: ProtoWriter): this {
    return this.bytes(field, message.finish());
  }

  /** @returns The encoded message. */
  finish(): Uint8Array {
    this.#flush();
    if (this.#chunks.length === 1) return this.#chunks[0];
    const out = new Uint8Array(this.#length);
    let at = 0;
    for (const c of this.#chunks) {
      out.set(c, at);
      at += c.length;
    }
    this.#chunks = [out];
    return out;
  }
}
