/**
 * The master speaks HTTPS only (issue 14): `hox master` serves a certificate from the platform CA (or the
 * operator's), clients trust it through its CA pin as `kubeadm join` does, plain HTTP gets no answer, and a node
 * joins over TLS with the pin alone, keeping the CA for its next starts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type PeerCertificate } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NodeCertificate } from '../src/agent/node-certificate.js';
import { exchange } from '../src/client/http-transport.js';
import { MasterClient } from '../src/client/master-client.js';
import { refreshMasterRoots } from '../src/client/pinned-ca.js';
import { caPin } from '../src/shared/pki/ca-pin.js';
import { createLocalCa, issueServerCertificate } from '../src/shared/pki/local-ca.js';
import { generateKeyPair, privateKeyToPem, readCertificateBundle, subtle, x509 } from '../src/shared/pki/x509.js';
import { freePort } from '../src/testing/free-port.js';
import { createDatabase, startPostgres } from '../src/testing/postgres-server.js';
import { addTestNode, startTestMaster } from '../src/testing/test-master.js';
import { cleanUpNodePartitions } from './support/agent-harness.js';
import { HOX_FROM_SOURCES, ROOT, runHox } from './support/hox-cli.js';

interface Started {
  child: ChildProcess;
  /** The first stdout line `ready` accepted. */
  line: Promise<string>;
  output(): string;
}

