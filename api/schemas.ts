/**
 * JSON Schemas generated from a forest's feature spec. The same objects are compiled
 * by ajv to validate requests and embedded in /openapi.json, so the documentation
 * cannot drift from what the server accepts.
 */
import { REQUIRED_LINE_COLUMNS } from '../etl/basket-features';
import { FEATURE_DEFINITIONS_VERSION } from '../etl/feature-definitions';
import { ENUM_DOMAINS, expectedOf, nullableColumn, RAW_TYPES } from '../etl/raw-line';
import { RAW_COLUMNS } from '../etl/schema';
import type { FeatureSpec } from '../model/format';
import type { UnknownCategoryPolicy } from './config';

export type JsonSchema = Record<string, unknown>;

export const NUMERIC_EXPECTED = 'a number, or null when missing';

/** Categories listed as examples in the documents (a feature may have thousands). */
const MAX_EXAMPLES = 50;

/**
 * With policy "missing" (the default) a categorical feature takes any string: one the
 * model was not trained on is scored as missing and reported (api/prediction.ts). With
 * "reject" only the training categories pass.
 */
export function featureSchema(feature: FeatureSpec, policy: UnknownCategoryPolicy = 'missing'): JsonSchema {
  if (feature.kind === 'numeric') {
    return { type: ['number', 'null'], description: `${feature.name}: numeric; null when missing` };
  }
  if (policy === 'reject') {
    return {
      type: ['string', 'null'],
      enum: [...feature.categories, null],
      description: `${feature.name}: one of the categories seen in training; null when missing`,
    };
  }
  return {
    type: ['string', 'null'],
    examples: feature.categories.slice(0, MAX_EXAMPLES),
    description:
      `${feature.name}: one of the ${feature.categories.length} categories seen in training; null when missing. ` +
      'Any other string is scored as missing and named in the response\'s unknownCategories.',
  };
}

/** One basket: every feature present (null allowed for missing), nothing else. */
export function instanceSchema(features: readonly FeatureSpec[], policy: UnknownCategoryPolicy = 'missing'): JsonSchema {
  const properties: Record<string, JsonSchema> = {};
  for (const f of features) properties[f.name] = featureSchema(f, policy);
  return {
    type: 'object',
    properties,
    required: features.map((f) => f.name),
    additionalProperties: false,
  };
}

/** The batch envelope. maxItems is checked by hand before ajv (cheaper, clearer error). */
export function batchSchema(features: readonly FeatureSpec[], batchLimit: number, policy: UnknownCategoryPolicy = 'missing'): JsonSchema {
  return {
    type: 'object',
    properties: {
      instances: { type: 'array', minItems: 1, maxItems: batchLimit, items: instanceSchema(features, policy) },
    },
    required: ['instances'],
    additionalProperties: false,
  };
}

/**
 * A transaction line in the raw dunnhumby schema (documentation: the lines are checked by
 * the ETL's own rules, etl/raw-line.ts, which these schemas describe). Code columns list
 * their domain; numbers may come as JSON numbers or as the text a CSV holds.
 */
export function rawLineSchema(): JsonSchema {
  const properties: Record<string, JsonSchema> = {};
  for (const c of RAW_COLUMNS) {
    const domain = ENUM_DOMAINS[RAW_TYPES[c]];
    const blank = nullableColumn(c) ? '; blank or null when missing' : '';
    properties[c] = domain && domain.length <= 40
      ? { type: ['string', 'number', 'null'], enum: [...new Set<string | number>([...domain.filter((v) => v !== ''), ...(c === 'SHOP_HOUR' || c === 'SHOP_WEEKDAY' ? domain.map(Number) : [])]), null], description: `${c}: ${expectedOf(c)}${blank}` }
      : { type: ['string', 'number', 'null'], description: `${c}: ${RAW_TYPES[c] === 'VARCHAR' ? 'a code' : expectedOf(c)}${blank}` };
  }
  return {
    type: 'object',
    properties,
    description:
      `A transaction line, dunnhumby schema. Required on every line or once beside "lines": ${REQUIRED_LINE_COLUMNS.join(', ')}. ` +
      'Other fields may be left out and are checked when given; fields outside the schema are ignored (as the ETL ignores extra CSV columns).',
  };
}

/** A basket as its raw lines, with basket-level fields optionally given once beside them. */
export function lineBasketSchema(maxLines: number): JsonSchema {
  const line = rawLineSchema();
  return {
    type: 'object',
    properties: { lines: { type: 'array', minItems: 1, maxItems: maxLines, items: { $ref: '#/components/schemas/RawLine' } }, ...(line.properties as Record<string, JsonSchema>) },
    required: ['lines'],
    description:
      `A basket as its transaction lines: the server computes the gold features from them with feature definitions ${FEATURE_DEFINITIONS_VERSION} ` +
      '(the ETL\'s own), for a model trained with that version (otherwise 409 feature_definitions_mismatch). A field beside "lines" applies to every line that leaves it out.',
  };
}

