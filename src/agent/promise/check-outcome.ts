/** What one kind of check concludes; `checkPromise` prefixes `detail` with the target to form the message. */
export interface CheckOutcome {
  ok: boolean;
  /** Readable, without the target: "connection refused", "status 500, expected 200". */
  detail: string;
}
