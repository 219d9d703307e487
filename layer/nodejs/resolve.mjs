// How an ES module `import` finds a package in the archive: ES module resolution ignores
// NODE_PATH, so a bare specifier that Node's own resolution did not find (the function's own
// node_modules, and every node_modules above the importing file, come first) is resolved again
// as if it were imported from beside each of the archive's node_modules directories, in the
// order snaploader gave them in SNAPLOADER_NODE_MODULES. CommonJS `require` is left alone:
// NODE_PATH serves it.
import { pathToFileURL } from 'node:url';

/** Relative, absolute, URL-like (node:, file:, data:) and #subpath specifiers are not packages. */
const NOT_A_PACKAGE = /^(?:\.{0,2}\/|[a-zA-Z][a-zA-Z\d+.-]*:|#)/;

/** The archive's node_modules directories, from SNAPLOADER_NODE_MODULES (colon-separated). */
export function archiveDirs(value) {
  return (value ?? '').split(':').filter((d) => d.startsWith('/'));
}

/** parentURL values that make Node's resolver look in each directory's node_modules first. */
export function parentURLs(dirs) {
  return dirs.map((d) => new URL('./', pathToFileURL(d.replace(/\/+$/, ''))).href);
}

/** Whether a failed resolution may be retried in the archive. */
export function retryable(specifier, context, err) {
  return err?.code === 'ERR_MODULE_NOT_FOUND' && !NOT_A_PACKAGE.test(specifier) && !(context.conditions ?? []).includes('require');
}
