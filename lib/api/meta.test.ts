import { expect } from 'chai';
import { formatPath, getCondition, isFalse, isTrue, parseDurationMs, removeCondition, setCondition, type Condition } from './index.js';

const T0 = new Date('2025-01-01T00:00:00.123Z');
const T1 = new Date('2025-01-01T00:05:00Z');

describe('setCondition', () => {
  const ready: Condition = { type: 'Ready', status: 'True', reason: 'Succeeded', message: 'ok', lastTransitionTime: '2025-01-01T00:00:00Z' };

  it('stamps a new condition with the current time in seconds precision', () => {
    const list = setCondition(undefined, { type: 'Ready', status: 'False', reason: 'Progressing', message: '' }, T0);
    expect(list).to.deep.equal([{ type: 'Ready', status: 'False', reason: 'Progressing', message: '', lastTransitionTime: '2025-01-01T00:00:00Z' }]);
  });

  it('keeps lastTransitionTime when the status does not change, but updates reason and message', () => {
    const list = setCondition([ready], { type: 'Ready', status: 'True', reason: 'Succeeded', message: 'still ok', observedGeneration: 2 }, T1);
    expect(list[0]).to.deep.equal({ ...ready, message: 'still ok', observedGeneration: 2 });
  });

  it('moves lastTransitionTime when the status changes', () => {
    const list = setCondition([ready], { type: 'Ready', status: 'False', reason: 'ApplyFailed', message: 'x' }, T1);
    expect(list[0]?.lastTransitionTime).to.equal('2025-01-01T00:05:00Z');
  });

  it('keeps other conditions in place and appends a new type', () => {
    const stalled: Condition = { ...ready, type: 'Stalled', status: 'False' };
    const list = setCondition([ready, stalled], { type: 'Reconciling', status: 'True', reason: 'Progressing', message: '' }, T1);
    expect(list.map((c) => c.type)).to.deep.equal(['Ready', 'Stalled', 'Reconciling']);
  });

  it('does not modify the list it is given', () => {
    const original = [ready];
    setCondition(original, { type: 'Ready', status: 'False', reason: 'ApplyFailed', message: '' }, T1);
    expect(original).to.deep.equal([ready]);
  });

  it('reads conditions with getCondition, isTrue and isFalse', () => {
    expect(getCondition([ready], 'Ready')).to.equal(ready);
    expect(getCondition([ready], 'Stalled')).to.equal(undefined);
    expect(isTrue([ready], 'Ready')).to.equal(true);
    expect(isTrue(undefined, 'Ready')).to.equal(false);
    expect(isFalse([ready], 'Ready')).to.equal(false);
    expect(removeCondition([ready], 'Ready')).to.deep.equal([]);
  });
});

describe('parseDurationMs', () => {
  const cases: [string, number | undefined][] = [
    ['15s', 15_000],
    ['1m30s', 90_000],
    ['1.5h', 5_400_000],
    ['250ms', 250],
    ['0', 0],
    ['2h45m', 9_900_000],
    ['', undefined],
    ['15', undefined],
    ['1 m', undefined],
    ['-1s', undefined],
    ['1d', undefined],
  ];
  for (const [text, ms] of cases) {
    it(`parses "${text}" as ${String(ms)}`, () => expect(parseDurationMs(text)).to.equal(ms));
  }
});

describe('formatPath', () => {
  const cases: [PropertyKey[], string][] = [
    [['spec', 'targets', 0, 'clusterSelector'], 'spec.targets[0].clusterSelector'],
    [['metadata', 'labels', 'app.kubernetes.io/name'], 'metadata.labels["app.kubernetes.io/name"]'],
    [[], ''],
  ];
  for (const [path, text] of cases) {
    it(`formats ${JSON.stringify(path)} as "${text}"`, () => expect(formatPath(path)).to.equal(text));
  }
});
