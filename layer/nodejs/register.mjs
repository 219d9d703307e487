// Imported into every Node.js runtime process that snaploader starts with an archive, through
// NODE_OPTIONS=--import (wrapper.sh puts it in front of the user's NODE_OPTIONS). With the
// archive's node_modules directories in SNAPLOADER_NODE_MODULES, it registers the resolve
// hook that lets `import` find packages there (resolve.mjs); otherwise it does nothing.
// Node.js 22.15+ / 23.5+ run the hook in the loading thread (module.registerHooks); older
// ones (20.6+) on Node's hooks thread (module.register).
import module from 'node:module';
import { archiveDirs, parentURLs, retryable } from './resolve.mjs';

const dirs = archiveDirs(process.env.SNAPLOADER_NODE_MODULES);

if (dirs.length > 0) {
  if (typeof module.registerHooks === 'function') {
    const parents = parentURLs(dirs);
    module.registerHooks({
      resolve(specifier, context, nextResolve) {
        try {
          return nextResolve(specifier, context);
        } catch (err) {
          if (!retryable(specifier, context, err)) throw err;
          for (const parentURL of parents) {
            try {
              return nextResolve(specifier, { ...context, parentURL });
            } catch (again) {
              if (again?.code !== 'ERR_MODULE_NOT_FOUND') throw again;
            }
          }
          throw err;
        }
      },
    });
  } else if (typeof module.register === 'function') {
    module.register('./hooks.mjs', import.meta.url, { data: { dirs } });
  } else {
    process.stderr.write(`snaploader: warning: Node.js ${process.version} has no module customization hooks (20.6 or later): ` +
      'import of packages in the archive will not resolve; require() still does (NODE_PATH)\n');
  }
}
