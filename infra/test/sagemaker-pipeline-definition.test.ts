// The generated SageMaker Pipelines definition: structure, references, container contracts.
import {
  EVALUATION_PROPERTY_FILE,
  PARAMETER,
  REGISTRY_METADATA_PATHS,
  TRAINING_METRICS,
  buildPipelineDefinition,
  definitionProblems,
  type PipelineDefinition,
  type PipelineDefinitionParams,
  type PipelineStep,
} from '../sagemaker-pipeline-definition';

type Obj = Record<string, unknown>;
const o = (v: unknown): Obj => v as Obj;

const BUCKET = 'pricesense-lake-dev-1a2b3c4d';
const ROLE = 'arn:aws:iam::123456789012:role/models-sagemaker-abc';
const PARAMS: PipelineDefinitionParams = {
  lakeBucket: BUCKET,
  jobRoleArn: ROLE,
  modelPackageGroup: 'pricesense-dev',
  jobsImage: '123456789012.dkr.ecr.us-east-1.amazonaws.com/pricesense-dev/api:0.1.0-jobs',
  apiImage: '123456789012.dkr.ecr.us-east-1.amazonaws.com/pricesense-dev/api:0.1.0',
  etl: { instanceType: 'ml.m5.large', instanceCount: 2 },
  train: { instanceType: 'ml.m5.xlarge', instanceCount: 3 },
  evaluateInstanceType: 'ml.m5.large',
  volumeSizeGiB: 30,
  maxRuntimeSeconds: 7200,
  hyperparameters: { trees: 120, maxDepth: 16, minLeaf: 5, seed: 42 },
  spotTraining: { maxWaitSeconds: 14_400 },
};

const def = (overrides: Partial<PipelineDefinitionParams> = {}): PipelineDefinition => buildPipelineDefinition({ ...PARAMS, ...overrides });

/** Every step, nested ones included, found independently of the module's own walker. */
function flatten(steps: PipelineStep[]): PipelineStep[] {
  return steps.flatMap((s) => [s, ...(s.Type === 'Condition' ? flatten([...(s.Arguments.IfSteps as unknown as PipelineStep[]), ...(s.Arguments.ElseSteps as unknown as PipelineStep[])]) : [])]);
}
function gets(v: unknown): string[] {
  if (Array.isArray(v)) return v.flatMap(gets);
  if (typeof v !== 'object' || v === null) return [];
  const rec = v as Obj;
  return typeof rec.Get === 'string' ? [rec.Get] : Object.values(rec).flatMap(gets);
}
const step = (d: PipelineDefinition, name: string): PipelineStep => {
  const found = flatten(d.Steps).find((s) => s.Name === name);
  if (!found) throw new Error(`no step ${name}`);
  return found;
};

/**
 * A small evaluator of the expressions the definition uses (Get, Std:Join, Std:JsonGet),
 * standing in for the Pipelines service: resolves values given parameters, an execution id
 * and what the steps produced.
 */
function evaluate(expr: unknown, ctx: { params: Obj; executionId: string; stepProps: Record<string, Obj>; propertyFiles: Record<string, unknown> }): unknown {
  if (Array.isArray(expr)) return expr.map((e) => evaluate(e, ctx));
  if (typeof expr !== 'object' || expr === null) return expr;
  const rec = expr as Obj;
  if (typeof rec.Get === 'string') {
    const [root, name, ...rest] = rec.Get.split('.');
    if (root === 'Parameters') return ctx.params[name];
    if (root === 'Execution' && name === 'PipelineExecutionId') return ctx.executionId;
    if (root === 'Steps') {
      const value = ctx.stepProps[name]?.[rest.join('.')];
      if (value === undefined) throw new Error(`unresolved ${rec.Get}`);
      return value;
    }
    throw new Error(`unresolved ${rec.Get}`);
  }
  if (rec['Std:Join']) {
    const j = o(rec['Std:Join']);
    return (evaluate(j.Values, ctx) as unknown[]).map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(String(j.On));
  }
  if (rec['Std:JsonGet']) {
    const j = o(rec['Std:JsonGet']);
    const file = ctx.propertyFiles[String(o(j.PropertyFile).Get)];
    return String(j.Path).split('.').reduce<unknown>((acc, k) => o(acc)[k], file);
  }
  return Object.fromEntries(Object.entries(rec).map(([k, v]) => [k, evaluate(v, ctx)]));
}

