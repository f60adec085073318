/**
 * Every test file starts with this (vitest.config.ts `setupFiles`): `npm test`
 * prints only what fails.
 *
 * Powertools' logger and metrics read POWERTOOLS_* once, when a handler module
 * is first imported. A test that imports one (directly, or through
 * lambdas/adapters/clients) before a local fleet sets those variables would
 * print an EMF metrics blob per invocation and an INFO line per batch. Tests
 * that check those lines set the variables themselves before importing the
 * handlers (test/unit/batch-metrics.test.ts, worker-observability.test.ts).
 * A value set outside the suite wins: `POWERTOOLS_LOG_LEVEL=DEBUG npx vitest
 * run <file>` shows every line.
 */
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
