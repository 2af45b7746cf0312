/**
 * The SageMaker Pipelines definition (JSON schema version 2020-12-01) of the retraining
 * loop, generated from code so its structure is unit-tested:
 *
 *   Etl (Processing) → Train (Training) → Evaluate (Processing, evaluation.json property file)
 *     → CheckGates (Condition on gates.passed)
 *         if:   RegisterModel (PendingManualApproval in the stack's model package group)
 *         else: GatesFailed (Fail, naming the failed gates)
 *
 * A pure function: no Pulumi, no AWS. infra/sagemaker-pipeline.ts resolves the deploy-time
 * values (bucket, role, group) and passes plain strings.
 *
 * Container contracts (one "jobs" image, ENTRYPOINT `node /app/bin/pricesense.js sagemaker`):
 * - ETL: `pricesense sagemaker etl` reads /opt/ml/processing/input/raw (its shard of the
 *   weekly raw files, ShardedByS3Key), writes uniquely named part files of the gold table
 *   to /opt/ml/processing/output/gold.
 * - Train: SageMaker runs `<image> train` → `pricesense sagemaker train`; channel `gold`,
 *   hyperparameters trees/max_depth/min_leaf/seed; every host writes
 *   /opt/ml/model/forest-part-<host>.json and prints `metric validation:<name>=<value>`.
 * - Evaluate: `pricesense sagemaker evaluate` merges the partial forests from
 *   /opt/ml/processing/input/model/model.tar.gz, evaluates on the gold test split, applies
 *   the gates and writes evaluation/evaluation.json and model/model.tar.gz.
 */

import { EVALUATION_FILE, MERGED_MODEL_FILE, PROCESSING_INPUTS, PROCESSING_OUTPUTS, PROCESSING_ROOT, TRAIN_CHANNEL, TRAINING_METRICS, type HyperparameterName } from '../contracts/sagemaker-job';

export { EVALUATION_FILE, MERGED_MODEL_FILE, PROCESSING_ROOT, TRAINING_METRICS };

export const PIPELINE_SCHEMA_VERSION = '2020-12-01';

/** Step names; also the `Steps.<name>` in property references. */
export const STEP = {
  etl: 'Etl',
  train: 'Train',
  evaluate: 'Evaluate',
  checkGates: 'CheckGates',
  register: 'RegisterModel',
  fail: 'GatesFailed',
} as const;

export const JOBS_ENTRYPOINT = ['node', '/app/bin/pricesense.js', 'sagemaker'] as const;
export const EVALUATION_PROPERTY_FILE = 'EvaluationReport';

/**
 * Where the registration metadata comes from in evaluation.json. The registry's SageMaker
 * backend (model/registry/sagemaker.ts) only accepts packages carrying
 * `pricesense:artifactSha256` (the SHA-256 of the bytes at ModelDataUrl), and reads
 * `pricesense:forestSha256` / `pricesense:formatVersion`; the Evaluate step knows them.
 */
export const REGISTRY_METADATA_PATHS = {
  'pricesense:artifactSha256': 'registry.artifactSha256',
  'pricesense:forestSha256': 'registry.forestSha256',
  'pricesense:formatVersion': 'registry.formatVersion',
} as const;

export interface ProcessingSettings {
  readonly instanceType: string;
  readonly instanceCount: number;
}

export interface PipelineDefinitionParams {
  /** The lake bucket name (not a URI). Inputs come from raw/, outputs go to gold/pipeline/ and artifacts/pipeline/. */
  readonly lakeBucket: string;
  /** The role the processing and training jobs run as. */
  readonly jobRoleArn: string;
  readonly modelPackageGroup: string;
  /** Default of the JobsImage parameter; without one, every execution must pass it. */
  readonly jobsImage?: string;
  /** Default of the ApiImage parameter (the image registered for inference). */
  readonly apiImage?: string;
  readonly etl: ProcessingSettings;
  readonly train: ProcessingSettings;
  readonly evaluateInstanceType: string;
  /** Volume per instance, every job. */
  readonly volumeSizeGiB: number;
  /** Upper bound of each job's run time. */
  readonly maxRuntimeSeconds: number;
  readonly hyperparameters: { readonly trees: number; readonly maxDepth: number; readonly minLeaf: number; readonly seed: number };
  /** Managed spot training: total wait (queueing + run) allowed; must be >= maxRuntimeSeconds. */
  readonly spotTraining?: { readonly maxWaitSeconds: number };
}

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