describe('pipeline definition: shape', () => {
  test('schema version, serializable, and the four top-level steps in data-flow order', () => {
    const d = def();
    expect(d.Version).toBe('2020-12-01');
    expect(JSON.parse(JSON.stringify(d))).toEqual(d);
    expect(d.Steps.map((s) => [s.Name, s.Type])).toEqual([['Etl', 'Processing'], ['Train', 'Training'], ['Evaluate', 'Processing'], ['CheckGates', 'Condition']]);
    // Order comes from property references (no DependsOn needed): each step only reads from earlier ones.
    const order = d.Steps.map((s) => s.Name);
    const upstream = (s: PipelineStep): string[] => [...new Set([...gets(s.Arguments).filter((g) => g.startsWith('Steps.')).map((g) => g.split('.')[1]), ...(s.DependsOn ?? [])])];
    expect(upstream(step(d, 'Etl'))).toEqual([]);
    expect(upstream(step(d, 'Train'))).toEqual(['Etl']);
    expect(upstream(step(d, 'Evaluate')).sort()).toEqual(['Etl', 'Train']);
    expect(upstream(step(d, 'CheckGates'))).toEqual(['Evaluate']);
    for (const s of d.Steps) for (const u of upstream(s)) expect(order.indexOf(u)).toBeLessThan(order.indexOf(s.Name));
  });

  test('every Steps.X reference names an existing step and every Parameters.X is declared (and used)', () => {
    const d = def();
    const names = new Set(flatten(d.Steps).map((s) => s.Name));
    const declared = d.Parameters.map((p) => p.Name);
    const refs = gets(d.Steps);
    expect(refs.length).toBeGreaterThan(20);
    for (const ref of refs) {
      const [root, name] = ref.split('.');
      expect(['Parameters', 'Steps', 'Execution']).toContain(root);
      if (root === 'Steps') expect(names).toContain(name);
      if (root === 'Parameters') expect(declared).toContain(name);
      if (root === 'Execution') expect(name).toBe('PipelineExecutionId');
    }
    const used = new Set(refs.filter((r) => r.startsWith('Parameters.')).map((r) => r.split('.')[1]));
    expect([...used].sort()).toEqual([...declared].sort());
    expect(new Set(declared).size).toBe(declared.length);
    expect(definitionProblems(d)).toEqual([]);
  });

  test('parameters carry the stack defaults; hyperparameters and counts are typed Integer', () => {
    const byName = Object.fromEntries(def().Parameters.map((p) => [p.Name, p]));
    expect(byName[PARAMETER.jobsImage]).toEqual({ Name: 'JobsImage', Type: 'String', DefaultValue: PARAMS.jobsImage });
    expect(byName[PARAMETER.apiImage]).toEqual({ Name: 'ApiImage', Type: 'String', DefaultValue: PARAMS.apiImage });
    expect(byName[PARAMETER.rawDataUri].DefaultValue).toBe(`s3://${BUCKET}/raw/`);
    expect(byName[PARAMETER.trainInstanceCount]).toEqual({ Name: 'TrainInstanceCount', Type: 'Integer', DefaultValue: 3 });
    expect(byName[PARAMETER.trees]).toEqual({ Name: 'Trees', Type: 'Integer', DefaultValue: 120 });
    // Without a known image the parameter has no default: each execution must pass it.
    const noImages = Object.fromEntries(def({ jobsImage: undefined, apiImage: undefined }).Parameters.map((p) => [p.Name, p]));
    expect(noImages.JobsImage).toEqual({ Name: 'JobsImage', Type: 'String' });
    expect(noImages.ApiImage).toEqual({ Name: 'ApiImage', Type: 'String' });
  });
});

describe('pipeline definition: container contracts', () => {
  test('ETL: jobs image entrypoint, raw input sharded by S3 key, gold output per execution', () => {
    const a = step(def(), 'Etl').Arguments;
    expect(a.AppSpecification).toEqual({ ImageUri: { Get: 'Parameters.JobsImage' }, ContainerEntrypoint: ['node', '/app/bin/pricesense.js', 'sagemaker', 'etl'] });
    expect(a.RoleArn).toBe(ROLE);
    expect(o(a.ProcessingResources).ClusterConfig).toEqual({ InstanceType: { Get: 'Parameters.EtlInstanceType' }, InstanceCount: { Get: 'Parameters.EtlInstanceCount' }, VolumeSizeInGB: 30 });
    const [raw] = a.ProcessingInputs as Obj[];
    expect(raw.InputName).toBe('raw');
    expect(raw.S3Input).toMatchObject({ S3Uri: { Get: 'Parameters.RawDataUri' }, LocalPath: '/opt/ml/processing/input/raw', S3DataType: 'S3Prefix', S3DataDistributionType: 'ShardedByS3Key' });
    const [gold] = o(a.ProcessingOutputConfig).Outputs as Obj[];
    expect(gold).toMatchObject({ OutputName: 'gold', S3Output: { LocalPath: '/opt/ml/processing/output/gold', S3UploadMode: 'EndOfJob' } });
    expect(o(gold.S3Output).S3Uri).toEqual({ 'Std:Join': { On: '/', Values: [`s3://${BUCKET}/gold/pipeline`, { Get: 'Execution.PipelineExecutionId' }] } });
  });

  test('Train: jobs image in File mode, the ETL gold output as channel gold, string hyperparameters, output under artifacts/pipeline/', () => {
    const a = step(def(), 'Train').Arguments;
    expect(o(a.AlgorithmSpecification)).toMatchObject({ TrainingImage: { Get: 'Parameters.JobsImage' }, TrainingInputMode: 'File' });
    const [channel] = a.InputDataConfig as Obj[];
    expect(channel.ChannelName).toBe('gold');
    expect(o(o(channel.DataSource).S3DataSource)).toEqual({
      S3DataType: 'S3Prefix', S3DataDistributionType: 'FullyReplicated', S3Uri: { Get: "Steps.Etl.ProcessingOutputConfig.Outputs['gold'].S3Output.S3Uri" },
    });
    expect(Object.keys(o(a.HyperParameters)).sort()).toEqual(['max_depth', 'min_leaf', 'seed', 'trees']);
    expect(o(a.HyperParameters).trees).toEqual({ 'Std:Join': { On: '', Values: [{ Get: 'Parameters.Trees' }] } });
    expect(o(a.ResourceConfig)).toEqual({ InstanceType: { Get: 'Parameters.TrainInstanceType' }, InstanceCount: { Get: 'Parameters.TrainInstanceCount' }, VolumeSizeInGB: 30 });
    expect(JSON.stringify(o(a.OutputDataConfig).S3OutputPath)).toContain(`s3://${BUCKET}/artifacts/pipeline`);
  });

  test('Train: metric definitions parse the lines the entrypoint prints', () => {
    const defs = o(step(def(), 'Train').Arguments.AlgorithmSpecification).MetricDefinitions as { Name: string; Regex: string }[];
    expect(defs.map((m) => m.Name)).toEqual([...TRAINING_METRICS]);
    const regex = (name: string): RegExp => new RegExp(defs.find((m) => m.Name === name)?.Regex ?? 'no such metric');
    expect(regex('validation:accuracy').exec('metric validation:accuracy=0.8731')?.[1]).toBe('0.8731');
    expect(regex('validation:macro_f1').exec('2025-01-01T00:00:00Z metric validation:macro_f1=0.79 (host algo-1)')?.[1]).toBe('0.79');
    expect(regex('validation:accuracy').exec('metric validation:macro_f1=0.79')).toBeNull();
    expect(regex('validation:accuracy').exec('metric validationXaccuracy=0.5')).toBeNull();
  });

  test('Train: managed spot training with a wait bound and checkpoints, only when configured', () => {
    const spot = step(def(), 'Train').Arguments;
    expect(spot.EnableManagedSpotTraining).toBe(true);
    expect(spot.StoppingCondition).toEqual({ MaxRuntimeInSeconds: 7200, MaxWaitTimeInSeconds: 14_400 });
    expect(o(spot.CheckpointConfig).LocalPath).toBe('/opt/ml/checkpoints');
    expect(JSON.stringify(o(spot.CheckpointConfig).S3Uri)).toContain(`s3://${BUCKET}/tmp/pipeline`);
    const onDemand = step(def({ spotTraining: undefined }), 'Train').Arguments;
    expect(onDemand.EnableManagedSpotTraining).toBeUndefined();
    expect(onDemand.CheckpointConfig).toBeUndefined();
    expect(onDemand.StoppingCondition).toEqual({ MaxRuntimeInSeconds: 7200 });
  });

  test('Evaluate: model.tar.gz and gold in, evaluation and merged model out, evaluation.json as property file', () => {
    const s = step(def(), 'Evaluate');
    const a = s.Arguments;
    expect(o(a.AppSpecification).ContainerEntrypoint).toEqual(['node', '/app/bin/pricesense.js', 'sagemaker', 'evaluate']);
    expect(o(o(a.ProcessingResources).ClusterConfig).InstanceCount).toBe(1);
    const inputs = Object.fromEntries((a.ProcessingInputs as Obj[]).map((i) => [i.InputName, o(i.S3Input)]));
    expect(inputs.model).toMatchObject({ S3Uri: { Get: 'Steps.Train.ModelArtifacts.S3ModelArtifacts' }, LocalPath: '/opt/ml/processing/input/model', S3InputMode: 'File' });
    expect(inputs.gold).toMatchObject({ S3Uri: { Get: "Steps.Etl.ProcessingOutputConfig.Outputs['gold'].S3Output.S3Uri" }, LocalPath: '/opt/ml/processing/input/gold' });
    const outputs = Object.fromEntries((o(a.ProcessingOutputConfig).Outputs as Obj[]).map((x) => [x.OutputName, o(x.S3Output)]));
    expect(outputs.evaluation.LocalPath).toBe('/opt/ml/processing/output/evaluation');
    expect(outputs.model.LocalPath).toBe('/opt/ml/processing/output/model');
    expect(s.PropertyFiles).toEqual([{ PropertyFileName: EVALUATION_PROPERTY_FILE, OutputName: 'evaluation', FilePath: 'evaluation.json' }]);
  });
});

describe('pipeline definition: gates, registration, failure', () => {
  const d = def();
  const gate = step(d, 'CheckGates').Arguments;
  const register = step(d, 'RegisterModel');
  const fail = step(d, 'GatesFailed');
  const ctx = (report: unknown): Parameters<typeof evaluate>[1] => ({
    params: Object.fromEntries(d.Parameters.map((p) => [p.Name, p.DefaultValue])),
    executionId: 'abc123def456',
    stepProps: {
      Evaluate: {
        "ProcessingOutputConfig.Outputs['evaluation'].S3Output.S3Uri": `s3://${BUCKET}/artifacts/pipeline/abc123def456/evaluation`,
        "ProcessingOutputConfig.Outputs['model'].S3Output.S3Uri": `s3://${BUCKET}/artifacts/pipeline/abc123def456/model`,
      },
    },
    propertyFiles: { [`Steps.Evaluate.PropertyFiles.${EVALUATION_PROPERTY_FILE}`]: report },
  });
  const passed = { gates: { passed: true, failures: [] }, metrics: { accuracy: 0.87 }, registry: { artifactSha256: 'a'.repeat(64), forestSha256: 'b'.repeat(64), formatVersion: 1 } };
  const failed = { gates: { passed: false, failures: ['accuracy 0.41 < 0.80', 'macro_f1 0.30 < 0.70'] }, metrics: {} };

  test('the condition reads gates.passed from the Evaluate property file', () => {
    expect(gate.Conditions).toEqual([{
      Type: 'Equals',
      LeftValue: { 'Std:JsonGet': { PropertyFile: { Get: `Steps.Evaluate.PropertyFiles.${EVALUATION_PROPERTY_FILE}` }, Path: 'gates.passed' } },
      RightValue: true,
    }]);
    const [cond] = gate.Conditions as Obj[];
    expect(evaluate(cond.LeftValue, ctx(passed)) === cond.RightValue).toBe(true);
    expect(evaluate(cond.LeftValue, ctx(failed)) === cond.RightValue).toBe(false);
  });

  test('if: RegisterModel in the group, PendingManualApproval, API image, merged model and evaluation.json from this execution', () => {
    expect((gate.IfSteps as unknown as PipelineStep[]).map((s) => [s.Name, s.Type])).toEqual([['RegisterModel', 'RegisterModel']]);
    const a = register.Arguments;
    expect(a.ModelPackageGroupName).toBe('pricesense-dev');
    expect(a.ModelApprovalStatus).toBe('PendingManualApproval');
    const resolved = o(evaluate(a, ctx(passed)));
    const container = o((o(resolved.InferenceSpecification).Containers as unknown[])[0]);
    expect(container).toEqual({ Image: PARAMS.apiImage, ModelDataUrl: `s3://${BUCKET}/artifacts/pipeline/abc123def456/model/model.tar.gz` });
    expect(o(o(resolved.ModelMetrics).ModelQuality).Statistics).toEqual({ ContentType: 'application/json', S3Uri: `s3://${BUCKET}/artifacts/pipeline/abc123def456/evaluation/evaluation.json` });
  });

  test('the registered package carries the metadata the registry backend requires', () => {
    const meta = o(o(evaluate(register.Arguments, ctx(passed))).CustomerMetadataProperties);
    expect(Object.keys(REGISTRY_METADATA_PATHS).every((k) => k in meta)).toBe(true);
    expect(meta).toMatchObject({
      'pricesense:artifactSha256': 'a'.repeat(64),
      'pricesense:forestSha256': 'b'.repeat(64),
      'pricesense:formatVersion': '1',
      'pricesense:registeredBy': 'sagemaker-pipeline/abc123def456',
      'pricesense:codeVersion': PARAMS.jobsImage,
      'pricesense:forced': 'false',
    });
    // CustomerMetadataProperties values: strings of at most 256 of these characters.
    for (const v of Object.values(meta)) expect(String(v)).toMatch(/^[\w.:/=+\-@ ]{1,256}$/);
  });

  test('else: a Fail step whose message names the failed gates', () => {
    expect((gate.ElseSteps as unknown as PipelineStep[]).map((s) => [s.Name, s.Type])).toEqual([['GatesFailed', 'Fail']]);
    expect(gets(fail.Arguments)).toContain(`Steps.Evaluate.PropertyFiles.${EVALUATION_PROPERTY_FILE}`);
    expect(JSON.stringify(fail.Arguments.ErrorMessage)).toContain('"Path":"gates.failures"');
    const message = String(evaluate(fail.Arguments.ErrorMessage, ctx(failed)));
    expect(message).toContain('quality gates failed');
    expect(message).toContain('accuracy 0.41 < 0.80');
    expect(message).toContain('macro_f1 0.30 < 0.70');
    expect(message).toContain(`s3://${BUCKET}/artifacts/pipeline/abc123def456/evaluation/evaluation.json`);
  });
});

