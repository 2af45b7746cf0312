/**
 * Request validation, compiled once per served model: ajv turns the feature spec's
 * JSON Schemas into straight-line code, so a valid single-row request costs a few
 * hundred nanoseconds. Failures become ApiErrors that list every problem with where
 * it is and what was expected (ajv runs with allErrors).
 */
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import type { FeatureSpec } from '../model/format';
import type { RawRow } from '../model/walker';
import type { UnknownCategoryPolicy } from './config';
import { ApiError, jsonType, preview, type ErrorDetail } from './errors';
import { checkDefinitions, isLineBasket, lineBasketRow, lineProblemsError } from './raw-lines';
import { batchSchema, instanceSchema, NUMERIC_EXPECTED, oipInferRequestSchema, OIP_NUMERIC_DATATYPES } from './schemas';

/** Enough to fix a request; a 1,000-row batch of garbage does not need 17,000 details. */
export const MAX_DETAILS = 50;

export interface PredictInput {
  readonly rows: RawRow[];
  readonly batch: boolean;
}

export interface OipInferRequest {
  id?: string;
  parameters?: Record<string, unknown>;
  inputs: { name: string; shape: number[]; datatype: string; data: unknown[]; parameters?: Record<string, unknown> }[];
  outputs?: { name: string }[];
}

interface CompiledValidators {
  readonly ajv: Ajv;
  readonly instance: ValidateFunction;
  readonly batch: ValidateFunction;
}

/**
 * Compiled validators by their schemas, the last few: a new model version with the same
 * features (the usual retrain) reuses them, so a swap compiles nothing on the serving
 * thread, where compiling costs tens to hundreds of ms. Each entry has its own Ajv, so an
 * evicted one is garbage-collected with its functions. The schemas are ours (api/schemas.ts):
 * no meta-schema is compiled to validate them (most of a fresh Ajv's compile time).
 */
const compiledCache = new Map<string, CompiledValidators>();
const CACHED_SCHEMAS = 4;

function compiledValidators(features: readonly FeatureSpec[], batchLimit: number, policy: UnknownCategoryPolicy): CompiledValidators {
  const instance = instanceSchema(features, policy);
  const batch = batchSchema(features, batchLimit, policy);
  const key = JSON.stringify([instance, batch]);
  let entry = compiledCache.get(key);
  if (entry) {
    compiledCache.delete(key);
  } else {
    const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, allowUnionTypes: true, meta: false, validateSchema: false });
    entry = { ajv, instance: ajv.compile(instance), batch: ajv.compile(batch) };
    if (compiledCache.size >= CACHED_SCHEMAS) compiledCache.delete(compiledCache.keys().next().value!);
  }
  compiledCache.set(key, entry);
  return entry;
}


const BODY_EXPECTED = 'a JSON object: one basket {"FEATURE": value, ...} or its transaction lines {"lines": [...]}, or a batch {"instances": [basket, ...]}';

/** What a raw-line request needs to know about the model it is scored by. */
export interface RawLineModel {
  /** The forest's feature-definition version (training.featureDefinitions), if any. */
  readonly featureDefinitions: string | undefined;
  /** How errors name the model, e.g. "version 3". */
  readonly label: string;
}

export class RequestValidator {
  readonly features: readonly FeatureSpec[];
  readonly batchLimit: number;
  private readonly byName: Map<string, FeatureSpec>;
  private readonly validateInstance: ValidateFunction;
  private readonly validateBatch: ValidateFunction;
  private validateOipFn: ValidateFunction | undefined;
  private readonly ajv: Ajv;
  private readonly featureList: string;
  private readonly policy: UnknownCategoryPolicy;
  private readonly rawLineModel: RawLineModel;

  constructor(features: readonly FeatureSpec[], batchLimit: number, policy: UnknownCategoryPolicy = 'missing', rawLineModel: RawLineModel = { featureDefinitions: undefined, label: 'this model' }) {
    this.rawLineModel = rawLineModel;
    this.features = features;
    this.batchLimit = batchLimit;
    this.policy = policy;
    this.byName = new Map(features.map((f) => [f.name, f]));
    this.featureList = features.map((f) => f.name).join(', ');
    const compiled = compiledValidators(features, batchLimit, policy);
    this.ajv = compiled.ajv;
    this.validateInstance = compiled.instance;
    this.validateBatch = compiled.batch;
  }

