/**
 * JSON Schemas (draft-07, checked with Ajv) of forest file formats v1 and v2: the
 * shape of the document. What a schema cannot say (array lengths agreeing with each
 * other, child indices forming a tree, probabilities summing to 1, the SHA-256, the
 * contents of v2's encoded arrays) is checked by parseForest in forest-file.ts and
 * decodeTrees in forest-codec.ts. docs/model-format.md is the human reference.
 *
 * The top level and the trees are closed (additionalProperties: false): every field
 * there affects scoring, so a reader must refuse what it does not understand. The
 * lineage and metrics objects are open.
 */
import Ajv, { type ValidateFunction } from 'ajv';
import { FOREST_FORMAT_ID, FOREST_FORMAT_V2, FOREST_FORMAT_VERSION, type ForestFileV1 } from './format';

const numberArray = { type: 'array', items: { type: 'number' } } as const;
const integerArray = { type: 'array', items: { type: 'integer' } } as const;
const nonEmptyString = { type: 'string', minLength: 1 } as const;
const hex64 = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;

const numericStats = {
  type: 'object',
  required: ['kind', 'count', 'missing', 'mean', 'std', 'min', 'max', 'edges', 'fractions'],
  properties: {
    kind: { const: 'numeric' },
    count: { type: 'integer', minimum: 0 },
    missing: { type: 'integer', minimum: 0 },
    mean: { type: 'number' },
    std: { type: 'number', minimum: 0 },
    min: { type: 'number' },
    max: { type: 'number' },
    edges: numberArray,
    fractions: { type: 'array', items: { type: 'number', minimum: 0, maximum: 1 } },
  },
} as const;

const categoricalStats = {
  type: 'object',
  required: ['kind', 'count', 'missing', 'frequencies'],
  properties: {
    kind: { const: 'categorical' },
    count: { type: 'integer', minimum: 0 },
    missing: { type: 'integer', minimum: 0 },
    frequencies: { type: 'object', additionalProperties: { type: 'number', minimum: 0, maximum: 1 } },
  },
} as const;

/** One tree (TreeV1): closed, every per-node array typed. */
export const TREE_SCHEMA_V1 = {
  type: 'object',
  additionalProperties: false,
  required: ['feature', 'threshold', 'left', 'right', 'defaultLeft', 'value', 'count', 'catBits'],
  properties: {
    feature: { type: 'array', minItems: 1, items: { type: 'integer', minimum: -1 } },
    threshold: numberArray,
    left: integerArray,
    right: integerArray,
    defaultLeft: { type: 'array', items: { enum: [0, 1] } },
    value: { type: 'array', items: { type: 'number', minimum: 0 } },
    count: { type: 'array', items: { type: 'number', minimum: 0 } },
    // 32-bit words, written signed (int32) or unsigned (uint32); readers use the low 32 bits.
    catBits: { type: 'array', items: { type: 'integer', minimum: -2147483648, maximum: 4294967295 } },
  },
} as const;

const TREE_KEYS: readonly string[] = TREE_SCHEMA_V1.required;

