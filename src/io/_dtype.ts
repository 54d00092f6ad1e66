/**
 * Element conversions shared by the checkpoint readers.
 *
 * @module
 */

let halfTable: Float32Array | undefined;

/**
 * float16 bit patterns to float32, built once (256 KiB).
 *
 * @returns The table indexed by the 16-bit pattern.
 */
export function halfToFloatTable(): Float32Array {
  if (halfTable) return halfTable;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) t[h] = sign * frac * 2 ** -24;
    else if (exp === 31) t[h] = frac ? NaN : sign * Infinity;
    else t[h] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return halfTable = t;
}

/** Whether this machine stores numbers little-endian. */
export const LITTLE_ENDIAN: boolean =
  new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
