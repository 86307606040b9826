/**
 * Destruction is never a surprise: on a terminal the user types the name of
 * what goes; with no terminal (a script, CI) `--yes` says it was meant.
 */
import { HoxError } from '../shared/errors.js';
import type { CommandEnv } from './command-env.js';

export interface DestructionToConfirm {
  /** What is destroyed, for the question: `app 'crm'`, `instance tree 'hello'`. */
  what: string;
  /** The name to type. */
  name: string;
  /** What goes with it, said before asking (`its database addon is dropped`). */
  consequence?: string;
  /** `--yes` was given. */
  yes: boolean;
  /** The command, for the refusal's hint: `hox destroy hello`. */
  command: string;
}

/** Resolves once the destruction is confirmed; throws (exit 2 without a terminal, 1 when the name differs) otherwise. */
export async function confirmDestruction(env: Pick<CommandEnv, 'askLine'>, d: DestructionToConfirm): Promise<void> {
  if (d.yes) return;
  const consequence = d.consequence === undefined ? '' : ` (${d.consequence})`;
  if (env.askLine === undefined)
    throw new HoxError(
      'HOX_BAD_REQUEST',
      `destroying ${d.what}${consequence} needs --yes when there is no terminal to confirm on: ${d.command} --yes`,
      { field: '--yes' },
    );
  const typed = (await env.askLine(`This destroys ${d.what}${consequence}. Type '${d.name}' to confirm: `)).trim();
  if (typed !== d.name)
    throw new HoxError(
      'HOX_CONFLICT',
      `not destroyed: ${typed === '' ? 'nothing was typed' : `'${typed}' is not '${d.name}'`} (--yes skips the question)`,
    );
}
