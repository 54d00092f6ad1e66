/**
 * ONNX export (opset 17) of models built from kdeno's core layers.
 *
 * The exporter does not trace arbitrary code. It walks the module tree and
 * writes each module it knows as ONNX nodes, re-implementing that module's
 * `forward`:
 *
 * | module | ONNX |
 * | --- | --- |
 * | `Sequential` | its children in order |
 * | `Conv2d` | `Conv` |
 * | `BatchNorm2d` (running statistics) | `BatchNormalization` (inference) |
 * | `ReLU` | `Relu` |
 * | `MaxPool2d` | `MaxPool` |
 * | `AvgPool2d` | `AveragePool` |
 * | `AdaptiveAvgPool2d` | `GlobalAveragePool` for output 1, `AveragePool` when the input divides evenly |
 * | `Linear` | `Gemm` (2-D input), else `MatMul` + `Add` |
 * | `Flatten` | `Flatten` (from dim 1 to the end), else `Reshape` |
 * | `Identity`, `Dropout` | nothing (export is in eval mode) |
 * | `models.BasicBlock` | its layers, `Add` for the shortcut, `Relu` |
 * | `models.ResNet`, `models.StudentNet` | their layers, `Flatten` before `fc` |
 *
 * A module of another class, or a subclass of one of these that overrides
 * `forward`, is refused with an `OnnxExportError` naming its class and its
 * path in the model: its `forward` is arbitrary TypeScript the exporter
 * cannot see into. Forward hooks are not exported.
 *
 * While writing the graph the exporter evaluates the same modules on the
 * sample input (in eval mode, without gradients), which gives every value's
 * shape; it then checks that the result equals `model.forward(sample)`, so
 * a model whose `forward` composes its layers differently than the table
 * above is refused rather than exported wrong. Parameters and buffers
 * become initializers named by their state-dict keys (`layer1.0.conv1.weight`).
 * The batch dimension is symbolic (`batch`) unless `dynamicBatch` is false.
 *
 * @module
 */

import { noGrad } from "../autograd.ts";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { CheckpointError, fmtShape } from "../errors.ts";
import { add, relu } from "../ops/elementwise.ts";
import { flatten } from "../ops/shape.ts";
import { type Tensor, tidy } from "../tensor.ts";
import {
  AdaptiveAvgPool2d,
  AvgPool2d,
  BatchNorm2d,
  Conv2d,
  Dropout,
  Flatten,
  Identity,
  Linear,
  MaxPool2d,
  ReLU,
  Sequential,
} from "../nn/layers.ts";
import type { Module } from "../nn/module.ts";
import { BasicBlock, ResNet } from "../nn/models/resnet.ts";
import { StudentNet } from "../nn/models/student.ts";
import { pair } from "../ops/conv.ts";
import { LITTLE_ENDIAN } from "./_dtype.ts";
import { ProtoWriter } from "./_protobuf.ts";
import { writeFileAtomic } from "./_atomic.ts";

/** A model, or a part of it, that the ONNX exporter cannot write. */
export class OnnxExportError extends TypeError {
  /**
   * Creates the error.
   *
   * @param message What was wrong, naming the module class and its path.
   */
  constructor(message: string) {
    super(message);
    this.name = "OnnxExportError";
  }
}

/** Options of `exportOnnx` and `serializeOnnx`. */
export interface ExportOnnxOptions {
  /** The graph input's name (default `"input"`). */
  inputName?: string;
  /** The graph output's name (default `"output"`). */
  outputName?: string;
  /**
   * Make the batch dimension symbolic (`batch`), so the file runs on any
   * batch size (default true). False fixes it to the sample's.
   */
  dynamicBatch?: boolean;
}

/** The opset the exporter writes. */
export const ONNX_OPSET = 17;
/** The IR version matching opset 17. */
const IR_VERSION = 8;

const FLOAT = 1;
const INT64 = 7;

// AttributeProto.AttributeType
const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_INTS = 7;

type Attr =
  | { name: string; f: number }
  | { name: string; i: number }
  | { name: string; ints: number[] };

