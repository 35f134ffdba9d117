import { expect } from 'chai';
import { DEFAULT_DASHBOARD_PORT, parseDashboardArgs } from './command.js';

describe('flotilla dashboard arguments', () => {
  const cases: { args: string[]; want: unknown }[] = [
    { args: [], want: { port: DEFAULT_DASHBOARD_PORT, address: '127.0.0.1', enableActions: false, inCluster: false } },
    {
      args: ['--kubeconfig', 'k', '--context', 'c', '--port', '0', '--enable-actions'],
      want: { kubeconfig: 'k', context: 'c', port: 0, address: '127.0.0.1', enableActions: true, inCluster: false },
    },
    { args: ['--in-cluster', '--address', '0.0.0.0'], want: { port: DEFAULT_DASHBOARD_PORT, address: '0.0.0.0', enableActions: false, inCluster: true } },
    { args: ['--help'], want: 'help' },
    { args: ['--port', '70000'], want: { error: '--port must be a port number (0-65535), not "70000"' } },
    {
      args: ['--in-cluster', '--enable-actions'],
      want: { error: "--in-cluster refuses --enable-actions: actions would run as the dashboard's ServiceAccount, not as the person clicking" },
    },
    { args: ['--in-cluster', '--kubeconfig', 'k'], want: { error: '--in-cluster uses the pod ServiceAccount: drop --kubeconfig and --context' } },
  ];
  for (const c of cases) {
    it(`parses ${c.args.join(' ') || '(nothing)'}: binds loopback unless told, refuses actions in-cluster`, () => {
      expect(parseDashboardArgs(c.args)).to.deep.equal(c.want);
    });
  }

  it('refuses an unknown option with the parser’s message', () => {
    expect(parseDashboardArgs(['--bogus']))
      .to.have.property('error')
      .that.includes('--bogus');
  });
});
