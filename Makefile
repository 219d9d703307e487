# snaploader: `make demo` and `make test` work on a fresh machine (Debian, Node 20, root or sudo).
SHELL := /bin/bash
.DEFAULT_GOAL := build
NPM_STAMP := node_modules/.install-stamp
SYSTEM_STAMP := .cache/system-deps-stamp
# Debian packages the build and the tests use: patch for our change to libdeflate, zip for the
# layer, shellcheck for the wrapper, python3-dev and python3-numpy for the real-CPython tests,
# unzip and util-linux (unshare), clang and its runtime for the libFuzzer targets (ASan, UBSan),
# qemu-user-static to run the arm64 layer under emulation (test/arm64.test.ts), python3-pip for
# the wheels the tests and `snaploader pack` install, cmake, g++ and make for the Node.js runtime
# interface client and the native addon the Node.js tests build with node-gyp, a JDK to build
# the Java agent (javac --release 11) and run the Java tests, Maven to fetch their jars.
DEBIAN_PACKAGES := patch zip unzip shellcheck python3 python3-dev python3-pip python3-numpy util-linux clang libclang-rt-14-dev qemu-user-static \
	cmake g++ make openjdk-17-jdk-headless maven openssl

.PHONY: install system-deps build build-x86_64 lint test demo bench bench-shm fuzz reliability clean \
	build-SnaploaderLayerX86 build-SnaploaderLayerArm64 build-SnaploaderNodeLayerX86 build-SnaploaderNodeLayerArm64

install: $(NPM_STAMP) $(SYSTEM_STAMP)

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# Checked again whenever the Makefile (and so the package list) changes.
$(SYSTEM_STAMP): Makefile
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	@mkdir -p $(dir $@) && touch $@

system-deps: $(SYSTEM_STAMP)

# Both architectures, both layers (core + Node), the size budget checked.
build: install
	node build.mjs

# What the demo runs: the x86_64 core and Node layers.
build-x86_64: install
	node build.mjs --arch x86_64

lint: install
	npx tsc --noEmit -p .
	shellcheck wrapper.sh test/support/arm64-root.sh test/support/sandbox/java/bootstrap

# Prints "N passed, N failed" last.
test: build lint
	@rm -f build/jest-results.json
	@npx jest --json --outputFile=build/jest-results.json $(JEST_ARGS); status=$$?; \
	node -e 'const r=require("./build/jest-results.json");console.log(`$${r.numPassedTests} passed, $${r.numFailedTests + r.numRuntimeErrorTestSuites} failed`)'; \
	exit $$status

demo: build-x86_64
	npx esbuild test/demo/main.ts --bundle --packages=external --platform=node --target=node20 --log-level=warning --outfile=build/demo.js
	node build/demo.js

# BENCHMARKS.md and bench/results/: the throughput harness (BENCH_QUICK=1 for a quick check,
# BENCH_ONLY=stack,pypi,series,overhead,preload for some parts; see bench/main.ts).
bench: build-x86_64
	node bench/run.mjs

# POSIX shared memory through the preload library without /dev/shm against glibc with it:
# bench/results/shm.md and its section of BENCHMARKS.md.
bench-shm: build-x86_64
	node bench/shm.mjs

# docs/reliability.md, written from what the failure suites and the fuzzers observe.
reliability: build-x86_64
	rm -rf build/reliability && mkdir -p build/reliability
	RELIABILITY_REPORT=build/reliability/archive.json npx jest test/archive-failures.test.ts
	RELIABILITY_REPORT=build/reliability/network.json npx jest test/network-faults.test.ts
	test/fuzz/run.sh 10 | tee build/reliability/fuzz.txt
	npx esbuild test/reliability/render.ts --bundle --platform=node --target=node20 --log-level=warning --outfile=build/reliability/render.js
	node build/reliability/render.js build/reliability/archive.json build/reliability/network.json build/reliability/fuzz.txt > docs/reliability.md

# The fuzz targets for a longer run (make test runs each for 10 s): 300 s per target.
fuzz: install
	test/fuzz/run.sh 300

# `sam build` (template.yaml, BuildMethod: makefile) calls these with ARTIFACTS_DIR set:
# what is copied there becomes the layer's /opt.
build-SnaploaderLayerX86 build-SnaploaderNodeLayerX86: ARCH := x86_64
build-SnaploaderLayerArm64 build-SnaploaderNodeLayerArm64: ARCH := arm64
build-SnaploaderLayerX86 build-SnaploaderLayerArm64: install
	node build.mjs --arch $(ARCH) --no-node-layer
	cp -a build/$(ARCH)/opt/. "$(ARTIFACTS_DIR)/"
build-SnaploaderNodeLayerX86 build-SnaploaderNodeLayerArm64: install
	node build.mjs --arch $(ARCH)
	cp -a build/$(ARCH)/node-opt/. "$(ARTIFACTS_DIR)/"

clean:
	rm -rf build dist .cache/system-deps-stamp
