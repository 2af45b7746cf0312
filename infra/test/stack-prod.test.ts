// One mocked run of the real program with Pulumi.prod.yaml.
import { describeStack } from './stack-assertions';

describeStack({
  stack: 'prod',
  overrides: { 'pricesense:app': JSON.stringify({ image: { tag: '1.0.0' } }) },
  azCount: 3,
  endpointAzCount: 3,
  logRetentionDays: 30,
  hpa: { min: 3, max: 12, scaleDownWindow: 600 },
  capacityTypes: ['ON_DEMAND', 'SPOT'],
  publicEndpoint: false,
  lakeForceDestroy: false,
  ecrForceDelete: false,
  scaleToZero: false,
  image: '123456789012.dkr.ecr.us-east-1.amazonaws.com/pricesense-prod/api:1.0.0',
  pipeline: { trainInstanceCount: 3, spotTraining: false, jobsImage: '123456789012.dkr.ecr.us-east-1.amazonaws.com/pricesense-prod/api:1.0.0-jobs', apiImage: '123456789012.dkr.ecr.us-east-1.amazonaws.com/pricesense-prod/api:1.0.0' },
});
