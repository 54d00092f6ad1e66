/**
 * ONNX export (opset 17) by tracing, as `torch.onnx.export` does.
 *
 * The exporter runs the model once on the sample input (in eval mode,
 * without gradients, forward hooks included) inside `traceOps`, which
 * reports every kdeno op the forward pass runs: its name, its tensor
 * inputs, its output and its attributes (stride, padding, dims, scalar
 * operands, ...). Each op becomes ONNX nodes, so a user's own `nn.Module`
 * exports as well as the built-in layers and models:
 *
 * | kdeno op | ONNX |
 * | --- | --- |
 * | `conv2d` | `Conv` |
 * | `batchNorm` (running statistics), fused with ReLU or not | `BatchNormalization` (inference) [+ `Relu`] |
 * | `maxPool2d`, `avgPool2d` | `MaxPool`, `AveragePool` |
 * | `adaptiveAvgPool2d` | `GlobalAveragePool` for output 1, `AveragePool` when the input divides evenly |
 * | `linear` | `Gemm` (2-D input), else `MatMul` + `Add` |
 * | `matmul` | `MatMul` |
 * | `add`, `sub`, `mul`, `div`, `pow`, `maximum`, `minimum` | `Add`, `Sub`, `Mul`, `Div`, `Pow`, `Max`, `Min` |
 * | `eq`, `ne`, `lt`, `le`, `gt`, `ge`, `where`, `cast` | `Equal` (+ `Not`), `Less`, ..., `Where`, `Cast` |
 * | `relu`, `sigmoid`, `tanh`, `exp`, `log`, `sqrt`, `rsqrt`, `abs`, `neg`, `sign`, `square`, `clamp` | `Relu`, `Sigmoid`, `Tanh`, `Exp`, `Log`, `Sqrt`, `Sqrt` + `Reciprocal`, `Abs`, `Neg`, `Sign`, `Mul`, `Clip` |
 * | `reshape` (and `flatten`, `squeeze`, `unsqueeze`) | `Flatten` (to 2-D from dim 1), else `Reshape` |
 * | `permute` (and `transpose`), `expand`, `slice`, `cat`, `clone` | `Transpose`, `Expand`, `Slice`, `Concat`, `Identity` |
 * | `softmax`, `logSoftmax` | `Softmax`, `LogSoftmax` |
 * | `sum`, `max`, `min` (reductions; `mean` is `sum` and `mul`) | `ReduceSum`, `ReduceMax`, `ReduceMin` |
 * | `argmax`, `argmin`, `gather`, `indexSelect` | `ArgMax`, `ArgMin` (+ `Cast`), `GatherElements`, `Gather` |
 *
 * The first op without an ONNX counterpart here (`dropout` in training
 * mode, batch norm with batch statistics, `to` another device, ...)
 * raises an `OnnxExportError` naming it. An op built from other ops reports
 * them and then itself with the same output; the exporter writes the
 * outer one and drops nodes whose outputs nothing uses.
 *
 * Parameters and buffers become initializers named by their state-dict keys
 * (`layer1.0.conv1.weight`); other tensors the forward pass reads (made in
 * `forward`, or scalars) become initializers with their value at export
 * time, as in PyTorch. Ops that kdeno runs without reporting them (raw
 * kernels inside other ops) are not seen, so a tensor computed from the
 * input that way would be written as a constant; the public ops all report.
 * The batch dimension is symbolic (`batch`) unless `dynamicBatch` is false;
 * shapes the graph writes (`Reshape`, `Expand`) keep dim 0 as the batch
 * when it is the input's dim 0.
 *
 * @module
 */

import { noGrad, type TracedOp, traceOps } from "../autograd.ts";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { CheckpointError, fmtShape } from "../errors.ts";
import { type Tensor, tidy } from "../tensor.ts";
import type { TraceableModel } from "./model.ts";
import type { Pool2dGeometry } from "../backend/backend.ts";
import { LITTLE_ENDIAN } from "./_dtype.ts";
import { ProtoWriter } from "./_protobuf.ts";
import { writeFileAtomic } from "./_atomic.ts";

