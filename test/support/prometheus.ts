/** Whether Debian's Prometheus is installed (hyper_monitor runs it; scripts/install-system-deps.sh installs it). */
import { execFileSync } from 'node:child_process';

export function havePrometheus(): boolean {
  try {
    execFileSync('prometheus', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
