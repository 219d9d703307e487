// The project's paths live with the development tooling (src/dev/), which bench/ uses too.
export * from '../../src/dev/paths';
