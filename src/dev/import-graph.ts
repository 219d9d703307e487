/**
 * The project's own import graph (development tooling, never part of the layer): which of
 * our files each file imports, so that tests can refuse import cycles and imports that
 * cross the boundaries the architecture draws (bench/ never reaches into test/; the init
 * program never reaches into src/dev/).
 *
 * Every form counts, type-only imports included: `import`, `import type`, `export ... from`,
 * `import()` and `require()`. Only relative specifiers are followed; packages are not ours.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { preProcessFile } from 'typescript';

const SOURCE = /\.(ts|mts|cts|mjs|cjs|js)$/;
const EXTENSIONS = ['.ts', '.mts', '.cts', '.mjs', '.cjs', '.js'];

export class ImportGraphError extends Error {
  readonly code = 'IMPORT_UNRESOLVED';
}

/** Absolute file path -> the absolute paths of the project files it imports. */
export type ImportGraph = Map<string, string[]>;

/** The source files under `dir`, recursively, skipping `node_modules` and the directories in `skip`. */
export function sourceFiles(dir: string, skip: string[] = []): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (name === 'node_modules' || skip.includes(resolve(path))) continue;
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path, skip));
    else if (SOURCE.test(name) && !name.endsWith('.d.ts')) out.push(resolve(path));
  }
  return out;
}

/** Where a relative specifier in `from` leads, as the bundler and ts-jest resolve it. */
function resolveSpecifier(from: string, specifier: string): string {
  const base = resolve(from, '..', specifier);
  const candidates = [base, ...EXTENSIONS.map((e) => base + e), ...EXTENSIONS.map((e) => join(base, `index${e}`))];
  const found = candidates.find((c) => existsSync(c) && statSync(c).isFile());
  if (!found) throw new ImportGraphError(`${from} imports ${specifier}, which is no file: fix the import (tried ${relative(process.cwd(), base)}{,${EXTENSIONS.join(',')}})`);
  return found;
}

/** The project files `file` imports directly. */
export function importsOf(file: string): string[] {
  const info = preProcessFile(readFileSync(file, 'utf8'), true, true);
  const specifiers = info.importedFiles.map((f) => f.fileName).filter((s) => s.startsWith('./') || s.startsWith('../'));
  return [...new Set(specifiers.map((s) => resolveSpecifier(file, s)))];
}

/** The graph from `files` and everything they import, transitively. */
export function importGraph(files: string[]): ImportGraph {
  const graph: ImportGraph = new Map();
  const todo = [...files];
  for (let file = todo.pop(); file !== undefined; file = todo.pop()) {
    if (graph.has(file)) continue;
    const deps = importsOf(file);
    graph.set(file, deps);
    todo.push(...deps);
  }
  return graph;
}

/**
 * Every cycle, one per strongly connected component (Tarjan), each as the file path that goes
 * round it and back to its first file. Empty when the graph has none.
 */
export function findCycles(graph: ImportGraph): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) !== index.get(v)) return;
    const component = new Set<string>();
    for (let w = stack.pop()!; ; w = stack.pop()!) {
      onStack.delete(w);
      component.add(w);
      if (w === v) break;
    }
    const selfLoop = (graph.get(v) ?? []).includes(v);
    if (component.size > 1 || selfLoop) cycles.push(pathRound(graph, v, component));
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return cycles;
}

/** A shortest path from `start` back to itself inside `component` (breadth-first). */
function pathRound(graph: ImportGraph, start: string, component: Set<string>): string[] {
  const previous = new Map<string, string>();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const v = queue[i];
    for (const w of graph.get(v) ?? []) {
      if (!component.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let u = v; u !== start; u = previous.get(u)!) path.splice(1, 0, u);
        return [...path, start];
      }
      if (!previous.has(w)) {
        previous.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

/** The edges `from` -> `to` where `from` matches `fromPrefix` and `to` matches `toPrefix` (absolute paths). */
export function crossings(graph: ImportGraph, fromPrefix: string, toPrefix: string): [string, string][] {
  const out: [string, string][] = [];
  for (const [from, deps] of graph) {
    if (!from.startsWith(fromPrefix)) continue;
    for (const to of deps) if (to.startsWith(toPrefix)) out.push([from, to]);
  }
  return out;
}
