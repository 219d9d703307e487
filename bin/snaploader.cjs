#!/usr/bin/env node
// The `snaploader` command: runs the bundled tool (build/cli.js), building it first from a
// fresh clone (esbuild, a dependency of the checkout) when it is missing.
'use strict';
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const cli = join(__dirname, '..', 'build', 'cli.js');
if (existsSync(cli)) {
  require(cli).main();
} else {
  import('../build.mjs').then(({ buildCli }) => buildCli(cli)).then(() => require(cli).main(), (err) => {
    process.stderr.write(`snaploader: cannot build the command-line tool (${err.message}): run \`npm ci\` in the checkout first\n`);
    process.exit(1);
  });
}
