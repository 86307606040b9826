import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const here = new URL('.', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'hox-run-program-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs a program using runProgram; `signal` is sent once it printed `ready`. Its exit code and output. */
async function run(body: string, signal?: NodeJS.Signals): Promise<{ code: number | null; out: string }> {
  const file = join(dir, `p${Math.random().toString(36).slice(2)}.ts`);
  writeFileSync(file, `import { runProgram } from ${JSON.stringify(join(here, 'run-program.ts'))};\n${body}\n`);
  const child = spawn(process.execPath, ['--import', 'tsx', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const collect = (chunk: Buffer) => {
    out += chunk.toString();
    if (signal !== undefined && out.includes('ready')) {
      child.kill(signal);
      signal = undefined;
    }
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  return { code, out };
}

describe('runProgram', () => {
  it('stops what start returned on SIGTERM, once, and exits 0', async () => {
    const { code, out } = await run(
      `runProgram(async () => { const t = setInterval(() => {}, 1000); console.log('ready');
         return () => { clearInterval(t); console.log('stopped'); }; });`,
      'SIGTERM',
    );
    expect(code).toBe(0);
    expect(out.match(/stopped/g)).toHaveLength(1);
  });

  it('runs the stop given beside start on SIGINT; a failing stop exits 1 with its stack', async () => {
    const ok = await run(
      `const t = setInterval(() => {}, 1000);
       runProgram(async () => { console.log('ready'); }, async () => { clearInterval(t); console.log('stopped'); });`,
      'SIGINT',
    );
    expect(ok).toMatchObject({ code: 0 });
    expect(ok.out).toContain('stopped');
    const failing = await run(
      `const t = setInterval(() => {}, 1000);
       runProgram(async () => { console.log('ready'); }, async () => { throw new Error('could not hand the lease back'); });`,
      'SIGTERM',
    );
    expect(failing.code).toBe(1);
    expect(failing.out).toContain('Error: could not hand the lease back');
  });

  it('exits 1 with the stack when start fails', async () => {
    const { code, out } = await run(`runProgram(async () => { throw new Error('port in use'); });`);
    expect(code).toBe(1);
    expect(out).toMatch(/Error: port in use\n\s+at /);
  });
});