export const FOREST_SCHEMA_V1 = {
  $id: 'https://pricesense.dev/schemas/forest-v1.json',
  title: 'pricesense forest file, format v1',
  type: 'object',
  additionalProperties: false,
  required: [
    'format',
    'formatVersion',
    'classes',
    'features',
    'aggregation',
    'trees',
    'training',
    'featureStats',
    'metrics',
    'sha256',
  ],
  properties: {
    format: { const: FOREST_FORMAT_ID },
    formatVersion: { const: FOREST_FORMAT_VERSION },
    classes: { type: 'array', minItems: 2, uniqueItems: true, items: nonEmptyString },
    features: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['name', 'kind'],
        properties: {
          name: nonEmptyString,
          kind: { enum: ['numeric', 'categorical'] },
        },
        if: { properties: { kind: { const: 'categorical' } } },
        then: {
          additionalProperties: false,
          required: ['categories'],
          properties: {
            name: true,
            kind: true,
            categories: { type: 'array', uniqueItems: true, items: { type: 'string' } },
          },
        },
        else: { additionalProperties: false, properties: { name: true, kind: true } },
      },
    },
    aggregation: { enum: ['soft', 'hard'] },
    voteTieBreak: { enum: ['lowest-index', 'first-to-reach'] },
    trees: { type: 'array', minItems: 1, items: TREE_SCHEMA_V1 },
    training: {
      type: 'object',
      required: ['trainer', 'hyperparameters', 'seed', 'datasetManifestSha256', 'rows', 'createdAt'],
      properties: {
        trainer: nonEmptyString,
        hyperparameters: { type: 'object' },
        seed: { type: 'integer' },
        datasetManifestSha256: { anyOf: [hex64, { type: 'null' }] },
        rows: { type: 'integer', minimum: 0 },
        createdAt: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?(Z|[+-]\\d{2}:\\d{2})$' },
        codeVersion: { type: 'string' },
        featureDefinitions: { type: 'string', pattern: '^sha256:[0-9a-f]{16}$' },
        treeRange: {
          type: 'object',
          additionalProperties: false,
          required: ['start', 'end', 'trees'],
          properties: { start: { type: 'integer', minimum: 0 }, end: { type: 'integer', minimum: 1 }, trees: { type: 'integer', minimum: 1 } },
        },
      },
    },
    featureStats: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        required: ['kind'],
        properties: { kind: { enum: ['numeric', 'categorical'] } },
        if: { properties: { kind: { const: 'numeric' } } },
        then: numericStats,
        else: categoricalStats,
      },
    },
    metrics: { type: 'object' },
    sha256: hex64,
  },
} as const;

const encodedArray = (dtypes: readonly string[]) =>
  ({
    type: 'object',
    additionalProperties: false,
    required: ['dtype', 'length', 'base64'],
    properties: { dtype: { enum: dtypes }, length: { type: 'integer', minimum: 0 }, base64: { type: 'string' } },
  }) as const;

/** Format v2's `trees` object (TreesV2 in forest-codec.ts): closed, like everything that affects scoring. */
export const TREES_SCHEMA_V2 = {
  type: 'object',
  additionalProperties: false,
  required: ['count', 'nodes', 'sizes', 'split', 'defaultLeft', 'splitIndex', 'thresholds', 'subsets', 'distributions'],
  properties: {
    count: { type: 'integer', minimum: 1 },
    nodes: { type: 'integer', minimum: 1 },
    sizes: encodedArray(['uint32']),
    split: encodedArray(['uint8', 'uint16']),
    defaultLeft: encodedArray(['bits']),
    splitIndex: encodedArray(['uint8', 'uint16', 'uint32']),
    thresholds: { type: 'array', items: numberArray },
    subsets: { type: 'array', items: { type: 'array', items: { type: 'integer', minimum: 0, maximum: 4294967295 } } },
    distributions: {
      type: 'object',
      required: ['kind'],
      properties: { kind: { enum: ['counts', 'values'] } },
      if: { properties: { kind: { const: 'counts' } } },
      then: { additionalProperties: false, required: ['kind', 'leafCounts'], properties: { kind: true, leafCounts: encodedArray(['varuint']) } },
      else: { additionalProperties: false, required: ['kind', 'value', 'count'], properties: { kind: true, value: encodedArray(['float64']), count: encodedArray(['float64']) } },
    },
  },
} as const;

export const FOREST_SCHEMA_V2 = {
  ...FOREST_SCHEMA_V1,
  $id: 'https://pricesense.dev/schemas/forest-v2.json',
  title: 'pricesense forest file, format v2',
  properties: { ...FOREST_SCHEMA_V1.properties, formatVersion: { const: FOREST_FORMAT_V2 }, trees: TREES_SCHEMA_V2 },
} as const;

let ajv: Ajv | undefined;
const compiled = new Map<object, ValidateFunction>();

