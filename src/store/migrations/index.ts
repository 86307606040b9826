/**
 * Versioned schema migrations, shared by both stores. A migration is never
 * edited once released: add a new one. Column types stay portable (text JSON,
 * bigint milliseconds, integer booleans); the only dialect difference is the
 * auto-increment of the change log.
 */
import { sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';

type Dialect = 'sqlite' | 'postgres';

function initial(dialect: Dialect): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('compute_node')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('title', 'text', (c) => c.notNull())
        .addColumn('network_guid', 'text')
        .addColumn('status_text', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('created_at_ms', 'bigint', (c) => c.notNull())
        .addColumn('last_contact_at_ms', 'bigint')
        .addColumn('bang_timestamp', 'bigint', (c) => c.notNull().defaultTo(0))
        // Kept by the store on every partition change: the allocator sorts nodes by it.
        .addColumn('free_partition_count', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();

      await db.schema
        .createTable('partition')
        .addColumn('node_id', 'text', (c) => c.notNull().references('compute_node.id'))
        .addColumn('partition_id', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('ip_list', 'text', (c) => c.notNull())
        .addColumn('instance_id', 'text')
        .addPrimaryKeyConstraint('partition_pk', ['node_id', 'partition_id'])
        .execute();
      // Safety belt under the allocator: one instance per partition, one partition per instance.
      await db.schema.createIndex('partition_instance_unique').on('partition').column('instance_id').unique().execute();
      await db.schema.createIndex('partition_state').on('partition').columns(['state', 'node_id']).execute();

      await db.schema
        .createTable('software_installation')
        .addColumn('node_id', 'text', (c) => c.notNull().references('compute_node.id'))
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('requested_state', 'text', (c) => c.notNull())
        .addColumn('reported_state', 'text')
        .addColumn('error_message', 'text')
        .addColumn('updated_at_ms', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('software_installation_pk', ['node_id', 'url'])
        .execute();
      await db.schema
        .createIndex('software_installation_url')
        .on('software_installation')
        .columns(['url', 'requested_state'])
        .execute();

      await db.schema
        .createTable('hox_user')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('created_at_ms', 'bigint', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('instance_tree')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('owner_id', 'text', (c) => c.notNull())
        .addColumn('title', 'text', (c) => c.notNull())
        .addColumn('root_instance_id', 'text', (c) => c.notNull())
        .addColumn('created_at_ms', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('instance_tree_owner_title', ['owner_id', 'title'])
        .execute();

      await db.schema
        .createTable('instance')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('tree_id', 'text', (c) => c.notNull())
        .addColumn('title', 'text', (c) => c.notNull())
        .addColumn('shared', 'integer', (c) => c.notNull())
        .addColumn('release_url', 'text', (c) => c.notNull())
        .addColumn('software_type', 'text', (c) => c.notNull())
        .addColumn('parameters', 'text', (c) => c.notNull())
        .addColumn('sla', 'text', (c) => c.notNull())
        .addColumn('requested_state', 'text', (c) => c.notNull())
        .addColumn('reported_state', 'text')
        .addColumn('requester_id', 'text')
        .addColumn('node_id', 'text')
        .addColumn('partition_id', 'text')
        .addColumn('host_instance_id', 'text')
        .addColumn('processing_timestamp', 'bigint', (c) => c.notNull())
        .addColumn('connection_parameters', 'text', (c) => c.notNull())
        .addColumn('error_message', 'text')
        .addColumn('status_at_ms', 'bigint')
        .addColumn('created_at_ms', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('instance_tree_title', ['tree_id', 'title'])
        .execute();
      await db.schema.createIndex('instance_node').on('instance').column('node_id').execute();
      await db.schema.createIndex('instance_host').on('instance').column('host_instance_id').execute();

      await db.schema
        .createTable('token')
        .addColumn('hash', 'text', (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('subject', 'text')
        .addColumn('created_at_ms', 'bigint', (c) => c.notNull())
        .addColumn('expires_at_ms', 'bigint')
        .addColumn('used_at_ms', 'bigint')
        .execute();
      await db.schema.createIndex('token_subject').on('token').columns(['kind', 'subject']).execute();

      await db.schema
        .createTable('compute_node_usage')
        .addColumn('node_id', 'text', (c) => c.notNull().references('compute_node.id'))
        .addColumn('at_ms', 'bigint', (c) => c.notNull())
        .addColumn('tioxml', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('change_log')
        .addColumn('seq', dialect === 'postgres' ? 'bigserial' : 'integer', (c) =>
          dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
        )
        .addColumn('node_id', 'text')
        .addColumn('tree_id', 'text')
        .addColumn('at_ms', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('change_log_node').on('change_log').columns(['node_id', 'seq']).execute();
      await db.schema.createIndex('change_log_tree').on('change_log').columns(['tree_id', 'seq']).execute();
    },
  };
}

/** Content-addressed uploads (application sources): written once, read by compute nodes. */
function artifacts(dialect: Dialect): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('artifact')
        .addColumn('sha256', 'text', (c) => c.primaryKey())
        .addColumn('owner_id', 'text', (c) => c.notNull())
        .addColumn('size_bytes', 'bigint', (c) => c.notNull())
        .addColumn('created_at_ms', 'bigint', (c) => c.notNull())
        .addColumn('content', dialect === 'postgres' ? 'bytea' : 'blob', (c) => c.notNull())
        .execute();
    },
  };
}

/**
 * The store key's check: one row sealed with the key the store's secrets are sealed with, so a master given
 * another key is refused at start instead of writing rows the others cannot read (see src/store/secret-box.ts).
 */
function storeKey(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('hox_store_key')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('verifier', 'text', (c) => c.notNull())
        .addColumn('created_at_ms', 'bigint', (c) => c.notNull())
        .execute();
    },
  };
}

/**
 * Artifacts belong to whoever uploaded them, each paying for them: one claim per (artifact, owner), kept
 * fresh by uploads and by the owner's checks (`touched_at_ms`, the collector's grace period). The content
 * stays once, in `artifact`; a claim cannot outlive it (foreign key), and the collector deletes content no
 * claim names. The first uploader column goes: it decided nothing that a claim does not.
 */
function artifactOwners(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('artifact_owner')
        .addColumn('sha256', 'text', (c) => c.notNull().references('artifact.sha256'))
        .addColumn('owner_id', 'text', (c) => c.notNull())
        .addColumn('size_bytes', 'bigint', (c) => c.notNull())
        .addColumn('created_at_ms', 'bigint', (c) => c.notNull())
        .addColumn('touched_at_ms', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('artifact_owner_pk', ['sha256', 'owner_id'])
        .execute();
      await db.schema.createIndex('artifact_owner_owner').on('artifact_owner').column('owner_id').execute();
      await db.schema.createIndex('artifact_owner_touched').on('artifact_owner').column('touched_at_ms').execute();
      await sql`insert into artifact_owner (sha256, owner_id, size_bytes, created_at_ms, touched_at_ms)
                select sha256, owner_id, size_bytes, created_at_ms, created_at_ms from artifact`.execute(db);
      await db.schema.alterTable('artifact').dropColumn('owner_id').execute();
    },
  };
}

/**
 * Each partition's limits and usage as its node last reported them (`hox show`): one row per instance with a
 * partition, replaced by each report, deleted with the instance. Plain JSON text: usage is not secret, so it is
 * not sealed like the instance's parameters. No change record is ever written for it (see `reportPartitionUsage`).
 */
function partitionUsage(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('partition_usage')
        .addColumn('instance_id', 'text', (c) => c.primaryKey())
        .addColumn('node_id', 'text', (c) => c.notNull())
        .addColumn('partition_id', 'text', (c) => c.notNull())
        .addColumn('limits', 'text', (c) => c.notNull())
        .addColumn('usage', 'text', (c) => c.notNull())
        .addColumn('not_enforced', 'text', (c) => c.notNull())
        .addColumn('not_enforced_reason', 'text')
        .addColumn('measured_at_ms', 'bigint', (c) => c.notNull())
        .addColumn('disk_measured_at_ms', 'bigint')
        .addColumn('reported_at_ms', 'bigint', (c) => c.notNull())
        .execute();
    },
  };
}

/**
 * Log requests (`hox logs` through the master): a row per (request, compute node), answered by the node's agent,
 * read and deleted by the master that wrote it. The answer (log lines) is sealed like instance parameters.
 */
function logRequests(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('log_request')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('node_id', 'text', (c) => c.notNull())
        .addColumn('spec', 'text', (c) => c.notNull())
        .addColumn('answer', 'text')
        .addColumn('created_at_ms', 'bigint', (c) => c.notNull())
        .addColumn('answered_at_ms', 'bigint')
        .execute();
      await db.schema.createIndex('log_request_node').on('log_request').columns(['node_id', 'created_at_ms']).execute();
      await db.schema.createIndex('log_request_created').on('log_request').column('created_at_ms').execute();
    },
  };
}