interface Node {
  op: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attrs: Attr[];
}

interface Value {
  name: string;
  t: Tensor;
}

const SUPPORTED =
  "Sequential, Conv2d, BatchNorm2d, ReLU, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Linear, Flatten, Identity, Dropout, models.BasicBlock, models.ResNet and models.StudentNet";

// deno-lint-ignore no-explicit-any
type Ctor = abstract new (...args: any[]) => Module;

/** An instance of `cls` whose `forward` is `cls`'s own (not overridden). */
function is(m: Module, cls: Ctor): boolean {
  return m instanceof cls && m.forward === cls.prototype.forward;
}

function bytesOf(data: Float32Array | BigInt64Array): Uint8Array {
  const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (LITTLE_ENDIAN) return raw;
  const out = raw.slice();
  const size = data.BYTES_PER_ELEMENT;
  for (let i = 0; i < out.length; i += size) {
    out.subarray(i, i + size).reverse();
  }
  return out;
}

class Graph {
  readonly nodes: Node[] = [];
  readonly initializers: ProtoWriter[] = [];
  readonly #names = new Set<string>();

  unique(base: string): string {
    let name = base;
    for (let k = 1; this.#names.has(name); k++) name = `${base}_${k}`;
    this.#names.add(name);
    return name;
  }

  reserve(name: string): void {
    this.#names.add(name);
  }

  /** Adds an initializer; returns its (unique) name. */
  init(
    base: string,
    dims: readonly number[],
    data: Float32Array | BigInt64Array,
  ): string {
    const name = this.unique(base);
    const t = new ProtoWriter();
    for (const d of dims) t.int(1, d); // dims
    t.int(2, data instanceof Float32Array ? FLOAT : INT64); // data_type
    t.string(8, name); // name
    t.bytes(9, bytesOf(data)); // raw_data
    this.initializers.push(t);
    return name;
  }

  param(base: string, t: Tensor): string {
    return this.init(base, t.shape, t.data() as Float32Array);
  }

  node(
    path: string,
    op: string,
    inputs: string[],
    attrs: Attr[] = [],
  ): string {
    const scope = path ? `/${path.replaceAll(".", "/")}` : "";
    const name = this.unique(`${scope}/${op}`);
    const out = this.unique(`${name}_output_0`);
    this.nodes.push({ op, name, inputs, outputs: [out], attrs });
    return out;
  }
}

/** A module's path for messages. */
function at(path: string): string {
  return `"${path || "(the model)"}"`;
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

function flattenValue(
  g: Graph,
  path: string,
  x: Value,
  startDim: number,
  endDim: number,
  dynamicBatch: boolean,
): Value {
  const t = flatten(x.t, startDim, endDim);
  const nd = x.t.ndim;
  const s = startDim < 0 ? startDim + nd : startDim;
  const e = endDim < 0 ? endDim + nd : endDim;
  if (s === e) return { name: x.name, t };
  if (s === 1 && e === nd - 1) {
    return {
      name: g.node(path, "Flatten", [x.name], [{ name: "axis", i: 1 }]),
      t,
    };
  }
  // Reshape: 0 copies a dim (the batch), -1 is the merged one
  const shape = [
    ...x.t.shape.slice(0, s).map((d, i) => (i === 0 && dynamicBatch ? 0 : d)),
    -1,
    ...x.t.shape.slice(e + 1),
  ];
  const shapeName = g.init(
    `${path || "flatten"}.shape`,
    [shape.length],
    BigInt64Array.from(shape.map(BigInt)),
  );
  return { name: g.node(path, "Reshape", [x.name, shapeName]), t };
}

function poolAttrs(
  kernel: [number, number],
  stride: [number, number],
  padding: [number, number],
  ceilMode: boolean,
): Attr[] {
  return [
    { name: "kernel_shape", ints: kernel },
    { name: "strides", ints: stride },
    { name: "pads", ints: [padding[0], padding[1], padding[0], padding[1]] },
    { name: "ceil_mode", i: ceilMode ? 1 : 0 },
  ];
}

function emit(
  g: Graph,
  path: string,
  m: Module,
  x: Value,
  dynamicBatch: boolean,
): Value {
  const child = (key: string, mod: Module, v: Value) =>
    emit(g, join(path, key), mod, v, dynamicBatch);

  if (is(m, Sequential)) {
    const seq = m as Sequential;
    let v = x;
    for (let i = 0; i < seq.length; i++) v = child(String(i), seq[i], v);
    return v;
  }
  if (is(m, Identity) || is(m, Dropout)) return x;
  if (is(m, Conv2d)) {
    const c = m as Conv2d;
    const t = c.forward(x.t);
    const inputs = [x.name, g.param(join(path, "weight"), c.weight)];
    if (c.bias) inputs.push(g.param(join(path, "bias"), c.bias));
    const [kh, kw] = [c.weight.shape[2], c.weight.shape[3]];
    const [ph, pw] = c.padding;
    return {
      name: g.node(path, "Conv", inputs, [
        { name: "dilations", ints: c.dilation },
        { name: "group", i: c.groups },
        { name: "kernel_shape", ints: [kh, kw] },
        { name: "pads", ints: [ph, pw, ph, pw] },
        { name: "strides", ints: c.stride },
      ]),
      t,
    };
  }
  if (is(m, BatchNorm2d)) {
    const bn = m as BatchNorm2d;
    if (!bn.runningMean || !bn.runningVar) {
      throw new OnnxExportError(
        `Cannot export BatchNorm2d at ${
          at(path)
        } to ONNX: it keeps no running statistics (trackRunningStats false), so inference normalises with batch statistics, which ONNX BatchNormalization does not do`,
      );
    }
    const t = bn.forward(x.t);
    const c = bn.numFeatures;
    const scale = bn.weight
      ? g.param(join(path, "weight"), bn.weight)
      : g.init(join(path, "weight"), [c], new Float32Array(c).fill(1));
    const bias = bn.bias
      ? g.param(join(path, "bias"), bn.bias)
      : g.init(join(path, "bias"), [c], new Float32Array(c));
    const inputs = [
      x.name,
      scale,
      bias,
      g.param(join(path, "running_mean"), bn.runningMean),
      g.param(join(path, "running_var"), bn.runningVar),
    ];
    return {
      name: g.node(path, "BatchNormalization", inputs, [
        { name: "epsilon", f: bn.eps },
        { name: "momentum", f: 1 - (bn.momentum ?? 0.1) },
        { name: "training_mode", i: 0 },
      ]),
      t,
    };
  }
  if (is(m, ReLU)) {
    return { name: g.node(path, "Relu", [x.name]), t: relu(x.t) };
  }
  if (is(m, MaxPool2d)) {
    const p = m as MaxPool2d;
    const t = p.forward(x.t);
    const o = p.options;
    const kernel = pair(p.kernelSize);
    return {
      name: g.node(path, "MaxPool", [x.name], [
        { name: "dilations", ints: pair(o.dilation ?? 1) },
        ...poolAttrs(
          kernel,
          pair(o.stride ?? p.kernelSize),
          pair(o.padding ?? 0),
          o.ceilMode ?? false,
        ),
      ]),
      t,
    };
  }
  if (is(m, AvgPool2d)) {
    const p = m as AvgPool2d;
    const t = p.forward(x.t);
    const o = p.options;
    return {
      name: g.node(path, "AveragePool", [x.name], [
        { name: "count_include_pad", i: (o.countIncludePad ?? true) ? 1 : 0 },
        ...poolAttrs(
          pair(p.kernelSize),
          pair(o.stride ?? p.kernelSize),
          pair(o.padding ?? 0),
          o.ceilMode ?? false,
        ),
      ]),
      t,
    };
  }
  if (is(m, AdaptiveAvgPool2d)) {
    const p = m as AdaptiveAvgPool2d;
    const t = p.forward(x.t);
    const [oh, ow] = pair(p.outputSize);
    if (oh === 1 && ow === 1) {
      return { name: g.node(path, "GlobalAveragePool", [x.name]), t };
    }
    const [h, w] = x.t.shape.slice(2);
    if (h % oh !== 0 || w % ow !== 0) {
      throw new OnnxExportError(
        `Cannot export AdaptiveAvgPool2d at ${at(path)} to ONNX: output ${
          fmtShape([oh, ow])
        } does not divide the input's ${
          fmtShape([h, w])
        }, so its windows overlap unevenly and no single AveragePool matches`,
      );
    }
    const k: [number, number] = [h / oh, w / ow];
    return {
      name: g.node(
        path,
        "AveragePool",
        [x.name],
        poolAttrs(k, k, [0, 0], false),
      ),
      t,
    };
  }
  if (is(m, Linear)) {
    const l = m as Linear;
    const t = l.forward(x.t);
    if (x.t.ndim === 2) {
      const inputs = [x.name, g.param(join(path, "weight"), l.weight)];
      if (l.bias) inputs.push(g.param(join(path, "bias"), l.bias));
      return {
        name: g.node(path, "Gemm", inputs, [
          { name: "alpha", f: 1 },
          { name: "beta", f: 1 },
          { name: "transB", i: 1 },
        ]),
        t,
      };
    }
    // x [..., in] @ weightᵀ [in, out] (+ bias)
    const w = l.weight.data() as Float32Array;
    const [out, inp] = l.weight.shape;
    const wt = new Float32Array(w.length);
    for (let o = 0; o < out; o++) {
      for (let i = 0; i < inp; i++) wt[i * out + o] = w[o * inp + i];
    }
    let name = g.node(path, "MatMul", [
      x.name,
      g.init(join(path, "weight_t"), [inp, out], wt),
    ]);
    if (l.bias) {
      name = g.node(path, "Add", [name, g.param(join(path, "bias"), l.bias)]);
    }
    return { name, t };
  }
  if (is(m, Flatten)) {
    const f = m as Flatten;
    return flattenValue(g, path, x, f.startDim, f.endDim, dynamicBatch);
  }
  if (is(m, BasicBlock)) {
    const b = m as BasicBlock;
    let out = child("conv1", b.conv1, x);
    out = child("bn1", b.bn1, out);
    out = child("relu", b.relu, out);
    out = child("conv2", b.conv2, out);
    out = child("bn2", b.bn2, out);
    const identity = b.downsample ? child("downsample", b.downsample, x) : x;
    const sum = {
      name: g.node(path, "Add", [out.name, identity.name]),
      t: add(out.t, identity.t),
    };
    return child("relu", b.relu, sum);
  }
  if (is(m, ResNet)) {
    const r = m as ResNet;
    let y = x;
    for (
      const key of [
        "conv1",
        "bn1",
        "relu",
        "maxpool",
        "layer1",
        "layer2",
        "layer3",
        "layer4",
        "avgpool",
      ] as const
    ) {
      y = child(key, r[key], y);
    }
    y = flattenValue(g, path, y, 1, -1, dynamicBatch);
    return child("fc", r.fc, y);
  }
  if (is(m, StudentNet)) {
    const s = m as StudentNet;
    let y = child("layer1", s.layer1, x);
    y = flattenValue(g, path, y, 1, -1, dynamicBatch);
    return child("fc", s.fc, y);
  }
  const overridden = [
    Sequential,
    Conv2d,
    BatchNorm2d,
    ReLU,
    MaxPool2d,
    AvgPool2d,
    AdaptiveAvgPool2d,
    Linear,
    Flatten,
    Identity,
    Dropout,
    BasicBlock,
    ResNet,
    StudentNet,
  ].find((cls) => m instanceof cls);
  throw new OnnxExportError(
    `Cannot export ${m.constructor.name} at ${at(path)} to ONNX: ${
      overridden
        ? `it overrides ${overridden.name}.forward(), which the exporter cannot see into`
        : "the exporter writes only modules it knows"
    }; it knows ${SUPPORTED}. Build the model from these, or export its supported parts separately`,
  );
}

function encodeAttr(a: Attr): ProtoWriter {
  const w = new ProtoWriter().string(1, a.name);
  if ("f" in a) w.float(2, a.f).int(20, ATTR_FLOAT);
  else if ("i" in a) w.int(3, a.i).int(20, ATTR_INT);
  else {
    for (const v of a.ints) w.int(8, v);
    w.int(20, ATTR_INTS);
  }
  return w;
}

function encodeNode(n: Node): ProtoWriter {
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.name).string(4, n.op);
  for (const a of n.attrs) w.message(5, encodeAttr(a));
  return w;
}

function valueInfo(
  name: string,
  shape: readonly number[],
  dynamicBatch: boolean,
): ProtoWriter {
  const dims = new ProtoWriter();
  shape.forEach((d, i) => {
    const dim = new ProtoWriter();
    if (i === 0 && dynamicBatch) dim.string(2, "batch");
    else dim.int(1, d);
    dims.message(1, dim);
  });
  const tensorType = new ProtoWriter().int(1, FLOAT).message(2, dims);
  return new ProtoWriter()
    .string(1, name)
    .message(2, new ProtoWriter().message(1, tensorType));
}

function maxDiff(a: Tensor, b: Tensor): number {
  const x = a.data();
  const y = b.data();
  let m = 0;
  for (let i = 0; i < x.length; i++) {
    const d = Math.abs(x[i] - y[i]) / Math.max(1, Math.abs(y[i]));
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/**
 * Encodes a model as an ONNX (opset 17) `ModelProto`, as `exportOnnx`
 * writes it. See the module documentation for the supported layers.
 *
 * @param model The model; exported in eval mode (its modes are restored).
 * @param sampleInput A float32 input of the shape the model takes, e.g.
 * `[1, 3, 224, 224]`; the batch dimension is symbolic unless
 * `dynamicBatch` is false.
 * @param options Input and output names, `dynamicBatch`.
 * @returns The `.onnx` file's bytes.
 * @throws OnnxExportError for a module the exporter cannot write; the
 * model's own errors (ShapeError, ...) for an input it does not take.
 *
 * @example Export a small network
 * ```ts
 * import { io, nn, zeros } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const net = new nn.Sequential(new nn.Linear(4, 8), new nn.ReLU());
 * const bytes = io.serializeOnnx(net, zeros([1, 4]));
 * assert.ok(bytes.length > 4 * 8 * 4);
 * ```
 */
export function serializeOnnx(
  model: Module,
  sampleInput: Tensor,
  options: ExportOnnxOptions = {},
): Uint8Array {
  const inputName = options.inputName ?? "input";
  const outputName = options.outputName ?? "output";
  const dynamicBatch = options.dynamicBatch ?? true;
  if (sampleInput.dtype !== "float32") {
    throw new OnnxExportError(
      `Cannot export ${model.constructor.name} to ONNX: the sample input is ${sampleInput.dtype}; kdeno models take float32`,
    );
  }
  if (inputName === outputName) {
    throw new OnnxExportError(
      `Cannot export ${model.constructor.name} to ONNX: input and output are both named "${inputName}"`,
    );
  }
  const modes = model.modules().map((m) => [m, m.training] as const);
  model.eval();
  const g = new Graph();
  g.reserve(inputName);
  g.reserve(outputName);
  let outShape: readonly number[] = [];
  try {
    noGrad(() =>
      tidy(() => {
        const expected = model.forward(sampleInput);
        const out = emit(
          g,
          "",
          model,
          { name: inputName, t: sampleInput },
          dynamicBatch,
        );
        const diff = maxDiff(out.t, expected);
        if (out.t.shape.join() !== expected.shape.join() || diff > 1e-5) {
          throw new OnnxExportError(
            `Cannot export ${model.constructor.name} to ONNX: the graph written from its layers gives ${
              fmtShape(out.t.shape)
            } (relative difference ${diff}) where model.forward() gives ${
              fmtShape(expected.shape)
            }; its forward() does not compose its layers as the exporter assumes (are there forward hooks?)`,
          );
        }
        outShape = out.t.shape;
        if (out.name === inputName) {
          g.nodes.push({
            op: "Identity",
            name: "/Identity",
            inputs: [inputName],
            outputs: [outputName],
            attrs: [],
          });
        } else {
          for (const n of g.nodes) {
            n.outputs = n.outputs.map((o) => (o === out.name ? outputName : o));
            n.inputs = n.inputs.map((i) => (i === out.name ? outputName : i));
          }
        }
      })
    );
  } finally {
    for (const [m, training] of modes) m.training = training;
  }
  const graph = new ProtoWriter();
  for (const n of g.nodes) graph.message(1, encodeNode(n));
  graph.string(2, model.constructor.name);
  for (const t of g.initializers) graph.message(5, t);
  graph.message(11, valueInfo(inputName, sampleInput.shape, dynamicBatch));
  graph.message(12, valueInfo(outputName, outShape, dynamicBatch));
  return new ProtoWriter()
    .int(1, IR_VERSION)
    .string(2, "kdeno")
    .message(7, graph)
    .message(8, new ProtoWriter().string(1, "").int(2, ONNX_OPSET))
    .finish();
}

/**
 * Exports a model to an ONNX file (opset 17), as `torch.onnx.export(model,
 * sampleInput, path)` does, for models built from kdeno's core layers
 * (see the module documentation). The file is written atomically.
 *
 * @param model The model; exported in eval mode (its modes are restored).
 * @param sampleInput A float32 input of the shape the model takes.
 * @param path The `.onnx` file to write.
 * @param options Input and output names, `dynamicBatch` (default true).
 * @throws OnnxExportError for a module the exporter cannot write.
 * @throws CheckpointError, naming `path`, when the file cannot be written:
 * its folder is missing or is a file, `path` is a folder, or the write
 * fails (permission, disk full). Nothing is left behind.
 *
 * @example Export the tutorial's student
 * ```ts
 * import { io, models, zeros } from "@kdeno/kdeno";
 *
 * const student = new models.StudentNet({ inputSize: 32 });
 * const path = await Deno.makeTempFile({ suffix: ".onnx" });
 * await io.exportOnnx(student, zeros([1, 3, 32, 32]), path);
 * await Deno.remove(path);
 * ```
 */
export async function exportOnnx(
  model: Module,
  sampleInput: Tensor,
  path: string | URL,
  options: ExportOnnxOptions = {},
): Promise<void> {
  const name = path instanceof URL ? fileURLToPath(path) : path;
  const bytes = serializeOnnx(model, sampleInput, options);
  const fail = (why: string, cause?: unknown): never => {
    const err = new CheckpointError(`Cannot write ONNX file ${name}: ${why}`);
    if (cause !== undefined) err.cause = cause;
    throw err;
  };
  const problem = await destinationProblem(name);
  if (problem) fail(problem);
  try {
    await writeFileAtomic(name, bytes);
  } catch (e) {
    // Deno's message ends with the call and the temporary file's path
    // (`...: rename '/dir/.model.onnx.1a2b.tmp' -> ...`): keep the reason
    fail(String((e as Error)?.message ?? e).replace(/: \w+ '.*$/s, ""), e);
  }
}

/**
 * What `path` is on disk: a folder, a file, nothing, or unknown. Without
 * read permission it is unknown (asked, Deno would prompt for it).
 */
async function kindOf(
  path: string,
): Promise<"folder" | "file" | "missing" | "unknown"> {
  const read = Deno.permissions.querySync({ name: "read", path });
  if (read.state !== "granted") return "unknown";
  try {
    return (await Deno.stat(path)).isDirectory ? "folder" : "file";
  } catch (e) {
    return e instanceof Deno.errors.NotFound ? "missing" : "unknown";
  }
}

/**
 * Why `path` cannot be written as a file, found before writing: its folder
 * is missing or a file, or `path` is a folder. Null when nothing is known
 * to be wrong (the write then reports any other failure).
 */
async function destinationProblem(path: string): Promise<string | null> {
  const folder = dirname(path);
  const [self, parent] = await Promise.all([kindOf(path), kindOf(folder)]);
  if (self === "folder") return "it is a folder";
  if (parent === "missing") return `folder ${folder} does not exist`;
  if (parent === "file") return `${folder} is a file, not a folder`;
  return null;
}