  /** POST /predict body → rows, or an ApiError describing every problem. */
  parsePredict(body: unknown): PredictInput {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new ApiError(422, 'validation_failed', `The request body must be ${BODY_EXPECTED}`, [
        { where: '', problem: 'wrong type', expected: BODY_EXPECTED, got: jsonType(body) },
      ]);
    }
    if (isLineBasket(body)) {
      const row = this.lineRows([body], () => '')[0] as RawRow;
      if (!this.validateInstance(row)) throw this.toApiError(this.validateInstance.errors ?? []);
      return { rows: [row], batch: false };
    }
    if (Object.prototype.hasOwnProperty.call(body, 'instances')) {
      let instances = (body as { instances: unknown }).instances;
      if (Array.isArray(instances) && instances.length > this.batchLimit) throw this.batchTooLarge('/instances', instances.length);
      // Baskets given as raw lines become their feature rows, then the batch is checked as one of feature rows.
      if (Array.isArray(instances) && instances.some(isLineBasket)) instances = this.lineRows(instances, (i) => `/instances/${i}`);
      const batch = instances === (body as { instances: unknown }).instances ? body : { instances };
      if (!this.validateBatch(batch)) throw this.toApiError(this.validateBatch.errors ?? []);
      return { rows: instances as RawRow[], batch: true };
    }
    if (!this.validateInstance(body)) throw this.toApiError(this.validateInstance.errors ?? []);
    return { rows: [body as RawRow], batch: false };
  }

  /**
   * Instances with the raw-line baskets among them replaced by the model's features
   * computed from their lines (others are left as they are); every line problem of every
   * basket in one 422.
   */
  private lineRows(instances: readonly unknown[], at: (i: number) => string): unknown[] {
    checkDefinitions(this.rawLineModel.featureDefinitions, this.rawLineModel.label);
    const details: ErrorDetail[] = [];
    const out = instances.map((x, i) => {
      if (!isLineBasket(x)) return x;
      const computed = lineBasketRow(x, at(i), details);
      if (!computed) return undefined;
      // The model's features, in its order (a matching definition version means it has no others).
      const row: RawRow = {};
      for (const f of this.features) row[f.name] = computed[f.name] ?? null;
      return row;
    });
    if (details.length > 0) throw lineProblemsError(details);
    return out;
  }

  batchTooLarge(where: string, n: number): ApiError {
    return new ApiError(413, 'batch_too_large', `The batch has ${n} instances; the limit is ${this.batchLimit}`, [
      { where, problem: 'batch too large', expected: `at most ${this.batchLimit} instances per request`, got: n },
    ]);
  }

  /** Validates rows assembled from another envelope (OIP tensors); `locate(i, pointer)` maps row i's pointer into the request. */
  checkRows(rows: RawRow[], locate: (row: number, pointer: string) => string): void {
    const details: ErrorDetail[] = [];
    let omitted = 0;
    for (let i = 0; i < rows.length; i++) {
      if (this.validateInstance(rows[i])) continue;
      for (const d of this.describe(this.validateInstance.errors ?? [])) {
        if (details.length < MAX_DETAILS) details.push({ ...d, where: locate(i, d.where) });
        else omitted++;
      }
    }
    if (details.length > 0) throw new ApiError(422, 'validation_failed', summarize(details, omitted), details, omitted);
  }

  /** Structural check of an OIP infer request; the tensors' contents are checked by the caller. */
  parseOip(body: unknown): OipInferRequest {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new ApiError(400, 'validation_failed', 'The request body must be an OIP inference request: {"inputs": [{"name", "shape", "datatype", "data"}, ...]}');
    }
    // Compiled on first use: most deployments never receive OIP calls, and cold start matters.
    const validate = (this.validateOipFn ??= this.ajv.compile(oipInferRequestSchema()));
    if (!validate(body)) throw this.toApiError(validate.errors ?? [], 400);
    return body as OipInferRequest;
  }

  get numericDatatypes(): readonly string[] {
    return OIP_NUMERIC_DATATYPES;
  }

  private toApiError(errors: ErrorObject[], status = 422): ApiError {
    const all = this.describe(errors);
    const details = all.slice(0, MAX_DETAILS);
    const omitted = all.length - details.length;
    return new ApiError(status, 'validation_failed', summarize(details, omitted), details, omitted);
  }

  /** ajv errors → one detail per problem, in words. */
  private describe(errors: ErrorObject[]): ErrorDetail[] {
    const out: ErrorDetail[] = [];
    // A categorical value of the wrong type fails both `type` and `enum`; report it once.
    const enumPaths = new Set<string>();
    for (const e of errors) if (e.keyword === 'enum') enumPaths.add(e.instancePath);
    for (const e of errors) {
      const path = e.instancePath;
      const name = lastSegment(path);
      const feature = name === undefined ? undefined : this.byName.get(name);
      switch (e.keyword) {
        case 'required': {
          const field = (e.params as { missingProperty: string }).missingProperty;
          const f = this.byName.get(field);
          out.push({
            where: path,
            problem: 'missing field',
            field,
            expected: f ? expectedFor(f, this.policy) : 'present',
          });
          break;
        }
        case 'additionalProperties': {
          const field = (e.params as { additionalProperty: string }).additionalProperty;
          out.push({
            where: `${path}/${escapePointer(field)}`,
            problem: 'unknown field',
            field,
            expected: feature || path === '' || /^\/instances\/\d+$/.test(path) ? `only the model's features: ${this.featureList}` : 'no other fields',
          });
          break;
        }
        case 'enum': {
          const got = e.data;
          if (feature && feature.kind === 'categorical') {
            out.push({
              where: path,
              problem: typeof got === 'string' ? 'unknown category' : 'wrong type',
              expected: expectedFor(feature, this.policy),
              got: preview(got),
              ...allowedOf(feature),
            });
          } else {
            out.push({ where: path, problem: 'not an allowed value', got: preview(got), allowed: (e.params as { allowedValues: (string | null)[] }).allowedValues });
          }
          break;
        }
        case 'type': {
          if (enumPaths.has(path)) break;
          if (feature?.kind === 'categorical') {
            out.push({ where: path, problem: 'wrong type', expected: expectedFor(feature, this.policy), got: preview(e.data), ...allowedOf(feature) });
            break;
          }
          const expected = feature?.kind === 'numeric' ? NUMERIC_EXPECTED : humanType((e.params as { type: string | string[] }).type);
          out.push({ where: path, problem: 'wrong type', expected, got: preview(e.data) });
          break;
        }
        case 'minItems':
          out.push({ where: path, problem: 'too few items', expected: `at least ${(e.params as { limit: number }).limit} item(s)`, got: preview(e.data) });
          break;
        case 'maxItems':
          out.push({ where: path, problem: 'too many items', expected: `at most ${(e.params as { limit: number }).limit} item(s)`, got: preview(e.data) });
          break;
        default:
          out.push({ where: path, problem: e.message ?? e.keyword, got: preview(e.data) });
      }
    }
    return out;
  }
}

