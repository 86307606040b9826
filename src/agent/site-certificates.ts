/**
 * The site certificates a partition's plan asks for (`PartitionPlan.certificates`): the agent makes each key, asks
 * the master's sites CA for the certificate as the instance, keeps both with the partition's secret (agent-only,
 * `partition-secret.ts`) and hands the partition files of them at each convergence. A certificate is asked for
 * again when its names or lifetime change, or at two thirds of its life. A refusal or a failure is written in
 * `certificates/status.json`; a certificate still valid for the same names keeps serving meanwhile.
 */
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import type { FileSpec, SiteCertificateSpec } from '../release-kit/types.js';
import { HoxError } from '../shared/errors.js';
import { renewalAtMs } from '../shared/pki/renewal.js';
import type { HeldCertificate } from './partition-secret.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const RESERVED = new Set(['ca', 'status']);
const DEFAULT_DAYS = 30;

export interface SiteCertificateAsk {
  dns_names: string[];
  ip_addresses: string[];
  public_key_pem: string;
  lifetime_days: number;
}

export interface SiteCertificateGiven {
  certificate: string;
  ca_certificates: string;
  not_after: string;
}

/** What `certificates/status.json` says of one certificate. */
export type CertificateStatus =
  | { ok: true; not_after: string; warning?: string }
  /** `refused`: the master said no (the names are not the tree's to have); otherwise it may work next time. */
  | { ok: false; error: string; refused: boolean };

export interface SiteCertificateFiles {
  files: FileSpec[];
  /** The certificates to hold from now on (only those the plan still asks for). */
  held: Record<string, HeldCertificate>;
  /** Whether `held` differs from what was held (to be stored before the files are written). */
  changed: boolean;
  status: Record<string, CertificateStatus>;
}

export async function siteCertificateFiles(options: {
  specs: readonly SiteCertificateSpec[];
  held: Readonly<Record<string, HeldCertificate>>;
  nowMs: number;
  issue: (ask: SiteCertificateAsk) => Promise<SiteCertificateGiven>;
}): Promise<SiteCertificateFiles> {
  const held: Record<string, HeldCertificate> = {};
  const status: Record<string, CertificateStatus> = {};
  let changed = Object.keys(options.held).some((name) => !options.specs.some((s) => s.name === name));
  for (const spec of options.specs) {
    if (!NAME.test(spec.name) || RESERVED.has(spec.name) || status[spec.name] !== undefined)
      throw new HoxError(
        'HOX_BAD_REQUEST',
        `certificates: '${spec.name.slice(0, 80)}' is not a usable certificate name (letters, digits, '.', '-', '_'; once; not 'ca' nor 'status')`,
        { field: 'certificates' },
      );
    const dnsNames = (spec.dnsNames ?? []).map((d) => d.toLowerCase());
    const ipAddresses = [...(spec.ipAddresses ?? [])];
    const days = spec.days ?? DEFAULT_DAYS;
    const previous = options.held[spec.name];
    const same =
      previous !== undefined &&
      previous.days === days &&
      JSON.stringify(previous.dnsNames) === JSON.stringify(dnsNames) &&
      JSON.stringify(previous.ipAddresses) === JSON.stringify(ipAddresses);
    const renewAt = previous === undefined ? 0 : renewalAtMs(previous.notBeforeMs, previous.notAfterMs);
    if (same && options.nowMs < renewAt) {
      held[spec.name] = previous;
      status[spec.name] = { ok: true, not_after: new Date(previous.notAfterMs).toISOString() };
      continue;
    }
    try {
      const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const given = await options.issue({
        dns_names: dnsNames,
        ip_addresses: ipAddresses,
        public_key_pem: keys.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
        lifetime_days: days,
      });
      const leaf = new X509Certificate(given.certificate);
      if (!leaf.publicKey.equals(keys.publicKey))
        throw new HoxError('HOX_INTERNAL', 'the master answered a certificate for another key');
      held[spec.name] = {
        dnsNames,
        ipAddresses,
        days,
        keyPem: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
        chainPem: given.certificate,
        caPem: given.ca_certificates,
        notBeforeMs: Date.parse(leaf.validFrom),
        notAfterMs: Date.parse(leaf.validTo),
      };
      status[spec.name] = { ok: true, not_after: new Date(held[spec.name]!.notAfterMs).toISOString() };
      changed = true;
    } catch (error) {
      const message = (error as Error).message;
      if (same && options.nowMs < previous.notAfterMs) {
        held[spec.name] = previous;
        status[spec.name] = {
          ok: true,
          not_after: new Date(previous.notAfterMs).toISOString(),
          warning: `not renewed: ${message}`,
        };
      } else {
        const refused = error instanceof HoxError && ['HOX_FORBIDDEN', 'HOX_BAD_REQUEST'].includes(error.code);
        status[spec.name] = { ok: false, error: message, refused };
        if (previous !== undefined) changed = true;
      }
    }
  }

  const files: FileSpec[] = [];
  for (const [name, c] of Object.entries(held)) {
    // The key before its certificate: a certificate in the partition always has its key.
    files.push({ path: `certificates/${name}.key`, content: c.keyPem, mode: 0o600, reload: true });
    files.push({ path: `certificates/${name}.crt`, content: c.chainPem, mode: 0o640, reload: true });
  }
  // The roots the newest answer gave (they change only when the sites CA's root rotates).
  const caPem = Object.values(held).sort((a, b) => b.notBeforeMs - a.notBeforeMs)[0]?.caPem;
  if (caPem !== undefined) files.push({ path: 'certificates/ca.crt', content: caPem, mode: 0o640, reload: true });
  if (options.specs.length > 0)
    files.push({
      path: 'certificates/status.json',
      content: `${JSON.stringify(status, null, 2)}\n`,
      mode: 0o640,
      reload: true,
    });
  return { files, held, changed, status };
}
