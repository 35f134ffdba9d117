/**
 * The dashboard as its own process (the controller chart's optional dashboard Deployment runs
 * `node dashboard/main.js --in-cluster`): the same command as `flotilla dashboard`. Wiring only.
 */
import { runDashboard } from './command.js';

process.exitCode = await runDashboard(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr });
