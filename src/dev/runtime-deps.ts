/**
 * The real parts the Lambda sandbox runs, fetched from their registries once and cached
 * (./cache.ts): the AWS Lambda Runtime Interface Emulator (Go module proxy) and the Python
 * runtime interface client with its dependencies (PyPI, hash-pinned).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cached } from './cache';
import { ROOT } from './paths';

/** The emulator's Go module and the version pinned (go.sum checks it against the checksum database). */
export const RIE_MODULE = 'github.com/aws/aws-lambda-runtime-interface-emulator';
export const RIE_VERSION = 'v0.0.0-20261030222936-bef5c4ba774d';

/** The interpreter the sandbox's Python runtime uses (/var/lang/bin/python3 links to it). */
export const SANDBOX_PYTHON = '/usr/bin/python3';

export const PYTHON_RUNTIME_SRC = join(ROOT, 'test', 'support', 'sandbox', 'python');

function sh(cmd: string, args: string[], env: Record<string, string> = {}): void {
  try {
    execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env }, timeout: 15 * 60 * 1000 });
  } catch (err) {
    const e = err as { stderr?: Buffer; stdout?: Buffer; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message}\n${e.stdout?.toString() ?? ''}${e.stderr?.toString() ?? ''}`);
  }
}

/** The aws-lambda-rie binary, built with `go install` from the pinned module version. */
export function ensureRie(): string {
  const dir = cached(`aws-lambda-rie-${RIE_VERSION}`, (out) => {
    sh('go', ['install', `${RIE_MODULE}/cmd/aws-lambda-rie@${RIE_VERSION}`], { GOBIN: out, CGO_ENABLED: '0', GOFLAGS: '-mod=mod' });
  });
  return join(dir, 'aws-lambda-rie');
}

/** "3.11" for the sandbox's interpreter. */
export function pythonVersion(python = SANDBOX_PYTHON): string {
  return execFileSync(python, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])']).toString().trim();
}

/**
 * Installs a hash-pinned requirements file's wheels with `pip install --target` for the
 * sandbox's interpreter and this machine's architecture (manylinux wheels only), cached under
 * a key made of `name`, the interpreter version and the file's content.
 */
export function pipTarget(name: string, requirements: string): string {
  const py = pythonVersion();
  const digest = createHash('sha256').update(readFileSync(requirements)).digest('hex').slice(0, 12);
  return cached(`${name}-cp${py.replace('.', '')}-${digest}`, (out) => {
    const platforms = ['manylinux2014_x86_64', 'manylinux_2_17_x86_64', 'manylinux_2_27_x86_64', 'manylinux_2_28_x86_64', 'manylinux1_x86_64', 'manylinux_2_5_x86_64'];
    sh('python3', ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--no-deps', '--require-hashes', '--only-binary=:all:',
      '--python-version', py, '--implementation', 'cp', ...platforms.flatMap((p) => ['--platform', p]),
      '--target', out, '-r', requirements], { PIP_ROOT_USER_ACTION: 'ignore' });
  });
}

/** The Python runtime interface client (awslambdaric, snapshot_restore_py), for /var/runtime. */
export function ensurePythonRuntimeClient(): string {
  return pipTarget('python-runtime-client', join(PYTHON_RUNTIME_SRC, 'requirements.txt'));
}