export interface PipelineParameter {
  readonly Name: string;
  readonly Type: 'String' | 'Integer' | 'Float' | 'Boolean';
  readonly DefaultValue?: string | number | boolean;
}

export interface PipelineStep {
  readonly Name: string;
  readonly Type: string;
  readonly Arguments: JsonObject;
  readonly DependsOn?: string[];
  readonly PropertyFiles?: { PropertyFileName: string; OutputName: string; FilePath: string }[];
}

export interface PipelineDefinition {
  readonly Version: string;
  readonly Metadata: JsonObject;
  readonly Parameters: PipelineParameter[];
  readonly Steps: PipelineStep[];
}

/** Pipeline parameters (overridable per execution with `pricesense pipeline start --param Name=Value`). */
export const PARAMETER = {
  jobsImage: 'JobsImage',
  apiImage: 'ApiImage',
  rawDataUri: 'RawDataUri',
  etlInstanceType: 'EtlInstanceType',
  etlInstanceCount: 'EtlInstanceCount',
  trainInstanceType: 'TrainInstanceType',
  trainInstanceCount: 'TrainInstanceCount',
  evaluateInstanceType: 'EvaluateInstanceType',
  trees: 'Trees',
  maxDepth: 'MaxDepth',
  minLeaf: 'MinLeaf',
  seed: 'Seed',
} as const;

// Expression helpers (the JSON forms the Pipelines service evaluates at run time).
const param = (name: string): JsonObject => ({ Get: `Parameters.${name}` });
const get = (path: string): JsonObject => ({ Get: path });
const executionId: JsonObject = { Get: 'Execution.PipelineExecutionId' };
const join = (on: string, values: Json[]): JsonObject => ({ 'Std:Join': { On: on, Values: values } });
/** A value as a string (how the SageMaker SDK's `.to_string()` renders a non-string expression). */
const asString = (value: Json): JsonObject => join('', [value]);
const jsonGet = (step: string, propertyFile: string, path: string): JsonObject => ({
  'Std:JsonGet': { PropertyFile: { Get: `Steps.${step}.PropertyFiles.${propertyFile}` }, Path: path },
});
const processingOutputUri = (step: string, output: string): JsonObject =>
  get(`Steps.${step}.ProcessingOutputConfig.Outputs['${output}'].S3Output.S3Uri`);

/** s3://<bucket>/<zone>/pipeline/<execution id>[/<sub>] — every execution writes under its own prefix. */
function executionPrefix(bucket: string, zone: 'gold' | 'artifacts' | 'tmp', sub?: string): JsonObject {
  return join('/', [`s3://${bucket}/${zone}/pipeline`, executionId, ...(sub ? [sub] : [])]);
}

function s3Input(name: string, uri: Json, localPath: string, distribution: 'FullyReplicated' | 'ShardedByS3Key'): JsonObject {
  return {
    InputName: name,
    AppManaged: false,
    S3Input: {
      S3Uri: uri,
      LocalPath: localPath,
      S3DataType: 'S3Prefix',
      S3InputMode: 'File',
      S3DataDistributionType: distribution,
      S3CompressionType: 'None',
    },
  };
}

function s3Output(name: string, localPath: string, uri: Json): JsonObject {
  return { OutputName: name, AppManaged: false, S3Output: { S3Uri: uri, LocalPath: localPath, S3UploadMode: 'EndOfJob' } };
}

function check(condition: boolean, message: string): void {
  if (!condition) throw new Error(`invalid SageMaker pipeline settings: ${message}`);
}

