import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // test/aws deploys to a real account: only `npm run test:aws` runs it (vitest.aws.config.ts).
    exclude: [...configDefaults.exclude, 'test/aws/**'],
    // Quiet unless something fails: no Powertools INFO or EMF lines (test/setup.ts).
    setupFiles: ['test/setup.ts'],
    // Hang guards only: tests are bounded by count and wait for conditions, and
    // a 2-core machine shared with other work can take minutes for a local file.
    testTimeout: 600_000,
    hookTimeout: 600_000,
    pool: 'forks',
    maxWorkers: 2,
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
