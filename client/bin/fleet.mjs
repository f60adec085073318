#!/usr/bin/env node
// The `fleet` command (package.json "bin"). The installed package runs the
// compiled CLI (dist/client/cli.js, `npm run build`): plain JavaScript, no
// compiler at run time. A checkout of the repository runs the TypeScript
// sources through tsx instead, so `npx fleet` there never runs a stale build.
import { existsSync } from 'node:fs';

const source = new URL('../cli.ts', import.meta.url);
const { run } = existsSync(source)
  ? await (await import('tsx/esm/api')).tsImport(source.href, import.meta.url)
  : await import('../../dist/client/cli.js');
await run();
