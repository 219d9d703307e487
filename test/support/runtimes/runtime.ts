// Moved to src/dev/runtimes/ so that the snaploader command (src/cli/run.ts) can use it too.
export * from '../../../src/dev/runtimes/runtime';
