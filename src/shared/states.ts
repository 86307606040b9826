/**
 * State unions shared by the store, the protocol and the code.
 * Values are lowercase strings, identical in the database and on the wire.
 */

/**
 * What a requester wants an instance to be.
 *
 * `started` ⇄ `stopped` at will; either → `destroyed`, which is final: the
 * node reports `destroyed`, then the master frees the partition and forgets
 * the instance (children first).
 */
export const REQUESTED_STATES = ['started', 'stopped', 'destroyed'] as const;
export type RequestedState = (typeof REQUESTED_STATES)[number];

/** What a node reports an instance to be. `null` in the store until the first report. */
export const REPORTED_INSTANCE_STATES = ['started', 'stopped', 'destroyed'] as const;
export type ReportedInstanceState = (typeof REPORTED_INSTANCE_STATES)[number];

/**
 * A partition is `free` (carries nothing) or `busy` (hosts exactly one
 * instance). `free` → `busy` on allocation; `busy` → `free` once the instance
 * is destroyed and reported so.
 */
export const PARTITION_STATES = ['free', 'busy'] as const;
export type PartitionState = (typeof PARTITION_STATES)[number];

/**
 * What a user wants a node to do with a software release: install it
 * (`available`) or remove it (`destroyed`).
 */
export const SOFTWARE_REQUESTED_STATES = ['available', 'destroyed'] as const;
export type SoftwareRequestedState = (typeof SOFTWARE_REQUESTED_STATES)[number];

/**
 * What a node reports of a software installation. `building` → `available`
 * or `error`; a `destroyed` report removes the installation from the node's
 * list. Reports never change the requested state.
 */
export const SOFTWARE_REPORTED_STATES = ['building', 'available', 'error', 'destroyed'] as const;
export type SoftwareReportedState = (typeof SOFTWARE_REPORTED_STATES)[number];

/** Kinds of bearer tokens the master issues. */
export const TOKEN_KINDS = ['admin', 'user', 'node', 'instance', 'registration'] as const;
export type TokenKind = (typeof TOKEN_KINDS)[number];

/**
 * What a banged instance's status says until its node reports again (`#error bang called: <message>`, as SlapOS's
 * master sets it): a note, not a failure.
 */
export const BANG_NOTE = 'bang called: ';
