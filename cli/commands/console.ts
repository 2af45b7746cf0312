/**
 * `pricesense console`: the registry console (web UI) — and `pricesense console token`,
 * which creates or revokes the access tokens it accepts. docs/console.md.
 */
import { Option, type Command } from 'commander';
import { UserError } from '../../core/errors';
import { LOG_LEVELS } from '../../core/log';
import { addToken, authFile, revokeTokens, ROLES, type Role } from '../../console/auth-config';
import { DEFAULT_CONSOLE_PORT, startConsole } from '../../console/server';
import { defaultFrom, integer } from '../option-parsers';
import { REGISTRY_HELP } from './registry';

const AUTH_HELP = 'access configuration file ' + defaultFrom('consoleAuth');

function trustProxy(value: string): string | number | boolean {
  if (value === 'true' || value === 'false') return value === 'true';
  if (/^\d+$/.test(value)) return Number(value);
  return value;
}

export function register(program: Command): void {
  const consoleCommand = program
    .command('console')
    .description('the registry console: compare versions with plots, approve or reject with a note (a web UI, separate from the API)')
    .option('--registry <uri>', REGISTRY_HELP)
    .option('--lake <uri>', 'lake: test-split feature importance and the training data manifest, and the SageMaker backend\'s artifacts ' + defaultFrom('lake', null))
    .option('--api <url>', 'the serving API\'s base URL: served/canary/shadow markers and the Live page (drift, traffic)')
    .option('--port <n>', 'port (0 picks a free one)', integer('--port', 0), DEFAULT_CONSOLE_PORT)
    .option('--host <address>', 'address to listen on (0.0.0.0 in a container)', '127.0.0.1')
    .option('--auth <file>', AUTH_HELP)
    .option('--trust-proxy <value>', 'Express "trust proxy": hop count or addresses of the TLS-terminating proxy (makes the session cookie Secure)', trustProxy)
    .option('--public-url <url>', 'the URL people open the console at (e.g. https://console.example.com) when a proxy in front changes the scheme or host: form posts must come from that origin')
    .addOption(new Option('--log-level <level>', 'least severe log level written').choices([...LOG_LEVELS, 'silent']).default('info'))
    .action(async (opts: { registry?: string; lake?: string; api?: string; port: number; host: string; auth?: string; trustProxy?: string | number | boolean; publicUrl?: string; logLevel: string }) => {
      const running = await startConsole({ ...opts });
      process.stderr.write(`pricesense console on ${running.url} (registry ${running.registry.uri}) — sign in at ${running.url}/login; Ctrl-C to stop\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await running.close();
    });

  consoleCommand
    .command('token')
    .description('create an access token for the console (printed once; only its SHA-256 is stored), or revoke an identity\'s tokens')
    .option('--identity <name>', 'who the token belongs to: recorded in the audit trail for every decision made with it')
    .addOption(new Option('--role <role>', 'viewer: read-only; approver: may approve and reject').choices(ROLES))
    .option('--revoke <identity>', 'remove every token of this identity instead (their sessions end too)')
    .option('--auth <file>', AUTH_HELP)
    .option('--json', 'print JSON')
    .action(async (_opts: unknown, command: Command) => {
      // --auth is also an option of `console` itself: Commander hands it to whichever command comes first.
      const opts = command.optsWithGlobals<{ identity?: string; role?: string; revoke?: string; auth?: string; json?: boolean }>();
      const file = authFile(opts.auth);
      if (opts.revoke !== undefined) {
        const removed = await revokeTokens(file, opts.revoke);
        if (opts.json) process.stdout.write(`${JSON.stringify({ file, identity: opts.revoke, removed })}\n`);
        else process.stdout.write(`removed ${removed} token(s) of ${opts.revoke} from ${file}\n`);
        return;
      }
      if (!opts.identity || !opts.role) throw new UserError('console token needs --identity <name> and --role viewer|approver (or --revoke <identity>)');
      const { token, entry } = await addToken(file, opts.identity, opts.role as Role);
      if (opts.json) return void process.stdout.write(`${JSON.stringify({ file, token, identity: entry.identity, role: entry.role, sha256: entry.sha256 })}\n`);
      process.stdout.write(
        `${token}\n` +
          `token for ${entry.identity} (${entry.role}) added to ${file} (stored as its SHA-256). It is shown only now: hand it over securely.\n` +
          'Sign in at <console>/login, or send it as "Authorization: Bearer <token>".\n',
      );
    });
}
