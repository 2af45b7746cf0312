// Mocked runs (update and first-up preview) of the platform and app projects with the dev stack files.
import { describeStack } from './stack-assertions';

describeStack({
  stack: 'dev',
  azCount: 2,
  endpointAzCount: 1,
  logRetentionDays: 7,
  capacityTypes: ['SPOT'],
  scaleToZero: true,
  // Disposable: destroy empties and deletes everything.
  data: { protect: false, retainOnDelete: false, forceDestroy: true, stableLakeName: false },
  pipeline: { trainInstanceCount: 1, spotTraining: true },
  app: { hpa: { min: 1, max: 3, scaleDownWindow: 60 }, publicEndpoint: true, zoneSpreadHard: false },
});
