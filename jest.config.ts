import type { Config } from 'jest';

// Type-checking is `tsc --noEmit` (npm test runs it first); Jest only transpiles.
const config: Config = {
  testEnvironment: 'node',
  roots: ['<rootDir>/etl', '<rootDir>/model', '<rootDir>/api', '<rootDir>/cli', '<rootDir>/infra', '<rootDir>/bench'],
  testMatch: ['**/test/**/*.test.ts'],
  // isolatedModules comes from tsconfig.json: ts-jest then transpiles file by file, without type information.
  transform: { '^.+\\.ts$': 'ts-jest' },
  moduleFileExtensions: ['ts', 'js', 'json'],
  testTimeout: 60_000,
};

export default config;
