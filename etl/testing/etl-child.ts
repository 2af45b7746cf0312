/**
 * A child process for the SIGKILL test: runs the ETL on a local lake and, when it is about
 * to write an object whose key matches the pattern, writes it, prints PAUSED and waits
 * forever, so that the test can kill it at exactly that point of the commit.
 *
 *   node -r ts-node/register/transpile-only etl/testing/etl-child.ts <lake> <key regex>
 */
import { LocalLake } from '../lake/local';
import type { Lake } from '../lake/types';
import { runEtl } from '../pipeline';

const [root, pattern] = process.argv.slice(2);
const re = new RegExp(pattern);
const inner = new LocalLake(root);
const pause = async (key: string): Promise<void> => {
  if (!re.test(key)) return;
  process.stdout.write(`PAUSED ${key}\n`);
  await new Promise(() => undefined);
};
const lake: Lake = Object.assign(Object.create(inner) as LocalLake, {
  async upload(local: string, key: string) {
    await inner.upload(local, key);
    await pause(key);
  },
  async write(key: string, body: Buffer | string) {
    await inner.write(key, body);
    await pause(key);
  },
});
runEtl(lake, { threads: 1 }).then(
  () => process.stdout.write('DONE\n'),
  (err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  },
);
