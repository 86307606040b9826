import { describe, expect, it } from 'vitest';
import { parseProcfile } from './procfile.js';

function parse(text: string): { entries: ReturnType<typeof parseProcfile>; problems: string[] } {
  const problems: string[] = [];
  return { entries: parseProcfile(text, problems), problems };
}

describe('parseProcfile', () => {
  it('reads name: command lines with their line numbers, skipping comments and blank lines', () => {
    const { entries, problems } = parse(
      '# the app\n\nweb: node server.js\n  # indented comment\nrelease: node migrate.js\nmailer:node worker.js\n',
    );
    expect(problems).toEqual([]);
    expect(entries).toEqual([
      { name: 'web', command: 'node server.js', line: 3 },
      { name: 'release', command: 'node migrate.js', line: 5 },
      { name: 'mailer', command: 'node worker.js', line: 6 },
    ]);
  });

  it('splits at the first colon only, so commands keep theirs', () => {
    const { entries } = parse('web: node -e "console.log(\'a:b\')" --port=$PORT\n');
    expect(entries[0]?.command).toBe('node -e "console.log(\'a:b\')" --port=$PORT');
  });

  it('accepts CRLF line ends, a byte order mark, surrounding spaces and no final newline', () => {
    const { entries, problems } = parse('\uFEFFweb: a\r\n  worker_2 :  b  \r\nlast-one: c');
    expect(problems).toEqual([]);
    expect(entries.map((e) => [e.name, e.command, e.line])).toEqual([
      ['web', 'a', 1],
      ['worker_2', 'b', 2],
      ['last-one', 'c', 3],
    ]);
  });

  it('an empty file (or only comments) has no processes', () => {
    expect(parse('')).toEqual({ entries: [], problems: [] });
    expect(parse('# nothing yet\n\n')).toEqual({ entries: [], problems: [] });
  });

  it('refuses a line without a colon, naming the line', () => {
    const { entries, problems } = parse('web: a\nnode server.js\n');
    expect(entries).toHaveLength(1);
    expect(problems).toEqual([`Procfile line 2: expected 'name: command' (got "node server.js")`]);
  });

  it('refuses bad process names, naming the line and the name', () => {
    const { problems } = parse(`Web: a\n1st: b\nmy worker: c\n: d\n${'w'.repeat(32)}: e\n${'w'.repeat(31)}: ok\n`);
    expect(problems).toEqual([
      'Procfile line 1: bad process name "Web" (want [a-z][a-z0-9_-]{0,30})',
      'Procfile line 2: bad process name "1st" (want [a-z][a-z0-9_-]{0,30})',
      'Procfile line 3: bad process name "my worker" (want [a-z][a-z0-9_-]{0,30})',
      'Procfile line 4: bad process name "" (want [a-z][a-z0-9_-]{0,30})',
      `Procfile line 5: bad process name "${'w'.repeat(32)}" (want [a-z][a-z0-9_-]{0,30})`,
    ]);
  });

  it('refuses a duplicate name, naming both lines, and keeps the first', () => {
    const { entries, problems } = parse('web: a\nworker: b\nweb: c\n');
    expect(problems).toEqual([`Procfile line 3: duplicate process 'web' (first defined on line 1)`]);
    expect(entries.find((e) => e.name === 'web')?.command).toBe('a');
  });

  it('refuses an empty command, naming the line and the process', () => {
    const { entries, problems } = parse('web:\nworker:    \n');
    expect(entries).toEqual([]);
    expect(problems).toEqual([
      `Procfile line 1: the command of 'web' must not be empty`,
      `Procfile line 2: the command of 'worker' must not be empty`,
    ]);
  });

  it.each(['prebuild', 'postbuild', 'prerun', 'wsgi', 'cron', 'static'])(
    "refuses Hop3/Piku's special name '%s' rather than running it as a worker",
    (name) => {
      const { entries, problems } = parse(`web: a\n${name}: b\n`);
      expect(entries.map((e) => e.name)).toEqual(['web']);
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(
        new RegExp(`^Procfile line 2: process name '${name}' is not supported by hyper_edge`),
      );
    },
  );

  it('reports every bad line, not only the first', () => {
    const { problems } = parse('oops\nWEB: a\nweb:\nweb: ok\nweb: again\n');
    expect(problems.map((p) => p.slice(0, 'Procfile line 1'.length))).toEqual([
      'Procfile line 1',
      'Procfile line 2',
      'Procfile line 3',
      'Procfile line 5',
    ]);
  });
});
