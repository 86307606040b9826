/**
 * SLA parameters the allocator understands. Anything else is refused with the
 * key named: silently ignoring an SLA would place an instance where its
 * requester said it must not go.
 */
import { HoxError } from '../shared/errors.js';

export interface Sla {
  /** Place on this compute node. */
  computer_guid?: string;
  /** Place on a compute node of this network. */
  network_guid?: string;
  /** Shared instances only: host on this instance. */
  instance_guid?: string;
  /** `unique_by_network`: never on a network that already hosts an instance of the same tree. */
  mode?: 'unique_by_network';
  /** Instances of one tree with the same key go to distinct compute nodes. */
  anti_affinity?: string;
  /** Days the data is kept after destruction (stored; honoured by releases such as hyper_db). */
  retention_delay?: number;
}

export const SLA_KEYS = [
  'computer_guid',
  'network_guid',
  'instance_guid',
  'mode',
  'anti_affinity',
  'retention_delay',
] as const;

export function parseSla(raw: Record<string, unknown>, shared: boolean): Sla {
  const sla: Sla = {};
  for (const [key, value] of Object.entries(raw)) {
    const field = `sla_parameters.${key}`;
    switch (key) {
      case 'computer_guid':
      case 'network_guid':
      case 'instance_guid':
      case 'anti_affinity':
        if (typeof value !== 'string' || value === '')
          throw new HoxError('HOX_INVALID_SLA', `${field}: must be a non-empty string`, { field });
        if (key === 'instance_guid' && !shared)
          throw new HoxError('HOX_INVALID_SLA', `${field}: only a shared instance can be pinned to a host instance`, {
            field,
          });
        sla[key] = value;
        break;
      case 'mode':
        if (value !== 'unique_by_network')
          throw new HoxError(
            'HOX_INVALID_SLA',
            `${field}: unknown mode '${String(value)}' (known: unique_by_network)`,
            { field },
          );
        sla.mode = value;
        break;
      case 'retention_delay': {
        const days = typeof value === 'string' ? Number(value) : value;
        if (typeof days !== 'number' || !Number.isFinite(days) || days < 0)
          throw new HoxError('HOX_INVALID_SLA', `${field}: must be a number of days ≥ 0`, { field });
        sla.retention_delay = days;
        break;
      }
      default:
        throw new HoxError(
          'HOX_UNKNOWN_SLA_KEY',
          `${field}: the allocator does not know SLA key '${key}' (known: ${SLA_KEYS.join(', ')})`,
          { field },
        );
    }
  }
  return sla;
}
