/**
 * The OpenAPI 3.1 document, generated from the served model's schemas (the same
 * objects ajv compiles), so the docs always describe what this server validates.
 */
import type { FeatureSpec } from '../model/format';
import type { UnknownCategoryPolicy } from './config';
import {
  batchSchema,
  errorSchema,
  exampleInstance,
  instanceSchema,
  lineBasketSchema,
  rawLineSchema,
  MODEL_REF_SCHEMA,
  OIP_ERROR_SCHEMA,
  oipInferRequestSchema,
  oipInferResponseSchema,
  predictionSchema,
  type JsonSchema,
} from './schemas';
import { MAX_LINES_PER_BASKET } from './raw-lines';

export interface OpenApiModel {
  readonly name: string;
  readonly version: number | undefined;
  readonly features: readonly FeatureSpec[];
  readonly classes: readonly string[];
}

export interface OpenApiOptions {
  readonly batchLimit: number;
  readonly serviceVersion: string;
  readonly unknownCategories: UnknownCategoryPolicy;
}

/** A two-line basket with its basket-level fields given once (the docs' example of the raw-line form). */
const EXAMPLE_LINES = {
  SHOP_HOUR: 14,
  SHOP_WEEKDAY: 3,
  BASKET_SIZE: 'M',
  BASKET_TYPE: 'Top Up',
  BASKET_DOMINANT_MISSION: 'Fresh',
  STORE_FORMAT: 'LS',
  STORE_REGION: 'E02',
  CUST_LIFESTAGE: 'YF',
  CUST_PRICE_SENSITIVITY: 'MM',
  lines: [
    { PROD_CODE: 'PRD0900001', PROD_CODE_10: 'CL00001', PROD_CODE_20: 'DEP00001', QUANTITY: 2, SPEND: 3.1 },
    { PROD_CODE: 'PRD0900002', PROD_CODE_10: 'CL00002', PROD_CODE_20: 'DEP00001', QUANTITY: 1, SPEND: '0.85' },
  ],
};

const json = (schema: JsonSchema, example?: unknown) => ({ 'application/json': example === undefined ? { schema } : { schema, example } });

