/** `npm run test:aws` (see runner.ts and the README's "Testing against AWS"). */
import { main } from './runner';

// The SDK's Node.js version notice would only clutter the run's output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
process.exitCode = await main(process.argv.slice(2));
