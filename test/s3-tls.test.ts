/**
 * The archive over HTTPS, as on Lambda: the init program (wrapper, helper, the Node layer's
 * node) reads s3rver through a TLS-terminating proxy whose certificate is made for the test.
 * The connections are ours (src/s3/http/): they must verify the server with the platform's
 * trust store (plus NODE_EXTRA_CA_CERTS), and resume the TLS session rather than pay a full
 * handshake per connection.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { writeTree, zipDir } from './support/archive';
import { NODE_OPT, OPT, requireBuilt } from './support/paths';
import { baseEnv, run, type RunResult } from './support/run';
import { LocalS3 } from './support/s3';

const BUCKET = 'over-tls';
const LAYER_NODE = join(NODE_OPT, 'snaploader', 'node', 'bin', 'node');
let s3: LocalS3;
let dir: string;
let proxy: tls.Server;
let port: number;
const handshakes: Array<{ resumed: boolean; servername: string | false | null }> = [];

beforeAll(async () => {
  requireBuilt();
  dir = mkdtempSync(join(tmpdir(), 'snaploader-tls-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'], { stdio: 'ignore' });
  const files: Record<string, Buffer | string> = { 'python/pkg/__init__.py': 'VALUE = 42\n' };
  for (let i = 0; i < 6; i++) files[`python/pkg/lib${i}.so`] = randomBytes(1536 * 1024);
  writeTree(join(dir, 'tree'), files);
  s3 = await new LocalS3().start();
  await s3.createBucket(BUCKET);
  await s3.put(BUCKET, 'archive.zip', zipDir(join(dir, 'tree'), join(dir, 'archive.zip')));
  const upstream = new URL(s3.endpoint);
  proxy = tls.createServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (client) => {
    handshakes.push({ resumed: client.isSessionReused(), servername: client.servername });
    const up = net.connect(Number(upstream.port), upstream.hostname);
    client.pipe(up).pipe(client);
    const drop = (): void => {
      client.destroy();
      up.destroy();
    };
    client.on('error', drop);
    up.on('error', drop);
  });
  proxy.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  port = (proxy.address() as AddressInfo).port;
}, 120000);

afterAll(async () => {
  await new Promise((r) => proxy?.close(r));
  await s3?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function load(extra: Record<string, string>): Promise<RunResult> {
  return run(['/bin/true'], baseEnv({
    ...s3.env(), AWS_ENDPOINT_URL_S3: `https://localhost:${port}`, SNAPLOADER_BUCKET: BUCKET, SNAPLOADER_KEY: 'archive.zip',
    SNAPLOADER_TARGET_DIR: join(dir, `target-${Math.random().toString(36).slice(2)}`), SNAPLOADER_NODE: LAYER_NODE,
    SNAPLOADER_CONCURRENCY: '4', SNAPLOADER_RANGE_SIZE: '1M', ...extra,
  }), { command: join(OPT, 'snaploader', 'wrapper.sh') });
}

test('over HTTPS the archive loads through connections that verify the server, send its name and resume the TLS session', async () => {
  handshakes.length = 0;
  const r = await load({ NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem') });
  expect(r.stderr).toMatch(/loaded 7 files /);
  expect(r.code).toBe(0);
  expect(handshakes.length).toBeGreaterThan(1);
  expect(handshakes.every((h) => h.servername === 'localhost')).toBe(true);
  // The first connection's session is offered by the next ones (TLS 1.3 tickets).
  expect(handshakes.slice(1).some((h) => h.resumed)).toBe(true);
}, 60000);

test('over HTTPS, body bytes that arrive as 16 KiB TLS records are handed on joined, in views larger than a record', async () => {
  const r = await load({ NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem'), SNAPLOADER_DEBUG: '1' });
  expect(r.code).toBe(0);
  const m = /handed on as (\d+) views of ([\d.]+) (B|KiB|MiB) on average/.exec(r.stderr);
  expect(m).not.toBeNull();
  const average = Number(m![2]) * ({ B: 1, KiB: 1024, MiB: 1 << 20 } as Record<string, number>)[m![3]];
  expect(average).toBeGreaterThan(16 * 1024);
}, 60000);

test('an endpoint whose certificate is not trusted is refused: SOURCE_ERROR naming the certificate and NODE_EXTRA_CA_CERTS, nothing loaded', async () => {
  const r = await load({});
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(/snaploader: SOURCE_ERROR: s3:\/\/over-tls\/archive\.zip: the endpoint's TLS certificate was refused \(DEPTH_ZERO_SELF_SIGNED_CERT: self-signed certificate\): check AWS_ENDPOINT_URL_S3; for an endpoint with a private certificate authority, set NODE_EXTRA_CA_CERTS to its certificate file/);
  expect(r.stderr).not.toMatch(/loaded \d+ files/);
}, 60000);