function validateParams(p: PipelineDefinitionParams): void {
  check(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(p.lakeBucket), `lakeBucket must be an S3 bucket name, got ${JSON.stringify(p.lakeBucket)}`);
  check(/^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/.test(p.jobRoleArn), `jobRoleArn must be an IAM role ARN, got ${JSON.stringify(p.jobRoleArn)}`);
  check(/^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/.test(p.modelPackageGroup), `modelPackageGroup must be a model package group name, got ${JSON.stringify(p.modelPackageGroup)}`);
  for (const [what, count] of [['etl.instanceCount', p.etl.instanceCount], ['train.instanceCount', p.train.instanceCount]] as const) {
    check(Number.isInteger(count) && count >= 1, `${what} must be an integer >= 1, got ${count}`);
  }
  check(p.hyperparameters.trees >= p.train.instanceCount, `hyperparameters.trees (${p.hyperparameters.trees}) must be at least train.instanceCount (${p.train.instanceCount}): every host trains a share of the trees`);
  if (p.spotTraining) {
    check(p.spotTraining.maxWaitSeconds >= p.maxRuntimeSeconds, `spotTraining.maxWaitSeconds (${p.spotTraining.maxWaitSeconds}) must be >= maxRuntimeSeconds (${p.maxRuntimeSeconds})`);
  }
}

function parameters(p: PipelineDefinitionParams): PipelineParameter[] {
  const str = (Name: string, DefaultValue?: string): PipelineParameter => (DefaultValue === undefined ? { Name, Type: 'String' } : { Name, Type: 'String', DefaultValue });
  const int = (Name: string, DefaultValue: number): PipelineParameter => ({ Name, Type: 'Integer', DefaultValue });
  const h = p.hyperparameters;
  return [
    str(PARAMETER.jobsImage, p.jobsImage),
    str(PARAMETER.apiImage, p.apiImage),
    // Trailing slash: raw/ only, never a sibling prefix such as raw-old/.
    str(PARAMETER.rawDataUri, `s3://${p.lakeBucket}/raw/`),
    str(PARAMETER.etlInstanceType, p.etl.instanceType),
    int(PARAMETER.etlInstanceCount, p.etl.instanceCount),
    str(PARAMETER.trainInstanceType, p.train.instanceType),
    int(PARAMETER.trainInstanceCount, p.train.instanceCount),
    str(PARAMETER.evaluateInstanceType, p.evaluateInstanceType),
    int(PARAMETER.trees, h.trees),
    int(PARAMETER.maxDepth, h.maxDepth),
    int(PARAMETER.minLeaf, h.minLeaf),
    int(PARAMETER.seed, h.seed),
  ];
}

/**
 * Every job runs with network isolation: the container gets no network at all (SageMaker
 * itself downloads the inputs and uploads the outputs and checkpoints with the job role),
 * so a compromised image or dependency cannot send the lake anywhere. The jobs only read
 * /opt/ml inputs and write /opt/ml outputs, which is all isolation leaves them.
 */
const NETWORK_ISOLATION = { EnableNetworkIsolation: true, EnableInterContainerTrafficEncryption: true } as const;

function etlStep(p: PipelineDefinitionParams): PipelineStep {
  return {
    Name: STEP.etl,
    Type: 'Processing',
    Arguments: {
      AppSpecification: { ImageUri: param(PARAMETER.jobsImage), ContainerEntrypoint: [...JOBS_ENTRYPOINT, 'etl'] },
      RoleArn: p.jobRoleArn,
      ProcessingResources: {
        ClusterConfig: { InstanceType: param(PARAMETER.etlInstanceType), InstanceCount: param(PARAMETER.etlInstanceCount), VolumeSizeInGB: p.volumeSizeGiB },
      },
      // Weekly raw files, a basket never spans files: each instance gets a disjoint set of
      // whole files, and the gold split is a hash of the basket, independent of sharding.
      ProcessingInputs: [s3Input(PROCESSING_INPUTS.etl.raw, param(PARAMETER.rawDataUri), `${PROCESSING_ROOT}/input/${PROCESSING_INPUTS.etl.raw}`, 'ShardedByS3Key')],
      ProcessingOutputConfig: {
        // Every instance uploads to the same prefix; the entrypoint names its part files uniquely.
        Outputs: [s3Output(PROCESSING_OUTPUTS.etl.gold, `${PROCESSING_ROOT}/output/${PROCESSING_OUTPUTS.etl.gold}`, executionPrefix(p.lakeBucket, 'gold'))],
      },
      StoppingCondition: { MaxRuntimeInSeconds: p.maxRuntimeSeconds },
      NetworkConfig: NETWORK_ISOLATION,
    },
  };
}

