/**
 * JSON Schema (draft-07, checked with Ajv) of forest file format v1: the shape of
 * the document. What a schema cannot say (array lengths agreeing with each other,
 * child indices forming a tree, probabilities summing to 1, the SHA-256) is checked
 * by parseForest in forest-file.ts. docs/model-format.md is the human reference.
 *
 * The top level and the trees are closed (additionalProperties: false): every field
 * there affects scoring, so a reader must refuse what it does not understand. The
 * lineage and metrics objects are open.
 */
import Ajv, { type ValidateFunction } from 'ajv';
import { FOREST_FORMAT_ID, FOREST_FORMAT_VERSION, type ForestFileV1 } from './format';

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
    trees: {
      type: 'array',
      minItems: 1,
      items: {
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
      },
    },
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

let compiled: ValidateFunction<ForestFileV1> | undefined;

/** The compiled validator (compiled once, on first use). */
export function forestSchemaValidator(): ValidateFunction<ForestFileV1> {
  if (!compiled) {
    const ajv = new Ajv({ allErrors: false, strict: true, allowUnionTypes: true });
    compiled = ajv.compile<ForestFileV1>(FOREST_SCHEMA_V1);
  }
  return compiled;
}
