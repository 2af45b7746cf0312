// Mocked runs (update and first-up preview) of the platform and app projects with the prod stack files.
import { describeStack } from './stack-assertions';

describeStack({
  stack: 'prod',
  azCount: 3,
  endpointAzCount: 3,
  logRetentionDays: 30,
  capacityTypes: ['ON_DEMAND', 'SPOT'],
  scaleToZero: false,
  // Protected and retained under a stable name a recreated stack can import; never emptied.
  data: { protect: true, retainOnDelete: true, forceDestroy: false, stableLakeName: true },
  pipeline: { trainInstanceCount: 3, spotTraining: false },
  app: { hpa: { min: 3, max: 12, scaleDownWindow: 600 }, publicEndpoint: false, zoneSpreadHard: true },
});
