// Run by hostile_test.ts as `deno run --allow-read` (no --allow-env): decodes
// on the main thread and through a DataLoader Worker, and prints each
// outcome as a JSON line `{ where, name, message }` for the test to check.
import { readImage } from "../../src/data/decode.ts";
import { DataLoader } from "../../src/data/data_loader.ts";
import { ImageFolder } from "../../src/data/image_folder.ts";

const IMAGES = new URL("../fixtures/images/", import.meta.url).pathname;
const VAL =
  new URL("../../examples/data/fashion-binary/val", import.meta.url).pathname;

async function report(where: string, f: () => Promise<unknown>) {
  let out = { where, name: "ok", message: "" };
  try {
    await f();
  } catch (e) {
    const err = e as Error;
    out = { where, name: err.name, message: err.message };
  }
  console.log(JSON.stringify(out));
}

await report("readImage", () => readImage(IMAGES + "rgb8.png"));
for (const numWorkers of [0, 1]) {
  await report(`DataLoader numWorkers ${numWorkers}`, async () => {
    const ds = new ImageFolder(VAL, { onError: "skip" });
    for await (const _ of new DataLoader(ds, { batchSize: 4, numWorkers })) {
      break;
    }
  });
}
