import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';

/** The machine the figures come from: CPU model, cores, memory, Node version, load when the run started. */
export function machine(): { cpuModel: string; nproc: number; memoryBytes: number; node: string; loadAvg: string; kernel: string } {
  let cpuModel = cpus()[0]?.model ?? 'unknown';
  try {
    cpuModel = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpuModel;
  } catch {
    /* not Linux */
  }
  let loadAvg = '';
  let kernel = '';
  try {
    loadAvg = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    /* not Linux */
  }
  try {
    kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {
    /* not Linux */
  }
  return { cpuModel, nproc: availableParallelism(), memoryBytes: totalmem(), node: process.version, loadAvg, kernel };
}
