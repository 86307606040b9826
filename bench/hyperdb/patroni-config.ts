/**
 * Patroni 3.0.2 configuration of one member of the benchmark cluster, as data.
 * Written as JSON, which Patroni's YAML loader reads as is.
 */
import path from 'node:path';

/** Patroni's HA timings, in seconds. Patroni's own defaults: ttl 30, loop_wait 10, retry_timeout 10. */
export interface PatroniTimings {
  ttlS: number;
  loopWaitS: number;
  retryTimeoutS: number;
}

export const DEFAULT_PATRONI_TIMINGS: PatroniTimings = Object.freeze({ ttlS: 30, loopWaitS: 10, retryTimeoutS: 10 });

/** Where one member lives. */
export interface PatroniMemberLayout {
  name: string;
  /** Its own loopback address: PostgreSQL, REST API and Raft listen there. */
  host: string;
  pgPort: number;
  restPort: number;
  raftPort: number;
  /** Owned by the postgres user: `pgdata/`, `raft/`, the socket and the config. */
  dir: string;
}

/** Everything the members share. */
export interface PatroniClusterLayout {
  scope: string;
  binDir: string;
  members: readonly PatroniMemberLayout[];
  timings: PatroniTimings;
  superuserPassword: string;
  replicationPassword: string;
}

export const SUPERUSER = 'postgres';
const REPLICATION_USER = 'replicator';

export function pgDataDir(member: PatroniMemberLayout): string {
  return path.join(member.dir, 'pgdata');
}

/** Patroni's member tags the benchmark changes: `nosync` keeps a member from being picked as synchronous standby. */
export interface PatroniTags {
  nosync: boolean;
}

/** The configuration file of `member`, as an object ready for `JSON.stringify`. */
export function patroniConfig(
  cluster: PatroniClusterLayout,
  member: PatroniMemberLayout,
  tags: PatroniTags = { nosync: false },
): Record<string, unknown> {
  const { ttlS, loopWaitS, retryTimeoutS } = cluster.timings;
  const raftAddress = (m: PatroniMemberLayout): string => `${m.host}:${m.raftPort}`;
  return {
    scope: cluster.scope,
    name: member.name,
    restapi: {
      listen: `${member.host}:${member.restPort}`,
      connect_address: `${member.host}:${member.restPort}`,
    },
    // Patroni's built-in Raft (pysyncobj): the members are the DCS, no etcd. Without bind_addr pysyncobj
    // binds 0.0.0.0, so members sharing the port on one machine would spin retrying the bind.
    raft: {
      data_dir: path.join(member.dir, 'raft'),
      self_addr: raftAddress(member),
      bind_addr: raftAddress(member),
      partner_addrs: cluster.members.filter((m) => m !== member).map(raftAddress),
    },
    bootstrap: {
      dcs: {
        ttl: ttlS,
        loop_wait: loopWaitS,
        retry_timeout: retryTimeoutS,
        maximum_lag_on_failover: 1_048_576,
        // Patroni 3.0.2 has no quorum commit (synchronous_mode: quorum, "ANY n", came in 4.0). The closest:
        // synchronous_mode keeps exactly synchronous_node_count standby in synchronous_standby_names
        // (FIRST 1), re-pointed by Patroni to another healthy standby when that one fails, and only that
        // synchronous standby may be promoted on failover. Not strict: with no standby left, commits stop
        // waiting instead of blocking.
        synchronous_mode: true,
        synchronous_mode_strict: false,
        synchronous_node_count: 1,
        postgresql: {
          use_pg_rewind: true,
          use_slots: true,
          parameters: { wal_level: 'replica', hot_standby: 'on', max_wal_senders: 10, max_replication_slots: 10 },
        },
      },
      initdb: [{ encoding: 'UTF8' }, { locale: 'C' }],
    },
    postgresql: {
      listen: `${member.host}:${member.pgPort}`,
      connect_address: `${member.host}:${member.pgPort}`,
      data_dir: pgDataDir(member),
      bin_dir: cluster.binDir,
      pgpass: path.join(member.dir, 'pgpass'),
      authentication: {
        superuser: { username: SUPERUSER, password: cluster.superuserPassword },
        replication: { username: REPLICATION_USER, password: cluster.replicationPassword },
      },
      parameters: { unix_socket_directories: member.dir, max_connections: 100 },
      pg_hba: [
        'local all all trust',
        `host replication ${REPLICATION_USER} 127.0.0.0/8 scram-sha-256`,
        'host all all 127.0.0.0/8 scram-sha-256',
      ],
    },
    tags: { nofailover: false, noloadbalance: false, clonefrom: false, nosync: tags.nosync },
  };
}