function trainStep(p: PipelineDefinitionParams): PipelineStep {
  const spot = p.spotTraining;
  const hp = (name: string): JsonObject => asString(param(name)); // HyperParameters are a string map
  const hyperParameters: Partial<Record<HyperparameterName, JsonObject>> = { trees: hp(PARAMETER.trees), max_depth: hp(PARAMETER.maxDepth), min_leaf: hp(PARAMETER.minLeaf), seed: hp(PARAMETER.seed) };
  return {
    Name: STEP.train,
    Type: 'Training',
    Arguments: {
      AlgorithmSpecification: {
        TrainingImage: param(PARAMETER.jobsImage),
        TrainingInputMode: 'File',
        MetricDefinitions: TRAINING_METRICS.map((name) => ({ Name: name, Regex: metricRegex(name) })),
      },
      RoleArn: p.jobRoleArn,
      EnableNetworkIsolation: true,
      EnableInterContainerTrafficEncryption: true,
      HyperParameters: hyperParameters,
      InputDataConfig: [{
        ChannelName: TRAIN_CHANNEL,
        // Every host sees the whole gold table: each trains its share of the trees on all of it.
        DataSource: { S3DataSource: { S3DataType: 'S3Prefix', S3Uri: processingOutputUri(STEP.etl, PROCESSING_OUTPUTS.etl.gold), S3DataDistributionType: 'FullyReplicated' } },
      }],
      OutputDataConfig: { S3OutputPath: executionPrefix(p.lakeBucket, 'artifacts', 'training') },
      ResourceConfig: { InstanceType: param(PARAMETER.trainInstanceType), InstanceCount: param(PARAMETER.trainInstanceCount), VolumeSizeInGB: p.volumeSizeGiB },
      StoppingCondition: spot
        ? { MaxRuntimeInSeconds: p.maxRuntimeSeconds, MaxWaitTimeInSeconds: spot.maxWaitSeconds }
        : { MaxRuntimeInSeconds: p.maxRuntimeSeconds },
      ...(spot
        ? {
            EnableManagedSpotTraining: true,
            // tmp/ expires by lifecycle rule: checkpoints only matter while the job runs.
            CheckpointConfig: { S3Uri: executionPrefix(p.lakeBucket, 'tmp', 'checkpoints'), LocalPath: '/opt/ml/checkpoints' },
          }
        : {}),
    },
  };
}

function evaluateStep(p: PipelineDefinitionParams): PipelineStep {
  return {
    Name: STEP.evaluate,
    Type: 'Processing',
    Arguments: {
      AppSpecification: { ImageUri: param(PARAMETER.jobsImage), ContainerEntrypoint: [...JOBS_ENTRYPOINT, 'evaluate'] },
      RoleArn: p.jobRoleArn,
      // One instance: merging the partial forests and applying the gates is a single decision.
      ProcessingResources: { ClusterConfig: { InstanceType: param(PARAMETER.evaluateInstanceType), InstanceCount: 1, VolumeSizeInGB: p.volumeSizeGiB } },
      NetworkConfig: NETWORK_ISOLATION,
      ProcessingInputs: [
        s3Input(PROCESSING_INPUTS.evaluate.model, get(`Steps.${STEP.train}.ModelArtifacts.S3ModelArtifacts`), `${PROCESSING_ROOT}/input/${PROCESSING_INPUTS.evaluate.model}`, 'FullyReplicated'),
        s3Input(PROCESSING_INPUTS.evaluate.gold, processingOutputUri(STEP.etl, PROCESSING_OUTPUTS.etl.gold), `${PROCESSING_ROOT}/input/${PROCESSING_INPUTS.evaluate.gold}`, 'FullyReplicated'),
      ],
      ProcessingOutputConfig: {
        Outputs: [
          s3Output(PROCESSING_OUTPUTS.evaluate.evaluation, `${PROCESSING_ROOT}/output/${PROCESSING_OUTPUTS.evaluate.evaluation}`, executionPrefix(p.lakeBucket, 'artifacts', 'evaluation')),
          s3Output(PROCESSING_OUTPUTS.evaluate.model, `${PROCESSING_ROOT}/output/${PROCESSING_OUTPUTS.evaluate.model}`, executionPrefix(p.lakeBucket, 'artifacts', 'model')),
        ],
      },
      StoppingCondition: { MaxRuntimeInSeconds: p.maxRuntimeSeconds },
    },
    PropertyFiles: [{ PropertyFileName: EVALUATION_PROPERTY_FILE, OutputName: PROCESSING_OUTPUTS.evaluate.evaluation, FilePath: EVALUATION_FILE }],
  };
}

