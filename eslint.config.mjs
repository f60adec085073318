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
      // `_`-named parameters hold a place (a callback's signature); a rest sibling leaves a field out of a copy.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', ignoreRestSiblings: true }],
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
    files: ['test/**/*.ts'],
    rules: {
      // Tests read JSON (response bodies, files, CloudFormation templates) as `any` and hand it to
      // expect(), which checks every value at runtime; typing each body first would only restate the
      // assertions. no-explicit-any stays on: a test never declares `any` itself.
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      // With noUncheckedIndexedAccess every `rows[0]` may be undefined; in a test, `rows[0]!` failing
      // is a failed test, which is what the test wants, while a guard would hide the missing row.
      '@typescript-eslint/no-non-null-assertion': 'off',
      // Fakes implement async ports (repositories, clients) with `async` methods that need no await:
      // `async` keeps a throw inside a fake a rejected promise, as the real adapter's would be.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // Plain JavaScript (the build script, the CLI's launcher, this file): no type information.
    files: ['**/*.mjs', '**/*.js'],
    extends: [tseslint.configs.strict, tseslint.configs.disableTypeChecked],
  },
);
