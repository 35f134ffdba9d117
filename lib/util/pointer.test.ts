import { expect } from 'chai';
import { parsePointer } from './pointer.js';

describe('parsePointer', () => {
  const cases: { pointer: string; want: string[] | undefined }[] = [
    { pointer: '', want: [] },
    { pointer: '/', want: [''] },
    { pointer: '/spec/replicas', want: ['spec', 'replicas'] },
    { pointer: '/a~1b/0', want: ['a/b', '0'] },
    { pointer: '/m~0n', want: ['m~n'] },
    { pointer: '/~01', want: ['~1'] },
    { pointer: '/~10', want: ['/0'] },
    { pointer: '/list/-', want: ['list', '-'] },
    { pointer: '/a//b', want: ['a', '', 'b'] },
    { pointer: 'spec/replicas', want: undefined },
    { pointer: '#/spec', want: undefined },
  ];
  for (const c of cases) it(`"${c.pointer}"`, () => expect(parsePointer(c.pointer)).to.deep.equal(c.want));
});