/**
 * Each instance's promises as its node last reported them (`hox show`): one row per instance with a partition,
 * replaced by each report, deleted with the instance. The list is JSON text, not sealed: promise messages name
 * targets and verdicts, and the agent masks credentials in them before they leave the node. No change record is
 * ever written for it (see `reportPromiseResults`).
 */
function promiseResults(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('promise_result')
        .addColumn('instance_id', 'text', (c) => c.primaryKey())
        .addColumn('node_id', 'text', (c) => c.notNull())
        .addColumn('partition_id', 'text', (c) => c.notNull())
        .addColumn('results', 'text', (c) => c.notNull())
        .addColumn('reported_at_ms', 'bigint', (c) => c.notNull())
        .execute();
    },
  };
}

/**
 * The audit trail (docs/security/audit.md): one row per mutating API call, appended by the HTTP edge, pruned by age
 * and count. No secret is ever written here: the target is a whitelist of names and ids (src/master/audit-trail.ts).
 * Indexed by time (`--since`) and by actor (a user reads only its own entries).
 */
function auditLog(dialect: Dialect): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('audit_log')
        .addColumn('seq', dialect === 'postgres' ? 'bigserial' : 'integer', (c) =>
          dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
        )
        .addColumn('at_ms', 'bigint', (c) => c.notNull())
        .addColumn('actor_kind', 'text', (c) => c.notNull())
        .addColumn('actor', 'text')
        .addColumn('address', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('target', 'text', (c) => c.notNull())
        .addColumn('status', 'integer', (c) => c.notNull())
        .addColumn('result', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('audit_log_time').on('audit_log').columns(['at_ms']).execute();
      await db.schema.createIndex('audit_log_actor').on('audit_log').columns(['actor_kind', 'actor', 'seq']).execute();
    },
  };
}

