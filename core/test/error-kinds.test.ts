import { readFileSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors';
import { ERROR_KINDS, exitCodeOf } from '../error-kinds';

describe('error kinds', () => {
  it('gives every kind its own exit code, none of them 0', () => {
    const codes = Object.values(ERROR_KINDS).map((k) => k.exitCode);
    expect(new Set(codes).size).toBe(codes.length);
    expect(codes).not.toContain(0);
  });

  it('is the table README.md shows', () => {
    const readme = readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Exit codes'));
    const rows = [...section.matchAll(/^\| (\d+) \| `([a-z_]+)` \| (\d+) \| (.+) \|$/gm)].map((m) => [m[2], { exitCode: Number(m[1]), httpStatus: Number(m[3]), meaning: m[4] }]);
    expect(Object.fromEntries(rows)).toEqual(ERROR_KINDS);
  });

  it('makes a UserError without a kind a validation error (exit 2)', () => {
    expect(new UserError('bad flag')).toMatchObject({ kind: 'validation', exitCode: 2 });
    expect(new UserError('gates', 'gate_failed').exitCode).toBe(exitCodeOf('gate_failed'));
  });
});
