// The C toolchain lives with the development tooling (src/dev/), which bench/ uses too.
export * from '../../src/dev/zig';