/**
 * What nodes keep of destroyed instances (a destroyed cluster's backups): one row per instance, written by its
 * node's report at destroy time (owner and titles from the master's records), forgotten when the node no longer
 * lists it. Outlives the instance and its tree on purpose. Plain JSON text, not sealed: nothing secret in it.
 */
function retainedSets(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('retained_set')
        .addColumn('instance_id', 'text', (c) => c.primaryKey())
        .addColumn('node_id', 'text', (c) => c.notNull())
        .addColumn('partition_id', 'text', (c) => c.notNull())
        .addColumn('owner_id', 'text', (c) => c.notNull())
        .addColumn('tree_title', 'text', (c) => c.notNull())
        .addColumn('instance_title', 'text', (c) => c.notNull())
        .addColumn('release_url', 'text', (c) => c.notNull())
        .addColumn('software_type', 'text', (c) => c.notNull())
        .addColumn('paths', 'text', (c) => c.notNull())
        .addColumn('destroyed_at_ms', 'bigint', (c) => c.notNull())
        .addColumn('expires_at_ms', 'bigint', (c) => c.notNull())
        .addColumn('reported_at_ms', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('retained_set_owner').on('retained_set').column('owner_id').execute();
      await db.schema.createIndex('retained_set_node').on('retained_set').column('node_id').execute();
    },
  };
}

