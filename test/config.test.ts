/** Configuration from the environment: every rejection names the variable. */
import { ConfigError } from '../src/errors';
import { DEFAULTS, loadConfig } from '../src/config';

const source = { SNAPLOADER_BUCKET: 'my-bucket', SNAPLOADER_KEY: 'libs/torch.zip' };

function reject(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).message;
  }
  throw new Error('expected a ConfigError');
}

test('defaults: /var/task mirrored into /tmp/snaploader, fail on error, no memory budget outside Lambda', () => {
  const c = loadConfig(source);
  expect(c).toMatchObject({
    bucket: 'my-bucket', key: 'libs/torch.zip', basePath: '/var/task', targetDir: '/tmp/snaploader', onError: 'fail',
    memfdMinSize: DEFAULTS.memfdMinSize, maxMemfds: 512, tmpBudget: 384 * 1024 * 1024, memoryBudget: null, debug: false, forcePathStyle: false,
  });
});

test('SNAPLOADER_SOURCE is parsed into bucket and key', () => {
  expect(loadConfig({ SNAPLOADER_SOURCE: 's3://b-1.x/a/b c.zip' })).toMatchObject({ bucket: 'b-1.x', key: 'a/b c.zip' });
});

test("the memory budget follows the function's memory, minus headroom for the runtime", () => {
  expect(loadConfig({ ...source, AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '3008' }).memoryBudget).toBe((3008 - 256) * 1024 * 1024);
  expect(loadConfig({ ...source, AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '3008', SNAPLOADER_MEMORY_BUDGET: '1G' }).memoryBudget).toBe(1 << 30);
});

test('concurrency stays at 8 whatever the memory, unless set: more ranges in flight cost memory', () => {
  expect(loadConfig({ ...source, AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '10240' }).concurrency).toBe(8);
  expect(loadConfig({ ...source, SNAPLOADER_CONCURRENCY: '4' }).concurrency).toBe(4);
});

test('sizes take K, M, G suffixes', () => {
  expect(loadConfig({ ...source, SNAPLOADER_MEMFD_MIN_SIZE: '64K', SNAPLOADER_TMP_BUDGET: '2GiB' })).toMatchObject({ memfdMinSize: 65536, tmpBudget: 2 * 1024 ** 3 });
});

test('a custom S3 endpoint turns on path-style addressing unless told otherwise', () => {
  expect(loadConfig({ ...source, AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9000' }).forcePathStyle).toBe(true);
  expect(loadConfig({ ...source, AWS_ENDPOINT_URL_S3: 'http://x', SNAPLOADER_S3_PATH_STYLE: 'false' }).forcePathStyle).toBe(false);
});

test('an unrecognised SNAPLOADER_DEBUG does not stop the init: it is on, with a warning', () => {
  expect(loadConfig({ ...source, SNAPLOADER_DEBUG: 'maybe' })).toMatchObject({
    debug: true,
    warnings: ['SNAPLOADER_DEBUG="maybe" is not one of 1, true, yes, on, 0, false, no, off: taken as on'],
  });
  expect(loadConfig({ ...source, SNAPLOADER_DEBUG: ' OFF ' })).toMatchObject({ debug: false, warnings: [] });
});

test('settings are trimmed of ASCII whitespace only, and their words compare ASCII case-insensitively', () => {
  expect(loadConfig({ ...source, SNAPLOADER_ON_ERROR: '\tContinue\n', SNAPLOADER_TIMEOUT: ' 30 ' })).toMatchObject({ onError: 'continue', timeoutSeconds: 30 });
  expect(reject({ ...source, SNAPLOADER_ON_ERROR: 'continue\u00a0' })).toMatch(/is not valid: use fail or continue/);
  expect(reject({ ...source, SNAPLOADER_ON_ERROR: 'cont\u0130nue' })).toMatch(/is not valid: use fail or continue/);
});

test.each([
  [{}, /no archive configured: set SNAPLOADER_BUCKET and SNAPLOADER_KEY/],
  [{ SNAPLOADER_KEY: 'k' }, /SNAPLOADER_KEY is set but SNAPLOADER_BUCKET is not/],
  [{ ...source, SNAPLOADER_SOURCE: 's3://b/k' }, /either SNAPLOADER_SOURCE or SNAPLOADER_BUCKET and SNAPLOADER_KEY, not both/],
  [{ SNAPLOADER_SOURCE: 'https://b/k' }, /SNAPLOADER_SOURCE="https:\/\/b\/k" must look like s3:\/\/bucket/],
  [{ SNAPLOADER_BUCKET: 'Bad_Bucket', SNAPLOADER_KEY: 'k' }, /"Bad_Bucket" is not a valid S3 bucket name/],
  [{ ...source, SNAPLOADER_BASE_PATH: 'var/task' }, /SNAPLOADER_BASE_PATH="var\/task" must be an absolute path/],
  [{ ...source, SNAPLOADER_TARGET_DIR: '/tmp' }, /SNAPLOADER_TARGET_DIR=\/tmp must be a directory of its own/],
  [{ ...source, SNAPLOADER_TARGET_DIR: '/' }, /SNAPLOADER_TARGET_DIR="\/" cannot be the root directory/],
  [{ ...source, SNAPLOADER_ON_ERROR: 'ignore' }, /SNAPLOADER_ON_ERROR="ignore" is not valid: use fail or continue/],
  [{ ...source, SNAPLOADER_S3_PATH_STYLE: 'maybe' }, /SNAPLOADER_S3_PATH_STYLE="maybe" is not valid: use 1, true, yes, on or 0, false, no, off/],
  [{ ...source, SNAPLOADER_TIMEOUT: '5s' }, /SNAPLOADER_TIMEOUT="5s" must be a whole number from 1 to 3600/],
  [{ ...source, SNAPLOADER_TMP_BUDGET: '1T' }, /SNAPLOADER_TMP_BUDGET="1T" is not a size/],
  [{ ...source, SNAPLOADER_MAX_MEMFDS: '5000' }, /SNAPLOADER_MAX_MEMFDS="5000" must be a whole number from 0 to 4096/],
  [{ ...source, SNAPLOADER_CONCURRENCY: '0' }, /SNAPLOADER_CONCURRENCY="0" must be a whole number from 1 to 64/],
  [{ ...source, SNAPLOADER_EXCLUDE: '/abs/**' }, /SNAPLOADER_EXCLUDE: pattern "\/abs\/\*\*" must be relative/],
  [{ ...source, SNAPLOADER_SHA256: 'abc' }, /SNAPLOADER_SHA256 must be the 64 hex digits of the archive's SHA-256/],
])('rejects %j', (env, message) => {
  expect(reject(env as Record<string, string>)).toMatch(message);
});