/** A model, or a part of it, that the ONNX exporter cannot write. */
export class OnnxExportError extends TypeError {
  /**
   * Creates the error.
   *
   * @param message What was wrong, naming the op or the model.
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

// TensorProto.DataType
const FLOAT = 1;
const INT32 = 6;
const INT64 = 7;
const BOOL = 9;

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

type Data = Float32Array | Int32Array | BigInt64Array;

function bytesOf(data: Data): Uint8Array {
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
  init(base: string, dims: readonly number[], data: Data): string {
    const name = this.unique(base);
    const t = new ProtoWriter();
    for (const d of dims) t.int(1, d); // dims
    t.int(
      2,
      data instanceof Float32Array
        ? FLOAT
        : data instanceof Int32Array
        ? INT32
        : INT64,
    ); // data_type
    t.string(8, name); // name
    t.bytes(9, bytesOf(data)); // raw_data
    this.initializers.push(t);
    return name;
  }

  /** An int64 vector initializer (shapes, axes). */
  ints(base: string, values: readonly (number | bigint)[]): string {
    return this.init(
      base,
      [values.length],
      BigInt64Array.from(values.map((v) => BigInt(v))),
    );
  }

  /** A float32 scalar initializer. */
  scalar(base: string, v: number): string {
    return this.init(base, [], Float32Array.of(v));
  }

  /** Adds a node with one output; returns the output's name. */
  node(op: string, inputs: string[], attrs: Attr[] = []): string {
    const name = this.unique(`/${op}`);
    const out = this.unique(`${name}_output_0`);
    this.nodes.push({ op, name, inputs, outputs: [out], attrs });
    return out;
  }
}

const isTensor = (v: unknown): v is Tensor =>
  typeof v === "object" && v !== null && "storage" in v && "shape" in v;

/** Every tensor an op reads: its inputs and the tensors among its attributes. */
function tensorsOf(op: TracedOp): Tensor[] {
  const out = [...op.inputs];
  for (const v of Object.values(op.attrs)) {
    if (isTensor(v)) out.push(v);
    else if (Array.isArray(v)) out.push(...v.filter(isTensor));
  }
  return out;
}

const UNARY: Record<string, string> = {
  neg: "Neg",
  exp: "Exp",
  log: "Log",
  sqrt: "Sqrt",
  abs: "Abs",
  relu: "Relu",
  sigmoid: "Sigmoid",
  tanh: "Tanh",
  sign: "Sign",
  clone: "Identity",
};

const BINARY: Record<string, string> = {
  add: "Add",
  sub: "Sub",
  mul: "Mul",
  div: "Div",
  pow: "Pow",
  maximum: "Max",
  minimum: "Min",
};

const COMPARE: Record<string, string> = {
  eq: "Equal",
  ne: "Equal",
  lt: "Less",
  le: "LessOrEqual",
  gt: "Greater",
  ge: "GreaterOrEqual",
};

const SUPPORTED = [
  "conv2d",
  "batchNorm (running statistics)",
  "maxPool2d",
  "avgPool2d",
  "adaptiveAvgPool2d",
  "linear",
  "matmul",
  ...Object.keys(BINARY),
  ...Object.keys(COMPARE),
  "where",
  "cast",
  ...Object.keys(UNARY),
  "rsqrt",
  "square",
  "clamp",
  "reshape",
  "permute",
  "expand",
  "slice",
  "cat",
  "softmax",
  "logSoftmax",
  "sum",
  "max",
  "min",
  "argmax",
  "argmin",
  "gather",
  "indexSelect",
].join(", ");

function poolAttrs(g: Pool2dGeometry, ceilMode: boolean): Attr[] {
  const [ph, pw] = g.padding;
  return [
    { name: "kernel_shape", ints: [...g.kernel] },
    { name: "strides", ints: [...g.stride] },
    { name: "pads", ints: [ph, pw, ph, pw] },
    { name: "ceil_mode", i: ceilMode ? 1 : 0 },
  ];
}

