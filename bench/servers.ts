/**
 * The benchmark's network: s3rver on loopback (bench/s3-server.mjs) and the shaping proxy in
 * front of it (bench/shaping-proxy.mjs), each in its own process.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { createReadStream, statSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';

export const BUCKET = 'snaploader-bench';
export const REGION = 'us-east-1';
export const CREDENTIALS = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };

export interface Profile {
  id: 'loopback' | 's3like';
  label: string;
  endpoint: string;
}

export class Service {
  private constructor(private readonly proc: ChildProcess, readonly port: number) {}

  /** Starts `node <script> args...` and waits for its `{"port":N}` line. */
  static start(script: string, args: string[]): Promise<Service> {
    return new Promise((resolve, reject) => {
      const proc = spawn(process.execPath, [script, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
      let buf = '';
      const onData = (d: Buffer) => {
        buf += d.toString();
        const nl = buf.indexOf('\n');
        if (nl < 0) return;
        proc.stdout!.off('data', onData);
        try {
          resolve(new Service(proc, JSON.parse(buf.slice(0, nl)).port));
        } catch (err) {
          reject(err);
        }
      };
      proc.stdout!.on('data', onData);
      proc.on('error', reject);
      proc.on('exit', (code) => reject(new Error(`${script} exited (${code}) before it listened`)));
    });
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      if (this.proc.exitCode !== null) return resolve();
      this.proc.once('exit', () => resolve());
      this.proc.stdin!.end();
      setTimeout(() => this.proc.kill('SIGKILL'), 5000).unref();
    });
  }
}

function request(url: string, method: string, body?: { path: string; size: number; tag: string }): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const headers = body ? { 'Content-Length': String(body.size), 'Content-Type': 'application/zip', 'x-amz-meta-bench-source': body.tag } : {};
    const req = http.request(url, { method, headers }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    if (body) createReadStream(body.path).pipe(req);
    else req.end();
  });
}

export async function ensureBucket(endpoint: string): Promise<void> {
  const r = await request(`${endpoint}/${BUCKET}`, 'PUT');
  if (r.status !== 200 && !/BucketAlready/.test(r.body)) throw new Error(`creating bucket ${BUCKET}: HTTP ${r.status} ${r.body}`);
}

/** Uploads `file` as `key` unless the store (which persists) already has this very file there. */
export async function ensureObject(endpoint: string, key: string, file: string): Promise<boolean> {
  const st = statSync(file);
  const size = st.size;
  const tag = `${size}-${Math.round(st.mtimeMs)}`;
  const head = await request(`${endpoint}/${BUCKET}/${key}`, 'HEAD');
  if (head.status === 200 && Number(head.headers['content-length']) === size && head.headers['x-amz-meta-bench-source'] === tag) return false;
  const put = await request(`${endpoint}/${BUCKET}/${key}`, 'PUT', { path: file, size, tag });
  if (put.status !== 200) throw new Error(`uploading ${key}: HTTP ${put.status} ${put.body}`);
  return true;
}

export function objectUrl(profile: Profile, key: string): string {
  return `${profile.endpoint}/${BUCKET}/${key}`;
}

export async function startNetwork(benchDir: string, storeDir: string, shaping: { ttfbMs: number; rateMBs: number }): Promise<{ s3: Service; proxy: Service; profiles: Profile[] }> {
  const s3 = await Service.start(join(benchDir, 's3-server.mjs'), [storeDir]);
  const proxy = await Service.start(join(benchDir, 'shaping-proxy.mjs'), [
    '--upstream', `127.0.0.1:${s3.port}`, '--ttfb-ms', String(shaping.ttfbMs), '--rate-mbs', String(shaping.rateMBs),
  ]);
  const profiles: Profile[] = [
    { id: 'loopback', label: 'loopback', endpoint: `http://127.0.0.1:${s3.port}` },
    { id: 's3like', label: `S3-like (${shaping.ttfbMs} ms to first byte, ${shaping.rateMBs} MB/s per connection)`, endpoint: `http://127.0.0.1:${proxy.port}` },
  ];
  return { s3, proxy, profiles };
}
