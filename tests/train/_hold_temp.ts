/**
 * Test helper run as a subprocess: starts an atomic write of
 * `<dir>/last.safetensors` as `writeFileAtomic` does (its temporary file,
 * created and locked) and stops there, printing `holding <name>`, until the
 * parent kills it.
 *
 * @module
 */

import { basename } from "node:path";
import { tempPathFor } from "../../src/io/_atomic.ts";

const tmp = tempPathFor(`${Deno.args[0]}/last.safetensors`);
const file = await Deno.open(tmp, { write: true, createNew: true });
await file.lock(true);
await file.write(new Uint8Array(64));
console.log(`holding ${basename(tmp)}`);
setInterval(() => {}, 60_000); // until killed
