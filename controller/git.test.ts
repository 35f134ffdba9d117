import { expect } from 'chai';
import { Reason } from '../lib/api/index.js';
import { dispositionOf } from '../lib/errors.js';
import { translateGitError } from './git.js';

describe('git errors', () => {
  const repo = 'ssh://git@git.example:2222/apps.git';
  const generic = 'fatal: Could not read from remote repository.\n\nPlease make sure you have the correct access rights\nand the repository exists.\n';
  const cases: { name: string; stderr: string; reason: string; stalls: boolean; says: RegExp }[] = [
    { name: 'stalls on a refused SSH key, naming the Secret, not git\'s generic advice',
      stderr: `git@git.example: Permission denied (publickey).\r\n${generic}`, reason: Reason.AuthenticationFailed, stalls: true,
      says: /authentication failed: the server refused the SSH key of the clientSecretName Secret$/ },
    { name: 'stalls on a host missing from known_hosts and says how to add it',
      stderr: `No ED25519 host key is known for [git.example]:2222 and you have requested strict checking.\r\nHost key verification failed.\r\n${generic}`,
      reason: Reason.GitOperationFailed, stalls: true, says: /host key verification failed: no known_hosts entry for the server/ },
    { name: 'stalls on a host key that differs from known_hosts',
      stderr: `@@@@@@@@\r\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\r\nOffending ED25519 key in /w/.auth/git-x/known_hosts:1\r\nHost key verification failed.\r\n${generic}`,
      reason: Reason.GitOperationFailed, stalls: true, says: /host key differs from the one in known_hosts/ },
    { name: 'stalls on a private key ssh cannot load',
      stderr: `Load key "/w/.auth/git-x/id": invalid format\r\ngit@git.example: Permission denied (publickey).\r\n${generic}`,
      reason: Reason.AuthenticationFailed, stalls: true, says: /not a usable private key/ },
    { name: 'retries a refused connection, saying what ssh said',
      stderr: `ssh: connect to host git.example port 2222: Connection refused\r\n${generic}`, reason: Reason.GitOperationFailed, stalls: false,
      says: /Connection refused$/ },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const err = translateGitError(repo, 'ls-remote', new Error(c.stderr));
      expect((err as { reason?: string }).reason).to.equal(c.reason);
      expect(dispositionOf(err) === 'stalling').to.equal(c.stalls);
      expect(err.message).to.match(c.says);
      expect(err.message).to.match(/^git ls-remote of ssh:\/\/git@git\.example:2222\/apps\.git: /);
      expect(err.message).not.to.include('/w/.auth');
    });
  }
});
