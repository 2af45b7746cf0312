import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * The layers (docs/architecture.md): cli → {api, console} → model → etl → core, with
 * contracts/ importable by all and infra/ alone. Each layer lists the top-level folders
 * it may import; `no-restricted-imports` refuses a relative specifier that climbs out to
 * any other one. Tests are exempt: they tie layers together on purpose
 * (an API test checks the alarms infra/ defines, a console test starts the API).
 * core/test/layering-lint.test.ts proves a violation fails.
 */
const LAYERS = ['contracts', 'core', 'etl', 'model', 'api', 'console', 'cli', 'bench', 'infra'];
const MAY_IMPORT = {
  contracts: [],
  core: ['contracts'],
  etl: ['contracts', 'core'],
  model: ['contracts', 'core', 'etl'],
  api: ['contracts', 'core', 'etl', 'model'],
  // The console reads the API over HTTP only.
  console: ['contracts', 'core', 'etl', 'model'],
  cli: ['contracts', 'core', 'etl', 'model', 'api', 'console'],
  bench: ['contracts', 'core', 'etl', 'model', 'api', 'console', 'cli'],
  infra: ['contracts'],
};

function forbidden(layer) {
  const allowed = new Set([layer, ...MAY_IMPORT[layer]]);
  const banned = LAYERS.filter((l) => !allowed.has(l));
  const patterns = [
    {
      regex: `^(\\.\\./)+(${banned.join('|')})(/|$)`,
      message: `${layer}/ may import only ${MAY_IMPORT[layer].join(', ') || 'itself'} (layers: docs/architecture.md)`,
    },
  ];
  if (layer === 'contracts') patterns.push({ regex: '^node:', message: 'contracts/ is dependency-free, node: modules included (docs/architecture.md)' });
  return { patterns };
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.pricesense/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Type-only imports stay type-only (issue 17): erased at compile time, no runtime edge
      // between modules; inline style, as the code already writes `import { x, type T }`.
      // `typeof import('…')` stays allowed: it types the lazy require()s kept lazy on purpose.
      '@typescript-eslint/consistent-type-imports': ['error', { prefer: 'type-imports', fixStyle: 'inline-type-imports', disallowTypeAnnotations: false }],
      // …and an import of types only is `import type { T }`, not `import { type T }` (which may keep the module load).
      '@typescript-eslint/no-import-type-side-effects': 'error',
    },
  },
  ...LAYERS.map((layer) => ({
    files: [`${layer}/**/*.ts`],
    ignores: ['**/test/**'],
    rules: { 'no-restricted-imports': ['error', forbidden(layer)] },
  })),
  {
    // One configuration layer (README "Configuration"): shared settings through core/config.ts,
    // the API's through api/config.ts; production code does not look at test-runner variables.
    files: LAYERS.filter((l) => l !== 'infra').map((l) => `${l}/**/*.ts`),
    ignores: ['**/test/**', 'etl/testing/**', 'bench/**', 'core/config.ts', 'api/config.ts', 'api/app.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: "MemberExpression[object.object.name='process'][object.property.name='env'][property.name=/^(PRICESENSE_|SM_ROOT$|JEST_)/]",
          message: 'read settings through core/config.ts (README "Configuration"), not process.env',
        },
      ],
    },
  },
  {
    // Plain CommonJS scripts run by node directly (the bin shim, CI helpers).
    files: ['**/*.js'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: { require: 'readonly', module: 'writable', __dirname: 'readonly', process: 'readonly', console: 'readonly' },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