function registerStep(p: PipelineDefinitionParams): PipelineStep {
  const report = (path: string): JsonObject => asString(jsonGet(STEP.evaluate, EVALUATION_PROPERTY_FILE, path));
  const metadata: JsonObject = {};
  for (const [key, path] of Object.entries(REGISTRY_METADATA_PATHS)) metadata[key] = report(path);
  return {
    Name: STEP.register,
    Type: 'RegisterModel',
    Arguments: {
      ModelPackageGroupName: p.modelPackageGroup,
      ModelPackageDescription: join('', ['pricesense forest from pipeline execution ', executionId]),
      ModelApprovalStatus: 'PendingManualApproval',
      InferenceSpecification: {
        Containers: [{ Image: param(PARAMETER.apiImage), ModelDataUrl: join('/', [processingOutputUri(STEP.evaluate, 'model'), MERGED_MODEL_FILE]) }],
        SupportedContentTypes: ['application/json'],
        SupportedResponseMIMETypes: ['application/json'],
      },
      ModelMetrics: {
        ModelQuality: {
          Statistics: { ContentType: 'application/json', S3Uri: join('/', [processingOutputUri(STEP.evaluate, 'evaluation'), EVALUATION_FILE]) },
        },
      },
      CustomerMetadataProperties: {
        ...metadata,
        'pricesense:registeredBy': join('', ['sagemaker-pipeline/', executionId]),
        'pricesense:codeVersion': param(PARAMETER.jobsImage),
        'pricesense:forced': 'false',
      },
    },
  };
}

function gateSteps(p: PipelineDefinitionParams): PipelineStep {
  return {
    Name: STEP.checkGates,
    Type: 'Condition',
    Arguments: {
      Conditions: [{ Type: 'Equals', LeftValue: jsonGet(STEP.evaluate, EVALUATION_PROPERTY_FILE, 'gates.passed'), RightValue: true }],
      IfSteps: [registerStep(p) as unknown as JsonObject],
      ElseSteps: [{
        Name: STEP.fail,
        Type: 'Fail',
        Arguments: {
          ErrorMessage: join('', [
            'quality gates failed: ',
            asString(jsonGet(STEP.evaluate, EVALUATION_PROPERTY_FILE, 'gates.failures')),
            '; the candidate was not registered (report: ',
            join('/', [processingOutputUri(STEP.evaluate, 'evaluation'), EVALUATION_FILE]),
            ')',
          ]),
        },
      }],
    },
  };
}

/** `metric validation:accuracy=0.8731` → group 1 is the value. */
export function metricRegex(name: string): string {
  return `metric ${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}=([0-9.]+)`;
}

/** The whole definition; throws on settings SageMaker would reject or that break the contracts. */
export function buildPipelineDefinition(params: PipelineDefinitionParams): PipelineDefinition {
  validateParams(params);
  const definition: PipelineDefinition = {
    Version: PIPELINE_SCHEMA_VERSION,
    Metadata: {},
    Parameters: parameters(params),
    Steps: [etlStep(params), trainStep(params), evaluateStep(params), gateSteps(params)],
  };
  const problems = definitionProblems(definition);
  if (problems.length > 0) throw new Error(`generated SageMaker pipeline definition is inconsistent:\n  - ${problems.join('\n  - ')}`);
  return definition;
}

const EXECUTION_VARIABLES = new Set(['PipelineExecutionId', 'PipelineExecutionArn', 'PipelineName', 'PipelineArn', 'StartDateTime', 'CurrentDateTime']);

