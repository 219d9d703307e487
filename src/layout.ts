/**
 * What the runtime is told about the tree: the mapping records (for the preload library and
 * the Python hook) and the environment changes (for ld.so and the runtime).
 *
 * Two archive layouts, as users have them:
 *   root:  files as they sat in /var/task      -> sys.path gets the tree root
 *   layer: python/, python/lib/python3.X/site-packages/, nodejs/, lib/, bin/ (a Lambda
 *          layer's layout) -> sys.path gets python/ and each site-packages; PATH gets bin/
 * In either, the node_modules directories (node-layout.ts) go in front of NODE_PATH, for
 * require(), and into SNAPLOADER_NODE_MODULES, for the import hook (layer/nodejs/).
 * Library directories (any holding a lib*.so or lib*.so.N file; lib/ first in the layer
 * layout) are prepended to LD_LIBRARY_PATH: ld.so resolves DT_NEEDED through it, which no
 * preload hook can do (docs/architecture.md).
 */
import { RecordKind, type MapRecordInput } from './mapping-file';
import { nodeModuleDirs } from './node-layout';
import { shallowestFirst, type Plan, type PlannedFile } from './plan';
import type { Tree } from './tree';

export interface Layout {
  kind: 'root' | 'layer';
  records: MapRecordInput[];
  pythonPaths: string[];
  libraryDirs: string[];
  nodeModules: string[];
  /** Environment changes for the runtime, in order. */
  env: [string, string][];
}

const SHARED_LIB = /^lib[^/]*\.so(\.[0-9][0-9.]*)?$/;
const DLOPEN_NAME = /\.so(\.[0-9][0-9.]*)?$/;
const SITE_PACKAGES = /^python\/lib\/python3\.\d+\/site-packages$/;

function prepend(front: string[], existing: string | undefined): string {
  return [...front, ...(existing ? [existing] : [])].join(':');
}

export function computeLayout(plan: Plan, basePath: string, tree: Tree, memfds: Map<PlannedFile, number>, env: Record<string, string | undefined>): Layout {
  const dirs = new Set(plan.dirs.map((d) => d.toString('latin1')));
  const kind = dirs.has('python') || dirs.has('nodejs') ? 'layer' : 'root';
  const finalStr = (rel: string): string => tree.finalPathLatin1(rel);

  // Keys and values as latin1 strings (bytes), not a Buffer each: archives have thousands of files.
  const records: MapRecordInput[] = [];
  const byBasename = new Map<string, string | null>();
  const libDirs = new Set<string>();
  for (const f of plan.files) {
    const rel = f.rel.toString('latin1');
    const final = tree.finalPathLatin1(rel);
    records.push({ kind: RecordKind.Path, key: `${basePath}/${rel}`, value: final });
    const slash = rel.lastIndexOf('/');
    const base = rel.slice(slash + 1);
    if (DLOPEN_NAME.test(base)) byBasename.set(base, byBasename.has(base) ? null : final);
    if (SHARED_LIB.test(base)) libDirs.add(slash < 0 ? '' : rel.slice(0, slash));
  }
  for (const [base, final] of byBasename) {
    if (final !== null) records.push({ kind: RecordKind.DlopenBasename, key: base, value: final });
  }
  for (const [f, fd] of memfds) records.push({ kind: RecordKind.Memfd, key: tree.finalPathLatin1(f.rel.toString('latin1')), value: String(fd) });

  const pythonRel = kind === 'layer' ? [...(dirs.has('python') ? ['python'] : []), ...[...dirs].filter((d) => SITE_PACKAGES.test(d)).sort()] : [''];
  const pythonPaths = pythonRel.map((r) => (r === '' ? tree.targetDir : finalStr(r)));
  for (const p of pythonPaths) records.push({ kind: RecordKind.PythonPath, key: '', value: p });

  const orderedLibDirs = shallowestFirst(libDirs);
  if (kind === 'layer' && dirs.has('lib')) orderedLibDirs.unshift('lib');
  const libraryDirs = [...new Set(orderedLibDirs)].map((r) => (r === '' ? tree.targetDir : finalStr(r)));

  const out: [string, string][] = [];
  if (libraryDirs.length > 0) out.push(['LD_LIBRARY_PATH', prepend(libraryDirs, env.LD_LIBRARY_PATH)]);
  if (kind === 'layer' && dirs.has('bin')) out.push(['PATH', prepend([finalStr('bin')], env.PATH)]);
  const nodeModules = nodeModuleDirs(dirs, env.AWS_EXECUTION_ENV).map(finalStr);
  if (nodeModules.length > 0) {
    out.push(['NODE_PATH', prepend(nodeModules, env.NODE_PATH)]);
    out.push(['SNAPLOADER_NODE_MODULES', nodeModules.join(':')]);
  }
  // Lambda's Python bootstrap only runs layer .pth files when PYTHONPATH is unset; if the user
  // set it anyway, the tree has to ride on it.
  if (env.PYTHONPATH) out.push(['PYTHONPATH', [env.PYTHONPATH, ...pythonPaths].join(':')]);
  return { kind, records, pythonPaths, libraryDirs, nodeModules, env: out };
}
