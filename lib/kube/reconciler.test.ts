import { expect } from 'chai';
import pino from 'pino';
import type { Condition } from '../api/index.js';
import { StallingError, TransientError, WaitingError, dispositionOf } from '../errors.js';
import { KubeApiError, type KubeObject, type ObjectRef } from './client.js';
import { reconciler, type ReconcilerDefinition, type RunState, type Step } from './reconciler.js';
import { applyStatusWriter, mergeStatusWriter, summarize, type Readiness, type StatusClient } from './reconciler-status.js';

const T0 = new Date('2026-01-01T00:00:00Z');
const T1 = new Date('2026-01-01T00:01:00Z');
const cond = (type: string, status: Condition['status'], reason = 'Succeeded', observedGeneration?: number): Condition => ({
  type,
  status,
  reason,
  message: '',
  lastTransitionTime: '2026-01-01T00:00:00Z',
  ...(observedGeneration === undefined ? {} : { observedGeneration }),
});
const typesOf = (list: Condition[]) => Object.fromEntries(list.map((c) => [c.type, `${c.status}/${c.reason}`]));

describe('summarize: Ready, Reconciling and Stalled for every kind', () => {
  const ready: Readiness = { status: 'True', reason: 'Succeeded', message: 'all ready' };
  const cases: { name: string; error?: unknown; readiness: Readiness; before?: Condition[]; expected: Record<string, string> }[] = [
    {
      name: 'Ready True, Reconciling False and no Stalled after a success',
      readiness: ready,
      before: [cond('Stalled', 'True', 'InvalidBundle')],
      expected: { Ready: 'True/Succeeded', Reconciling: 'False/Succeeded' },
    },
    {
      name: 'Reconciling True while a rollout progresses',
      readiness: { status: 'False', reason: 'ResourcesNotReady', message: 'x', progressing: true },
      expected: { Ready: 'False/ResourcesNotReady', Reconciling: 'True/Progressing' },
    },
    {
      name: "Stalled True with the error's reason when the user must act",
      readiness: ready,
      error: new StallingError('InvalidBundle', 'bad yaml'),
      expected: { Ready: 'False/InvalidBundle', Reconciling: 'False/InvalidBundle', Stalled: 'True/InvalidBundle' },
    },
    {
      name: 'Reconciling True when a transient failure is retried',
      readiness: ready,
      error: new TransientError('RegistryUnreachable', 'down'),
      expected: { Ready: 'False/RegistryUnreachable', Reconciling: 'True/Progressing', Stalled: 'False/Progressing' },
    },
    {
      name: 'the fallback reason for an error without one',
      readiness: ready,
      error: new Error('boom'),
      expected: { Ready: 'False/Fallback', Reconciling: 'True/Progressing', Stalled: 'False/Progressing' },
    },
    {
      name: "the reconciler's own False verdict over the error's",
      readiness: { status: 'False', reason: 'ApplyFailed', message: 'specific' },
      error: new WaitingError('Other', 'w'),
      expected: { Ready: 'False/ApplyFailed', Reconciling: 'True/Progressing', Stalled: 'False/Progressing' },
    },
    {
      name: 'nothing changed when the verdict is unchanged',
      readiness: 'unchanged',
      before: [cond('Stalled', 'True', 'InvalidBundle'), cond('Ready', 'False', 'InvalidBundle')],
      expected: { Stalled: 'True/InvalidBundle', Ready: 'False/InvalidBundle' },
    },
  ];
  for (const c of cases) {
    it(`sets ${c.name}`, () => {
      const out = summarize({ conditions: c.before, generation: 4, error: c.error, fallbackReason: 'Fallback', readiness: c.readiness, now: T1 });
      expect(typesOf(out)).to.deep.equal(c.expected);
    });
  }

  it('records the generation on every summary condition and keeps the transition time of an unchanged status', () => {
    const out = summarize({
      conditions: [cond('Ready', 'True', 'Succeeded', 3)],
      generation: 4,
      error: undefined,
      fallbackReason: 'F',
      readiness: ready,
      now: T1,
    });
    for (const c of out) expect(c.observedGeneration, c.type).to.equal(4);
    expect(out.find((c) => c.type === 'Ready')?.lastTransitionTime).to.equal('2026-01-01T00:00:00Z');
  });
});