export function exampleInstance(features: readonly FeatureSpec[]): Record<string, string | number | null> {
  const out: Record<string, string | number | null> = {};
  for (const f of features) out[f.name] = f.kind === 'numeric' ? 1 : (f.categories[0] ?? null);
  return out;
}

function classMap(classes: readonly string[], description: string): JsonSchema {
  const properties: Record<string, JsonSchema> = {};
  for (const c of classes) properties[c] = { type: 'number' };
  return { type: 'object', properties, required: [...classes], additionalProperties: false, description };
}

export const MODEL_REF_SCHEMA: JsonSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    version: { type: 'integer' },
    sha256: { type: 'string' },
    role: { type: 'string', enum: ['champion', 'canary'], description: 'which served version answered' },
  },
  required: ['name', 'version', 'sha256', 'role'],
};

export function predictionSchema(features: readonly FeatureSpec[], classes: readonly string[]): JsonSchema {
  const contributions: Record<string, JsonSchema> = {};
  for (const f of features) contributions[f.name] = classMap(classes, `${f.name}'s contribution per class`);
  return {
    type: 'object',
    properties: {
      label: { type: 'string', enum: [...classes] },
      probabilities: classMap(classes, 'class probabilities, summing to 1'),
      unknownCategories: {
        type: 'array',
        items: { type: 'string' },
        description: 'only when present: categorical features whose value the model was not trained on; they were scored as missing',
      },
      explanation: {
        type: 'object',
        description:
          'only with ?explain=true (label and probabilities stay those of the plain prediction): bias + sum of contributions (Saabas path attribution) = ' +
          'the probabilities for a soft-vote forest (explains: "probabilities"), the mean leaf distribution for a hard-vote one (explains: "mean-leaf-distribution")',
        properties: {
          bias: classMap(classes, 'class distribution at the roots (training prior)'),
          contributions: { type: 'object', properties: contributions },
          explains: { type: 'string', enum: ['probabilities', 'mean-leaf-distribution'] },
        },
      },
    },
    required: ['label', 'probabilities'],
  };
}

export function errorSchema(): JsonSchema {
  return {
    type: 'object',
    properties: {
      error: {
        type: 'object',
        properties: {
          code: { type: 'string', examples: ['validation_failed', 'invalid_json', 'body_too_large', 'batch_too_large'] },
          message: { type: 'string' },
          details: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                where: { type: 'string', description: 'JSON pointer into the request body' },
                problem: { type: 'string' },
                expected: { type: 'string' },
                got: {},
                allowed: { type: 'array', items: { type: ['string', 'null'] } },
                field: { type: 'string' },
              },
              required: ['where', 'problem'],
            },
          },
          omittedDetails: { type: 'integer' },
          requestId: { type: 'string' },
        },
        required: ['code', 'message'],
      },
    },
    required: ['error'],
  };
}

// Open Inference Protocol (KServe v2) REST shapes. Tensor data is flat, row-major.
export const OIP_NUMERIC_DATATYPES = ['FP64', 'FP32', 'FP16', 'INT64', 'INT32', 'INT16', 'INT8', 'UINT64', 'UINT32', 'UINT16', 'UINT8'];

export function oipInferRequestSchema(): JsonSchema {
  return {
    type: 'object',
    properties: {
      id: { type: 'string' },
      parameters: { type: 'object' },
      inputs: {
        type: 'array',
        minItems: 1,
        items: {
          type: 'object',
          properties: {
            name: { type: 'string' },
            shape: { type: 'array', items: { type: 'integer', minimum: 0 }, minItems: 1, maxItems: 2 },
            datatype: { type: 'string', enum: ['BYTES', ...OIP_NUMERIC_DATATYPES] },
            parameters: { type: 'object' },
            data: { type: 'array' },
          },
          required: ['name', 'shape', 'datatype', 'data'],
        },
      },
      outputs: {
        type: 'array',
        items: { type: 'object', properties: { name: { type: 'string' }, parameters: { type: 'object' } }, required: ['name'] },
      },
    },
    required: ['inputs'],
  };
}

export function oipInferResponseSchema(): JsonSchema {
  return {
    type: 'object',
    properties: {
      model_name: { type: 'string' },
      model_version: { type: 'string' },
      id: { type: 'string' },
      parameters: { type: 'object' },
      outputs: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            name: { type: 'string', enum: ['label', 'probabilities'] },
            shape: { type: 'array', items: { type: 'integer' } },
            datatype: { type: 'string', enum: ['BYTES', 'FP64'] },
            data: { type: 'array' },
          },
          required: ['name', 'shape', 'datatype', 'data'],
        },
      },
    },
    required: ['model_name', 'outputs'],
  };
}

export const OIP_ERROR_SCHEMA: JsonSchema = {
  type: 'object',
  properties: { error: { type: 'string' }, details: { type: 'array', items: { type: 'object' } } },
  required: ['error'],
};
