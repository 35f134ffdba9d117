/**
 * The API on a real kube-apiserver: the generated CRDs in crds/ install and become Established, the
 * example objects of lib/api/examples.ts get the same verdict from the API server as from zod, and an
 * accepted object reads back unchanged (nothing pruned, nothing defaulted behind our back).
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { Agent, request } from 'undici';
import { ApiextensionsV1Api, CoreV1Api, CustomObjectsApi, type KubeConfig, type V1CustomResourceDefinition } from '@kubernetes/client-node';
import { stack } from './fixture.js';
import { waitFor } from '../stack/net.js';
import { CRDS_DIR } from '../lib/api/gen-crds.js';
import { objectCases, type ObjectCase } from '../lib/api/examples.js';
import { GROUP, VERSION, formatIssues, kindByName, kinds, toClientNodeCrd, type CustomResourceDefinition, type KindDefinition } from '../lib/api/index.js';

/** The message of a Kubernetes Status in a client-node ApiException (its body is the JSON text). */
function serverMessage(err: unknown): string {
  const body = (err as { body?: unknown }).body;
  if (typeof body === 'string') {
    try {
      return String((JSON.parse(body) as { message?: unknown }).message ?? body);
    } catch {
      return body;
    }
  }
  if (body && typeof body === 'object' && 'message' in body) return String(body.message);
  return err instanceof Error ? err.message : String(err);
}

/** Runs `call`; returns undefined on success or the server's message on a 4xx refusal. */
async function refusal(call: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await call();
    return undefined;
  } catch (err: unknown) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'number' && code >= 400 && code < 500) return serverMessage(err);
    throw err;
  }
}

/** Installs (or updates) every CRD in crds/ and waits until each is Established. */
async function installCrds(kc: KubeConfig): Promise<V1CustomResourceDefinition[]> {
  const ext = kc.makeApiClient(ApiextensionsV1Api);
  const files = (await readdir(CRDS_DIR)).filter((f) => f.endsWith('.yaml')).sort();
  const crds = await Promise.all(files.map(async (f) => yaml.load(await readFile(join(CRDS_DIR, f), 'utf8')) as CustomResourceDefinition));
  for (const crd of crds) {
    const name = crd.metadata.name;
    // The typed client drops enum and x-kubernetes-* keys unless they carry its model names.
    const body = toClientNodeCrd(crd) as V1CustomResourceDefinition;
    try {
      await ext.createCustomResourceDefinition({ body });
    } catch (err: unknown) {
      if ((err as { code?: number }).code !== 409) throw err;
      const existing = await ext.readCustomResourceDefinition({ name });
      await ext.replaceCustomResourceDefinition({
        name,
        body: { ...body, metadata: { ...body.metadata, resourceVersion: existing.metadata?.resourceVersion } },
      });
    }
  }
  return Promise.all(
    crds.map((crd) =>
      waitFor(
        async () => {
          const live = await ext.readCustomResourceDefinition({ name: crd.metadata.name });
          return live.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ? live : undefined;
        },
        { what: `CRD ${crd.metadata.name} to be Established`, timeoutMs: 60_000 },
      ),
    ),
  );
}

function kindOf(name: string): KindDefinition {
  const def = kindByName(name);
  if (!def) throw new Error(`no kind ${name} in lib/api`);
  return def;
}

