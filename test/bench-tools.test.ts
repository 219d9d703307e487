/**
 * The benchmark's tools, run for real: the process runner (bench/rusage-run.c) and the
 * write-only floor (bench/write-floor.c), built with zig cc, and the benchmark's S3 server
 * (bench/s3-server.mjs).
 */
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './support/paths';
import { CREDENTIALS, REGION } from './support/s3';
import { zigCc } from './support/zig';

const MiB = 1024 * 1024;

describe('the benchmark tools', () => {
  let dir: string;
  let runner: string;
  let floor: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'bench-tools-'));
    runner = zigCc(join(dir, 'rusage-run'), [join(ROOT, 'bench', 'rusage-run.c')]);
    floor = zigCc(join(dir, 'write-floor'), [join(ROOT, 'bench', 'write-floor.c')]);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Runs `args` under the runner with its report on fd 3; returns the report's two lines. */
  const run = (args: string[]) => {
    const r = spawnSync(runner, args, { stdio: ['ignore', 'pipe', 'pipe', 'pipe'], encoding: 'utf8' });
    const [pidLine, json] = String(r.output[3]).trim().split('\n');
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, pid: Number(pidLine), report: JSON.parse(json ?? 'null') };
  };

  it('reports the child, its exit status and the faults of a descendant it reaped, and leaves stdout alone', () => {
    // The shell's child touches 64 MiB: its faults count only because the shell waits for it.
    const r = run(['--', 'sh', '-c', `echo out; python3 -c 'b = bytearray(${64 * MiB}); print(len(b))'; exit 7`]);
    expect(r.status).toBe(7);
    expect(r.stdout).toBe(`out\n${64 * MiB}\n`);
    expect(r.report.pid).toBe(r.pid);
    expect(r.report.exit).toBe(7);
    expect(r.report.minflt).toBeGreaterThan((64 * MiB) / 4096 / 2);
    expect(r.report.user_ms + r.report.sys_ms).toBeGreaterThan(0);
  });

  it('pins the command to the CPUs given and does not pass its report descriptor on', () => {
    const r = run(['--cpus', '0', '--', 'sh', '-c', 'grep Cpus_allowed_list /proc/self/status; ls /proc/$$/fd']);
    expect(r.stdout).toMatch(/^Cpus_allowed_list:\s+0$/m);
    expect(r.stdout.split('\n').slice(1).filter(Boolean).map(Number)).not.toContain(3);
  });

  it('refuses a malformed CPU list and says how to write one', () => {
    const r = spawnSync(runner, ['--cpus', '1-0', '--', 'true'], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'], encoding: 'utf8' });
    expect(r.status).toBe(125);
    expect(r.stderr).toMatch(/--cpus 1-0 is not a CPU list/);
  });

  it('writes every tree file at its size and counts the memfds it made', () => {
    const manifest = join(dir, 'manifest');
    writeFileSync(manifest, `m ${3 * MiB} lib/big.so\nt ${MiB + 5} lib/sub/mid.bin\nt 10 a.py\nt 0 empty/x\n`);
    const tree = join(dir, 'tree');
    const r = spawnSync(floor, [manifest, tree], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ files: 4, memfds: 1, bytes: 4 * MiB + 15 });
    expect(statSync(join(tree, 'lib', 'sub', 'mid.bin')).size).toBe(MiB + 5);
    expect(readFileSync(join(tree, 'a.py'), 'latin1')).toBe('Z'.repeat(10));
    expect(statSync(join(tree, 'empty', 'x')).size).toBe(0);
    expect(readdirSync(join(tree, 'lib'))).toEqual(['sub']);
  });

  it('stops at a malformed manifest line and names it', () => {
    const manifest = join(dir, 'bad');
    writeFileSync(manifest, 't 10 ok.py\nx 5 what\n');
    const r = spawnSync(floor, [manifest, join(dir, 'tree-bad')], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/manifest line 2 is not "<m\|t> <size> <path>": x 5 what/);
  });

  it('the S3 server answers a suffix range with the object\'s tail, as S3 does', async () => {
    const store = mkdtempSync(join(dir, 's3-'));
    const server = spawn(process.execPath, [join(ROOT, 'bench', 's3-server.mjs'), store], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        server.stdout.once('data', (line: Buffer) => resolve(JSON.parse(line.toString()).port as number));
        server.once('exit', (code) => reject(new Error(`bench/s3-server.mjs exited with ${code}`)));
      });
      const client = new S3Client({ endpoint: `http://127.0.0.1:${port}`, region: REGION, forcePathStyle: true, credentials: CREDENTIALS });
      const body = Buffer.from(Array.from({ length: 100 }, (_, i) => i));
      await client.send(new CreateBucketCommand({ Bucket: 'bench' }));
      await client.send(new PutObjectCommand({ Bucket: 'bench', Key: 'dir/a b.zip', Body: body }));
      const get = async (range: string) => {
        const r = await client.send(new GetObjectCommand({ Bucket: 'bench', Key: 'dir/a b.zip', Range: range }));
        return [r.ContentRange, Buffer.from(await r.Body!.transformToByteArray())] as const;
      };
      expect(await get('bytes=-10')).toEqual(['bytes 90-99/100', body.subarray(90)]);
      expect(await get('bytes=-1000')).toEqual(['bytes 0-99/100', body]);
      expect(await get('bytes=5-9')).toEqual(['bytes 5-9/100', body.subarray(5, 10)]);
      client.destroy();
    } finally {
      server.kill('SIGTERM');
    }
  });
});
