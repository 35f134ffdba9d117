import { expect } from 'chai';
import { Reason } from '../lib/api/constants.js';
import type { ValuesFrom } from '../lib/api/helm.js';
import { WaitingError } from '../lib/errors.js';
import { KubeApiError, type KubeObject, type ObjectRef } from '../lib/kube/client.js';
import { type ObjectReader, readValuesFrom } from './valuesfrom.js';

type Stored = KubeObject & { data?: Record<string, string>; binaryData?: Record<string, string> };

/** An in-memory reader of downstream ConfigMaps and Secrets; `forbidden` names objects whose read is refused. */
function reader(objects: Stored[], forbidden: string[] = []): ObjectReader {
  return {
    async get<T extends KubeObject>(ref: ObjectRef & { name: string }): Promise<T | undefined> {
      const key = `${ref.kind} ${ref.namespace}/${ref.name}`;
      if (forbidden.includes(key)) throw new KubeApiError(403, 'Forbidden', `${ref.kind.toLowerCase()}s "${ref.name}" is forbidden`);
      return objects.find((o) => `${o.kind} ${o.metadata.namespace}/${o.metadata.name}` === key) as T | undefined;
    },
  };
}

const cm = (namespace: string, name: string, data: Record<string, string>): Stored => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace },
  data,
});
const secret = (namespace: string, name: string, data: Record<string, string>): Stored => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name, namespace },
  data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
});

async function failure(client: ObjectReader, valuesFrom: ValuesFrom[]): Promise<WaitingError> {
  const err = await readValuesFrom(client, valuesFrom, 'apps').then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).to.be.instanceOf(WaitingError);
  expect((err as WaitingError).reason).to.equal(Reason.ValuesFromNotFound);
  return err as WaitingError;
}

describe('agent helm.valuesFrom', () => {
  it('reads entries in order, the ConfigMap before the Secret of one entry, with Fleet defaults for namespace and key', async () => {
    const client = reader([
      cm('apps', 'base', { 'values.yaml': 'tier: gold\nimage: {tag: "1.0"}\n' }),
      secret('vault', 'creds', { 'prod.yaml': 'password: hunter2\nimage: {pullSecret: regcred}\n' }),
      cm('apps', 'late', { 'extra.yaml': 'tier: platinum\n' }),
    ]);
    const out = await readValuesFrom(
      client,
      [
        { secretKeyRef: { name: 'creds', namespace: 'vault', key: 'prod.yaml' }, configMapKeyRef: { name: 'base' } },
        { configMapKeyRef: { name: 'late', key: 'extra.yaml' } },
      ],
      'apps',
    );
    expect(out).to.deep.equal([{ tier: 'gold', image: { tag: '1.0' } }, { password: 'hunter2', image: { pullSecret: 'regcred' } }, { tier: 'platinum' }]);
  });

  it('reads a ConfigMap key from binaryData, and an empty key as no values', async () => {
    const client = reader([
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'bin', namespace: 'apps' },
        binaryData: { 'values.yaml': Buffer.from('a: 1\n').toString('base64') },
      },
      cm('apps', 'empty', { 'values.yaml': '' }),
    ]);
    expect(await readValuesFrom(client, [{ configMapKeyRef: { name: 'bin' } }, { configMapKeyRef: { name: 'empty' } }], 'apps')).to.deep.equal([{ a: 1 }, {}]);
  });

  it('reads nothing without valuesFrom', async () => {
    expect(await readValuesFrom(reader([]), undefined, 'apps')).to.deep.equal([]);
  });

  const failures: { name: string; objects: Stored[]; forbidden?: string[]; valuesFrom: ValuesFrom[]; message: RegExp }[] = [
    {
      name: 'waits for a ConfigMap missing downstream, naming the field and the object',
      objects: [],
      valuesFrom: [{ configMapKeyRef: { name: 'gone' } }],
      message: /^helm\.valuesFrom\[0\]\.configMapKeyRef: ConfigMap apps\/gone does not exist on the downstream cluster/,
    },
    {
      name: 'waits for a missing key of a Secret, naming it',
      objects: [secret('apps', 's', { other: 'a: 1' })],
      valuesFrom: [{ secretKeyRef: { name: 's', key: 'prod.yaml' } }],
      message: /^helm\.valuesFrom\[0\]\.secretKeyRef: Secret apps\/s has no key "prod\.yaml"/,
    },
    {
      name: 'waits when the read is refused, saying what to grant',
      objects: [],
      forbidden: ['Secret apps/s'],
      valuesFrom: [{ secretKeyRef: { name: 's' } }],
      message: /may not read Secret apps\/s downstream; grant get on it/,
    },
    {
      name: 'refuses a ConfigMap value that is not a mapping',
      objects: [cm('apps', 'c', { 'values.yaml': '- a\n- b\n' })],
      valuesFrom: [{ configMapKeyRef: { name: 'c' } }],
      message: /key "values\.yaml" of ConfigMap apps\/c is not a YAML mapping/,
    },
  ];
  for (const c of failures) {
    it(c.name, async () => {
      const err = await failure(reader(c.objects, c.forbidden), c.valuesFrom);
      expect(err.message).to.match(c.message);
    });
  }

  it('never puts the content of a Secret that is not valid YAML into the message', async () => {
    const err = await failure(reader([secret('apps', 's', { 'values.yaml': 'password: "s3cr3t-value\n' })]), [{ secretKeyRef: { name: 's' } }]);
    expect(err.message).to.match(/key "values\.yaml" of Secret apps\/s is not valid YAML at line \d/);
    expect(err.message).not.to.include('s3cr3t');
    expect(String(err.cause ?? '')).not.to.include('s3cr3t');
  });
});
