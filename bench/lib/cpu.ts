import { readFileSync } from 'node:fs';

const TICKS_PER_S = 100; // USER_HZ on Linux

/** CPU time (user + system, ms) used so far by process `pid` (all its threads), from /proc. */
export function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[11], fields[12] are utime and stime (fields 14 and 15 of stat(5)).
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_S;
  } catch {
    return Number.NaN;
  }
}

/** This process's CPU time (ms), all threads. */
export function selfCpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

/** Measures the CPU (ms) that `pids` (and this process) spend while `fn` runs. */
export async function withCpu<T>(pids: readonly number[], fn: () => Promise<T>): Promise<{ result: T; selfMs: number; pidMs: number[] }> {
  const self0 = selfCpuMs();
  const pid0 = pids.map(processCpuMs);
  const result = await fn();
  return { result, selfMs: selfCpuMs() - self0, pidMs: pids.map((pid, i) => processCpuMs(pid) - pid0[i]!) };
}

/** `load average` and the busiest other processes: how noisy the machine is right now. */
export function machineLoad(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return 'n/a';
  }
}
