import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // test/aws deploys to a real account: only `npm run test:aws` runs it (vitest.aws.config.ts).
    exclude: [...configDefaults.exclude, 'test/aws/**'],
    // Quiet unless something fails: no Powertools INFO or EMF lines (test/setup.ts).
    setupFiles: ['test/setup.ts'],
    // Local end-to-end files each start a fleet; give them room on 2 cores.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