describe('Kubernetes API errors: the disposition follows the HTTP status', () => {
  const cases: { status: number; disposition: string; reason: string }[] = [
    { status: 403, disposition: 'stalling', reason: 'Forbidden' },
    { status: 404, disposition: 'stalling', reason: 'NotFound' },
    { status: 409, disposition: 'conflict', reason: 'Conflict' },
    { status: 422, disposition: 'stalling', reason: 'Invalid' },
    { status: 429, disposition: 'transient', reason: 'TooManyRequests' },
    { status: 500, disposition: 'transient', reason: 'ApiServerError' },
    { status: 401, disposition: 'transient', reason: 'ApiServerError' },
  ];
  for (const c of cases) {
    it(`${c.status}: ${c.disposition} with reason ${c.reason}`, () => {
      const err = new KubeApiError(c.status, 'Whatever', 'x');
      expect(dispositionOf(err)).to.equal(c.disposition);
      expect(err.reason).to.equal(c.reason);
    });
  }
});

/** An in-memory API for the skeleton: objects by name, every status write and finalizer patch recorded. */
class FakeApi implements StatusClient {
  objects = new Map<string, KubeObject>();
  statusWrites: { name: string; body: unknown; manager?: string }[] = [];
  patches: { name: string; body: unknown }[] = [];
  fail?: unknown;

  async mergePatch<T extends KubeObject>(ref: ObjectRef & { name: string }, patch: unknown, subresource?: 'status'): Promise<T> {
    if (this.fail) throw this.fail;
    const obj = this.objects.get(ref.name) as T;
    if (subresource === 'status') {
      this.statusWrites.push({ name: ref.name, body: patch });
      return obj;
    }
    this.patches.push({ name: ref.name, body: patch });
    const meta = (patch as { metadata: { finalizers: string[] } }).metadata;
    const next = { ...obj, metadata: { ...obj.metadata, finalizers: meta.finalizers } } as T;
    this.objects.set(ref.name, next);
    return next;
  }

  async applyStatus<T extends KubeObject>(obj: KubeObject, fieldManager: string): Promise<T> {
    this.statusWrites.push({ name: obj.metadata.name, body: obj, manager: fieldManager });
    return obj as T;
  }
}

type Obj = KubeObject & { status?: { conditions?: Condition[]; note?: string } };
interface R extends RunState<Obj> {
  visited: string[];
}

function definition(api: FakeApi, steps: Step<R>[], extra: Partial<ReconcilerDefinition<Obj, R>> = {}): ReconcilerDefinition<Obj, R> {
  return {
    name: 'test',
    log: pino({ level: 'silent' }),
    now: () => T0,
    kube: api,
    get: async (key) => api.objects.get(key),
    finalizer: { name: 'test/finalizer', finalize: async () => 'done' },
    start: (object, now) => ({ object, now, conditions: [...(object.status?.conditions ?? [])], visited: [] }),
    steps: () => steps,
    status: {
      fallbackReason: 'Failed',
      readiness: () => ({ status: 'True', reason: 'Succeeded', message: 'ok' }),
      build: (run, conditions) => ({ note: run.visited.join(','), conditions }),
      writer: mergeStatusWriter(api),
    },
    ...extra,
  };
}

const object = (name: string, meta: Partial<KubeObject['metadata']> = {}, status?: Obj['status']): Obj => ({
  apiVersion: 'x/v1',
  kind: 'Thing',
  metadata: { name, generation: 1, resourceVersion: '1', ...meta },
  ...(status ? { status } : {}),
});