/**
 * Writes the traced ops as ONNX nodes: the ones the output depends on, in
 * the order they ran.
 */
function emitGraph(
  g: Graph,
  ops: readonly TracedOp[],
  input: Tensor,
  inputName: string,
  output: Tensor,
  params: ReadonlyMap<Tensor, string>,
  constants: ReadonlyMap<Tensor, Float32Array | Int32Array>,
  dynamicBatch: boolean,
  what: string,
): string {
  // the op that made each tensor: the last one to report it (an outer op
  // reports after the inner ops it is built from)
  const producer = new Map<Tensor, number>();
  ops.forEach((op, i) => producer.set(op.output, i));
  const needed = new Set<number>();
  const stack = [output];
  const seen = new Set<Tensor>();
  while (stack.length) {
    const t = stack.pop()!;
    if (seen.has(t) || t === input) continue;
    seen.add(t);
    const i = producer.get(t);
    if (i === undefined) continue;
    needed.add(i);
    stack.push(...tensorsOf(ops[i]));
  }

  const names = new Map<Tensor, string>([[input, inputName]]);
  let k = 0;
  const value = (t: Tensor): string => {
    const have = names.get(t);
    if (have !== undefined) return have;
    const data = constants.get(t) ??
      (t.data() as Float32Array | Int32Array);
    const name = g.init(
      params.get(t) ?? `onnx::Constant_${k++}`,
      t.shape,
      data,
    );
    names.set(t, name);
    return name;
  };
  /** A tensor operand, or a scalar one of the dtype of the op's output. */
  const operand = (v: unknown, y: Tensor): string =>
    isTensor(v) ? value(v) : g.init(
      `onnx::Scalar_${k++}`,
      [],
      y.dtype === "int32" ? Int32Array.of(v as number) : Float32Array.of(
        v as number,
      ),
    );
  /** The batch dim stays symbolic in a shape written into the graph. */
  const batchDim = (x: Tensor, shape: readonly number[]) =>
    dynamicBatch && x.ndim > 0 && shape.length > 0 &&
    shape[0] === x.shape[0];
  let step = 0; // the op's place among those the output depends on
  const bad = (op: TracedOp, why: string): never => {
    throw new OnnxExportError(
      `Cannot export ${what} to ONNX: its forward pass runs ${op.name} (op ${step} of the trace, output ${
        fmtShape(op.output.shape)
      }), ${why}; the exporter writes ${SUPPORTED}`,
    );
  };

  for (const [i, op] of ops.entries()) {
    if (!needed.has(i)) continue;
    step++;
    const a = op.attrs;
    const x = op.inputs[0];
    const y = op.output;
    let out: string;
    const name = op.name;
    if (name in UNARY) out = g.node(UNARY[name], [value(x)]);
    else if (name in BINARY) {
      const [l, r] = a.operands as [unknown, unknown];
      out = g.node(BINARY[name], [operand(l, y), operand(r, y)]);
    } else if (name in COMPARE) {
      const [l, r] = a.operands as [unknown, unknown];
      // the operands' dtype: the tensor one's
      const t = (isTensor(l) ? l : r) as Tensor;
      out = g.node(COMPARE[name], [operand(l, t), operand(r, t)]);
      if (name === "ne") out = g.node("Not", [out]);
      out = g.node("Cast", [out], [{ name: "to", i: INT32 }]);
    } else if (name === "rsqrt") {
      out = g.node("Reciprocal", [g.node("Sqrt", [value(x)])]);
    } else if (name === "square") {
      out = g.node("Mul", [value(x), value(x)]);
    } else if (name === "clamp") {
      out = g.node("Clip", [
        value(x),
        g.scalar(`onnx::Min_${k++}`, a.min as number),
        g.scalar(`onnx::Max_${k++}`, a.max as number),
      ]);
    } else if (name === "cast") {
      const to = a.dtype === "float32" ? FLOAT : INT32;
      out = g.node("Cast", [value(x)], [{ name: "to", i: to }]);
    } else if (name === "where") {
      const [l, r] = a.operands as [unknown, unknown];
      const cond = g.node("Cast", [value(a.cond as Tensor)], [
        { name: "to", i: BOOL },
      ]);
      out = g.node("Where", [cond, operand(l, y), operand(r, y)]);
    } else if (name === "conv2d") {
      const w = op.inputs[1];
      const [ph, pw] = a.padding as number[];
      out = g.node("Conv", op.inputs.map(value), [
        { name: "dilations", ints: [...(a.dilation as number[])] },
        { name: "group", i: a.groups as number },
        { name: "kernel_shape", ints: w.shape.slice(2) },
        { name: "pads", ints: [ph, pw, ph, pw] },
        { name: "strides", ints: [...(a.stride as number[])] },
      ]);
    } else if (name === "batchNorm" || name === "batchNormRelu") {
      const mean = a.runningMean as Tensor | null;
      const vari = a.runningVar as Tensor | null;
      if (a.training || !mean || !vari) {
        bad(
          op,
          "which normalises with batch statistics (training mode, or a BatchNorm2d without running statistics); ONNX BatchNormalization for inference uses running statistics",
        );
      }
      const c = x.shape[1];
      const weight = a.weight as Tensor | null;
      const bias = a.bias as Tensor | null;
      out = g.node("BatchNormalization", [
        value(x),
        weight
          ? value(weight)
          : g.init(`onnx::Scale_${k++}`, [c], new Float32Array(c).fill(1)),
        bias
          ? value(bias)
          : g.init(`onnx::Bias_${k++}`, [c], new Float32Array(c)),
        value(mean!),
        value(vari!),
      ], [
        { name: "epsilon", f: a.eps as number },
        { name: "momentum", f: 0.9 },
        { name: "training_mode", i: 0 },
      ]);
      if (a.relu) out = g.node("Relu", [out]);
    } else if (name === "maxPool2d") {
      const geo = a.geometry as Pool2dGeometry;
      out = g.node("MaxPool", [value(x)], [
        { name: "dilations", ints: [...geo.dilation] },
        ...poolAttrs(geo, a.ceilMode as boolean),
      ]);
    } else if (name === "avgPool2d") {
      const geo = a.geometry as Pool2dGeometry;
      out = g.node("AveragePool", [value(x)], [
        { name: "count_include_pad", i: geo.countIncludePad ? 1 : 0 },
        ...poolAttrs(geo, a.ceilMode as boolean),
      ]);
    } else if (name === "adaptiveAvgPool2d") {
      const [h, w] = x.shape.slice(2);
      const [oh, ow] = y.shape.slice(2);
      if (oh === 1 && ow === 1) out = g.node("GlobalAveragePool", [value(x)]);
      else if (h % oh !== 0 || w % ow !== 0) {
        out = bad(
          op,
          `whose output ${fmtShape([oh, ow])} does not divide the input's ${
            fmtShape([h, w])
          }, so its windows overlap unevenly and no single AveragePool matches`,
        );
      } else {
        const kh = h / oh, kw = w / ow;
        out = g.node("AveragePool", [value(x)], [
          { name: "kernel_shape", ints: [kh, kw] },
          { name: "strides", ints: [kh, kw] },
          { name: "pads", ints: [0, 0, 0, 0] },
          { name: "ceil_mode", i: 0 },
        ]);
      }
    } else if (name === "linear") {
      const [, w, b] = op.inputs;
      if (x.ndim === 2) {
        out = g.node("Gemm", op.inputs.map(value), [
          { name: "alpha", f: 1 },
          { name: "beta", f: 1 },
          { name: "transB", i: 1 },
        ]);
      } else {
        let wt: string;
        if (producer.has(w) || w === input) {
          wt = g.node("Transpose", [value(w)], [{
            name: "perm",
            ints: [1, 0],
          }]);
        } else {
          // x [..., in] @ weightᵀ [in, out], the transpose stored
          const src = constants.get(w) ?? (w.data() as Float32Array);
          const [o, n] = w.shape;
          const t = new Float32Array(src.length);
          for (let r = 0; r < o; r++) {
            for (let c = 0; c < n; c++) t[c * o + r] = src[r * n + c];
          }
          wt = g.init(`${params.get(w) ?? `onnx::Weight_${k++}`}_t`, [n, o], t);
        }
        out = g.node("MatMul", [value(x), wt]);
        if (b) out = g.node("Add", [out, value(b)]);
      }
    } else if (name === "matmul") {
      out = g.node("MatMul", op.inputs.map(value));
    } else if (name === "reshape") {
      const s = y.shape;
      if (
        x.ndim > 2 && s.length === 2 && s[0] === x.shape[0]
      ) {
        out = g.node("Flatten", [value(x)], [{ name: "axis", i: 1 }]);
      } else {
        const shape = batchDim(x, s) ? [0, ...s.slice(1)] : [...s];
        out = g.node("Reshape", [
          value(x),
          g.ints(`onnx::Shape_${k++}`, shape),
        ]);
      }
    } else if (name === "permute") {
      out = g.node("Transpose", [value(x)], [
        { name: "perm", ints: [...(a.perm as number[])] },
      ]);
    } else if (name === "expand") {
      // Expand broadcasts both ways: 1 keeps a dim the input already has
      const lead = y.ndim - x.ndim;
      const shape = y.shape.map((d, j) =>
        j >= lead && x.shape[j - lead] === d ? 1 : d
      );
      out = g.node("Expand", [value(x), g.ints(`onnx::Shape_${k++}`, shape)]);
    } else if (name === "slice") {
      const d = a.dim as number;
      // to the end of dim: the largest int64, so a symbolic batch slices whole
      const end = a.end === x.shape[d]
        ? 0x7fffffffffffffffn
        : BigInt(a.end as number);
      out = g.node("Slice", [
        value(x),
        g.ints(`onnx::Starts_${k++}`, [a.start as number]),
        g.ints(`onnx::Ends_${k++}`, [end]),
        g.ints(`onnx::Axes_${k++}`, [d]),
        g.ints(`onnx::Steps_${k++}`, [a.step as number]),
      ]);
    } else if (name === "cat") {
      out = g.node("Concat", op.inputs.map(value), [
        { name: "axis", i: a.dim as number },
      ]);
    } else if (name === "softmax" || name === "logSoftmax") {
      out = g.node(name === "softmax" ? "Softmax" : "LogSoftmax", [value(x)], [
        { name: "axis", i: a.dim as number },
      ]);
    } else if (name === "sum") {
      out = g.node("ReduceSum", [
        value(x),
        g.ints(`onnx::Axes_${k++}`, a.dims as number[]),
      ], [{ name: "keepdims", i: a.keepdim ? 1 : 0 }]);
    } else if (name === "max" || name === "min") {
      out = g.node(name === "max" ? "ReduceMax" : "ReduceMin", [value(x)], [
        { name: "axes", ints: [...(a.dims as number[])] },
        { name: "keepdims", i: a.keepdim ? 1 : 0 },
      ]);
    } else if (name === "gather" || name === "indexSelect") {
      out = g.node(
        name === "gather" ? "GatherElements" : "Gather",
        [value(x), value(a.index as Tensor)],
        [{ name: "axis", i: a.dim as number }],
      );
    } else if (name === "argmax" || name === "argmin") {
      const keep = a.keepdim ? 1 : 0;
      let src = value(x);
      if (a.dim === null) {
        src = g.node("Reshape", [src, g.ints(`onnx::Shape_${k++}`, [-1])]);
      }
      out = g.node(name === "argmax" ? "ArgMax" : "ArgMin", [src], [
        { name: "axis", i: (a.dim ?? 0) as number },
        { name: "keepdims", i: a.dim === null ? 0 : keep },
      ]);
      if (a.dim === null && keep) {
        out = g.node("Reshape", [out, g.ints(`onnx::Shape_${k++}`, y.shape)]);
      }
      out = g.node("Cast", [out], [{ name: "to", i: INT32 }]);
    } else if (name === "dropout") {
      out = bad(
        op,
        "which draws a random mask (dropout in training mode); the model is exported in eval mode, so this is a functional dropout() with training: true",
      );
    } else {
      out = bad(op, "which has no ONNX counterpart");
    }
    names.set(y, out);
  }
  return value(output);
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

/**
 * Encodes a model as an ONNX (opset 17) `ModelProto`, as `exportOnnx`
 * writes it, by tracing the ops its forward pass runs on `sampleInput`
 * (see the module documentation for the ops it writes).
 *
 * @param model The model; traced in eval mode (its modes are restored),
 * through `model.call`, so forward hooks are traced too.
 * @param sampleInput A float32 input of the shape the model takes, e.g.
 * `[1, 3, 224, 224]`; the batch dimension is symbolic unless
 * `dynamicBatch` is false.
 * @param options Input and output names, `dynamicBatch`.
 * @returns The `.onnx` file's bytes.
 * @throws OnnxExportError naming the first op the forward pass runs that
 * has no ONNX counterpart; the model's own errors (ShapeError, ...) for an
 * input it does not take.
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
  model: TraceableModel,
  sampleInput: Tensor,
  options: ExportOnnxOptions = {},
): Uint8Array {
  const inputName = options.inputName ?? "input";
  const outputName = options.outputName ?? "output";
  const dynamicBatch = options.dynamicBatch ?? true;
  const what = model.constructor.name;
  if (sampleInput.dtype !== "float32") {
    throw new OnnxExportError(
      `Cannot export ${what} to ONNX: the sample input is ${sampleInput.dtype}; kdeno models take float32`,
    );
  }
  if (inputName === outputName) {
    throw new OnnxExportError(
      `Cannot export ${what} to ONNX: input and output are both named "${inputName}"`,
    );
  }
  // parameters and buffers by state-dict key (then non-persistent buffers)
  const params = new Map<Tensor, string>();
  for (const [k, t] of Object.entries(model.stateDict())) {
    if (!params.has(t)) params.set(t, k);
  }
  for (const [k, t] of model.namedBuffers()) {
    if (!params.has(t)) params.set(t, k);
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
        const ops: TracedOp[] = [];
        const made = new Set<Tensor>();
        // tensors the forward pass reads that no op made: their values now,
        // before the pass frees any of them
        const constants = new Map<Tensor, Float32Array | Int32Array>();
        const output = traceOps(() => model.call(sampleInput), (op) => {
          for (const t of tensorsOf(op)) {
            if (
              t !== sampleInput && !made.has(t) && !params.has(t) &&
              !constants.has(t)
            ) {
              constants.set(t, t.data().slice() as Float32Array | Int32Array);
            }
          }
          made.add(op.output);
          ops.push(op);
        });
        outShape = output.shape;
        const out = emitGraph(
          g,
          ops,
          sampleInput,
          inputName,
          output,
          params,
          constants,
          dynamicBatch,
          what,
        );
        if (
          g.nodes.length === 0 || !g.nodes.some((n) => n.outputs[0] === out)
        ) {
          // the input itself, or a constant
          g.nodes.push({
            op: "Identity",
            name: g.unique("/Identity"),
            inputs: [out],
            outputs: [outputName],
            attrs: [],
          });
        } else {
          for (const n of g.nodes) {
            n.outputs = n.outputs.map((o) => (o === out ? outputName : o));
            n.inputs = n.inputs.map((i) => (i === out ? outputName : i));
          }
        }
      })
    );
  } finally {
    for (const [m, training] of modes) m.training = training;
  }
  const graph = new ProtoWriter();
  for (const n of g.nodes) graph.message(1, encodeNode(n));
  graph.string(2, what);
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
 * sampleInput, path)` does: by tracing the ops the forward pass runs (see
 * the module documentation). The file is written atomically.
 *
 * @param model The model; exported in eval mode (its modes are restored).
 * @param sampleInput A float32 input of the shape the model takes.
 * @param path The `.onnx` file to write.
 * @param options Input and output names, `dynamicBatch` (default true).
 * @throws OnnxExportError naming the first op the forward pass runs that
 * has no ONNX counterpart.
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
  model: TraceableModel,
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