/** Categories listed in an error detail at most: a feature may have thousands, and a bad batch has up to MAX_DETAILS details. */
const MAX_ALLOWED = 100;

function allowedOf(f: Extract<FeatureSpec, { kind: 'categorical' }>): { allowed?: (string | null)[] } {
  return f.categories.length <= MAX_ALLOWED ? { allowed: [...f.categories, null] } : {};
}

function expectedFor(f: FeatureSpec, policy: UnknownCategoryPolicy): string {
  if (f.kind === 'numeric') return NUMERIC_EXPECTED;
  const list = f.categories.length <= MAX_ALLOWED ? 'see allowed' : 'listed in GET /model';
  const cats = f.categories.length <= 20 ? f.categories.map((c) => JSON.stringify(c)).join(', ') : `${f.categories.length} categories (${list})`;
  return policy === 'reject' ? `one of ${cats}, or null when missing` : `a string, normally one of ${cats} (others are scored as missing), or null when missing`;
}

function humanType(t: string | string[]): string {
  const list = Array.isArray(t) ? t : [t];
  return list.map((x) => (x === 'object' ? 'an object' : x === 'array' ? 'an array' : `a ${x}`)).join(' or ');
}

function lastSegment(pointer: string): string | undefined {
  if (pointer === '') return undefined;
  const i = pointer.lastIndexOf('/');
  return pointer.slice(i + 1).replace(/~1/g, '/').replace(/~0/g, '~');
}

function escapePointer(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}

function summarize(details: readonly ErrorDetail[], omitted: number): string {
  const missing = details.filter((d) => d.problem === 'missing field').map((d) => d.field);
  const parts: string[] = [];
  if (missing.length > 0) parts.push(`missing field(s): ${[...new Set(missing)].join(', ')}`);
  const others = details.filter((d) => d.problem !== 'missing field');
  for (const d of others.slice(0, 3)) parts.push(`${d.problem} at ${d.where || '(body)'}${d.expected ? ` (expected ${d.expected})` : ''}`);
  if (others.length > 3) parts.push(`${others.length - 3} more`);
  if (omitted > 0) parts.push(`${omitted} further problem(s) not listed`);
  return `Invalid request: ${parts.join('; ')}`;
}
