/**
 * The metadata_props an exported model carries, and the names of its graph values.
 * The input encoding is written in the same form as an import feature spec
 * (`features`, `categorical_codes`, `missing_encoded_as`), so an exported file is
 * self-describing for other runtimes and re-imports without --features.
 * docs/model-format.md ("ONNX") lists every key.
 */
export const ONNX_ML_DOMAIN = 'ai.onnx.ml';
export const INPUT_NAME = 'X';
export const LABEL_OUTPUT = 'label';
export const PROBABILITIES_OUTPUT = 'probabilities';
export const PRODUCER_NAME = 'pricesense';

export const META = {
  /** JSON array of feature names: the input's column order. */
  features: 'features',
  /** JSON object: categorical feature → its category list (code = index). */
  categoricalCodes: 'categorical_codes',
  /** What a missing or unknown value must be encoded as: "NaN". */
  missingEncodedAs: 'missing_encoded_as',
  /** JSON array of class labels in probability-column order. */
  classes: 'classes',
  /** Human-readable summary of the input contract. */
  inputEncoding: 'input_encoding',
  forestSha256: 'pricesense.forest_sha256',
  formatVersion: 'pricesense.forest_format_version',
  aggregation: 'pricesense.aggregation',
  /** JSON: the forest's training block (trainer, seed, dataset manifest, rows, createdAt, codeVersion, hyperparameters). */
  lineage: 'pricesense.lineage',
  /** JSON: registry, version, status and artifact digest when exported from the registry. */
  registry: 'pricesense.registry',
  /** Two-class forests: the never-weighted third class the classifier node declares, and why. */
  paddingClass: 'pricesense.padding_class',
  /** How labels break ties, when the export changed the forest's own rule. */
  labelTieBreak: 'pricesense.label_tie_break',
} as const;

export const INPUT_ENCODING_TEXT =
  'X is a double tensor [N, F], columns in the order of "features". Numeric features: the value as a double. ' +
  'Categorical features: the category\'s code, its index in "categorical_codes". Missing values and categories not in the list: NaN.';
