/**
 * Imported before the Tracer (lambdas/adapters/observability.ts), because of
 * a side effect of aws-xray-sdk-core: in its default (automatic) mode, merely
 * loading it installs a process-wide async hook (cls-hooked) that runs on
 * every promise, about 12x slower promise-heavy code. Where Powertools will
 * not trace anyway (off Lambda, e.g. local mode and tests, or with
 * POWERTOOLS_TRACE_ENABLED=false) the SDK is loaded in manual mode: no hook.
 * On Lambda with tracing on, automatic mode is what traces the AWS clients.
 */
const tracing = Boolean(process.env.AWS_EXECUTION_ENV) && process.env.POWERTOOLS_TRACE_ENABLED?.toLowerCase() !== 'false';
if (!tracing) process.env.AWS_XRAY_MANUAL_MODE ??= 'true';

export {};
