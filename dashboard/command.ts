import { parseArgs } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeClient } from '../lib/kube/client.js';
import { createLogger } from '../lib/log.js';
import { kubeActions } from './actions.js';
import { kubeReleases } from './releases.js';
import { isLoopback, startDashboardServer, type DashboardServer } from './server.js';
import { InformerFleetSource } from './store.js';

/**
 * `flotilla dashboard`: serves the fleet dashboard on a local port with the caller's kubeconfig identity
 * (or, with --in-cluster, the pod's ServiceAccount). Read-only unless --enable-actions.
 */

/** Where the dashboard listens unless told otherwise. */
export const DEFAULT_DASHBOARD_PORT = 8420;

export const DASHBOARD_USAGE = `Usage: flotilla dashboard [--kubeconfig FILE] [--context NAME] [--port PORT] [--address ADDR] [--enable-actions]
       flotilla dashboard --in-cluster [--port PORT] [--address ADDR]

Serves a web dashboard of the fleet: GitRepos, a Bundle x Cluster matrix grouped by ClusterGroup, and
a page per Cluster and per Bundle (with its rollout, version history and diffs of two versions),
updated live from watches made with your own credentials.

Options:
      --kubeconfig FILE   kubeconfig to use (default $KUBECONFIG or ~/.kube/config)
      --context NAME      kubeconfig context
      --port PORT         port to listen on (default ${DEFAULT_DASHBOARD_PORT}; 0 picks a free one)
      --address ADDR      address to listen on (default 127.0.0.1: only this machine can connect)
      --enable-actions    offer pause, resume and force sync of GitRepos, done with your credentials
                          (RBAC decides; each asks for confirmation)
      --in-cluster        use the pod's ServiceAccount (the controller chart's dashboard); read-only
  -h, --help              print this help

Exit codes: 0 stopped by a signal, 1 failure, 2 usage error.
`;

/** Where the command writes. */
export interface DashboardIO {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

/** Parsed options of the command. */
export interface DashboardOptions {
  kubeconfig?: string;
  context?: string;
  port: number;
  address: string;
  enableActions: boolean;
  inCluster: boolean;
}

const OPTIONS = {
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
  port: { type: 'string' },
  address: { type: 'string' },
  'enable-actions': { type: 'boolean' },
  'in-cluster': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const parseValues = (argv: string[]) => parseArgs({ args: argv, options: OPTIONS }).values;

/** Parses argv; returns a usage error message instead of options when they are wrong, or 'help'. */
export function parseDashboardArgs(argv: string[]): DashboardOptions | 'help' | { error: string } {
  let values: ReturnType<typeof parseValues>;
  try {
    values = parseValues(argv);
  } catch (err) {
    return { error: (err as Error).message };
  }
  if (values.help) return 'help';
  const port = Number(values.port ?? DEFAULT_DASHBOARD_PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535) return { error: `--port must be a port number (0-65535), not "${values.port}"` };
  const inCluster = values['in-cluster'] === true;
  if (inCluster && (values.kubeconfig || values.context)) return { error: '--in-cluster uses the pod ServiceAccount: drop --kubeconfig and --context' };
  if (inCluster && values['enable-actions'])
    return { error: "--in-cluster refuses --enable-actions: actions would run as the dashboard's ServiceAccount, not as the person clicking" };
  return {
    ...(values.kubeconfig ? { kubeconfig: values.kubeconfig } : {}),
    ...(values.context ? { context: values.context } : {}),
    port,
    address: values.address ?? '127.0.0.1',
    enableActions: values['enable-actions'] === true,
    inCluster,
  };
}

function kubeConfigFor(o: DashboardOptions): { kc: KubeConfig; label: string } {
  const kc = new KubeConfig();
  if (o.inCluster) {
    kc.loadFromCluster();
    return { kc, label: 'in-cluster ServiceAccount' };
  }
  if (o.kubeconfig) kc.loadFromFile(o.kubeconfig);
  else kc.loadFromDefault();
  if (o.context) kc.setCurrentContext(o.context);
  return { kc, label: `context ${kc.getCurrentContext()}` };
}

/** Starts the dashboard (watches, then the server); the caller closes what it returns. */
export async function startDashboard(o: DashboardOptions, io: DashboardIO): Promise<{ server: DashboardServer; stop(): Promise<void> }> {
  // The command's own lines go to stdout; the log (watch retries, actions) to stderr, quieter on a terminal.
  const log = createLogger({ name: 'dashboard', level: o.inCluster ? 'info' : 'warn', destination: process.stderr });
  const { kc, label } = kubeConfigFor(o);
  const kube = await KubeClient.fromKubeConfig(kc);
  const source = new InformerFleetSource(kube, log);
  source.start();
  try {
    await source.waitForSync(30_000);
  } catch (err) {
    io.stderr.write(`flotilla dashboard: ${(err as Error).message}; serving what can be listed, retrying the rest\n`);
  }
  const server = await startDashboardServer({
    source,
    ...(o.enableActions ? { actions: kubeActions(kube) } : {}),
    releases: kubeReleases(kube, log),
    address: o.address,
    port: o.port,
    context: label,
    log,
  });
  if (!isLoopback(o.address)) {
    io.stderr.write(
      `flotilla dashboard: listening on ${o.address}, not loopback: anyone who reaches it sees the fleet as ${label}; put an authenticating proxy in front\n`,
    );
  }
  io.stdout.write(`flotilla dashboard: ${server.url} (${label}, ${o.enableActions ? 'actions enabled' : 'read-only'}); Ctrl-C stops it\n`);
  return {
    server,
    async stop() {
      await server.close();
      await source.stop();
      await kube.close();
    },
  };
}

/** Runs `flotilla dashboard` until SIGINT or SIGTERM. */
export async function runDashboard(argv: string[], io: DashboardIO): Promise<number> {
  const parsed = parseDashboardArgs(argv);
  if (parsed === 'help') {
    io.stdout.write(DASHBOARD_USAGE);
    return 0;
  }
  if ('error' in parsed) {
    io.stderr.write(`flotilla dashboard: ${parsed.error}\n\n${DASHBOARD_USAGE}`);
    return 2;
  }
  let running: Awaited<ReturnType<typeof startDashboard>>;
  try {
    running = await startDashboard(parsed, io);
  } catch (err) {
    io.stderr.write(`flotilla dashboard: ${(err as Error).message}\n`);
    return 1;
  }
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await running.stop();
  return 0;
}
