/**
 * Which of the archive's directories a Node.js runtime is told about (src/node-layout.ts), and
 * in which order: the order is the precedence require() (NODE_PATH) and import (the hook) use.
 */
import { nodeModuleDirs } from '../src/node-layout';

const dirs = (...d: string[]) => new Set(d);

describe('the node_modules directories of an archive', () => {
  test('root layout: node_modules at the top, as in /var/task', () => {
    expect(nodeModuleDirs(dirs('node_modules', 'node_modules/ms', 'lib'), 'AWS_Lambda_nodejs22.x')).toEqual(['node_modules']);
  });

  test("layer layout: the runtime's own nodeNN directory before nodejs/node_modules, other versions left out", () => {
    const layer = dirs('nodejs', 'nodejs/node_modules', 'nodejs/node20', 'nodejs/node20/node_modules', 'nodejs/node22', 'nodejs/node22/node_modules');
    expect(nodeModuleDirs(layer, 'AWS_Lambda_nodejs22.x')).toEqual(['nodejs/node22/node_modules', 'nodejs/node_modules']);
    expect(nodeModuleDirs(layer, 'AWS_Lambda_nodejs20.x')).toEqual(['nodejs/node20/node_modules', 'nodejs/node_modules']);
  });

  test('outside a Node.js runtime every nodeNN directory counts, newest first', () => {
    const layer = dirs('nodejs/node_modules', 'nodejs/node20/node_modules', 'nodejs/node22/node_modules', 'nodejs/node8/node_modules');
    expect(nodeModuleDirs(layer, 'AWS_Lambda_python3.12')).toEqual(['nodejs/node22/node_modules', 'nodejs/node20/node_modules', 'nodejs/node8/node_modules', 'nodejs/node_modules']);
    expect(nodeModuleDirs(layer, undefined)).toHaveLength(4);
  });

  test('both layouts in one archive: the root one first, as the function code comes before layers', () => {
    expect(nodeModuleDirs(dirs('node_modules', 'nodejs/node_modules'), 'AWS_Lambda_nodejs22.x')).toEqual(['node_modules', 'nodejs/node_modules']);
  });

  test('none for an archive without them (a nested node_modules is a package\'s own)', () => {
    expect(nodeModuleDirs(dirs('python', 'lib', 'pkg/node_modules', 'nodejs/lib'), 'AWS_Lambda_nodejs22.x')).toEqual([]);
  });
});
