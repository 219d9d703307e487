/**
 * Where a Node.js runtime finds the archive's packages, in both layouts users have:
 *   root:  node_modules/                                  (as in /var/task)
 *   layer: nodejs/node<major>/node_modules/, nodejs/node_modules/   (a Lambda layer's layout)
 * The order is the precedence: the root layout's node_modules (the function's own code) first,
 * then the layer layout's directories in the order Lambda's NODE_PATH gives /opt's. Only the
 * nodeNN directory of the runtime's own major version counts, as on Lambda; that version comes
 * from AWS_EXECUTION_ENV (AWS_Lambda_nodejs22.x). When it is not a Node.js runtime's, every
 * nodeNN directory is listed, newest first.
 */

const NODE_VERSION_DIR = /^nodejs\/node(\d+)\/node_modules$/;
const NODE_RUNTIME = /^AWS_Lambda_nodejs(\d+)\./;

/** The tree-relative node_modules directories to search, in order, given the archive's directories. */
export function nodeModuleDirs(dirs: ReadonlySet<string>, executionEnv: string | undefined): string[] {
  const out: string[] = [];
  if (dirs.has('node_modules')) out.push('node_modules');
  const major = NODE_RUNTIME.exec(executionEnv ?? '')?.[1];
  const versioned = [...dirs]
    .map((d) => NODE_VERSION_DIR.exec(d))
    .filter((m): m is RegExpExecArray => m !== null && (major === undefined || m[1] === major))
    .sort((a, b) => Number(b[1]) - Number(a[1]))
    .map((m) => m[0]);
  out.push(...versioned);
  if (dirs.has('nodejs/node_modules')) out.push('nodejs/node_modules');
  return out;
}