/** Starts a long-running hox command from the sources; `line` resolves with the first line `ready` accepts. */
function startHox(args: string[], env: NodeJS.ProcessEnv, ready: (line: string) => boolean): Started {
  const child = spawn(process.execPath, [...HOX_FROM_SOURCES, ...args], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let stdout = '';
  const line = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hox ${args[0]} not ready in 60 s: ${output}`)), 60_000);
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      stdout += chunk.toString();
      const found = stdout.split('\n').find(ready);
      if (found !== undefined) {
        clearTimeout(timer);
        resolve(found);
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`hox ${args[0]} exited ${code}: ${output}`));
    });
  });
  line.catch(() => undefined);
  return { child, line, output: () => output };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/** The certificate chain a TLS server presents, without trusting it (to look at it). */
function peerCertificate(port: number): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate(true));
      socket.end();
    });
    socket.on('error', reject);
  });
}

/** A plain-HTTP request: resolves with the status if an HTTP answer came, rejects otherwise. */
function plainHttpStatus(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = httpGet({ host: '127.0.0.1', port, path: '/health', timeout: 5000 }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.on('timeout', () => request.destroy(new Error('timeout')));
    request.on('error', reject);
  });
}

describe('the master speaks HTTPS only', () => {
  let home: string;
  let env: NodeJS.ProcessEnv;
  const children: ChildProcess[] = [];
  const nodes: { id: string; dataDir: string }[] = [];

  beforeAll(() => {
    home = mkdtempSync(join(tmpdir(), 'hox-tls-'));
    chmodSync(home, 0o711); // partition users traverse it to reach their partitions
    env = { ...process.env, HOME: home, HOX_CONFIG: join(home, 'config.json') };
    for (const name of ['HOX_MASTER_URL', 'HOX_TOKEN', 'HOX_ADMIN_TOKEN', 'HOX_REGISTER_TOKEN', 'HOX_CA_FILE'])
      delete env[name];
  });
  afterEach(async () => {
    while (children.length > 0) await stop(children.pop()!);
    while (nodes.length > 0) {
      const node = nodes.pop()!;
      // Kills what is left in its partitions, removes their users and its nftables table.
      await cleanUpNodePartitions(node.id, node.dataDir, 1);
    }
  });
  afterAll(() => {
    rmSync(home, { recursive: true, force: true });
  });

  it('hox master serves the platform CA’s certificate; plain HTTP, no CA and a wrong pin are refused; the pin logs in; a node joins with it', async () => {
    const port = await freePort();
    const dataDir = join(home, 'master');
    const master = startHox(
      [
        '--json',
        'master',
        '--data-dir',
        dataDir,
        '--listen',
        `127.0.0.1:${port}`,
        '--tls-name',
        'master.test',
        // By default, the node below must present its certificate on every call but the one asking for it.
      ],
      env,
      (l) => l.startsWith('{'),
    );
    children.push(master.child);
    const summary = JSON.parse(await master.line) as { url: string; ca_pin: string; ca_file: string };
    expect(summary.url).toBe(`https://127.0.0.1:${port}`);
    expect(summary.ca_pin).toMatch(/^sha256:[0-9a-f]{64}$/);
    const token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();

    // What it presents: issued by the platform CA for the listen address, localhost and --tls-name, for days.
    const presented = await peerCertificate(port);
    expect(presented.subjectaltname).toContain('IP Address:127.0.0.1');
    expect(presented.subjectaltname).toContain('DNS:localhost');
    expect(presented.subjectaltname).toContain('DNS:master.test');
    const lifetimeDays = (Date.parse(presented.valid_to) - Date.parse(presented.valid_from)) / 86_400_000;
    expect(lifetimeDays).toBeLessThanOrEqual(8);
    // The roots it hands anyone (no token) match its pin, and ca.pem holds the same.
    const answer = await exchange({
      method: 'GET',
      url: `${summary.url}/pki/trust-bundle`,
      headers: {},
      signal: AbortSignal.timeout(10_000),
      unverified: true,
    });
    expect(answer.status).toBe(200);
    const bundle = JSON.parse(answer.body.toString('utf8')) as { roots: string[]; crls: string[] };
    expect(bundle.roots.map((pem) => caPin(new x509.X509Certificate(pem)))).toEqual([summary.ca_pin]);
    expect(bundle.crls.length).toBeGreaterThan(0);
    const roots = readFileSync(summary.ca_file, 'utf8');
    expect(caPin(new x509.X509Certificate(roots))).toBe(summary.ca_pin);

    // Accepting nodes without certificates and requiring them: one or the other.
    const both = await runHox(
      ['master', '--data-dir', dataDir, '--allow-nodes-without-certificates', '--require-node-certificates'],
      env,
    );
    expect(both.code).not.toBe(0);
    expect(both.stderr).toMatch(/cannot be used with/);

    // Plain HTTP gets no HTTP answer at all.
    await expect(plainHttpStatus(port)).rejects.toThrow();
    const plain = await runHox(['--master', `http://127.0.0.1:${port}`, 'list'], { ...env, HOX_TOKEN: token });
    expect(plain.code).not.toBe(0);
    expect(plain.stderr).toContain('masters speak HTTPS');

    // Without its CA, the CLI does not trust it, and says how to.
    const untrusted = await runHox(['list'], { ...env, HOX_MASTER_URL: summary.url, HOX_TOKEN: token });
    expect(untrusted.code).not.toBe(0);
    expect(untrusted.stderr).toContain('does not trust');
    expect(untrusted.stderr).toContain('--ca-pin');

    // A pin that is not this master's: refused, nothing saved.
    const wrongPin = `sha256:${'ab'.repeat(32)}`;
    const wrong = await runHox(
      ['login', '--url', summary.url, '--ca-pin', wrongPin, '--with-token', '-'],
      env,
      undefined,
      `${token}\n`,
    );
    expect(wrong.code, wrong.stderr).not.toBe(0);
    expect(wrong.stderr).toContain('matches the CA pin');
    expect(() => readFileSync(env.HOX_CONFIG!, 'utf8')).toThrow();

    // The right pin: logged in, the roots saved with the URL and token; later commands need nothing else.
    const login = await runHox(
      ['login', '--url', summary.url, '--ca-pin', summary.ca_pin, '--with-token', '-'],
      env,
      undefined,
      `${token}\n`,
    );
    expect(login.code, login.stderr).toBe(0);
    const saved = JSON.parse(readFileSync(env.HOX_CONFIG!, 'utf8')) as { masterCa?: string };
    expect(saved.masterCa).toBe(roots);
    const listed = await runHox(['--json', 'nodes'], env);
    expect(listed.code, listed.stderr).toBe(0);
    // HOX_CA_FILE does the same for scripts that pass the URL and token in the environment.
    const viaFile = await runHox(['nodes'], {
      ...env,
      HOX_CONFIG: join(home, 'none.json'),
      HOX_MASTER_URL: summary.url,
      HOX_TOKEN: token,
      HOX_CA_FILE: summary.ca_file,
    });
    expect(viaFile.code, viaFile.stderr).toBe(0);

    // A node joins with the pin alone, and keeps the CA for its next start.
    const reg = await runHox(['registration-token'], env);
    expect(reg.code, reg.stderr).toBe(0);
    expect(reg.stderr).toContain(`hox node --master ${summary.url} --ca-pin ${summary.ca_pin} --register-token-file`);
    const tokenFile = join(home, 'reg.token');
    writeFileSync(tokenFile, reg.stdout.trim(), { mode: 0o600 });
    const nodeDir = join(home, 'tls-node');
    nodes.push({ id: 'tls-node', dataDir: nodeDir });
    const nodeArgs = ['node', '--master', summary.url, '--data-dir', nodeDir, '--node-id', 'tls-node'];
    const node = startHox(
      [...nodeArgs, '--partitions', '1', '--ca-pin', summary.ca_pin, '--register-token-file', tokenFile],
      env,
      (l) => l.includes('converging towards'),
    );
    children.push(node.child);
    await node.line;
    expect(JSON.parse(readFileSync(join(nodeDir, 'node.json'), 'utf8'))).toMatchObject({ masterCa: roots });
    // It asked for its certificate and presents it (mutual TLS): kept with its key, 0600.
    const kept = JSON.parse(readFileSync(join(nodeDir, 'node-certificate.json'), 'utf8')) as { certificate: string };
    expect(new X509Certificate(kept.certificate).subject).toContain('CN=tls-node');
    expect(statSync(join(nodeDir, 'node-certificate.json')).mode & 0o777).toBe(0o600);
    expect(node.output()).toContain('mutual TLS');
    await stop(node.child);
    const again = startHox([...nodeArgs, '--partitions', '1'], env, (l) => l.includes('converging towards'));
    children.push(again.child);
    await again.line;
    const seen = JSON.parse((await runHox(['--json', 'nodes'], env)).stdout) as { computer_guid: string }[];
    expect(seen.map((n) => n.computer_guid)).toContain('tls-node');
  }, 180_000);

  it('--tls-cert/--tls-key serve the operator’s certificate, trusted with --ca-file; half a pair is bad input', async () => {
    const operatorCa = await createLocalCa('operator CA', 'Example');
    const keys = await generateKeyPair(true);
    const publicKeyPem = x509.PemConverter.encode(await subtle.exportKey('spki', keys.publicKey), 'PUBLIC KEY');
    const certificate = await issueServerCertificate({
      ca: operatorCa,
      publicKeyPem,
      commonName: 'master',
      ipAddresses: ['127.0.0.1'],
      validityMs: 86_400_000,
    });
    const certFile = join(home, 'master.pem');
    const keyFile = join(home, 'master.key');
    const caFile = join(home, 'operator-ca.pem');
    writeFileSync(certFile, certificate);
    writeFileSync(keyFile, await privateKeyToPem(keys.privateKey), { mode: 0o600 });
    writeFileSync(caFile, operatorCa.certificatePem);
    const dataDir = join(home, 'master-files');

    const half = await runHox(['master', '--data-dir', dataDir, '--tls-cert', certFile], env);
    expect(half.code).toBe(2);
    expect(half.stderr).toContain('give --tls-cert and --tls-key together');
    // A key that is not the certificate's: refused before anything listens, naming both files.
    const otherKey = join(home, 'other.key');
    writeFileSync(otherKey, await privateKeyToPem((await generateKeyPair(true)).privateKey), { mode: 0o600 });
    const mismatched = await runHox(
      ['master', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--tls-cert', certFile, '--tls-key', otherKey],
      env,
    );
    expect(mismatched.code).toBe(2);
    expect(mismatched.stderr).toContain(`--tls-key '${otherKey}' is not the key of the certificate in '${certFile}'`);

    const port = await freePort();
    const served = startHox(
      [
        '--json',
        'master',
        '--data-dir',
        dataDir,
        '--listen',
        `127.0.0.1:${port}`,
        '--tls-cert',
        certFile,
        '--tls-key',
        keyFile,
      ],
      env,
      (l) => l.startsWith('{'),
    );
    children.push(served.child);
    const summary = JSON.parse(await served.line) as { url: string; ca_pin: string | null; certificate_file: string };
    expect(summary).toMatchObject({ ca_pin: null, certificate_file: certFile });
    const presented = await peerCertificate(port);
    expect(presented.subject.CN).toBe('master');
    const token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
    const config = { ...env, HOX_CONFIG: join(home, 'operator-config.json') };
    const login = await runHox(
      ['login', '--url', summary.url, '--ca-file', caFile, '--with-token', '-'],
      config,
      undefined,
      `${token}\n`,
    );
    expect(login.code, login.stderr).toBe(0);
    expect((await runHox(['nodes'], config)).code).toBe(0);
  }, 120_000);
});

