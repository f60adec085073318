import { defineConfig } from 'vitest/config';

/**
 * `npm run test:aws` only (test/aws/run.ts starts it once a scratch stack is
 * deployed): the end-to-end scenarios against AWS, one file, in order.
 */
export default defineConfig({
  test: {
    include: ['test/aws/**/*.test.ts'],
    testTimeout: 10 * 60_000,
    hookTimeout: 10 * 60_000,
    pool: 'forks',
    maxWorkers: 1,
    fileParallelism: false,
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
