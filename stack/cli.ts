/**
 * `npm run stack -- <command>`: the local fleet (stack/) as a command, the same one `flotilla dev`,
 * the e2e tests and the benchmarks start.
 *   install            build or reuse the pinned binaries (kube-apiserver, etcd, ...) and exit
 *   up [--dir D] [--registries http,tls,tls-auth] [--registry-implementation distribution-3] [--clusters a,b,c] [--kcm a,b] [--node a]
 *                      (--node a: cluster a gets one real node, stack/node.ts; one per machine)
 *                      start the stack, print its description (JSON) and run until Ctrl-C/SIGTERM
 */
import { ensureBinaries } from './binaries.js';
import { startStack, DEFAULT_CLUSTERS } from './stack.js';
import { REGISTRY_IMPLEMENTATIONS, type RegistryImplementation, type RegistryMode } from './registry.js';

const USAGE =
  'usage: npm run stack -- install [--extras] [--node] | up [--dir D] [--clusters a,b] [--kcm a] [--node a] [--registries http,tls,tls-auth] [--registry-implementation distribution-2|distribution-3]\n';

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

function registryImplementation(value: string | undefined): RegistryImplementation | undefined {
  if (value === undefined || (REGISTRY_IMPLEMENTATIONS as readonly string[]).includes(value)) return value as RegistryImplementation | undefined;
  throw new Error(
    `--registry-implementation: unknown "${value}" (known: distribution-2, Debian's docker-registry; distribution-3, built with install --extras)`,
  );
}

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  if (command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (command === 'install') {
    await ensureBinaries({ extras: args.includes('--extras'), node: args.includes('--node') });
    return 0;
  }
  if (command === 'up') {
    const list = (v: string | undefined) =>
      v
        ?.split(',')
        .map((s) => s.trim())
        .filter(Boolean);
    const stack = await startStack({
      dir: flag(args, '--dir'),
      keepDir: true,
      clusters: list(flag(args, '--clusters')) ?? DEFAULT_CLUSTERS,
      controllerManager: list(flag(args, '--kcm')),
      registries: (list(flag(args, '--registries')) ?? ['http']) as RegistryMode[],
      registryImplementation: registryImplementation(flag(args, '--registry-implementation')),
      node: flag(args, '--node'),
    });
    process.stdout.write(`${JSON.stringify(stack.describe(), null, 2)}\n`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await stack.stop();
    return 0;
  }
  process.stderr.write(USAGE);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`[flotilla-stack] ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
