// The asynchronous module customization hooks (module.register, Node.js 20.6 to 22.14), run on
// Node's hooks thread: see resolve.mjs.
import { parentURLs, retryable } from './resolve.mjs';

let parents = [];

export function initialize(data) {
  parents = parentURLs(data?.dirs ?? []);
}

export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (err) {
    if (!retryable(specifier, context, err)) throw err;
    for (const parentURL of parents) {
      try {
        return await nextResolve(specifier, { ...context, parentURL });
      } catch (again) {
        if (again?.code !== 'ERR_MODULE_NOT_FOUND') throw again;
      }
    }
    throw err;
  }
}