describe('the platform CA of masters sharing a PostgreSQL store', () => {
  it('is one CA (one pin) for every master; a renewed server certificate is presented without a restart', async () => {
    const pg = await startPostgres();
    const masters: Awaited<ReturnType<typeof startTestMaster>>[] = [];
    try {
      const databaseUrl = await createDatabase(pg, `tls_${process.pid}`);
      const first = await startTestMaster({ tls: true, databaseUrl });
      masters.push(first);
      const second = await startTestMaster({
        tls: true,
        databaseUrl,
        storeKeyFile: join(first.dataDir, 'store.key'),
      });
      masters.push(second);
      expect(second.master.pki.pin).toBe(first.master.pki.pin);
      expect(second.ca).toBe(first.ca);
      // Each trusts the other's certificate through the same roots.
      expect((await second.admin.call('whoami', {})).kind).toBe('admin');
      const port = Number(new URL(first.url).port);
      const before = (await peerCertificate(port)).serialNumber;
      await first.master.renewCertificate();
      const after = (await peerCertificate(port)).serialNumber;
      expect(after).not.toBe(before);
      expect((await first.admin.call('whoami', {})).kind).toBe('admin');
    } finally {
      for (const m of masters) await m.stop();
      await pg.stop();
    }
  }, 60_000);
});

