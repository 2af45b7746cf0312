/**
 * The contract between the SageMaker pipeline definition (infra/sagemaker-pipeline-definition.ts,
 * which names channels, inputs, outputs and hyperparameters) and the jobs container that reads
 * them (model/sagemaker/, `pricesense sagemaker`). docs/sagemaker.md describes the jobs.
 * Dependency-free: infra may import it.
 */

/** The container root SageMaker mounts; the jobs take another root (SM_ROOT) in tests. */
export const SM_ROOT = '/opt/ml';
/** Processing inputs and outputs are mounted at <PROCESSING_ROOT>/input/<name> and <PROCESSING_ROOT>/output/<name>. */
export const PROCESSING_ROOT = `${SM_ROOT}/processing`;

/** The training job's input channel (under input/data/). */
export const TRAIN_CHANNEL = 'gold';
/** Processing inputs and outputs, by step. */
export const PROCESSING_INPUTS = { etl: { raw: 'raw' }, evaluate: { model: 'model', gold: 'gold', champion: 'champion' } } as const;
export const PROCESSING_OUTPUTS = { etl: { gold: 'gold' }, evaluate: { evaluation: 'evaluation', model: 'model' } } as const;

/** hyperparameters.json keys the train job accepts (every value a string, as SageMaker passes them). */
export const HYPERPARAMETERS = ['trees', 'max_depth', 'min_leaf', 'seed', 'max_features', 'class_weight', 'threads'] as const;
export type HyperparameterName = (typeof HYPERPARAMETERS)[number];

/** The Evaluate step's report (its property file) and merged forest (the registered ModelDataUrl). */
export const EVALUATION_FILE = 'evaluation.json';
export const MERGED_MODEL_FILE = 'model.tar.gz';

/**
 * Lines the train entrypoint prints, one per metric: `metric validation:accuracy=0.8731`.
 * SageMaker scans the job's log with regexes built from these names.
 */
export const TRAINING_METRICS = ['validation:accuracy', 'validation:macro_f1'] as const;
