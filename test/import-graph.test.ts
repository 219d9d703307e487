/**
 * The project's import graph: no cycles anywhere (src/, bench/, test/), bench/ never reaches
 * into test/, and the init program never reaches into the development tooling in src/dev/.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { crossings, findCycles, importGraph, sourceFiles } from '../src/dev/import-graph';
import { ROOT } from './support/paths';

const rel = (p: string): string => relative(ROOT, p);
const ours = (): string[] => [
  ...sourceFiles(join(ROOT, 'src'), [join(ROOT, 'src', 'native')]),
  ...sourceFiles(join(ROOT, 'bench')),
  ...sourceFiles(join(ROOT, 'test'), [join(ROOT, 'test', 'fixtures')]),
];

describe('the project import graph', () => {
  const graph = importGraph(ours());

  it('has no import cycle in src/, bench/ or test/', () => {
    expect(findCycles(graph).map((c) => c.map(rel).join(' -> '))).toEqual([]);
  });

  it('keeps bench/ out of test/', () => {
    expect(crossings(graph, join(ROOT, 'bench') + '/', join(ROOT, 'test') + '/').map(([a, b]) => `${rel(a)} -> ${rel(b)}`)).toEqual([]);
  });

  it('keeps the development tooling in src/dev/ out of the init program', () => {
    const reachable = [...importGraph([join(ROOT, 'src', 'main.ts')]).keys()].map(rel);
    expect(reachable).toContain('src/main.ts');
    expect(reachable.filter((f) => f.startsWith('src/dev/') || f.startsWith('test/') || f.startsWith('bench/'))).toEqual([]);
  });
});

describe('the import graph reader', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'import-graph-'));
    mkdirSync(join(dir, 'sub'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const write = (name: string, text: string): string => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };

  it('finds a cycle made of type-only imports, re-exports and require calls, and names its path', () => {
    const a = write('a.ts', "import type { B } from './sub/b';\nexport const a = 1;\n");
    const b = write('sub/b.ts', "export { c } from '../c';\nexport type B = number;\n");
    const c = write('c.ts', "const a = require('./a');\nexport const c = a;\n");
    write('e.ts', "import { a } from './a';\n");
    const cycles = findCycles(importGraph(sourceFiles(dir)));
    expect(cycles).toEqual([[a, b, c, a]]);
  });

  it('finds a file that imports itself', () => {
    const a = write('a.ts', "export * from './a';\n");
    expect(findCycles(importGraph([a]))).toEqual([[a, a]]);
  });

  it('ignores package imports, comments and strings that only look like imports', () => {
    const a = write('a.ts', "import { x } from 'node:fs';\n// import { b } from './b';\nconst s = \"import './b'\";\nexport const a = s;\n");
    write('b.ts', "import { a } from './a';\n");
    expect(importGraph([a]).get(a)).toEqual([]);
  });

  it('resolves directories to their index file and refuses an import that leads nowhere', () => {
    const index = write('sub/index.ts', 'export const s = 1;\n');
    const a = write('a.ts', "import { s } from './sub';\n");
    expect(importGraph([a]).get(a)).toEqual([index]);
    const broken = write('broken.ts', "import { s } from './missing';\n");
    expect(() => importGraph([broken])).toThrow(expect.objectContaining({ code: 'IMPORT_UNRESOLVED' }));
  });

  it('lists the imports that cross from one directory into another', () => {
    const b = write('sub/b.ts', 'export const b = 1;\n');
    const a = write('a.ts', "import { b } from './sub/b';\n");
    const graph = importGraph([a]);
    expect(crossings(graph, dir + '/a', join(dir, 'sub') + '/')).toEqual([[a, b]]);
    expect(crossings(graph, join(dir, 'sub') + '/', dir + '/a')).toEqual([]);
  });
});
