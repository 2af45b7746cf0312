import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CommanderError } from 'commander';
import { exitCodeOf } from '../../core/error-kinds';
import { UserError } from '../../core/errors';
import { writeFixtureForest } from '../../model/test/registry-fixtures';
import { exitCodeFor } from '../index';
import { runCli } from './run-cli';

describe('exit codes (README "Exit codes")', () => {
  it('maps commander, our kinds and anything else to one code each', () => {
    expect(exitCodeFor(new CommanderError(0, 'commander.helpDisplayed', '(outputHelp)'))).toBe(0);
    expect(exitCodeFor(new CommanderError(1, 'commander.unknownOption', "error: unknown option '--nope'"))).toBe(2);
    expect(exitCodeFor(new UserError('gates', 'gate_failed'))).toBe(3);
    expect(exitCodeFor(new UserError('trail', 'integrity'))).toBe(5);
    expect(exitCodeFor(new TypeError('a bug'))).toBe(exitCodeOf('internal'));
  });

  it.each([
    [['train', '--out', 'never.json', '--trainer', 'xgboost'], "option '--trainer <name>' argument 'xgboost' is invalid. Allowed choices are histogram, ml-random-forest."],
    [['train', '--out', 'never.json', '--class-weight', 'heavy'], "option '--class-weight <w>' argument 'heavy' is invalid. Allowed choices are none, balanced."],
    [['score', '--model', 'm.json', '--input', 'in.csv', '--output', 'out.xml', '--format', 'xml'], "option '--format <format>' argument 'xml' is invalid. Allowed choices are parquet, csv."],
    [['model', 'export', '--model', 'm.json', '--out', 'm.onnx', '--hard-vote-ties', 'random'], "option '--hard-vote-ties <rule>' argument 'random' is invalid. Allowed choices are refuse, lowest-index."],
    [['console', '--log-level', 'loud'], "option '--log-level <level>' argument 'loud' is invalid. Allowed choices are trace, debug, info, warn, error, fatal, silent."],
  ])('exits 2 on a value outside an option\'s choices, naming the allowed values: %j', async (args, message) => {
    const r = await runCli(args);
    expect(r).toMatchObject({ code: 2, out: '' });
    expect(r.err).toContain(message);
  });

  // Node clamps a timer past 2^31-1 ms (~24.8 days) to 1 ms: an oversized interval would ask SageMaker (25 days below) or renew a
  // lease (a ttl from ~99 days: renewed every quarter of it) every millisecond. The bounds are what makes sense for each, within that.
  it.each([
    [['etl', '--lease-ttl', '2592000'], "--lease-ttl must be a whole number of seconds from 1 to 604,800 (7 days), got '2592000'"],
    [['etl', '--lease-ttl', '1.5'], "--lease-ttl must be a whole number of seconds from 1 to 604,800 (7 days), got '1.5'"],
    [['etl', '--wait', '-1'], "--wait must be a whole number of seconds from 0 to 604,800 (7 days), got '-1'"],
    [['pipeline', 'start', '--name', 'p', '--wait', '--poll-seconds', '2160000'], "--poll-seconds must be a number of seconds from 1 to 3,600 (1 hour), got '2160000'"],
    [['pipeline', 'start', '--name', 'p', '--poll-seconds', ''], "--poll-seconds must be a number of seconds from 1 to 3,600 (1 hour), got ''"],
    [['smoke-test', '--url', 'http://127.0.0.1:9', '--timeout', '1e9'], "--timeout must be a number of seconds from 1 to 86,400 (1 day), got '1e9'"],
  ])('exits 2 on a duration outside its bounds, naming the flag and the bounds: %j', async (args, message) => {
    const r = await runCli(args);
    expect(r).toMatchObject({ code: 2, out: '' });
    expect(r.err).toContain(message);
  });

  it('exits 2 on an unknown option, like any other bad input', async () => {
    const r = await runCli(['registry', 'list', '--nope']);
    expect(r.code).toBe(2);
    expect(r.err).toContain("unknown option '--nope'");
  });
});

describe('pricesense --config', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-cli-config-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('takes the registry from the file, and a flag wins over it', async () => {
    const fromFile = path.join(dir, 'registry-from-file');
    const config = path.join(dir, 'pricesense.json');
    await writeFile(config, JSON.stringify({ registry: fromFile, user: 'file-user' }));
    const registered = await runCli(['--config', config, 'registry', 'register', '--model', await writeFixtureForest(dir, 'm.json', { seed: 1, gatesPassed: true })]);
    expect(registered.code).toBe(0);
    const listed = await runCli(['--config', config, 'registry', 'show', '1', '--json']);
    expect(JSON.parse(listed.out)).toMatchObject({ version: 1, lineage: { registeredBy: 'file-user' } });
    const elsewhere = await runCli(['--config', config, 'registry', 'list', '--registry', path.join(dir, 'other'), '--json']);
    expect(JSON.parse(elsewhere.out)).toEqual([]);
  });

  it('refuses a bad file before the command runs, naming the file and the key (exit 2)', async () => {
    const config = path.join(dir, 'pricesense.json');
    await writeFile(config, JSON.stringify({ regsitry: 'x' }));
    const r = await runCli(['--config', config, 'registry', 'list']);
    expect(r).toMatchObject({ code: 2, out: '' });
    expect(r.err).toBe(`pricesense: configuration file ${config}: unknown key "regsitry"; the keys are lake, registry, user, image, consoleAuth, progress, loaderMemoryMb\n`);
  });
});
