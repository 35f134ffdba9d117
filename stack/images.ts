import { execFile } from 'node:child_process';
import { copyFile, mkdir, rm, symlink, writeFile, chmod } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * The node's images, built without Docker Hub: files from this machine packed into a layer with `tar`
 * and turned into an OCI image with crane, pushed to the stack's plain-HTTP registry.
 *   busybox: Debian busybox-static's binary and its applet links, /etc/passwd, /tmp
 *   pause:   the sandbox process built by stack/tools/install.sh --node (stack/tools/pause)
 */

/** Repository path (under the registry host) of the node's images. */
export const NODE_IMAGE_REPO = 'flotilla-node';
/** Tags of the images {@link pushNodeImages} pushes. */
export const BUSYBOX_TAG = 'busybox:1.35';
export const PAUSE_TAG = 'pause:1';

/** Runs crane against the plain-HTTP registry, failing with its stderr. */
export async function crane(cranePath: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run(cranePath, [...args, '--insecure'], { maxBuffer: 16 * 1024 * 1024 });
    return stdout.trim();
  } catch (err) {
    throw new Error(`crane ${args[0]} failed: ${((err as { stderr?: string }).stderr ?? String(err)).trim()}`);
  }
}

/** Packs `root` into a reproducible tar (owner root, mtime 0). */
export async function tarDir(root: string, out: string): Promise<void> {
  await run('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-C', root, '-cf', out, '.']);
}

/** Builds an image from the single layer `layerTar` with an entrypoint/cmd and pushes it as `ref`; returns its digest. */
export async function pushImage(
  cranePath: string,
  layerTar: string,
  ref: string,
  config: { entrypoint?: string[]; cmd?: string[]; env?: string[] },
): Promise<string> {
  await crane(cranePath, ['append', '--platform', 'linux/amd64', '-f', layerTar, '-t', ref]);
  const args = ['mutate', ref, '--set-platform', 'linux/amd64'];
  if (config.entrypoint) args.push('--entrypoint', config.entrypoint.join(','));
  if (config.cmd) args.push('--cmd', config.cmd.join(','));
  for (const e of config.env ?? []) args.push('--env', e);
  await crane(cranePath, args);
  return await crane(cranePath, ['digest', ref]);
}

async function busyboxRoot(busybox: string, root: string, extraFiles: Record<string, string>): Promise<void> {
  await rm(root, { recursive: true, force: true });
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'tmp', 'var/www']) await mkdir(join(root, d), { recursive: true });
  await chmod(join(root, 'tmp'), 0o1777);
  await copyFile(busybox, join(root, 'bin', 'busybox'));
  await chmod(join(root, 'bin', 'busybox'), 0o755);
  const { stdout } = await run(busybox, ['--list-full']);
  for (const applet of stdout.split('\n').filter((a) => a !== '' && a !== 'bin/busybox')) {
    await mkdir(dirname(join(root, applet)), { recursive: true });
    // Absolute: inside the container it resolves against the image's root.
    await symlink('/bin/busybox', join(root, applet)).catch(() => undefined);
  }
  await writeFile(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  await writeFile(join(root, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
  await writeFile(join(root, 'var', 'www', 'index.html'), 'flotilla node\n');
  for (const [path, content] of Object.entries(extraFiles)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), content);
  }
}

/** Builds a busybox image (optionally with extra files, for a second, different image) and pushes it as `ref`. */
export async function pushBusybox(o: { crane: string; busybox: string; workDir: string; ref: string; extraFiles?: Record<string, string> }): Promise<string> {
  const root = join(o.workDir, 'busybox-root');
  await busyboxRoot(o.busybox, root, o.extraFiles ?? {});
  const tar = join(o.workDir, 'busybox.tar');
  await tarDir(root, tar);
  return await pushImage(o.crane, tar, o.ref, { cmd: ['sh'], env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'] });
}

/** Builds the busybox and pause images and pushes them to `registryHost`; returns their references there. */
export async function pushNodeImages(o: {
  crane: string;
  busybox: string;
  pause: string;
  workDir: string;
  registryHost: string;
}): Promise<{ busybox: string; pause: string }> {
  await mkdir(o.workDir, { recursive: true });
  const busybox = `${o.registryHost}/${NODE_IMAGE_REPO}/${BUSYBOX_TAG}`;
  await pushBusybox({ crane: o.crane, busybox: o.busybox, workDir: o.workDir, ref: busybox });
  const pauseRoot = join(o.workDir, 'pause-root');
  await rm(pauseRoot, { recursive: true, force: true });
  await mkdir(pauseRoot, { recursive: true });
  await copyFile(o.pause, join(pauseRoot, 'pause'));
  await chmod(join(pauseRoot, 'pause'), 0o755);
  await tarDir(pauseRoot, join(o.workDir, 'pause.tar'));
  const pause = `${o.registryHost}/${NODE_IMAGE_REPO}/${PAUSE_TAG}`;
  await pushImage(o.crane, join(o.workDir, 'pause.tar'), pause, { entrypoint: ['/pause'] });
  return { busybox, pause };
}
