/**
 * Every example in every `--help` text parses: the program accepts its
 * command, arguments and options, its `--param`/`--sla` assignments parse, and
 * `hox request … --release demo` examples pass the demo release's own schema
 * (the check a node makes: `--param port:=8080` parsed but the release refused
 * it). No action runs: each command's action is replaced by one that records
 * what it was given.
 */
import { CommanderError, type Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { SchemaChecker } from '../src/agent/schema-checker.js';
import type { CommandEnv } from '../src/cli/command-env.js';
import { parseAssignments } from '../src/cli/parse-params.js';
import { buildProgram } from '../src/cli/program.js';
import demo from '../src/releases/demo/release.js';

function quietEnv(): CommandEnv {
  return {
    adminToken: undefined,
    masterUrl: 'http://127.0.0.1:9',
    token: 'test-token',
    configPath: '/nonexistent/hox-config.json',
    print: () => undefined,
    printErr: () => undefined,
    onStop: () => undefined,
    stopped: new Promise<void>(() => undefined),
  };
}

function allCommands(command: Command): Command[] {
  return [command, ...command.commands.flatMap(allCommands)];
}

/** Each command's full help (with its addHelpText sections), keyed by its path (`hox db create`). */
function helpTexts(): Map<string, string> {
  const texts = new Map<string, string>();
  for (const command of allCommands(buildProgram(quietEnv()))) {
    let text = '';
    command.configureOutput({ writeOut: (s) => (text += s), writeErr: (s) => (text += s) });
    command.outputHelp();
    const path: string[] = [];
    for (let c: Command | null = command; c !== null; c = c.parent) path.unshift(c.name());
    texts.set(path.join(' '), text);
  }
  return texts;
}

/** The `hox …` commands of a help text's example lines, without env assignments, comments and pipes. */
function examplesIn(text: string): string[] {
  const found: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw
      .replace(/\$\([^)]*\)/g, 'X') // $(hox registration-token), $(cat token)
      .replace(/\s+#\s.*$/, '');
    if (!/^\s+(?:[A-Z_]+=\S+\s+)*hox\s/.test(line)) continue;
    for (const part of line.split(/;|&&|\|/)) {
      const command = part.trim().replace(/^(?:[A-Z_]+=\S+\s+)*/, '');
      if (command.startsWith('hox ') || command === 'hox') found.push(command);
    }
  }
  return found;
}

/** Shell words: single and double quotes, no expansion. */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  let quote: string | undefined;
  for (const ch of line) {
    if (quote !== undefined) {
      if (ch === quote) quote = undefined;
      else word = (word ?? '') + ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      word ??= '';
    } else if (/\s/.test(ch)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else word = (word ?? '') + ch;
  }
  if (quote !== undefined) throw new Error(`unbalanced quote in: ${line}`);
  if (word !== undefined) words.push(word);
  return words;
}

interface Parsed {
  path: string;
  args: unknown[];
  opts: Record<string, unknown>;
}

/** Parses one example with a fresh program whose actions only record what they got. */
async function parseExample(words: string[]): Promise<Parsed> {
  const program = buildProgram(quietEnv());
  let parsed: Parsed | undefined;
  for (const command of allCommands(program)) {
    command.exitOverride().configureOutput({ writeOut: () => undefined, writeErr: () => undefined });
    command.action((...args: unknown[]) => {
      const self = args.at(-1) as Command;
      const path: string[] = [];
      for (let c: Command | null = self; c !== null; c = c.parent) path.unshift(c.name());
      parsed = { path: path.join(' '), args: args.slice(0, -2), opts: self.optsWithGlobals() };
    });
  }
  await program.parseAsync(words.slice(1), { from: 'user' });
  if (parsed === undefined) throw new Error(`no action ran for: ${words.join(' ')}`);
  return parsed;
}

const checker = new SchemaChecker();
const texts = helpTexts();
const examples = [...texts].flatMap(([path, text]) => examplesIn(text).map((example) => ({ path, example })));

describe('examples in --help texts', () => {
  it('are found in the root help and in most command helps', () => {
    expect(examples.length).toBeGreaterThan(40);
    expect(examples.map((e) => e.example)).toContain('hox request hello --release demo --wait');
  });

  it.each(examples)('$path: $example', async ({ example }) => {
    let parsed: Parsed;
    try {
      parsed = await parseExample(shellWords(example));
    } catch (error) {
      // --help and --version examples end in commander's "displayed" exits; anything else is a failure.
      if (error instanceof CommanderError && /helpDisplayed|version/.test(error.code)) return;
      throw error;
    }
    for (const flag of ['param', 'sla'] as const) {
      const items = parsed.opts[flag];
      if (Array.isArray(items)) parseAssignments(`--${flag}`, items as string[]);
    }
    if (parsed.path === 'hox request' && parsed.opts.release === 'demo') {
      const type = typeof parsed.opts.type === 'string' ? parsed.opts.type : 'default';
      const softwareType = demo.softwareTypes[type];
      expect(softwareType, `demo has no software type '${type}'`).toBeDefined();
      const parameters = parseAssignments('--param', (parsed.opts.param as string[] | undefined) ?? []);
      checker.check(softwareType!.parameters ?? {}, parameters, 'parameters');
    }
  });

  it('a broken example would be caught: the old --param port:=8080 fails the demo schema', () => {
    expect(() =>
      checker.check(
        demo.softwareTypes.default!.parameters ?? {},
        parseAssignments('--param', ['port:=8080']),
        'parameters',
      ),
    ).toThrow(/parameters\.port: unknown parameter \(accepted: delay_ms, greeting\)/);
  });
});
