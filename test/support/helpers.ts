import { expect } from 'vitest';
import { isNotReady, type MasterClient, type RequestOf, type ResponseOf } from '../../src/client/master-client.js';
import { HoxError, type ErrorCode } from '../../src/shared/errors.js';
import type { InstanceDocumentBody } from '../../src/protocol/schemas.js';

export const RELEASE = 'https://releases.example.org/demo-1.0.tar.gz';
export const OTHER_RELEASE = 'https://releases.example.org/other-2.0.tar.gz';

export type RequestExtra = Partial<Omit<RequestOf<'requestInstance'>, 'title'>>;

/** Requests an instance and insists on a full answer (not SlapOS's 102). */
export async function request(
  client: MasterClient,
  title: string,
  extra: RequestExtra = {},
): Promise<InstanceDocumentBody> {
  const answer = await client.call('requestInstance', {
    title,
    software_release_uri: RELEASE,
    software_type: 'default',
    ...extra,
  });
  return asDoc(answer);
}

export function asDoc(answer: ResponseOf<'requestInstance'>): InstanceDocumentBody {
  if (isNotReady(answer)) throw new Error(`unexpected not-ready answer: ${answer.message}`);
  return answer;
}

/** Awaits a rejection with the given error code; returns the error for further checks. */
export async function expectError(
  promise: Promise<unknown>,
  code: ErrorCode,
  text?: string | RegExp,
): Promise<HoxError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected ${code}`).toBeInstanceOf(HoxError);
  const e = caught as HoxError;
  expect(e.code, e.message).toBe(code);
  if (text !== undefined) expect(e.message).toMatch(text);
  return e;
}

/** A client acting as an instance, with a token its node obtained. */
export async function instanceClient(node: MasterClient, instanceGuid: string): Promise<MasterClient> {
  const { token } = await node.call('issueInstanceToken', { instance_guid: instanceGuid });
  return node.withToken(token);
}

export async function getDoc(client: MasterClient, instanceGuid: string): Promise<InstanceDocumentBody> {
  return asDoc(await client.call('getInstance', { instance_guid: instanceGuid }));
}
