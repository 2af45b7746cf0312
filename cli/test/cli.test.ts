import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { buildProgram } from '../index';
import { COMMANDS } from '../commands';

describe('pricesense CLI', () => {
  it('registers every command module and gives each one help', () => {
    const program = buildProgram();
    expect(program.commands.length).toBe(COMMANDS.length);
    for (const cmd of program.commands) {
      expect(cmd.description()).not.toBe('');
      expect(cmd.helpInformation()).toContain(`Usage: pricesense ${cmd.name()}`);
    }
  });

  it('prints help through main(), as the bin script calls it', () => {
    const root = path.resolve(__dirname, '..', '..');
    const out = execFileSync(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', "require('./cli/index').main(['node','pricesense','--help'])"], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(out).toContain('Usage: pricesense');
  });

  it('runs the built CLI through bin/pricesense.js (npm ci builds dist/ via prepare)', () => {
    const root = path.resolve(__dirname, '..', '..');
    const out = execFileSync(process.execPath, [path.join(root, 'bin', 'pricesense.js'), '--help'], { cwd: root, encoding: 'utf8' });
    expect(out).toContain('Usage: pricesense');
    expect(out).toContain('demo');
  });
});
