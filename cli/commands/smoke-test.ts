import type { Command } from 'commander';
import { UserError } from '../../core/errors';
import { seconds } from '../option-parsers';
import { SMOKE_TIMEOUT_BOUNDS, smokeTest } from '../smoke-test';

export function register(program: Command): void {
  program
    .command('smoke-test')
    .description('check a running API: ready, describes its model, answers /predict correctly, refuses bad input (exit 1 on failure)')
    .requiredOption('--url <url>', 'base URL of the API, e.g. http://127.0.0.1:8080')
    .option('--timeout <seconds>', 'how long to wait for /ready', seconds('--timeout', SMOKE_TIMEOUT_BOUNDS), 120)
    .option('--json', 'print the report as JSON')
    .action(async (opts: { url: string; timeout: number; json?: boolean }) => {
      const report = await smokeTest({ url: opts.url, timeoutSeconds: opts.timeout });
      if (opts.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      else for (const c of report.checks) process.stdout.write(`${c.ok ? 'ok  ' : 'FAIL'} ${c.name.padEnd(18)} ${String(c.ms).padStart(7)} ms  ${c.detail}\n`);
      if (!report.ok) throw new UserError(`smoke test failed against ${report.url}`, 'failed');
    });
}
