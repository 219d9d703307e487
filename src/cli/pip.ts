/**
 * `pack requirements.txt`: pip installs the requirements for the function's platform, not
 * the machine's: manylinux wheels for the runtime's Python, architecture and glibc, binary
 * only, without compiling bytecode with the machine's interpreter.
 */
import { spawn } from 'node:child_process';
import { CliError, EXIT } from './errors';
import type { Runtime } from './runtimes';

export type Arch = 'x86_64' | 'arm64';

/** The manylinux platform tags a runtime's OS can load, newest first. */
export function platformTags(runtime: Runtime, arch: Arch): string[] {
  const machine = arch === 'arm64' ? 'aarch64' : 'x86_64';
  const tags: string[] = [];
  for (let minor = runtime.glibcMinor!; minor >= 17; minor--) tags.push(`manylinux_2_${minor}_${machine}`);
  return [...tags, `manylinux2014_${machine}`];
}

export function pipArgs(requirements: string, target: string, runtime: Runtime, arch: Arch): string[] {
  return ['install', '--requirement', requirements, '--target', target, '--only-binary=:all:', '--implementation', 'cp',
    '--python-version', runtime.pythonVersion!, ...platformTags(runtime, arch).flatMap((p) => ['--platform', p]),
    '--no-compile', '--disable-pip-version-check', '--no-input'];
}

/** Runs pip (`pipCommand`, e.g. `python3 -m pip`); its output goes to stderr, so --json stays clean. */
export function pipInstall(pipCommand: string, requirements: string, target: string, runtime: Runtime, arch: Arch): Promise<void> {
  const [cmd, ...pre] = pipCommand.trim().split(/\s+/);
  const args = [...pre, ...pipArgs(requirements, target, runtime, arch)];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', process.stderr, process.stderr] });
    child.on('error', (err) => reject(new CliError('PIP_FAILED', `cannot run ${cmd}: ${err.message}; install pip, or name it with --pip`, EXIT.PIP)));
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new CliError('PIP_FAILED', `pip could not install ${requirements} for ${runtime.name} on ${arch} ` +
        `(${signal ? `killed by ${signal}` : `exit ${code}`}): see its output above; every requirement needs a binary wheel for that platform`, EXIT.PIP));
    });
  });
}