describe('the reconciler skeleton', () => {
  const step =
    (name: string, result: 'continue' | 'stop' = 'continue'): Step<R> =>
    async (run) => {
      run.visited.push(name);
      return result;
    };

  it('adds the finalizer, runs the steps in order until one stops, and writes status once', async () => {
    const api = new FakeApi();
    api.objects.set('a', object('a'));
    const result = await reconciler(definition(api, [step('one'), step('two', 'stop'), step('three')]))('a');
    expect(result).to.deep.equal({});
    expect(api.patches).to.have.length(1);
    expect(api.statusWrites).to.have.length(1);
    expect((api.statusWrites[0]?.body as { status: { note: string } } | undefined)?.status.note).to.equal('one,two');
  });

  it('writes nothing when the status would not change', async () => {
    const api = new FakeApi();
    const first = new FakeApi();
    first.objects.set('a', object('a', { finalizers: ['test/finalizer'] }));
    await reconciler(definition(first, [step('one')]))('a');
    const written = (first.statusWrites[0]?.body as { status: Obj['status'] } | undefined)?.status;
    api.objects.set('a', object('a', { finalizers: ['test/finalizer'] }, written));
    await reconciler(definition(api, [step('one')]))('a');
    expect(api.statusWrites).to.deep.equal([]);
  });

  it("diffs the final status against a step's own status write: a value the step changed and the run sets back is written", async () => {
    const first = new FakeApi();
    first.objects.set('a', object('a', { finalizers: ['test/finalizer'] }));
    await reconciler(definition(first, [step('one')]))('a');
    const written = (first.statusWrites[0]?.body as { status: NonNullable<Obj['status']> } | undefined)?.status ?? {};
    const api = new FakeApi();
    const start = object('a', { finalizers: ['test/finalizer'] }, written);
    api.objects.set('a', start);
    const progress: Step<R> = async (run) => {
      run.visited.push('one');
      // The step wrote its progress mid-run; the server answered with note "working" at resourceVersion 2.
      run.statusWritten = { ...start, metadata: { ...start.metadata, resourceVersion: '2' }, status: { ...written, note: 'working' } };
      return 'continue';
    };
    const from: (string | undefined)[] = [];
    const ownWrites = { record: (_key: string, base: KubeObject) => void from.push(base.metadata.resourceVersion) };
    await reconciler(definition(api, [progress], { ownWrites }))('a');
    // Against the status read at the start nothing changed; against the server's, note goes back to "one".
    expect(api.statusWrites.map((w) => (w.body as { status: unknown }).status)).to.deep.equal([{ note: 'one' }]);
    expect(from, 'the write is recorded as made from the progress write').to.deep.equal(['2']);
  });

  it("returns a step's error for the controller to requeue by, after writing it into status", async () => {
    const api = new FakeApi();
    api.objects.set('a', object('a', { finalizers: ['test/finalizer'] }));
    const failing: Step<R> = async () => {
      throw new StallingError('InvalidBundle', 'bad');
    };
    const result = await reconciler(definition(api, [failing]))('a');
    expect(dispositionOf(result?.error)).to.equal('stalling');
    const conditions = (api.statusWrites[0]?.body as { status: { conditions: Condition[] } } | undefined)?.status.conditions ?? [];
    expect(typesOf(conditions)).to.deep.equal({ Stalled: 'True/InvalidBundle', Reconciling: 'False/InvalidBundle', Ready: 'False/InvalidBundle' });
  });

  it('leaves the status to the next run when the definition postpones it, unless the run failed', async () => {
    const api = new FakeApi();
    api.objects.set('a', object('a', { finalizers: ['test/finalizer'] }));
    const transitions: string[] = [];
    const postponing = (postpone: boolean): Partial<ReconcilerDefinition<Obj, R>> => ({
      status: { ...definition(api, []).status, postpone: () => postpone, transitions: () => void transitions.push('called') },
    });
    expect(await reconciler(definition(api, [step('one')], postponing(true)))('a')).to.deep.equal({});
    expect(api.statusWrites, 'postponed').to.deep.equal([]);
    expect(transitions).to.deep.equal([]);
    const failing: Step<R> = async () => {
      throw new StallingError('InvalidBundle', 'bad');
    };
    await reconciler(definition(api, [failing], postponing(true)))('a');
    expect(api.statusWrites, 'a failure is written at once').to.have.length(1);
    await reconciler(definition(api, [step('one')], postponing(false)))('a');
    expect(api.statusWrites).to.have.length(2);
    expect((api.statusWrites[1]?.body as { status: { note: string } } | undefined)?.status.note).to.equal('one');
  });

  it('writes no status after a conflict: the immediate retry will', async () => {
    const api = new FakeApi();
    api.objects.set('a', object('a', { finalizers: ['test/finalizer'] }));
    const racing: Step<R> = async () => {
      throw new KubeApiError(409, 'Conflict', 'the object has been modified');
    };
    const result = await reconciler(definition(api, [racing]))('a');
    expect(dispositionOf(result?.error)).to.equal('conflict');
    expect(api.statusWrites).to.deep.equal([]);
  });

  it('finalizes a deleted object, then removes its finalizer, without running steps', async () => {
    const api = new FakeApi();
    api.objects.set('a', object('a', { finalizers: ['other', 'test/finalizer'], deletionTimestamp: '2026-01-01T00:00:00Z' }));
    let finalized = 0;
    const def = definition(api, [step('one')], {
      finalizer: {
        name: 'test/finalizer',
        finalize: async () => {
          finalized++;
          return 'done';
        },
      },
    });
    await reconciler(def)('a');
    expect(finalized).to.equal(1);
    expect(api.objects.get('a')?.metadata.finalizers).to.deep.equal(['other']);
    expect(api.statusWrites).to.deep.equal([]);
  });

  it('keeps the finalizer while clean-up is still under way', async () => {
    const api = new FakeApi();
    api.objects.set('a', object('a', { finalizers: ['test/finalizer'], deletionTimestamp: '2026-01-01T00:00:00Z' }));
    const def = definition(api, [], { finalizer: { name: 'test/finalizer', finalize: async () => ({ requeueAfterMs: 1000 }) } });
    expect(await reconciler(def)('a')).to.deep.equal({ requeueAfterMs: 1000 });
    expect(api.patches).to.deep.equal([]);
  });

  it('goes on without the finalizer when the API server forbids it and the reconciler says so', async () => {
    const api = new FakeApi();
    api.objects.set('a', object('a'));
    api.fail = new KubeApiError(403, 'Forbidden', 'no');
    let forbidden = false;
    const def = definition(api, [step('one')], {
      finalizer: {
        name: 'test/finalizer',
        finalize: async () => 'done',
        onForbidden: () => {
          forbidden = true;
        },
      },
      status: { ...definition(api, []).status, writer: { changed: () => false, write: async () => undefined } },
    });
    const result = await reconciler(def)('a');
    expect(forbidden).to.equal(true);
    expect(result?.error).to.equal(undefined);
  });

  it('summarizes from the detailed conditions the verdict sets', async () => {
    const api = new FakeApi();
    api.objects.set('a', object('a', { finalizers: ['test/finalizer'] }));
    const base = definition(api, [step('one')]);
    const def = definition(api, [step('one')], {
      status: {
        ...base.status,
        readiness: (run) => {
          run.conditions = [cond('Deployed', 'True')];
          return { status: 'True', reason: 'Succeeded', message: 'ok' };
        },
      },
    });
    await reconciler(def)('a');
    const conditions = (api.statusWrites[0]?.body as { status: { conditions: Condition[] } } | undefined)?.status.conditions ?? [];
    expect(conditions.map((c) => c.type)).to.deep.equal(['Deployed', 'Reconciling', 'Ready']);
  });

  it('does nothing for a suspended object, and calls gone for a missing one', async () => {
    const api = new FakeApi();
    api.objects.set('a', object('a', { finalizers: ['test/finalizer'] }));
    let gone = '';
    const def = definition(api, [step('one')], {
      suspended: () => true,
      gone: async (key) => {
        gone = key;
      },
    });
    await reconciler(def)('a');
    await reconciler(def)('b');
    expect(api.statusWrites).to.deep.equal([]);
    expect(gone).to.equal('b');
  });
});

