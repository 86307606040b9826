/**
 * The node's own certificate, for mutual TLS with an HTTPS master: asked for through SlapOS's
 * `compute_node_certificate` (with the node's token), kept in `<data-dir>/node-certificate.json` (mode 0600, with
 * its key), presented on every call from then on, and renewed between half and two thirds of its life (the point
 * drawn from its serial number, so that nodes given theirs together do not all renew in the same minute). A master
 * that no longer knows it (revoked: `slapos.remove.v0.compute_node_certificate`) refuses calls made with it, and
 * one that requires node certificates refuses a node's token without one; the node then asks for a new one with
 * its token (node-agent.ts). Never fatal here: a failed ask is retried.
 *
 * @example
 * const keeper = new NodeCertificate({ dataDir, nodeId, client, log });
 * await keeper.refresh(); // at start, then every hour
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { MasterClient } from '../client/master-client.js';
import { writeFileDurably } from '../shared/durable-file.js';

const FILE = 'node-certificate.json';

interface Stored {
  certificate: string;
  key: string;
}

export class NodeCertificate {
  private current: Stored | undefined;

  constructor(
    private readonly options: {
      dataDir: string;
      nodeId: string;
      client: MasterClient;
      log: (message: string) => void;
      now?: () => number;
    },
  ) {}

  /** Loads the kept certificate, or asks for one when there is none, it is due for renewal, or refused. */
  async refresh(options: { force?: boolean } = {}): Promise<void> {
    this.current ??= await this.load();
    if (this.current !== undefined && options.force !== true && !this.aging(this.current)) {
      this.options.client.useClientCertificate({ cert: this.current.certificate, key: this.current.key });
      return;
    }
    // Asked without the current certificate: it may be the one the master refuses.
    const answer = await this.options.client
      .withoutClientCertificate()
      .call('nodeCertificate', { computer_guid: this.options.nodeId });
    this.current = { certificate: answer.certificate, key: answer.key };
    await writeFileDurably(join(this.options.dataDir, FILE), `${JSON.stringify(this.current)}\n`, { mode: 0o600 });
    this.options.client.useClientCertificate({ cert: answer.certificate, key: answer.key });
    const leaf = new X509Certificate(answer.certificate);
    this.options.log(`node certificate ${leaf.serialNumber.toLowerCase()} until ${leaf.validTo}: mutual TLS`);
  }

  private aging(stored: Stored): boolean {
    try {
      const leaf = new X509Certificate(stored.certificate);
      const from = Date.parse(leaf.validFrom);
      const to = Date.parse(leaf.validTo);
      // Serial numbers are random (platform-ca.ts): their last 16 bits spread the renewals over a sixth of the life.
      const spread = parseInt(leaf.serialNumber.slice(-4), 16) / 0xffff;
      return (
        (this.options.now?.() ?? Date.now()) > from + (to - from) * (0.5 + (Number.isFinite(spread) ? spread : 1) / 6)
      );
    } catch {
      return true;
    }
  }

  private async load(): Promise<Stored | undefined> {
    try {
      const parsed = JSON.parse(await readFile(join(this.options.dataDir, FILE), 'utf8')) as Partial<Stored>;
      if (typeof parsed.certificate === 'string' && typeof parsed.key === 'string')
        return { certificate: parsed.certificate, key: parsed.key };
    } catch {
      // none yet, or damaged: a new one is asked for
    }
    return undefined;
  }
}
