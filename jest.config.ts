import type { Config } from 'jest';

// The AWS SDK warns on every client that releases after January 2027 need Node 22; these
// machines still run the tests on Node 20 (docs/architecture.md). Workers inherit this from the parent.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
// Progress lines would bury test output; production code never looks at test-runner variables.
process.env.PRICESENSE_PROGRESS ??= 'off';

// Type-checking is `tsc --noEmit` (npm test runs it first); Jest only transpiles.
const config: Config = {
  testEnvironment: 'node',
  roots: ['<rootDir>/core', '<rootDir>/etl', '<rootDir>/model', '<rootDir>/api', '<rootDir>/console', '<rootDir>/cli', '<rootDir>/infra', '<rootDir>/bench'],
  testMatch: ['**/test/**/*.test.ts'],
  // isolatedModules comes from tsconfig.json: ts-jest then transpiles file by file, without type information.
  transform: { '^.+\\.ts$': 'ts-jest' },
  moduleFileExtensions: ['ts', 'js', 'json'],
  // Generous: on a shared 2-core runner a suite's ORT, DuckDB or HTTP work can take several times its idle time.
  testTimeout: 180_000,
};

export default config;