export function buildOpenApi(model: OpenApiModel, options: OpenApiOptions): Record<string, unknown> {
  const { features, classes } = model;
  const { batchLimit, serviceVersion, unknownCategories } = options;
  const errorResponse = (description: string) => ({ description, content: json({ $ref: '#/components/schemas/Error' }) });
  const oipError = (description: string) => ({ description, content: json({ $ref: '#/components/schemas/OipError' }) });
  // Every 503 says when to come back: clients and load balancers honour Retry-After.
  const retryLater = { 'Retry-After': { $ref: '#/components/headers/RetryAfter' } };
  const unavailable = (description: string) => ({ ...errorResponse(description), headers: retryLater });
  const oipUnavailable = (description: string) => ({ ...oipError(description), headers: retryLater });
  const example = exampleInstance(features);
  const readyBody = { type: 'object', properties: { ready: { type: 'boolean' }, reason: { type: 'string' } }, required: ['ready'] };
  const nameParam = { name: 'name', in: 'path', required: true, schema: { type: 'string', enum: [model.name] } };
  const versionParam = { name: 'version', in: 'path', required: true, schema: { type: 'string' } };
  const infer = {
    summary: 'OIP inference: one tensor per feature (BYTES for categorical, FP64/FP32/INT* for numeric), shape [n]',
    requestBody: {
      required: true,
      content: json(
        { $ref: '#/components/schemas/OipInferRequest' },
        {
          inputs: features.map((f) => ({ name: f.name, shape: [1], datatype: f.kind === 'numeric' ? 'FP64' : 'BYTES', data: [example[f.name]] })),
        },
      ),
    },
    responses: {
      200: { description: 'label (BYTES [n]) and probabilities (FP64 [n, K]) tensors', content: json({ $ref: '#/components/schemas/OipInferResponse' }) },
      400: oipError('Malformed request'),
      404: oipError('Unknown model or version'),
      413: oipError('Batch or body too large'),
      503: oipUnavailable('No model loaded, or overloaded'),
    },
  };
  const predictResponse = {
    oneOf: [
      {
        allOf: [{ $ref: '#/components/schemas/Prediction' }, { type: 'object', properties: { model: { $ref: '#/components/schemas/ModelRef' } } }],
      },
      {
        type: 'object',
        properties: { predictions: { type: 'array', items: { $ref: '#/components/schemas/Prediction' } }, model: { $ref: '#/components/schemas/ModelRef' } },
        required: ['predictions', 'model'],
      },
    ],
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'pricesense inference API',
      version: serviceVersion,
      description:
        `Scores retail baskets for price sensitivity (${classes.join(' / ')}) with model '${model.name}'` +
        (model.version === undefined ? ' (no model loaded yet: schemas are empty until one is).' : ` version ${model.version}.`) +
        ' Request schemas are generated from the served model\'s feature spec and are the ones the server validates with.',
    },
    paths: {
      '/predict': {
        post: {
          summary: 'Predict one basket (its features, or its raw lines {"lines": [...]}), or a batch {"instances": [...]}',
          parameters: [
            { name: 'explain', in: 'query', required: false, schema: { type: 'boolean' }, description: 'add per-feature contributions' },
            { name: 'features', in: 'query', required: false, schema: { type: 'boolean' }, description: 'add the feature row scored (for raw lines: the features computed from them)' },
          ],
          requestBody: {
            required: true,
            content: {
              'application/json': {
                schema: {
                  oneOf: [
                    { $ref: '#/components/schemas/Instance' },
                    { $ref: '#/components/schemas/LineBasket' },
                    { $ref: '#/components/schemas/Batch' },
                    {
                      type: 'object',
                      description: 'a batch mixing feature rows and raw-line baskets',
                      properties: { instances: { type: 'array', minItems: 1, maxItems: batchLimit, items: { anyOf: [{ $ref: '#/components/schemas/Instance' }, { $ref: '#/components/schemas/LineBasket' }] } } },
                      required: ['instances'],
                    },
                  ],
                },
                examples: { single: { value: example }, batch: { value: { instances: [example, example] } }, lines: { value: EXAMPLE_LINES } },
              },
            },
          },
          responses: {
            200: { description: 'Prediction(s) and the model version that answered (also in X-Model-Version)', content: json(predictResponse) },
            400: errorResponse('Invalid JSON'),
            413: errorResponse('Body or batch too large'),
            415: errorResponse('Not JSON'),
            409: errorResponse('Raw lines for a model trained with other feature definitions (code "feature_definitions_mismatch")'),
            422: errorResponse('Valid JSON that does not match the feature spec, or raw lines the ETL would reject: every problem listed with where (line index and field) and what was expected'),
            503: unavailable('No approved model loaded (code "not_ready", Retry-After: 5), or overloaded (code "overloaded", Retry-After: 1)'),
          },
        },
      },
      '/health': { get: { summary: 'Liveness: the process is up', responses: { 200: { description: 'alive', content: json({ type: 'object' }) } } } },
      '/ready': {
        get: {
          summary: 'Readiness: an approved model is loaded (details: versions, last poll, last load failure)',
          responses: { 200: { description: 'ready', content: json(readyBody) }, 503: { description: 'not ready, with the reason', headers: retryLater, content: json(readyBody) } },
        },
      },
      '/model': { get: { summary: 'Served version(s), feature spec, evaluation metrics, lineage, load time', responses: { 200: { description: 'model', content: json({ type: 'object' }) }, 503: unavailable('No model loaded') } } },
      '/metrics': { get: { summary: 'Prometheus metrics', responses: { 200: { description: 'text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } } } } },
      '/openapi.json': { get: { summary: 'This document', responses: { 200: { description: 'OpenAPI 3.1', content: json({ type: 'object' }) } } } },
      '/v2': { get: { summary: 'OIP server metadata', responses: { 200: { description: 'name, version, extensions', content: json({ type: 'object' }) } } } },
      '/v2/health/live': { get: { summary: 'OIP server live', responses: { 200: { description: 'live', content: json({ type: 'object', properties: { live: { type: 'boolean' } } }) } } } },
      '/v2/health/ready': {
        get: { summary: 'OIP server ready', responses: { 200: { description: 'ready', content: json({ type: 'object', properties: { ready: { type: 'boolean' } } }) }, 400: { description: 'not ready' } } },
      },
      '/v2/models/{name}': { get: { summary: 'OIP model metadata', parameters: [nameParam], responses: { 200: { description: 'metadata', content: json({ type: 'object' }) }, 404: oipError('Unknown model') } } },
      '/v2/models/{name}/ready': { get: { summary: 'OIP model ready', parameters: [nameParam], responses: { 200: { description: 'ready' }, 400: { description: 'not ready' }, 404: oipError('Unknown model') } } },
      '/v2/models/{name}/infer': { post: { ...infer, parameters: [nameParam] } },
      '/v2/models/{name}/versions/{version}': { get: { summary: 'OIP model version metadata', parameters: [nameParam, versionParam], responses: { 200: { description: 'metadata' }, 404: oipError('Version not served') } } },
      '/v2/models/{name}/versions/{version}/ready': { get: { summary: 'OIP model version ready', parameters: [nameParam, versionParam], responses: { 200: { description: 'ready' }, 400: { description: 'not ready' }, 404: oipError('Version not served') } } },
      '/v2/models/{name}/versions/{version}/infer': { post: { ...infer, summary: 'OIP inference on a specific served version (champion or challenger)', parameters: [nameParam, versionParam] } },
    },
    components: {
      schemas: {
        Instance: instanceSchema(features, unknownCategories),
        Batch: batchSchema(features, batchLimit, unknownCategories),
        LineBasket: lineBasketSchema(MAX_LINES_PER_BASKET),
        RawLine: rawLineSchema(),
        Prediction: predictionSchema(features, classes),
        ModelRef: MODEL_REF_SCHEMA,
        Error: errorSchema(),
        OipInferRequest: oipInferRequestSchema(),
        OipInferResponse: oipInferResponseSchema(),
        OipError: OIP_ERROR_SCHEMA,
      },
      headers: {
        RetryAfter: { description: 'seconds to wait before retrying', required: true, schema: { type: 'integer', minimum: 1 } },
      },
    },
  };
}