/** Every step, including those nested in a Condition's IfSteps/ElseSteps. */
export function allSteps(definition: Pick<PipelineDefinition, 'Steps'>): PipelineStep[] {
  const out: PipelineStep[] = [];
  const visit = (steps: readonly PipelineStep[]): void => {
    for (const s of steps) {
      out.push(s);
      if (s.Type === 'Condition') {
        visit((s.Arguments.IfSteps ?? []) as unknown as PipelineStep[]);
        visit((s.Arguments.ElseSteps ?? []) as unknown as PipelineStep[]);
      }
    }
  };
  visit(definition.Steps);
  return out;
}

/** Every `{"Get": ...}` path in a value, depth first. */
export function references(value: unknown): string[] {
  const out: string[] = [];
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(visit);
    else if (typeof v === 'object' && v !== null) {
      const o = v as Record<string, unknown>;
      if (typeof o.Get === 'string' && Object.keys(o).length === 1) out.push(o.Get);
      else Object.values(o).forEach(visit);
    }
  };
  visit(value);
  return out;
}

/**
 * Dangling references the Pipelines service would only report at CreatePipeline or, worse,
 * mid-execution: undeclared parameters, unknown steps, property files or outputs that do not
 * exist, self references, duplicate names.
 */
export function definitionProblems(definition: PipelineDefinition): string[] {
  const problems: string[] = [];
  const steps = allSteps(definition);
  const byName = new Map<string, PipelineStep>();
  for (const s of steps) {
    if (byName.has(s.Name)) problems.push(`duplicate step name ${s.Name}`);
    byName.set(s.Name, s);
  }
  const declared = new Set(definition.Parameters.map((p) => p.Name));
  if (declared.size !== definition.Parameters.length) problems.push('duplicate parameter names');

  for (const step of steps) {
    // A Condition's nested steps are checked on their own; its own references are its Conditions.
    const own = step.Type === 'Condition' ? { ...step.Arguments, IfSteps: [], ElseSteps: [] } : step.Arguments;
    for (const ref of references(own)) {
      const [root, name, ...rest] = ref.split('.');
      if (root === 'Parameters') {
        if (!declared.has(name)) problems.push(`${step.Name}: parameter ${name} is not declared`);
      } else if (root === 'Execution') {
        if (!EXECUTION_VARIABLES.has(name)) problems.push(`${step.Name}: unknown execution variable ${name}`);
      } else if (root === 'Steps') {
        const target = byName.get(name);
        if (!target) problems.push(`${step.Name}: references unknown step ${name}`);
        else if (target === step) problems.push(`${step.Name}: references itself`);
        else problems.push(...stepReferenceProblems(step.Name, target, rest.join('.')));
      } else {
        problems.push(`${step.Name}: unknown reference root in ${ref}`);
      }
    }
    for (const dep of step.DependsOn ?? []) if (!byName.has(dep)) problems.push(`${step.Name}: DependsOn unknown step ${dep}`);
    for (const pf of step.PropertyFiles ?? []) {
      if (!processingOutputNames(step).includes(pf.OutputName)) problems.push(`${step.Name}: property file ${pf.PropertyFileName} names unknown output ${pf.OutputName}`);
    }
  }
  return problems;
}

function processingOutputNames(step: PipelineStep): string[] {
  const config = step.Arguments.ProcessingOutputConfig as { Outputs?: { OutputName: string }[] } | undefined;
  return (config?.Outputs ?? []).map((o) => o.OutputName);
}

function stepReferenceProblems(from: string, target: PipelineStep, path: string): string[] {
  const output = /^ProcessingOutputConfig\.Outputs\['([^']+)'\]\.S3Output\.S3Uri$/.exec(path);
  if (output) {
    if (target.Type !== 'Processing') return [`${from}: ${target.Name} is not a Processing step`];
    return processingOutputNames(target).includes(output[1]) ? [] : [`${from}: ${target.Name} has no output ${output[1]}`];
  }
  const propertyFile = /^PropertyFiles\.(.+)$/.exec(path);
  if (propertyFile) {
    return (target.PropertyFiles ?? []).some((f) => f.PropertyFileName === propertyFile[1]) ? [] : [`${from}: ${target.Name} has no property file ${propertyFile[1]}`];
  }
  if (path === 'ModelArtifacts.S3ModelArtifacts') return target.Type === 'Training' ? [] : [`${from}: ${target.Name} is not a Training step`];
  return [`${from}: unsupported property path Steps.${target.Name}.${path}`];
}
