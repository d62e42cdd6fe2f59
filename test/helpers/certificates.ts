import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestCertificates {
  dir: string;
  caCert: string;
  caPem: string;
  serverCert: string;
  serverKey: string;
}

/** A throwaway CA and a server certificate it signed for 127.0.0.1 and localhost (openssl). */
export async function generateCertificates(): Promise<TestCertificates> {
  await run('openssl', ['version']).catch((cause: Error) => {
    throw new Error(`openssl is needed to make test certificates (deploy/local/services.sh start installs it): ${cause.message}`);
  });
  const dir = await mkdtemp(join(tmpdir(), 'taste-tls-'));
  const path = (name: string) => join(dir, name);
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=taste test CA', '-keyout', path('ca.key'), '-out', path('ca.crt')]);
  await run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', path('server.key'), '-out', path('server.csr')]);
  await writeFile(path('server.ext'), 'subjectAltName = IP:127.0.0.1, DNS:localhost\n');
  await run('openssl', [
    'x509', '-req', '-in', path('server.csr'), '-CA', path('ca.crt'), '-CAkey', path('ca.key'), '-CAcreateserial',
    '-days', '2', '-extfile', path('server.ext'), '-out', path('server.crt'),
  ]);
  return { dir, caCert: path('ca.crt'), caPem: await readFile(path('ca.crt'), 'utf8'), serverCert: path('server.crt'), serverKey: path('server.key') };
}
