import { expect } from 'chai';
import { gzipSync } from 'node:zlib';
import { readChartArchive } from './untar.js';

/** One ustar entry (header + padded data), as helm package writes them. */
function entry(name: string, content: string | Buffer = '', type = '0'): Buffer {
  const data = Buffer.from(content);
  const header = Buffer.alloc(512);
  header.write(name, 0, 100, 'utf8');
  header.write('0000644\0', 100);
  header.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124);
  header.write(type, 156);
  header.write('ustar\0', 257);
  return Buffer.concat([header, data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}

function pax(path: string): Buffer {
  const body = (n: number) => `${n} path=${path}\n`;
  let n = body(0).length;
  while (body(n).length !== n) n = body(n).length;
  return entry('PaxHeader', body(n), 'x');
}

const tgz = (...entries: Buffer[]) => gzipSync(Buffer.concat([...entries, Buffer.alloc(1024)]));
const limits = { maxFiles: 10, maxFileBytes: 1000, maxTotalBytes: 2000 };

describe('reading a chart archive', () => {
  it('returns the files below the chart folder, sorted, with PAX long names', () => {
    const long = `web/templates/${'x'.repeat(120)}.yaml`;
    const archive = readChartArchive(
      tgz(entry('web/Chart.yaml', 'name: web\n'), entry('web/templates/', '', '5'), pax(long), entry('ignored', 'kind: A\n')),
      limits,
      'chart web',
    );
    expect(archive.top).to.equal('web');
    expect(archive.files.map((f) => f.path)).to.deep.equal(['Chart.yaml', `templates/${'x'.repeat(120)}.yaml`]);
    expect(archive.files[1]?.content.toString()).to.equal('kind: A\n');
  });

  const refused: [string, Buffer, RegExp][] = [
    ['a symbolic link', tgz(entry('web/Chart.yaml', 'a'), entry('web/link', '', '2')), /chart web: entry "web\/link" is a link or a special file/],
    ['a path outside the archive', tgz(entry('web/Chart.yaml', 'a'), entry('web/../../etc/passwd', 'x')), /points outside the archive/],
    ['two top folders', tgz(entry('web/Chart.yaml', 'a'), entry('api/Chart.yaml', 'a')), /more than one top folder \(web, api\)/],
    ['no Chart.yaml', tgz(entry('web/values.yaml', 'a: 1')), /holds no <chart>\/Chart.yaml/],
    ['a file over the per-file limit', tgz(entry('web/Chart.yaml', 'x'.repeat(1001))), /Chart.yaml is 1001 bytes, more than the limit of 1000 bytes per file/],
    [
      'more bytes than the bundle limit',
      tgz(entry('web/Chart.yaml', 'a'), entry('web/a', 'x'.repeat(900)), entry('web/b', 'x'.repeat(900)), entry('web/c', 'x'.repeat(900))),
      /more than 2000 bytes/,
    ],
    ['more files than the limit', tgz(...Array.from({ length: 11 }, (_, i) => entry(`web/f${i}`, 'a'))), /more than 10 files/],
    ['gzip that inflates past the limit', gzipSync(Buffer.alloc(10_000_000)), /unpacks to more than 2000 bytes/],
    ['data that is not gzip', Buffer.from('not gzip'), /is not gzip data/],
  ];
  for (const [name, bytes, message] of refused) {
    it(`refuses ${name}`, () => expect(() => readChartArchive(bytes, limits, 'chart web')).to.throw(message));
  }
});
