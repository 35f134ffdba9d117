/**
 * `flotilla dashboard`: the command lives beside the server in dashboard/command.ts (the image runs it
 * without the CLI); this is its entry in the CLI's command table.
 */
export { DASHBOARD_USAGE, runDashboard } from '../dashboard/command.js';
