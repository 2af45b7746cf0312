// One mocked run of the real program with Pulumi.dev.yaml (its own file: a fresh Pulumi runtime).
import { describeStack } from './stack-assertions';

describeStack({
  stack: 'dev',
  overrides: { 'pricesense:app': JSON.stringify({ image: { tag: '0.1.0' } }) },
  azCount: 2,
  endpointAzCount: 1,
  logRetentionDays: 7,
  hpa: { min: 1, max: 3, scaleDownWindow: 60 },
  capacityTypes: ['SPOT'],
  publicEndpoint: true,
  lakeForceDestroy: true,
  ecrForceDelete: true,
  scaleToZero: true,
  image: '123456789012.dkr.ecr.us-east-1.amazonaws.com/pricesense-dev/api:0.1.0',
  pipeline: { trainInstanceCount: 1, spotTraining: true, jobsImage: '123456789012.dkr.ecr.us-east-1.amazonaws.com/pricesense-dev/api:0.1.0-jobs', apiImage: '123456789012.dkr.ecr.us-east-1.amazonaws.com/pricesense-dev/api:0.1.0' },
});