/**
 * The platform CA's state (`src/master/pki/platform-ca.ts`): one row, a JSON document whose CA keys are sealed with
 * the store key. In the store rather than a file so every master of one PostgreSQL store serves the same PKI.
 */
function pkiState(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('pki_state')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('updated_at_ms', 'bigint', (c) => c.notNull())
        .execute();
    },
  };
}

/**
 * Certificates issued to compute nodes and instances, so that the one whose holder goes away (an instance
 * destroyed, a node's certificate removed) is revoked at once. Rows leave once revoked or expired.
 */
function issuedCertificates(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('issued_certificate')
        .addColumn('serial', 'text', (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('subject', 'text', (c) => c.notNull())
        .addColumn('not_after_ms', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('issued_certificate_subject')
        .on('issued_certificate')
        .columns(['kind', 'subject'])
        .execute();
    },
  };
}

/**
 * Each compute node's own metrics as it last reported them (CPU, memory, load, filesystems: `hox.put.v1.node_metrics`),
 * one row per node, replaced by each report: what the master's `/metrics` exposes for Prometheus.
 */
function nodeMetrics(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('node_metrics')
        .addColumn('node_id', 'text', (c) => c.primaryKey())
        .addColumn('metrics', 'text', (c) => c.notNull())
        .addColumn('reported_at_ms', 'bigint', (c) => c.notNull())
        .execute();
    },
  };
}

/** Alerts reported by monitor instances (`hox.put.v1.alerts`), open and recently resolved: `hox alerts`. */
function alerts(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('alert')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('source_instance_id', 'text', (c) => c.notNull())
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('rule', 'text', (c) => c.notNull())
        .addColumn('severity', 'text', (c) => c.notNull())
        .addColumn('node_id', 'text', (c) => c.notNull())
        .addColumn('partition_id', 'text')
        .addColumn('path', 'text')
        .addColumn('instance_id', 'text')
        .addColumn('tree_id', 'text')
        .addColumn('owner_id', 'text')
        .addColumn('summary', 'text', (c) => c.notNull())
        .addColumn('eta_ms', 'bigint')
        .addColumn('eta_earliest_ms', 'bigint')
        .addColumn('eta_latest_ms', 'bigint')
        .addColumn('evidence', 'text', (c) => c.notNull())
        .addColumn('opened_at_ms', 'bigint', (c) => c.notNull())
        .addColumn('updated_at_ms', 'bigint', (c) => c.notNull())
        .addColumn('resolved_at_ms', 'bigint')
        .addColumn('action', 'text')
        .execute();
      await db.schema.createIndex('alert_open').on('alert').columns(['resolved_at_ms', 'source_instance_id']).execute();
      await db.schema.createIndex('alert_owner').on('alert').columns(['owner_id', 'opened_at_ms']).execute();
    },
  };
}

/** When a compute node's status took its current kind (`#access`, `#error`): SlapOS's `since`. */
function nodeStatusSince(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('compute_node').addColumn('status_since_ms', 'bigint').execute();
    },
  };
}

/** Migrations in order; the key is the version recorded in the database. */
export function migrationProvider(dialect: Dialect): MigrationProvider {
  return {
    getMigrations() {
      return Promise.resolve({
        '0001-initial': initial(dialect),
        '0002-artifacts': artifacts(dialect),
        '0003-store-key': storeKey(),
        '0004-artifact-owners': artifactOwners(),
        '0005-partition-usage': partitionUsage(),
        '0006-log-requests': logRequests(),
        '0007-promise-results': promiseResults(),
        '0008-audit-log': auditLog(dialect),
        '0009-retained-sets': retainedSets(),
        '0010-pki-state': pkiState(),
        '0011-issued-certificates': issuedCertificates(),
        '0012-node-metrics': nodeMetrics(),
        '0013-alerts': alerts(),
        '0014-node-status-since': nodeStatusSince(),
      });
    },
  };
}
