/**
 * Open Inference Protocol (KServe v2) REST: request tensors → rows, predictions →
 * response tensors. One input tensor per feature, shape [n] (or [n, 1]), flat
 * row-major data; BYTES for categorical features, a numeric datatype for numeric ones.
 * Outputs: "label" (BYTES [n]) and "probabilities" (FP64 [n, K]).
 */
import type { RawRow } from '../model/walker';
import { ApiError, preview, type ErrorDetail } from './errors';
import type { ServedModel } from './served-model';
import { MAX_DETAILS, type OipInferRequest } from './validation';

export const OIP_OUTPUTS = ['label', 'probabilities'] as const;

const INTEGER_TYPES = new Set(['INT64', 'INT32', 'INT16', 'INT8', 'UINT64', 'UINT32', 'UINT16', 'UINT8']);

function flatten(data: unknown[]): unknown[] {
  return data.some(Array.isArray) ? (data as unknown[]).flat(2) : data;
}

export function oipToRows(req: OipInferRequest, model: ServedModel, batchLimit: number): RawRow[] {
  // Every problem is counted, at most MAX_DETAILS are described (a request may carry thousands of bad tensors).
  const details = new CappedDetails();
  const byName = new Map(model.features.map((f) => [f.name, f]));
  const seen = new Map<string, number>();
  let n: number | undefined;
  const columns: { name: string; data: unknown[] }[] = [];
  req.inputs.forEach((input, k) => {
    const where = `/inputs/${k}`;
    const feature = byName.get(input.name);
    if (!feature) {
      details.push({ where: `${where}/name`, problem: 'unknown input', got: preview(input.name), expected: `one of the model's features: ${[...byName.keys()].join(', ')}` });
      return;
    }
    if (seen.has(input.name)) {
      details.push({ where: `${where}/name`, problem: 'duplicate input', got: input.name, expected: `each feature once (also at /inputs/${seen.get(input.name)})` });
      return;
    }
    seen.set(input.name, k);
    const expectedType = feature.kind === 'categorical' ? 'BYTES' : 'a numeric datatype (FP64, FP32, INT64, ...)';
    if ((feature.kind === 'categorical') !== (input.datatype === 'BYTES')) {
      details.push({ where: `${where}/datatype`, problem: 'wrong datatype', got: input.datatype, expected: expectedType, field: input.name });
      return;
    }
    const shape = input.shape;
    if (shape.length === 2 && shape[1] !== 1) {
      details.push({ where: `${where}/shape`, problem: 'wrong shape', got: `[${shape.join(', ')}]`, expected: '[n] or [n, 1]: one value per row' });
      return;
    }
    const data = flatten(input.data);
    if (data.length !== shape[0]) {
      details.push({ where: `${where}/data`, problem: 'data does not match shape', got: `${data.length} values`, expected: `${shape[0]} values for shape [${shape.join(', ')}]` });
      return;
    }
    if (n === undefined) n = shape[0];
    else if (shape[0] !== n) {
      details.push({ where: `${where}/shape`, problem: 'inconsistent batch size', got: shape[0], expected: `${n}, like the first input` });
      return;
    }
    if (feature.kind === 'numeric' && INTEGER_TYPES.has(input.datatype)) {
      const bad = data.findIndex((v) => v !== null && !Number.isInteger(v));
      if (bad >= 0) details.push({ where: `${where}/data/${bad}`, problem: 'wrong type', got: preview(data[bad]), expected: `an integer (datatype ${input.datatype})` });
    }
    columns.push({ name: input.name, data });
  });
  const missing = model.features.filter((f) => !seen.has(f.name)).map((f) => f.name);
  for (const field of missing) details.push({ where: '/inputs', problem: 'missing input', field, expected: `a tensor named ${field}` });
  if (details.total > 0) throw oipError(400, details);
  const rows = n ?? 0;
  if (rows === 0) throw new ApiError(400, 'validation_failed', 'The inputs hold no rows', [{ where: '/inputs/0/shape', problem: 'empty batch', expected: 'shape [n] with n >= 1' }]);
  if (rows > batchLimit) throw model.validator.batchTooLarge('/inputs/0/shape', rows);
  const out: RawRow[] = new Array(rows);
  for (let i = 0; i < rows; i++) {
    const row: RawRow = {};
    for (const c of columns) row[c.name] = c.data[i];
    out[i] = row;
  }
  // The same compiled schema as /predict: types, categories, nulls.
  model.validator.checkRows(out, (i, pointer) => {
    const field = pointer.slice(1);
    const k = seen.get(field);
    return k === undefined ? `/inputs (row ${i})` : `/inputs/${k}/data/${i}`;
  });
  return out;
}

class CappedDetails {
  readonly kept: ErrorDetail[] = [];
  total = 0;

  push(d: ErrorDetail): void {
    this.total++;
    if (this.kept.length < MAX_DETAILS) this.kept.push(d);
  }
}

function oipError(status: number, details: CappedDetails): ApiError {
  const head = details.kept
    .slice(0, 3)
    .map((d) => `${d.problem}${d.field ? ` ${d.field}` : ''} at ${d.where}${d.expected ? ` (expected ${d.expected})` : ''}`)
    .join('; ');
  const more = details.total - Math.min(3, details.kept.length);
  return new ApiError(status, 'validation_failed', `Invalid inference request: ${head}${more > 0 ? `; ${more} more` : ''}`, details.kept, details.total - details.kept.length);
}

export function oipRequestedOutputs(req: OipInferRequest): Set<string> {
  if (!req.outputs || req.outputs.length === 0) return new Set(OIP_OUTPUTS);
  const out = new Set<string>();
  req.outputs.forEach((o, i) => {
    if (!(OIP_OUTPUTS as readonly string[]).includes(o.name)) {
      throw new ApiError(400, 'validation_failed', `Unknown output ${JSON.stringify(o.name)}: this model has outputs ${OIP_OUTPUTS.join(', ')}`, [
        { where: `/outputs/${i}/name`, problem: 'unknown output', got: preview(o.name), expected: OIP_OUTPUTS.join(' or ') },
      ]);
    }
    out.add(o.name);
  });
  return out;
}

export function oipModelMetadata(model: ServedModel, versions: string[]): Record<string, unknown> {
  return {
    name: model.name,
    versions,
    platform: 'pricesense-forest',
    inputs: model.features.map((f) => ({ name: f.name, datatype: f.kind === 'categorical' ? 'BYTES' : 'FP64', shape: [-1] })),
    outputs: [
      { name: 'label', datatype: 'BYTES', shape: [-1] },
      { name: 'probabilities', datatype: 'FP64', shape: [-1, model.classes.length] },
    ],
    parameters: { classes: model.classes },
  };
}
