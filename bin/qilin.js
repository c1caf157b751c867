#!/usr/bin/env node
// The `qilin` executable: runs the compiled CLI from dist/ (built by `npm run build`).
import { existsSync } from 'node:fs';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write(
    'qilin: not built yet. Run `npm ci && npm run build` in the checkout first.\n',
  );
  process.exit(1);
}
await import(entry.href);
