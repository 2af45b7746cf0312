import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../../core/errors';
import { parseForest, sealForest } from '../forest-file';
import type { ForestFileV1 } from '../format';
import { parseHyperparameters, parseResourceConfig, partFileName, treeShare } from '../sagemaker/config';
import { forestFromArtifact } from '../sagemaker/jobs';
import { mergePartialForests, readPartialForests, type PartialForest } from '../sagemaker/merge';
import { readTarGz, writeTar, writeTarGz } from '../sagemaker/tar';
import { trainForest } from '../trainer';
import { RULE_FEATURES, ruleTable } from './trainer-fixtures';

const table = ruleTable(600, 3);
const base = { trees: 7, maxDepth: 6, seed: 11, features: RULE_FEATURES, progress: false, createdAt: '2024-01-01T00:00:00.000Z' } as const;

function part(forest: ForestFileV1, name: string): PartialForest {
  return { source: name, forest };
}

describe('trainForest treeRange', () => {
  let whole: ForestFileV1;
  beforeAll(async () => {
    whole = await trainForest(table, { ...base, threads: 1 });
  });

  it('trains exactly the trees of the whole forest with the same global indexes, on any thread count', async () => {
    const single = await trainForest(table, { ...base, threads: 1, treeRange: { start: 2, end: 5 } });
    const pooled = await trainForest(table, { ...base, threads: 2, treeRange: { start: 2, end: 5 } });
    expect(single.trees).toEqual(whole.trees.slice(2, 5));
    expect(pooled.trees).toEqual(whole.trees.slice(2, 5));
    expect(single.training.treeRange).toEqual({ start: 2, end: 5, trees: 7 });
    expect(whole.training.treeRange).toBeUndefined();
    // The partial forest is a valid, sealed forest file.
    expect(parseForest(JSON.stringify(single)).sha256).toBe(single.sha256);
  });

  it('refuses ranges outside the forest', async () => {
    await expect(trainForest(table, { ...base, threads: 1, treeRange: { start: 3, end: 3 } })).rejects.toThrow(/treeRange must satisfy 0 <= start < end <= trees \(7\), got \[3, 3\)/);
    await expect(trainForest(table, { ...base, threads: 1, treeRange: { start: 0, end: 8 } })).rejects.toThrow(UserError);
  });

  describe('mergePartialForests', () => {
    let parts: ForestFileV1[];
    beforeAll(async () => {
      // The shares of 3 hosts, as the training job computes them.
      parts = [];
      for (let i = 0; i < 3; i++) parts.push(await trainForest(table, { ...base, threads: 1, treeRange: treeShare(i, 3, 7) }));
    });

    it('merges in global tree order (whatever the input order) into the whole forest', () => {
      const merged = mergePartialForests([part(parts[2], 'p2'), part(parts[0], 'p0'), part(parts[1], 'p1')]);
      expect(merged.trees).toEqual(whole.trees);
      expect(merged.training.treeRange).toBeUndefined();
      expect(merged.training.hyperparameters).toEqual(whole.training.hyperparameters);
      expect(merged.features).toEqual(whole.features);
      expect((merged.metrics.merge as { parts: { start: number; end: number }[] }).parts.map((p) => [p.start, p.end])).toEqual([[0, 2], [2, 4], [4, 7]]);
      expect(parseForest(JSON.stringify(merged)).sha256).toBe(merged.sha256);
    });

    it('reports a gap', () => {
      expect(() => mergePartialForests([part(parts[0], 'p0'), part(parts[2], 'p2')])).toThrow(/trees \[2, 4\) of 7 missing \(gap before p2/);
      expect(() => mergePartialForests([part(parts[0], 'p0'), part(parts[1], 'p1')])).toThrow(/cover trees \[0, 4\) of 7: trees \[4, 7\) are missing/);
    });

    it('reports an overlap', async () => {
      const extra = await trainForest(table, { ...base, threads: 1, treeRange: { start: 3, end: 7 } });
      expect(() => mergePartialForests([part(parts[0], 'p0'), part(parts[1], 'p1'), part(extra, 'x')])).toThrow(/overlap: x holds trees \[3, 7\) but p1 already covers trees up to 4/);
    });

    it('refuses parts of different training runs', async () => {
      const otherSeed = await trainForest(table, { ...base, seed: 12, threads: 1, treeRange: { start: 2, end: 4 } });
      expect(() => mergePartialForests([part(parts[0], 'p0'), part(otherSeed, 'other'), part(parts[2], 'p2')])).toThrow(/cannot merge other with p0: their seed differ/);
      const otherDepth = await trainForest(table, { ...base, maxDepth: 5, threads: 1, treeRange: { start: 2, end: 4 } });
      expect(() => mergePartialForests([part(parts[0], 'p0'), part(otherDepth, 'd')])).toThrow(/their hyperparameters differ/);
      const otherData = sealForest({ ...parts[1], training: { ...parts[1].training, datasetManifestSha256: 'f'.repeat(64) } });
      expect(() => mergePartialForests([part(parts[0], 'p0'), part(otherData, 'data')])).toThrow(/their dataset \(datasetManifestSha256\) differ/);
      const otherEncoding = sealForest({ ...parts[1], features: parts[1].features.map((f) => (f.kind === 'categorical' ? { ...f, categories: [...f.categories].reverse() } : f)) });
      expect(() => mergePartialForests([part(parts[0], 'p0'), part(otherEncoding, 'enc')])).toThrow(/features \(names, kinds and categorical encodings\) differ/);
    });

    it('reads parts from files and from a model.tar.gz, GNU tar or ours', async () => {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'pricesense-merge-'));
      try {
        const modelDir = path.join(dir, 'model');
        await mkdir(modelDir);
        for (let i = 0; i < 3; i++) await writeFile(path.join(modelDir, partFileName(i)), JSON.stringify(parts[i]));
        // Read from a v2 file, a tree comes back in the file's pre-order node layout: the whole forest as read is the reference.
        const wholeAsRead = parseForest(JSON.stringify(whole)).trees;
        expect(mergePartialForests(await readPartialForests(modelDir)).trees).toEqual(wholeAsRead);

        const ours = path.join(dir, 'ours');
        await mkdir(ours);
        await writeFile(path.join(ours, 'model.tar.gz'), writeTarGz(parts.map((f, i) => ({ name: partFileName(i), data: Buffer.from(JSON.stringify(f)) }))));
        expect(mergePartialForests(await readPartialForests(ours)).trees).toEqual(wholeAsRead);

        if (existsSync('/usr/bin/tar') || existsSync('/bin/tar')) {
          // What SageMaker uploads: the whole /opt/ml/model directory, "./" prefixes and all.
          const gnu = path.join(dir, 'gnu');
          await mkdir(gnu);
          execFileSync('tar', ['-czf', path.join(gnu, 'model.tar.gz'), '-C', modelDir, '.']);
          expect(mergePartialForests(await readPartialForests(gnu)).trees).toEqual(wholeAsRead);
          // And GNU tar reads what we write.
          execFileSync('tar', ['-xzf', path.join(ours, 'model.tar.gz'), '-C', ours]);
          expect(JSON.parse(await readFile(path.join(ours, partFileName(1)), 'utf8')).sha256).toBe(parts[1].sha256);
        }
        await expect(readPartialForests(path.join(dir, 'nope'))).rejects.toThrow(/cannot read the partial forests directory/);
        const empty = path.join(dir, 'empty');
        await mkdir(empty);
        await expect(readPartialForests(empty)).rejects.toThrow(/no partial forests in .*empty: expected forest-part-\*\.json/);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
});

describe('tar', () => {
  it('round-trips files byte for byte, deterministically', async () => {
    const files = [
      { name: 'a.json', data: Buffer.from('{"x":1}\n') },
      { name: 'dir/b.bin', data: Buffer.alloc(1025, 7) },
      { name: 'empty', data: Buffer.alloc(0) },
    ];
    const tar = writeTar(files);
    expect(tar.length % 512).toBe(0);
    expect(await readTarGz(tar)).toEqual(files);
    expect(writeTarGz(files).equals(writeTarGz(files))).toBe(true);
    expect(await readTarGz(writeTarGz(files))).toEqual(files);
  });

  it('refuses corrupt or truncated archives with a clear error', async () => {
    const tar = writeTar([{ name: 'a', data: Buffer.alloc(600, 1) }]);
    const bad = Buffer.from(tar);
    bad[10] ^= 0xff;
    await expect(readTarGz(bad, 'm.tar')).rejects.toThrow(/m\.tar: tar header at byte 0 has a bad checksum/);
    await expect(readTarGz(tar.subarray(0, 700), 'm.tar')).rejects.toThrow(/m\.tar: truncated tar archive: member "a" at byte 0 declares 600 bytes but only 188 follow/);
    await expect(readTarGz(Buffer.from([0x1f, 0x8b, 1, 2, 3]), 'm.tar.gz')).rejects.toThrow(/m\.tar\.gz: cannot decompress/);
  });

  it('forestFromArtifact reads a forest JSON or a tar.gz holding forest.json', async () => {
    const f = await trainForest(table, { ...base, trees: 2, threads: 1 });
    const json = Buffer.from(JSON.stringify(f));
    expect((await forestFromArtifact(json)).sha256).toBe(f.sha256);
    expect((await forestFromArtifact(writeTarGz([{ name: 'forest.json', data: json }]))).sha256).toBe(f.sha256);
    await expect(forestFromArtifact(writeTarGz([{ name: 'other.json', data: json }]), 'm.tar.gz')).rejects.toThrow(/m\.tar\.gz: expected exactly one forest\.json in the archive, found 0/);
  });
});

describe('job configuration', () => {
  it('parses hyperparameters (strings, SDK-quoted strings) and refuses bad ones by name', () => {
    expect(parseHyperparameters({ trees: '12', max_depth: '"8"', min_leaf: '3', seed: '7', max_features: 'log2', class_weight: 'balanced', threads: '2', sagemaker_region: '"eu-west-1"' })).toEqual({
      trees: 12,
      maxDepth: 8,
      minSamplesLeaf: 3,
      seed: 7,
      maxFeatures: 'log2',
      classWeight: 'balanced',
      threads: 2,
    });
    expect(parseHyperparameters({ max_features: '0.5', class_weight: 'none' })).toMatchObject({ maxFeatures: 0.5, classWeight: null });
    expect(() => parseHyperparameters({ trees: 'ten' }, 'hp.json')).toThrow(/hp\.json: hyperparameter trees must be an integer >= 1, got "ten"/);
    expect(() => parseHyperparameters({ trees: '0' })).toThrow(/trees must be an integer >= 1/);
    expect(() => parseHyperparameters({ max_depht: '3' })).toThrow(/unknown hyperparameter "max_depht"/);
    expect(() => parseHyperparameters({ max_features: '1.5' })).toThrow(/max_features must be/);
    expect(() => parseHyperparameters([])).toThrow(/must be a JSON object/);
  });

  it('finds the host index in natural host order, and splits trees into contiguous shares', () => {
    expect(parseResourceConfig(undefined)).toEqual({ host: 'algo-1', index: 0, hosts: 1 });
    const hosts = Array.from({ length: 11 }, (_, i) => `algo-${i + 1}`).reverse();
    expect(parseResourceConfig({ current_host: 'algo-10', hosts })).toEqual({ host: 'algo-10', index: 9, hosts: 11 });
    expect(() => parseResourceConfig({ current_host: 'algo-9', hosts: ['algo-1'] })).toThrow(/current_host "algo-9" is not one of hosts/);
    expect([0, 1, 2].map((i) => treeShare(i, 3, 100))).toEqual([{ start: 0, end: 33 }, { start: 33, end: 66 }, { start: 66, end: 100 }]);
    expect(() => treeShare(0, 4, 3)).toThrow(/cannot split 3 tree\(s\) across 4 hosts/);
    expect(partFileName(2)).toBe('forest-part-002.json');
  });
});
