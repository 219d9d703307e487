/**
 * What the Lambda sandbox needs to know of one managed runtime (Python, and the ones to come:
 * Java, Node.js): what it puts in /var/runtime and /var/lang/bin, its AWS_EXECUTION_ENV, and
 * what it must not see of the host.
 */
export interface SandboxRuntime {
  /** AWS_EXECUTION_ENV, e.g. AWS_Lambda_python3.11. */
  executionEnv(): string;
  /** Host directories merged read-only at /var/runtime (later wins); holds `bootstrap`, run by the emulator. */
  runtimeDirs(): string[];
  /** Links made in /var/lang/bin: name -> host path (absolute, visible in the sandbox through /usr). */
  langLinks(): Record<string, string>;
  /** Host paths masked in the sandbox because this runtime does not have them on Lambda. */
  hidden(): string[];
  /** Variables this runtime's Lambda environment sets beside the common ones. */
  environment(): Record<string, string>;
  /** The layers a function on this runtime attaches when the test names none; default: the built core and Node layers. */
  defaultLayers?(): string[];
}
