// Mocked runs (update and first-up preview) of the platform and app projects with the stage stack files.
import { describeStack } from './stack-assertions';

describeStack({
  stack: 'stage',
  azCount: 2,
  endpointAzCount: 2,
  logRetentionDays: 14,
  capacityTypes: ['ON_DEMAND'],
  scaleToZero: false,
  // Protected; once deliberately unprotected, emptied and deleted (no BucketNotEmpty half way through).
  data: { protect: true, retainOnDelete: false, forceDestroy: true, stableLakeName: false },
  pipeline: { trainInstanceCount: 2, spotTraining: true },
  app: { hpa: { min: 2, max: 4, scaleDownWindow: 300 }, publicEndpoint: false, zoneSpreadHard: false },
});
