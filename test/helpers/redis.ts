import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REDIS_SERVER = process.env.REDIS_SERVER ?? '/usr/bin/redis-server';
/** Why the queue tests are skipped here, or null when a real redis-server can be started. */
export const NO_REDIS = existsSync(REDIS_SERVER)
  ? null
  : `redis-server not found at ${REDIS_SERVER} (apt-get install redis-server; .ci/run does): queue tests skipped`;

export interface RedisServer {
  /** `redis://127.0.0.1:port`, or `rediss://` with `tls`; never holds the password. */
  url: string;
  port: number;
  /** The `requirepass` it was started with. */
  password?: string;
  /** With `tls`: the throwaway CA and a client certificate it signed (PEM files). */
  tls?: { ca: string; cert: string; key: string };
  stop(): Promise<void>;
}

export interface StartRedisOptions {
  /** Started with `--requirepass`. */
  password?: string;
  /**
   * TLS only (`--port 0 --tls-port`), with a CA made here by `openssl` for this server alone.
   * `clientCerts` (default true) makes the server ask for a client certificate signed by that CA
   * (redis-server's own default); false is `--tls-auth-clients no`.
   */
  tls?: boolean | { clientCerts: boolean };
}

/**
 * A CA, a server certificate for 127.0.0.1/localhost and a client certificate, all signed by the
 * CA, written under `dir` by `openssl` (one day valid; nothing is kept after the test).
 */
export function makeTlsFiles(dir: string): { ca: string; caKey: string; serverCert: string; serverKey: string; cert: string; key: string } {
  const f = (name: string) => join(dir, name);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '1', '-subj', '/CN=clipstream test CA');
  const sign = (name: string, cn: string, ext: string) => {
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${cn}`);
    writeFileSync(f(`${name}.ext`), `${ext}\n`);
    ssl(
      'x509',
      '-req',
      '-in',
      f(`${name}.csr`),
      '-CA',
      f('ca.pem'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-out',
      f(`${name}.pem`),
      '-days',
      '1',
      '-extfile',
      f(`${name}.ext`),
    );
  };
  sign('server', 'localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost');
  sign('client', 'clipstream worker', 'extendedKeyUsage=clientAuth');
  return { ca: f('ca.pem'), caKey: f('ca.key'), serverCert: f('server.pem'), serverKey: f('server.key'), cert: f('client.pem'), key: f('client.key') };
}

/** A port nobody listens on right now, chosen by the kernel. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts a throwaway redis-server on 127.0.0.1 (no persistence, own temp dir), with a password
 * and/or TLS when asked; stop() kills it and removes the dir.
 */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const dir = await mkdtemp(join(tmpdir(), 'clipstream-redis-'));
  const port = await freePort();
  const args = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--protected-mode', 'yes'];
  let tls: RedisServer['tls'];
  if (options.tls) {
    const t = makeTlsFiles(dir);
    const clientCerts = typeof options.tls === 'object' ? options.tls.clientCerts : true;
    args.push('--port', '0', '--tls-port', String(port), '--tls-cert-file', t.serverCert, '--tls-key-file', t.serverKey, '--tls-ca-cert-file', t.ca);
    args.push('--tls-auth-clients', clientCerts ? 'yes' : 'no');
    tls = { ca: t.ca, cert: t.cert, key: t.key };
  } else args.push('--port', String(port));
  // On the command line only: a redis-server's own argv is no secret from the test that started it.
  if (options.password !== undefined) args.push('--requirepass', options.password);
  const child: ChildProcess = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start on port ${port}: ${out}`)), 10_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited with ${code}: ${out}`));
    });
  });
  child.removeAllListeners('exit');
  child.stdout!.resume();
  return {
    url: `${tls ? 'rediss' : 'redis'}://127.0.0.1:${port}`,
    port,
    ...(options.password !== undefined ? { password: options.password } : {}),
    ...(tls ? { tls } : {}),
    async stop() {
      if (child.exitCode === null) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await gone;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
