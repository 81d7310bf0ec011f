/** One model output as ONNX Runtime returns it: name, dims and float data. */
export interface RawOutput {
  name: string;
  dims: readonly number[];
  data: Float32Array;
}

/**
 * The slice of `out` that belongs to image `b` of a batch, as rows of `cols` values.
 * Outputs of rank 3 (`[batch, rows, cols]`) are batched; rank 2 (`[rows, cols]`) holds one image,
 * as many published SCRFD exports do.
 */
export function imageRows(out: RawOutput, b: number): { rows: number; cols: number; data: Float32Array } {
  const dims = out.dims;
  const cols = dims[dims.length - 1] ?? 1;
  if (dims.length >= 3) {
    const rows = dims.slice(1, -1).reduce((a, c) => a * c, 1);
    return { rows, cols, data: out.data.subarray(b * rows * cols, (b + 1) * rows * cols) };
  }
  const rows = dims.length === 2 ? dims[0]! : out.data.length / cols;
  return { rows, cols, data: out.data };
}
