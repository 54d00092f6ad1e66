/**
 * Test helper run as a subprocess: writes checkpoints of a 16 MB model to
 * `<dir>/last.safetensors` in a loop, every weight equal to the epoch
 * number, printing `wrote <epoch>` after each. The parent kills it with
 * SIGKILL at a random moment.
 *
 * @module
 */

import { nn, train } from "../../mod.ts";

const dir = Deno.args[0];
const model = new nn.Linear(2000, 2000);
const enc = new TextEncoder();
for (let epoch = 1;; epoch++) {
  model.weight.backend.fill(model.weight.storage, epoch);
  model.bias!.backend.fill(model.bias!.storage, epoch);
  await train.saveCheckpoint(`${dir}/last.safetensors`, {
    epoch,
    model,
    trainer: { marker: epoch },
  });
  await Deno.stdout.write(enc.encode(`wrote ${epoch}\n`));
}
