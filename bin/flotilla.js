#!/usr/bin/env node
// The `flotilla` command. Runs the TypeScript sources through tsx (a runtime dependency), so a checkout
// works without a build step.
import { register } from 'tsx/esm/api';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

register();
const here = dirname(fileURLToPath(import.meta.url));
const { main } = await import(join(here, '..', 'cli', 'main.ts'));
process.exitCode = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr });
