/** Kysely table types, mirroring src/store/migrations. Columns are snake_case as stored. */
import type { Generated } from 'kysely';

type Int = number | string | bigint;

export interface Database {
  artifact: { sha256: string; size_bytes: Int; created_at_ms: Int; content: Uint8Array };
  artifact_owner: { sha256: string; owner_id: string; size_bytes: Int; created_at_ms: Int; touched_at_ms: Int };
  compute_node: {
    id: string;
    title: string;
    network_guid: string | null;
    status_text: string;
    created_at_ms: Int;
    last_contact_at_ms: Int | null;
    status_since_ms: Int | null;
    bang_timestamp: Int;
    free_partition_count: Generated<Int>;
  };
  partition: {
    node_id: string;
    partition_id: string;
    state: string;
    ip_list: string;
    instance_id: string | null;
  };
  software_installation: {
    node_id: string;
    url: string;
    requested_state: string;
    reported_state: string | null;
    error_message: string | null;
    updated_at_ms: Int;
  };
  hox_user: { id: string; name: string; created_at_ms: Int };
  instance_tree: {
    id: string;
    owner_id: string;
    title: string;
    root_instance_id: string;
    created_at_ms: Int;
  };
  instance: {
    id: string;
    tree_id: string;
    title: string;
    shared: Int;
    release_url: string;
    software_type: string;
    parameters: string;
    sla: string;
    requested_state: string;
    reported_state: string | null;
    requester_id: string | null;
    node_id: string | null;
    partition_id: string | null;
    host_instance_id: string | null;
    processing_timestamp: Int;
    connection_parameters: string;
    error_message: string | null;
    status_at_ms: Int | null;
    created_at_ms: Int;
  };
  token: {
    hash: string;
    kind: string;
    subject: string | null;
    created_at_ms: Int;
    expires_at_ms: Int | null;
    used_at_ms: Int | null;
  };
  hox_store_key: { id: Int; key_id: string; verifier: string; created_at_ms: Int };
  compute_node_usage: { node_id: string; at_ms: Int; tioxml: string };
  partition_usage: {
    instance_id: string;
    node_id: string;
    partition_id: string;
    limits: string;
    usage: string;
    not_enforced: string;
    not_enforced_reason: string | null;
    measured_at_ms: Int;
    disk_measured_at_ms: Int | null;
    reported_at_ms: Int;
  };
  issued_certificate: {
    serial: string;
    kind: string;
    subject: string;
    not_after_ms: Int;
  };
  pki_state: {
    id: string;
    state: string;
    updated_at_ms: Int;
  };
  retained_set: {
    instance_id: string;
    node_id: string;
    partition_id: string;
    owner_id: string;
    tree_title: string;
    instance_title: string;
    release_url: string;
    software_type: string;
    paths: string;
    destroyed_at_ms: Int;
    expires_at_ms: Int;
    reported_at_ms: Int;
  };
  node_metrics: {
    node_id: string;
    metrics: string;
    reported_at_ms: Int;
  };
  alert: {
    id: string;
    source_instance_id: string;
    key: string;
    rule: string;
    severity: string;
    node_id: string;
    partition_id: string | null;
    path: string | null;
    instance_id: string | null;
    tree_id: string | null;
    owner_id: string | null;
    summary: string;
    eta_ms: Int | null;
    eta_earliest_ms: Int | null;
    eta_latest_ms: Int | null;
    evidence: string;
    opened_at_ms: Int;
    updated_at_ms: Int;
    resolved_at_ms: Int | null;
    action: string | null;
  };
  promise_result: {
    instance_id: string;
    node_id: string;
    partition_id: string;
    results: string;
    reported_at_ms: Int;
  };
  log_request: {
    id: string;
    node_id: string;
    spec: string;
    answer: string | null;
    created_at_ms: Int;
    answered_at_ms: Int | null;
  };
  audit_log: {
    seq: Generated<Int>;
    at_ms: Int;
    actor_kind: string;
    actor: string | null;
    address: string;
    action: string;
    target: string;
    status: Int;
    result: string;
  };
  change_log: {
    seq: Generated<Int>;
    node_id: string | null;
    tree_id: string | null;
    at_ms: Int;
  };
}
