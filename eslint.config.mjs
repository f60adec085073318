// `npm run lint`: typescript-eslint's strict type-checked rules over every TypeScript file the
// project's tsconfig.json covers. Type-aware rules need TypeScript's JS API, which TypeScript 7 (the
// native compiler) does not have; that is why the project's `typescript` is 6.0.x.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'node_modules/',
      'dist/',
      'cdk.out/',
      'coverage/',
      '.fleet-data/',
      // A separate project with its own package.json and tsconfig.json (it installs Fleet's packed tarball).
      'examples/app/',
      // The dashboard's browser scripts are plain JavaScript served as they are.
      'infra/local/dashboard/',
    ],
  },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.strictTypeChecked],
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      // Numbers print the same in every runtime; the other types (undefined, null, objects) stay errors,
      // since they are the ones that put "undefined" or "[object Object]" into a message.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      // Passing on what was caught, or an AbortSignal's reason, keeps the error the caller gave;
      // a literal that is not an Error (a string, an object) stays an error.
      '@typescript-eslint/only-throw-error': ['error', { allowThrowingAny: true, allowThrowingUnknown: true }],
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingAny: true, allowThrowingUnknown: true }],
    },
  },
  {
    // Plain JavaScript (the build script, the CLI's launcher, this file): no type information.
    files: ['**/*.mjs', '**/*.js'],
    extends: [tseslint.configs.strict, tseslint.configs.disableTypeChecked],
  },
);
