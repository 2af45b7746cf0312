// One mocked run of the real program with Pulumi.stage.yaml, deploying by digest.
import { describeStack } from './stack-assertions';

const DIGEST = `sha256:${'ab'.repeat(32)}`;

describeStack({
  stack: 'stage',
  overrides: { 'pricesense:app': JSON.stringify({ image: { digest: DIGEST } }) },
  azCount: 2,
  endpointAzCount: 2,
  logRetentionDays: 14,
  hpa: { min: 2, max: 4, scaleDownWindow: 300 },
  capacityTypes: ['ON_DEMAND'],
  publicEndpoint: false,
  lakeForceDestroy: false,
  ecrForceDelete: false,
  scaleToZero: false,
  image: `123456789012.dkr.ecr.us-east-1.amazonaws.com/pricesense-stage/api@${DIGEST}`,
  // Deployed by digest: no jobs image tag to derive, so JobsImage has no default.
  pipeline: { trainInstanceCount: 2, spotTraining: true, jobsImage: null, apiImage: `123456789012.dkr.ecr.us-east-1.amazonaws.com/pricesense-stage/api@${DIGEST}` },
});
