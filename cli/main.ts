import { runRender, type RenderIO } from './render.js';
import { runStatus } from './status.js';
import { runDev } from './dev.js';
import { runHistory } from './history.js';
import { runRollback } from './rollback.js';
import { runDiff } from './diff.js';
import { runDashboard } from './dashboard.js';
import { runImages } from './images.js';
import { runAirgap } from './airgap.js';

/** The top-level usage of the `flotilla` command. */
export const USAGE = `Usage: flotilla <command> [options]

Commands:
  dev up | dev down   start (or stop) a local fleet with OCI storage: 3 clusters, registry, git, controller, agents
  status              GitRepos, Bundles and Clusters of an upstream cluster, with states and artifact digests
  render DIR          print what a cluster with given labels would receive from the bundle in DIR (offline)
  history NAME        retained versions of a Bundle (or of a GitRepo's Bundles) and the clusters running each
  diff BUNDLE vA vB   files and rendered objects that differ between two versions of a bundle
  rollback NAME       run an older version on some clusters without touching git (--to vN | --clear)
  images NAME         the images lock of a Bundle's version (digests, platforms, relocated copies)
  airgap export|import  carry bundle versions and their locked images across an air gap (OCI layout)
  dashboard           serve a web dashboard of the fleet (live, read-only unless --enable-actions)

Run 'flotilla <command> --help' for a command's options.
Exit codes: 0 ok, 1 failure, 2 usage error (status: 3 when something is not Ready).
`;

/** Dispatches to a command; returns the exit code. */
export async function main(argv: string[], io: RenderIO): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'render':
      return await runRender(rest, io);
    case 'status':
      return await runStatus(rest, io);
    case 'dev':
      return await runDev(rest, io);
    case 'history':
      return await runHistory(rest, io);
    case 'diff':
      return await runDiff(rest, io);
    case 'rollback':
      return await runRollback(rest, io);
    case 'images':
      return await runImages(rest, io);
    case 'airgap':
      return await runAirgap(rest, io);
    case 'dashboard':
      return await runDashboard(rest, io);
    case '-h':
    case '--help':
    case 'help':
      io.stdout.write(USAGE);
      return 0;
    default:
      io.stderr.write(command ? `flotilla: unknown command ${command}\n\n${USAGE}` : USAGE);
      return 2;
  }
}
