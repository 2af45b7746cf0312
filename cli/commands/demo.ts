import type { Command } from 'commander';
import { formatSummary, runDemo, startDemoConsole } from '../demo';
import { integer } from '../option-parsers';

export function register(program: Command): void {
  program
    .command('demo')
    .description('the whole loop locally: synthesize → ETL → train → gates → register → approve → serve → /predict → summary')
    .option('--dir <dir>', 'directory for the demo lake, registry and model (recreated each run)', '.pricesense/demo')
    .option('--baskets <n>', 'baskets to synthesize', integer('--baskets', 1000), 20_000)
    .option('--trees <n>', 'trees in the forest', integer('--trees', 1), 100)
    .option('--seed <n>', 'seed for data and forest', integer('--seed', 0), 42)
    .option('--requests <n>', 'single-row /predict requests to send', integer('--requests', 1), 500)
    .option('--port <n>', 'API port (0 picks a free one; --keep-serving defaults to 8080)', integer('--port', 0))
    .option('--keep-serving', 'leave the API up (try /docs) until Ctrl-C')
    .option('--json', 'print the summary as JSON')
    .action(async (opts: { dir: string; baskets: number; trees: number; seed: number; requests: number; port?: number; keepServing?: boolean; json?: boolean }) => {
      const started = performance.now();
      const keepServing = Boolean(opts.keepServing);
      const { summary, server } = await runDemo({
        dir: opts.dir,
        baskets: opts.baskets,
        trees: opts.trees,
        seed: opts.seed,
        requests: opts.requests,
        port: opts.port ?? (keepServing ? 8080 : 0),
        keepServing,
      });
      const total = Math.round((performance.now() - started) / 100) / 10;
      const ui = keepServing ? await startDemoConsole(summary) : undefined;
      if (opts.json) process.stdout.write(`${JSON.stringify({ ...summary, totalSeconds: total, console: ui && { url: ui.running?.url ?? null, token: ui.token ?? null } }, null, 2)}\n`);
      else process.stdout.write(`${formatSummary(summary, keepServing)}${ui?.line ?? ''}total       ${total}s\n`);
      if (!keepServing) {
        await server.close(2000);
        return;
      }
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await ui?.close();
      await server.close(5000);
    });
}