describe('hox pki', () => {
  it('shows the CA and rotates it: the master presents the new chain at once, clients that pinned the old root still trust it', async () => {
    const m = await startTestMaster({ tls: true });
    const home = mkdtempSync(join(tmpdir(), 'hox-pki-'));
    try {
      const caFile = join(home, 'ca.pem');
      writeFileSync(caFile, m.ca!);
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        HOX_CONFIG: join(home, 'config.json'),
        HOX_MASTER_URL: m.url,
        HOX_TOKEN: m.adminToken,
        HOX_CA_FILE: caFile,
      };
      const shown = await runHox(['pki', 'status'], env);
      expect(shown.code, shown.stderr).toBe(0);
      expect(shown.stdout).toContain(`CA pin: ${m.master.pki.pin}`);
      expect(shown.stdout).toContain('issued by this CA, renewed by the master');
      const oldPin = m.master.pki.pin;
      const port = Number(new URL(m.url).port);
      const issuerBefore = (await peerCertificate(port)).issuer.CN;

      // A user may not.
      await m.admin.call('createUser', { name: 'alice' });
      const { token: aliceToken } = await m.admin.call('createUserToken', { name: 'alice' });
      const alice = await runHox(['pki', 'status'], { ...env, HOX_TOKEN: aliceToken });
      expect(alice.code).not.toBe(0);
      expect(alice.stderr).toContain('may not call');

      const rotated = await runHox(['--json', 'pki', 'rotate', '--root'], env);
      expect(rotated.code, rotated.stderr).toBe(0);
      const status = JSON.parse(rotated.stdout) as {
        ca_pin: string;
        roots: { pin: string; current: boolean }[];
        cross_certificates: number;
      };
      expect(status.ca_pin).not.toBe(oldPin);
      expect(status.roots.map((r) => [r.pin, r.current])).toEqual([
        [status.ca_pin, true],
        [oldPin, false],
      ]);
      expect(status.cross_certificates).toBe(1);
      // Presented at once: a certificate from the new issuing CA, with the cross-certificate in its chain.
      const issuerAfter = (await peerCertificate(port)).issuer.CN;
      expect(issuerAfter).not.toBe(issuerBefore);
      // The CLI holding only the old root still verifies the master (through the cross-certificate)…
      const oldTrust = await runHox(['--json', 'pki', 'status'], env);
      expect(oldTrust.code, oldTrust.stderr).toBe(0);
      expect((JSON.parse(oldTrust.stdout) as { ca_pin: string }).ca_pin).toBe(status.ca_pin);
      // A node that kept the old root learns the new one at its next start (refreshMasterRoots), over a
      // connection its old root verifies; asked again, nothing has changed.
      const refreshed = await refreshMasterRoots(m.url, m.ca!);
      expect(refreshed).not.toBeNull();
      expect(readCertificateBundle(refreshed!).map((root) => caPin(root))).toEqual([status.ca_pin, oldPin]);
      expect(await refreshMasterRoots(m.url, refreshed!)).toBeNull();
      // …and a client given the new root alone does too.
      const newRoots = await m.master.caRootsPem();
      const newOnly = new MasterClient({ url: m.url, token: m.adminToken, ca: newRoots.split(/(?=-----BEGIN)/)[0]! });
      expect((await newOnly.call('whoami', {})).kind).toBe('admin');
      // The rotation is in the audit trail.
      const audit = await m.admin.call('listAuditLog', {});
      expect(audit.result_list.map((e) => e.action)).toContain('rotatePki');
    } finally {
      await m.stop();
      rmSync(home, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('what a client trusts', () => {
  it('refuses a platform certificate that is not a master’s, and a token for a plain-http master off the loopback', async () => {
    const m = await startTestMaster({ tls: true });
    const keys = await generateKeyPair(true);
    const publicKeyPem = x509.PemConverter.encode(await subtle.exportKey('spki', keys.publicKey), 'PUBLIC KEY');
    // A hyper_db member's certificate from the same CA, for the master's own address.
    const member = await m.master.pki.issueHyperDbMember({
      memberName: 'm1',
      ipAddresses: ['127.0.0.1'],
      publicKeyPem,
    });
    const impostor = createHttpsServer(
      { key: await privateKeyToPem(keys.privateKey), cert: member.chainPem },
      (_q, a) => a.end('{}'),
    );
    await new Promise<void>((resolve) => impostor.listen(0, '127.0.0.1', resolve));
    try {
      const port = (impostor.address() as AddressInfo).port;
      const client = new MasterClient({ url: `https://127.0.0.1:${port}`, token: m.adminToken, ca: m.ca! });
      await expect(client.call('whoami', {})).rejects.toMatchObject({
        code: 'HOX_MASTER_UNTRUSTED',
        message: expect.stringContaining('CERT_NOT_A_MASTER') as unknown,
      });
      // The real master, same CA, same client settings: trusted.
      expect((await m.admin.call('whoami', {})).kind).toBe('admin');
    } finally {
      impostor.close();
      await m.stop();
    }
    expect(() => new MasterClient({ url: 'http://10.1.2.3:8470', token: 't' })).toThrow(/masters speak HTTPS/);
    expect(() => new MasterClient({ url: 'http://127.0.0.1:8470', token: 't', ca: 'x' })).toThrow(
      /use https:\/\/127\.0\.0\.1:8470/,
    );
  });
});

describe('mutual TLS', () => {
  it('required for nodes by default: a node token without its certificate is refused, but to ask for one', async () => {
    const m = await startTestMaster({ tls: true });
    try {
      const { token: registration } = await m.admin.call('createRegistrationToken', {});
      const { token } = await m.admin.withToken(registration).call('registerNode', { computer_guid: 'n1' });
      const bare = m.admin.withToken(token);
      await expect(bare.call('whoami', {})).rejects.toMatchObject({
        code: 'HOX_UNAUTHENTICATED',
        message: expect.stringContaining('this master requires node certificates') as unknown,
      });
      const issued = await bare.call('nodeCertificate', { computer_guid: 'n1' });
      const node = new MasterClient({
        url: m.url,
        token,
        ca: m.ca!,
        clientCertificate: { cert: issued.certificate, key: issued.key },
      });
      expect(await node.call('whoami', {})).toMatchObject({ kind: 'node', subject: 'n1' });
      // People (and the admin) have no certificate and need none.
      expect((await m.admin.call('whoami', {})).kind).toBe('admin');
    } finally {
      await m.stop();
    }
  });

  it('holds a request to the certificate it came with: the holder’s own, issued here, not revoked', async () => {
    // As `hox master --allow-nodes-without-certificates` (an upgrade with nodes of an older version): the token
    // alone is still accepted, a certificate presented is still held to its holder.
    const m = await startTestMaster({ tls: true, requireNodeCertificates: false });
    try {
      const n1 = await addTestNode(m.admin, 'n1', { partitions: 1 });
      const n2 = await addTestNode(m.admin, 'n2', { partitions: 1 });
      const mine = await n1.client.call('nodeCertificate', { computer_guid: 'n1' });
      const theirs = await n2.client.call('nodeCertificate', { computer_guid: 'n2' });
      const withCert = (token: string, c: { certificate: string; key: string }) =>
        new MasterClient({ url: m.url, token, ca: m.ca!, clientCertificate: { cert: c.certificate, key: c.key } });
      expect(await withCert(n1.token, mine).call('whoami', {})).toMatchObject({ kind: 'node', subject: 'n1' });
      // Another holder's certificate with this token: refused.
      await expect(withCert(n1.token, theirs).call('whoami', {})).rejects.toMatchObject({
        code: 'HOX_FORBIDDEN',
        message: expect.stringContaining("compute-node 'n2''s") as unknown,
      });
      // A certificate this CA did not issue: refused.
      const foreign = await createLocalCa('elsewhere', 'Example');
      await expect(
        withCert(n1.token, { certificate: foreign.certificatePem, key: foreign.privateKeyPem }).call('whoami', {}),
      ).rejects.toMatchObject({ code: 'HOX_UNAUTHENTICATED' });
      // Revoked: refused at once, on the next request.
      const client = withCert(n1.token, mine);
      await client.call('whoami', {});
      await m.admin.call('removeNodeCertificate', { computer_guid: 'n1' });
      await expect(client.call('whoami', {})).rejects.toMatchObject({
        code: 'HOX_UNAUTHENTICATED',
        message: expect.stringContaining('revoked or unknown') as unknown,
      });
      // The token alone still works here (--allow-nodes-without-certificates).
      expect((await new MasterClient({ url: m.url, token: n1.token, ca: m.ca! }).call('whoami', {})).kind).toBe('node');

      // The agent's side: asks for one, keeps it 0600, presents it; a refused one is replaced; an aging one renewed.
      const dataDir = mkdtempSync(join(tmpdir(), 'hox-node-cert-'));
      try {
        let nowMs = Date.now();
        const agentClient = new MasterClient({ url: m.url, token: n2.token, ca: m.ca! });
        const lines: string[] = [];
        const keeper = new NodeCertificate({
          dataDir,
          nodeId: 'n2',
          client: agentClient,
          log: (l) => lines.push(l),
          now: () => nowMs,
        });
        await keeper.refresh();
        const file = join(dataDir, 'node-certificate.json');
        expect(statSync(file).mode & 0o777).toBe(0o600);
        const serial = () =>
          new X509Certificate((JSON.parse(readFileSync(file, 'utf8')) as { certificate: string }).certificate)
            .serialNumber;
        const first = serial();
        expect((await agentClient.call('whoami', {})).subject).toBe('n2');
        await keeper.refresh(); // young: kept
        expect(serial()).toBe(first);
        await m.admin.call('removeNodeCertificate', { computer_guid: 'n2' });
        await expect(agentClient.call('whoami', {})).rejects.toMatchObject({ code: 'HOX_UNAUTHENTICATED' });
        await keeper.refresh({ force: true });
        const second = serial();
        expect(second).not.toBe(first);
        expect((await agentClient.call('whoami', {})).subject).toBe('n2');
        nowMs += 3.4 * 86_400_000; // before half a week: kept
        await keeper.refresh();
        expect(serial()).toBe(second);
        nowMs += 1.4 * 86_400_000; // past two thirds of a week, the latest point of the renewal window
        await keeper.refresh();
        expect(serial()).not.toBe(second);
        expect(lines.filter((l) => l.includes('mutual TLS'))).toHaveLength(3);
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    } finally {
      await m.stop();
    }
  });
});