describe('the Flotilla API on a real kube-apiserver', () => {
  let kc: KubeConfig;
  let objects: CustomObjectsApi;
  let installed: V1CustomResourceDefinition[] = [];
  const namespace = `api-e2e-${randomBytes(3).toString('hex')}`;

  before(async function () {
    this.timeout(120_000);
    kc = stack().cluster('upstream').kubeConfig();
    objects = kc.makeApiClient(CustomObjectsApi);
    installed = await installCrds(kc);
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: namespace } } });
    // Established CRDs can take a moment to be served: wait until every kind can be listed.
    for (const def of kinds) {
      await waitFor(
        async () => {
          await objects.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: def.plural });
          return true;
        },
        { what: `${def.plural} to be served`, timeoutMs: 30_000 },
      );
    }
  });

  after(async () => {
    await kc
      ?.makeApiClient(CoreV1Api)
      .deleteNamespace({ name: namespace })
      .catch(() => undefined);
  });

  it('installs one Established CRD per kind, with the names, short names and category from lib/api', () => {
    expect(installed.map((crd) => crd.metadata?.name).sort()).to.deep.equal(kinds.map((k) => `${k.plural}.${GROUP}`).sort());
    for (const crd of installed) {
      const def = kindOf(crd.spec.names.kind);
      expect(crd.status?.acceptedNames?.shortNames ?? []).to.deep.equal(def.shortNames);
      expect(crd.status?.acceptedNames?.categories).to.deep.equal(['flotilla']);
    }
  });

  it('stores every CRD schema exactly as generated (nothing dropped on the way)', async () => {
    for (const file of (await readdir(CRDS_DIR)).filter((f) => f.endsWith('.yaml'))) {
      const crd = yaml.load(await readFile(join(CRDS_DIR, file), 'utf8')) as CustomResourceDefinition;
      const live = (await get(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`)) as CustomResourceDefinition;
      expect(live.spec.versions[0]?.schema, file).to.deep.equal(crd.spec.versions[0]?.schema);
      expect(live.spec.versions[0]?.additionalPrinterColumns, file).to.deep.equal(crd.spec.versions[0]?.additionalPrinterColumns);
    }
  });

  for (const c of objectCases) {
    const verdict = c.invalidField === undefined ? 'accepts' : `rejects, naming ${c.invalidField},`;
    it(`${verdict} ${c.name}, as zod does`, async () => {
      const zod = kindOf(c.object.kind).schema.safeParse(c.object);
      const zodLines = zod.error ? formatIssues(zod.error) : [];
      const server = await serverVerdict(c);
      if (c.invalidField === undefined) {
        expect(zodLines, 'zod refused a valid example').to.deep.equal([]);
        expect(server, 'the API server refused a valid example').to.equal(undefined);
        return;
      }
      expect(
        zodLines.some((l) => l.startsWith(c.invalidField ?? '')),
        `zod did not name ${c.invalidField}: ${zodLines.join('; ')}`,
      ).to.equal(true);
      expect(server, 'the API server accepted an invalid example').to.be.a('string');
      expect(server).to.include(c.invalidField);
      // A rule written once for both sides (refineWithCel) must give the same message on both. The API
      // server evaluates CEL rules only on objects that pass the schema, so compare when that is the case.
      const issues = zod.error?.issues ?? [];
      if (issues.every((issue) => issue.code === 'custom')) {
        for (const issue of issues) expect(server).to.include(issue.message);
      }
    });
  }

  /**
   * Creates the object (spec only, strict field validation like kubectl), then writes its status
   * through the status subresource. Returns the server's refusal, or undefined if both were accepted;
   * an accepted object must read back exactly as sent.
   */
  async function serverVerdict(c: ObjectCase): Promise<string | undefined> {
    const plural = kindOf(c.object.kind).plural;
    const { status, ...withoutStatus } = c.object;
    const target = { group: GROUP, version: VERSION, namespace, plural };
    let created: { metadata?: { resourceVersion?: string } } = {};
    const createRefusal = await refusal(async () => {
      created = (await objects.createNamespacedCustomObject({ ...target, body: withoutStatus, fieldValidation: 'Strict' })) as typeof created;
    });
    if (createRefusal !== undefined) return createRefusal;
    try {
      if (status !== undefined) {
        const statusRefusal = await refusal(() =>
          objects.replaceNamespacedCustomObjectStatus({
            ...target,
            name: c.object.metadata.name,
            fieldValidation: 'Strict',
            body: { ...withoutStatus, metadata: { ...c.object.metadata, resourceVersion: created.metadata?.resourceVersion }, status },
          }),
        );
        if (statusRefusal !== undefined) return statusRefusal;
      }
      const stored = (await objects.getNamespacedCustomObject({ ...target, name: c.object.metadata.name })) as Record<string, unknown>;
      expect(stored.spec, 'the stored spec differs from the one sent').to.deep.equal(c.object.spec);
      expect(stored.status, 'the stored status differs from the one sent').to.deep.equal(status);
      return undefined;
    } finally {
      await objects.deleteNamespacedCustomObject({ ...target, name: c.object.metadata.name });
    }
  }

  /** GETs a path of the upstream API server as the admin user. */
  async function get(path: string, accept = 'application/json'): Promise<unknown> {
    const user = kc.getCurrentUser();
    const cluster = kc.getCurrentCluster();
    const b64 = (s: string | undefined) => Buffer.from(s ?? '', 'base64');
    const dispatcher = new Agent({ connect: { ca: b64(cluster?.caData), cert: b64(user?.certData), key: b64(user?.keyData) } });
    try {
      const res = await request(`${cluster?.server}${path}`, { headers: { accept }, dispatcher });
      expect(res.statusCode, `GET ${path}`).to.equal(200);
      return await res.body.json();
    } finally {
      await dispatcher.close();
    }
  }

  it('publishes field descriptions in the OpenAPI v3 document (what kubectl explain shows)', async () => {
    type Node = { properties?: Record<string, Node>; description?: string };
    const doc = (await get(`/openapi/v3/apis/${GROUP}/${VERSION}`)) as { components: { schemas: Record<string, Node> } };
    const gitRepo = Object.entries(doc.components.schemas).find(([name]) => name.endsWith(`${GROUP.split('.').reverse().join('.')}.${VERSION}.GitRepo`))?.[1];
    const reference = gitRepo?.properties?.spec?.properties?.ociRegistry?.properties?.reference;
    expect(reference?.description).to.match(/no tag, no digest/);
  });

  it('shows the printer columns of lib/api in kubectl get (Table)', async () => {
    const table = (await get(`/apis/${GROUP}/${VERSION}/namespaces/${namespace}/gitrepos`, 'application/json;as=Table;v=v1;g=meta.k8s.io')) as {
      columnDefinitions: { name: string }[];
    };
    expect(table.columnDefinitions.map((c) => c.name)).to.deep.equal(['Name', ...kindOf('GitRepo').printerColumns.map((c) => c.name), 'Age']);
  });
});
