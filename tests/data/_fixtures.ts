// Loads tests/fixtures/images/expected.json (written by
// tests/fixtures/images/generate.py with Debian's PIL and torchvision).

/** @returns The bytes of a base64 string. */
function decodeBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** The fixture folder. */
export const IMAGES = new URL("../fixtures/images/", import.meta.url).pathname;

/** One torchvision output. */
export interface TorchCase {
  case: string;
  file: string;
  shape: number[];
  u8: string;
}

/** A normalised torchvision output. */
export interface NormalizeCase {
  file: string;
  resize: [number, number];
  mean: number[];
  std: number[];
  shape: number[];
  f32: string;
}

/** expected.json. */
export interface Expected {
  decode: Record<
    string,
    { mode: string; width: number; height: number; rgb?: string }
  >;
  cases: TorchCase[];
  normalize: NormalizeCase;
  normalize_png: NormalizeCase;
  blobs: Record<string, string>;
}

/** The parsed fixture file. */
export const expected: Expected = JSON.parse(
  await Deno.readTextFile(`${IMAGES}expected.json`),
);

/** @returns The bytes of a blob key. */
export function blob(key: string): Uint8Array {
  return decodeBase64(expected.blobs[key]);
}

/** @returns The float32 values of a blob key. */
export function blobF32(key: string): Float32Array {
  const b = blob(key);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

/** A fresh temporary folder, removed by the returned function. */
export async function tempDir(): Promise<[string, () => Promise<void>]> {
  const dir = await Deno.makeTempDir({ prefix: "kdeno_data_" });
  return [dir, () => Deno.remove(dir, { recursive: true })];
}