/**
 * Each validator is compiled on first use, alone: compiling is most of Ajv's cost, and
 * a process that loads only v2 files (a serving worker thread, fresh for every load)
 * needs only one. The schemas are ours, so no meta-schema is compiled to check them, and
 * the generated code is not optimized: it validates one document's header once, and
 * compiling was ~150 ms CPU of a production load (~85 ms this way).
 */
function validator<T = unknown>(schema: object): ValidateFunction<T> {
  let v = compiled.get(schema);
  if (!v) {
    ajv ??= new Ajv({ allErrors: false, strict: true, allowUnionTypes: true, meta: false, validateSchema: false, code: { optimize: false } });
    v = ajv.compile(schema);
    compiled.set(schema, v);
  }
  return v as ValidateFunction<T>;
}

// The shell is the document schema with each tree only required to be an object:
// Ajv's per-element checks of arrays with millions of numbers dominate the load time
// of a large forest, so parseForest checks trees with treeLooksValid (one tight pass)
// and calls the tree schema only to word the error when that check fails.
const SHELL_SCHEMA_V1 = { ...FOREST_SCHEMA_V1, $id: `${FOREST_SCHEMA_V1.$id}#shell`, properties: { ...FOREST_SCHEMA_V1.properties, trees: { type: 'array', minItems: 1, items: { type: 'object' } } } };

/** The compiled validator of the whole v1 document. */
export function forestSchemaValidator(): ValidateFunction<ForestFileV1> {
  return validator<ForestFileV1>(FOREST_SCHEMA_V1);
}

/** The whole format v2 document (its encoded arrays are checked by decodeTrees). */
export function forestSchemaValidatorV2(): ValidateFunction {
  return validator(FOREST_SCHEMA_V2);
}

/** The v1 document schema minus the contents of each tree (each tree must be an object). */
export function forestShellValidator(): ValidateFunction<ForestFileV1> {
  return validator<ForestFileV1>(SHELL_SCHEMA_V1);
}

/** The schema of one tree: run it on a tree that treeLooksValid refused, to name the bad field. */
export function treeSchemaValidator(): ValidateFunction {
  return validator(TREE_SCHEMA_V1);
}

function isNumberArray(a: unknown, min: number): boolean {
  if (!Array.isArray(a)) return false;
  for (let i = 0; i < a.length; i++) {
    const v: unknown = a[i];
    // v - v is 0 for finite numbers only: Ajv's number type refuses ±Infinity (JSON's 1e999).
    if (typeof v !== 'number' || !(v >= min) || v - v !== 0) return false;
  }
  return true;
}

function isIntegerArray(a: unknown, min: number, max: number): boolean {
  if (!Array.isArray(a)) return false;
  for (let i = 0; i < a.length; i++) {
    const v: unknown = a[i];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) return false;
  }
  return true;
}

/**
 * Exactly what TREE_SCHEMA_V1 accepts, as one tight pass over the arrays (no error
 * detail: on false, run treeSchemaValidator on the tree for the message). Like Ajv's
 * `number` and `integer` types, it refuses NaN and ±Infinity.
 */
export function treeLooksValid(tree: unknown): boolean {
  if (typeof tree !== 'object' || tree === null || Array.isArray(tree)) return false;
  const t = tree as Record<string, unknown>;
  let keys = 0;
  for (const k in t) {
    if (!Object.prototype.hasOwnProperty.call(t, k)) continue;
    if (!TREE_KEYS.includes(k)) return false;
    keys++;
  }
  if (keys !== TREE_KEYS.length) return false;
  const feature = t.feature;
  if (!Array.isArray(feature) || feature.length < 1) return false;
  return (
    isIntegerArray(feature, -1, Infinity) &&
    isNumberArray(t.threshold, -Infinity) &&
    isIntegerArray(t.left, -Infinity, Infinity) &&
    isIntegerArray(t.right, -Infinity, Infinity) &&
    isIntegerArray(t.defaultLeft, 0, 1) &&
    isNumberArray(t.value, 0) &&
    isNumberArray(t.count, 0) &&
    isIntegerArray(t.catBits, -2147483648, 4294967295)
  );
}
