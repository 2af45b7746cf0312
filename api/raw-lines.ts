/**
 * Raw-line requests: a basket sent as its transaction lines in the dunnhumby line schema
 * ({"lines": [...]}, basket-level fields on every line or once beside `lines`) becomes the
 * feature row the model scores, computed by the ETL's own feature definitions
 * (etl/basket-features.ts) — so a model sees at serving exactly what it saw in training.
 * Lines are checked with the ETL's rules and reject messages; every problem names its
 * line index and field.
 */
import { basketFeatures, definitionsMismatch, type FeatureRow, type LineProblem, type RawLineObject } from '../etl/basket-features';
import { FEATURE_DEFINITIONS_VERSION } from '../etl/feature-definitions';
import { MAX_LINES_PER_BASKET } from '../etl/raw-line';
import { ApiError, jsonType, preview, type ErrorDetail } from './errors';

export { MAX_LINES_PER_BASKET };

/** Whether a request object is a raw-line basket. */
export function isLineBasket(body: unknown): body is { lines: unknown } {
  return body !== null && typeof body === 'object' && !Array.isArray(body) && Object.prototype.hasOwnProperty.call(body, 'lines');
}

/**
 * Refuses raw lines for a model whose features were not computed by this server's
 * definitions (trained before definitions were versioned, on other definitions, or imported).
 */
export function checkDefinitions(modelVersion: string | undefined, model: string): void {
  const has = definitionsMismatch(modelVersion);
  if (has === undefined) return;
  throw new ApiError(
    409,
    'feature_definitions_mismatch',
    `Cannot compute features from raw lines for model ${model}: it ${has}, and this server computes them with version ${FEATURE_DEFINITIONS_VERSION}. ` +
      'Send the features themselves, or serve a model trained on gold built by this version.',
    [{ where: '/lines', problem: 'feature definitions mismatch', expected: `a model trained with feature definitions ${FEATURE_DEFINITIONS_VERSION}`, got: modelVersion ?? null }],
  );
}

/**
 * The feature row of one raw-line basket at JSON pointer `at` ('' for the body, '/instances/3'
 * in a batch), or the problems found, appended to `details` (pointers into the request).
 */
export function lineBasketRow(basket: { lines: unknown }, at: string, details: ErrorDetail[]): FeatureRow | undefined {
  const lines = basket.lines;
  if (!Array.isArray(lines) || lines.length === 0 || lines.length > MAX_LINES_PER_BASKET) {
    const expected = `an array of 1 to ${MAX_LINES_PER_BASKET} transaction lines, each an object of dunnhumby fields {"SPEND": 3.1, "QUANTITY": 2, ...}`;
    details.push({ where: `${at}/lines`, problem: Array.isArray(lines) ? (lines.length ? 'too many lines' : 'no lines') : 'wrong type', expected, got: Array.isArray(lines) ? lines.length : jsonType(lines) });
    return undefined;
  }
  let shapeOk = true;
  for (let i = 0; i < lines.length; i++) {
    const l: unknown = lines[i];
    if (l === null || typeof l !== 'object' || Array.isArray(l)) {
      details.push({ where: `${at}/lines/${i}`, problem: 'wrong type', expected: 'a transaction line: an object of dunnhumby fields', got: jsonType(l) });
      shapeOk = false;
    }
  }
  if (!shapeOk) return undefined;
  const r = basketFeatures(lines as RawLineObject[], basket as RawLineObject);
  if (r.row) return r.row;
  for (const p of r.problems) details.push(problemDetail(p, at));
  return undefined;
}

/** The 422 for raw-line problems: the message names the first few by line and field (the ETL's reject reasons). */
export function lineProblemsError(details: readonly ErrorDetail[]): ApiError {
  const shown = details.slice(0, MAX_LINE_DETAILS);
  const first = shown.slice(0, 3).map((d) => `${d.where}: ${d.problem}`);
  const more = details.length > 3 ? `; ${details.length - 3} more` : '';
  return new ApiError(422, 'validation_failed', `Invalid raw lines: ${first.join('; ')}${more}`, shown, details.length - shown.length);
}

const MAX_LINE_DETAILS = 50;

function problemDetail(p: LineProblem, at: string): ErrorDetail {
  return {
    where: p.fromBasket ? `${at}/${p.field}` : `${at}/lines/${p.line}/${p.field}`,
    problem: p.reason,
    field: p.field,
    expected: p.expected,
    ...(p.value === null ? {} : { got: preview(p.value) }),
  };
}
