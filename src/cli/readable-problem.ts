/** Problems as the node reported them, told to a person (pure). */

/**
 * An error as reported (`promise rw-endpoint: command ['/usr/bin/node', …]: exit 1: no primary accepts
 * writes through …`) without the command line, which tells a person nothing.
 */
export function readableProblem(text: string): string {
  return text
    .replace(/^while instan[ct]iating: /, '')
    .replace(/command \[(?:'(?:[^'\\]|\\.)*'(?:, )?)*\]: (?:exit \d+: )?/g, '');
}
