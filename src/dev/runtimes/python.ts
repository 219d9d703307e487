import { realpathSync } from 'node:fs';
import { basename } from 'node:path';
import { ensurePythonRuntimeClient, PYTHON_RUNTIME_SRC, pythonVersion, SANDBOX_PYTHON } from '../runtime-deps';
import type { SandboxRuntime } from './runtime';

/** Lambda's Python runtime: the host's CPython as /var/lang/bin/python3, awslambdaric in /var/runtime. */
export const PYTHON: SandboxRuntime = {
  executionEnv: () => `AWS_Lambda_python${pythonVersion()}`,
  runtimeDirs: () => [PYTHON_RUNTIME_SRC, ensurePythonRuntimeClient()],
  langLinks: () => {
    const real = realpathSync(SANDBOX_PYTHON);
    return { python3: real, [basename(real)]: real };
  },
  // The Python runtimes ship no Node.js (the init program must run on the Node layer's), and
  // none of the third-party packages Debian installs for its python3 (numpy among them): a
  // function must find those in its archive, as on Lambda.
  hidden: () => ['/usr/bin/node', '/usr/lib/python3/dist-packages', `/usr/lib/python${pythonVersion()}/dist-packages`, `/usr/local/lib/python${pythonVersion()}/dist-packages`],
  environment: () => ({}),
};
