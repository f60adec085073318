#!/usr/bin/env node
// The `fleet` command (package.json "bin"). Fleet is TypeScript run by tsx,
// so this shim loads client/cli.ts through tsx's ESM API: no build step,
// and `npx fleet ...` works from a checkout after `npm ci`.
import { tsImport } from 'tsx/esm/api';

const { run } = await tsImport('../cli.ts', import.meta.url);
await run();