describe('status writers', () => {
  it('merge: patches only the owned keys that changed, removing those set to undefined', async () => {
    const api = new FakeApi();
    api.objects.set('a', object('a'));
    const writer = mergeStatusWriter(api, ['summary', 'display']);
    const current = { summary: 1, display: 'x', agent: 'theirs' };
    expect(writer.changed(current, { summary: 1, display: 'x' })).to.equal(false);
    await writer.write(object('a'), current, { summary: 2, display: undefined });
    expect(api.statusWrites[0]?.body).to.deep.equal({ status: { summary: 2, display: null } });
  });

  it("apply: sends only its own conditions, and ignores the other writer's when deciding whether anything changed", async () => {
    const api = new FakeApi();
    const writer = applyStatusWriter(api, 'me', ['conditions', 'summary'], ['Ready']);
    const current = { summary: 1, conditions: [cond('Ready', 'True'), cond('ArtifactsStored', 'False', 'RegistryUnreachable')] };
    expect(writer.changed(current, { summary: 1, conditions: [cond('Ready', 'True')] })).to.equal(false);
    expect(writer.changed(current, { summary: 1, conditions: [cond('Ready', 'False')] })).to.equal(true);
    await writer.write(object('a'), current, { summary: 1, conditions: current.conditions });
    const body = api.statusWrites[0]?.body as { status: { conditions: Condition[] } };
    expect(api.statusWrites[0]?.manager).to.equal('me');
    expect(body.status.conditions.map((c) => c.type)).to.deep.equal(['Ready']);
  });
});
