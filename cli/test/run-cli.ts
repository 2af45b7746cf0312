import { main } from '../index';

/** Runs the CLI in-process (as bin/pricesense.js would); returns stdout, stderr and the exit code. */
export async function runCli(args: string[]): Promise<{ out: string; err: string; code: number }> {
  let out = '';
  let err = '';
  const o = jest.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => ((out += String(c)), true));
  const e = jest.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => ((err += String(c)), true));
  const before = process.exitCode;
  process.exitCode = 0;
  try {
    await main(['node', 'pricesense', ...args]);
    return { out, err, code: Number(process.exitCode ?? 0) };
  } finally {
    process.exitCode = before;
    o.mockRestore();
    e.mockRestore();
  }
}