describe('pipeline definition: bad input and broken references are refused', () => {
  test('settings SageMaker would reject or that break the contracts', () => {
    expect(() => def({ spotTraining: { maxWaitSeconds: 3600 } })).toThrow(/spotTraining.maxWaitSeconds \(3600\) must be >= maxRuntimeSeconds \(7200\)/);
    expect(() => def({ hyperparameters: { ...PARAMS.hyperparameters, trees: 2 } })).toThrow(/trees \(2\) must be at least train.instanceCount \(3\)/);
    expect(() => def({ lakeBucket: 's3://bucket' })).toThrow(/lakeBucket must be an S3 bucket name/);
    expect(() => def({ jobRoleArn: 'role' })).toThrow(/jobRoleArn must be an IAM role ARN/);
    expect(() => def({ etl: { instanceType: 'ml.m5.large', instanceCount: 0 } })).toThrow(/etl.instanceCount must be an integer >= 1/);
  });

  test('definitionProblems finds undeclared parameters, unknown steps, outputs and property files', () => {
    const parsed = JSON.parse(JSON.stringify(def())) as PipelineDefinition;
    const broken: PipelineDefinition = { ...parsed, Parameters: parsed.Parameters.filter((p) => p.Name !== 'Seed') };
    const train = broken.Steps[1];
    const channel = o(o((train.Arguments.InputDataConfig as Obj[])[0]).DataSource).S3DataSource as Obj;
    channel.S3Uri = { Get: "Steps.Etl.ProcessingOutputConfig.Outputs['silver'].S3Output.S3Uri" };
    (broken.Steps[2].Arguments.ProcessingInputs as Obj[])[0].S3Input = { S3Uri: { Get: 'Steps.Training.ModelArtifacts.S3ModelArtifacts' } };
    const cond = ((broken.Steps[3].Arguments.Conditions as Obj[])[0].LeftValue as Obj)['Std:JsonGet'] as Obj;
    cond.PropertyFile = { Get: 'Steps.Evaluate.PropertyFiles.Missing' };
    expect(definitionProblems(broken)).toEqual(expect.arrayContaining([
      'Train: parameter Seed is not declared',
      'Train: Etl has no output silver',
      'Evaluate: references unknown step Training',
      'CheckGates: Evaluate has no property file Missing',
    ]));
  });
});
