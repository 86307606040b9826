/**
 * The secret of a partition's tenancy: 32 random bytes the agent draws the
 * first time it processes an instance in a partition, from which a profile
 * derives stable passwords and keys (`input.secret(name)`) while staying pure.
 *
 * Kept in `<data-dir>/state/<partition>.secret.json` (directory 0700, file
 * 0600, owned by the agent: the partition's user never reads it), written
 * durably before any profile sees it, so a crash cannot hand a service one
 * password and the next convergence another. It belongs to one instance: a
 * file naming another instance is replaced, and the agent deletes it when it
 * wipes the partition, so the next tenant gets a new secret.
 *
 * The same file keeps the certificate authorities a software type declares
 * (`certificateAuthorities`, behind `input.certificateAuthority(name)`):
 * generated once with a maintained X.509 library (src/shared/pki/local-ca.ts),
 * stored durably before any profile sees them, gone with the secret.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { CertificateAuthoritySpec } from '../release-kit/types.js';
import { HoxError } from '../shared/errors.js';
import { createLocalCa, type LocalCa } from '../shared/pki/local-ca.js';
import { writeFileDurably } from '../shared/durable-file.js';

/** What a secret's name may be. */
export const SECRET_NAME = /^[A-Za-z0-9_.:-]{1,128}$/;

/** How many random bytes a partition's secret has. */
const SECRET_BYTES = 32;

interface SecretFile {
  instanceGuid: string;
  /** base64 of the 32 bytes. */
  secret: string;
  /** Certificate authorities by name, generated once. */
  authorities?: Record<string, LocalCa>;
  /** Site certificates the master issued, by the plan's name for them (`site-certificates.ts`). */
  siteCertificates?: Record<string, HeldCertificate>;
}

/** A site certificate the agent holds for a partition: its key, the master's answer, and what it was asked for. */
export interface HeldCertificate {
  dnsNames: string[];
  ipAddresses: string[];
  days: number;
  keyPem: string;
  /** Leaf then issuing CA. */
  chainPem: string;
  /** The sites CA's roots. */
  caPem: string;
  notBeforeMs: number;
  notAfterMs: number;
}

/**
 * Pure: base64url(HMAC-SHA256(partitionSecret, name)), 43 characters.
 * Throws `HOX_BAD_REQUEST` for a name outside {@link SECRET_NAME}.
 */
export function deriveSecret(partitionSecret: Buffer, name: string): string {
  if (typeof name !== 'string' || !SECRET_NAME.test(name))
    throw new HoxError(
      'HOX_BAD_REQUEST',
      `secret name ${JSON.stringify(name)} must match ${String(SECRET_NAME)} (letters, digits, _ . : -, 1 to 128)`,
    );
  return createHmac('sha256', partitionSecret).update(name, 'utf8').digest('base64url');
}

export class PartitionSecretStore {
  constructor(private readonly dir: string) {}

  private file(partitionId: string): string {
    return join(this.dir, `${partitionId}.secret.json`);
  }

  /** The secret of the instance's tenancy of the partition, drawn and stored durably the first time. */
  async load(partitionId: string, instanceGuid: string): Promise<Buffer> {
    const existing = await this.read(partitionId);
    if (existing !== undefined && existing.instanceGuid === instanceGuid) {
      const secret = Buffer.from(existing.secret, 'base64');
      if (secret.length === SECRET_BYTES) return secret;
    }
    const secret = randomBytes(SECRET_BYTES);
    await this.write(partitionId, { instanceGuid, secret: secret.toString('base64') });
    return secret;
  }

  /**
   * The tenancy's certificate authorities named in `wanted`, each generated the first time it is asked for
   * and stored durably with the secret (call {@link load} first: a CA belongs to the secret's tenancy).
   */
  async authorities(
    partitionId: string,
    instanceGuid: string,
    wanted: Readonly<Record<string, CertificateAuthoritySpec>>,
  ): Promise<Record<string, LocalCa>> {
    const names = Object.keys(wanted);
    if (names.length === 0) return {};
    const file = await this.read(partitionId);
    if (file === undefined || file.instanceGuid !== instanceGuid)
      throw new HoxError('HOX_INTERNAL', `partition ${partitionId}: no secret for instance ${instanceGuid} yet`);
    const authorities = { ...file.authorities };
    const missing = names.filter((name) => authorities[name] === undefined);
    for (const name of missing) {
      if (!SECRET_NAME.test(name))
        throw new HoxError(
          'HOX_BAD_REQUEST',
          `certificate authority name ${JSON.stringify(name)} must match ${String(SECRET_NAME)}`,
        );
      const spec = wanted[name]!;
      authorities[name] = await createLocalCa(spec.commonName, spec.organization);
    }
    if (missing.length > 0) await this.write(partitionId, { ...file, authorities });
    return Object.fromEntries(names.map((name) => [name, authorities[name]!]));
  }

  /** The site certificates held for the tenancy (call {@link load} first). */
  async siteCertificates(partitionId: string, instanceGuid: string): Promise<Record<string, HeldCertificate>> {
    const file = await this.read(partitionId);
    return file?.instanceGuid === instanceGuid ? { ...file.siteCertificates } : {};
  }

  /** Replaces the site certificates held for the tenancy, durably (before their files reach the partition). */
  async putSiteCertificates(
    partitionId: string,
    instanceGuid: string,
    certificates: Record<string, HeldCertificate>,
  ): Promise<void> {
    const file = await this.read(partitionId);
    if (file === undefined || file.instanceGuid !== instanceGuid)
      throw new HoxError('HOX_INTERNAL', `partition ${partitionId}: no secret for instance ${instanceGuid} yet`);
    await this.write(partitionId, { ...file, siteCertificates: certificates });
  }

  /** Forgets the partition's secret (the partition was wiped). */
  async remove(partitionId: string): Promise<void> {
    await rm(this.file(partitionId), { force: true });
  }

  private async read(partitionId: string): Promise<SecretFile | undefined> {
    try {
      const raw = JSON.parse(await readFile(this.file(partitionId), 'utf8')) as Partial<SecretFile>;
      if (typeof raw.instanceGuid !== 'string' || typeof raw.secret !== 'string') return undefined;
      const authorities = Object.fromEntries(
        Object.entries(raw.authorities ?? {}).filter(
          ([, ca]) => typeof ca?.certificatePem === 'string' && typeof ca.privateKeyPem === 'string',
        ),
      );
      const siteCertificates = Object.fromEntries(
        Object.entries(raw.siteCertificates ?? {}).filter(
          ([, c]) => typeof c?.keyPem === 'string' && typeof c.chainPem === 'string' && Array.isArray(c.dnsNames),
        ),
      );
      return { instanceGuid: raw.instanceGuid, secret: raw.secret, authorities, siteCertificates };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      // Unreadable or damaged: a secret nobody can read back is no secret; draw a new one.
      return undefined;
    }
  }

  /** Atomically and durably (file and directory synced): the secret must outlive a crash once used. */
  private async write(partitionId: string, content: SecretFile): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeFileDurably(this.file(partitionId), JSON.stringify(content), { mode: 0o600 });
  }
}
