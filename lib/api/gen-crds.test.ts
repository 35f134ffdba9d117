import { expect } from 'chai';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { buildCrd, renderCrdFiles, toClientNodeCrd } from './crd.js';
import { kindByName, kinds } from './kinds.js';
import { checkCrds, writeCrds } from './gen-crds.js';

describe('CRD generation', () => {
  let dir = '';
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flotilla-crds-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('renders the same bytes every time', () => {
    expect([...renderCrdFiles()]).to.deep.equal([...renderCrdFiles()]);
  });

  it('renders one CustomResourceDefinition document per file', () => {
    for (const [file, text] of renderCrdFiles()) {
      const docs = yaml.loadAll(text) as { kind?: string; metadata?: { name?: string } }[];
      expect(docs, file).to.have.length(1);
      expect(docs[0]?.kind).to.equal('CustomResourceDefinition');
      expect(`${docs[0]?.metadata?.name}.yaml`).to.equal(file);
    }
  });

  it('reports every file as missing in an empty directory, and nothing after writing', async () => {
    expect((await checkCrds(dir)).map((d) => d.problem))
      .to.have.length(renderCrdFiles().size)
      .and.to.satisfy((p: string[]) => p.every((x) => x === 'missing'));
    await writeCrds(dir);
    expect(await checkCrds(dir)).to.deep.equal([]);
  });

  it('reports a hand-edited file with the first differing line, and a stray file', async () => {
    await writeCrds(dir);
    const file = join(dir, 'gitrepos.flotilla.dev.yaml');
    const lines = (await readFile(file, 'utf8')).split('\n');
    lines[4] = '  name: edited';
    await writeFile(file, lines.join('\n'));
    await writeFile(join(dir, 'old.flotilla.dev.yaml'), 'kind: CustomResourceDefinition\n');
    expect(await checkCrds(dir)).to.deep.equal([
      { file: 'gitrepos.flotilla.dev.yaml', problem: 'differs from line 5' },
      { file: 'old.flotilla.dev.yaml', problem: 'not generated from lib/api (stale or hand-written)' },
    ]);
  });

  it('finds the committed crds/ up to date with lib/api', async () => {
    expect(await checkCrds()).to.deep.equal([]);
  });
});

describe('toClientNodeCrd', () => {
  it('renames enum and x-kubernetes-* keys on typed schema nodes, and leaves items subtrees in JSON names', () => {
    const crd = buildCrd(kindByName('BundleDeployment') ?? kinds[0]!);
    const converted = toClientNodeCrd(crd) as typeof crd;
    const spec = converted.spec.versions[0]?.schema.openAPIV3Schema.properties?.spec as Record<string, unknown>;
    expect(spec).to.have.property('x_kubernetes_validations');
    expect(spec).to.not.have.property('x-kubernetes-validations');
    const conditions = (converted.spec.versions[0]?.schema.openAPIV3Schema.properties?.status?.properties?.conditions ?? {}) as Record<string, unknown>;
    expect(conditions).to.have.property('x_kubernetes_list_type', 'map');
    const item = (conditions.items ?? {}) as { properties?: { status?: Record<string, unknown> } };
    expect(item.properties?.status).to.have.property('enum');
    expect(item.properties?.status).to.not.have.property('_enum');
  });

  it('does not change the CRD it is given', () => {
    const crd = buildCrd(kinds[0]!);
    const before = JSON.stringify(crd);
    toClientNodeCrd(crd);
    expect(JSON.stringify(crd)).to.equal(before);
  });
});
