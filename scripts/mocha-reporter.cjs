// Mocha's spec reporter plus one closing line that CI reads: "<suite>: N passed, N failed[, N skipped]".
'use strict';
const Mocha = require('mocha');
const { Spec } = Mocha.reporters;
const { EVENT_RUN_END } = Mocha.Runner.constants;

class FlotillaReporter extends Spec {
  constructor(runner, options) {
    super(runner, options);
    const label = process.env.FLOTILLA_TEST_SUITE || 'tests';
    runner.once(EVENT_RUN_END, () => {
      const s = runner.stats || {};
      const skipped = s.pending ? `, ${s.pending} skipped` : '';
      process.stdout.write(`\n${label}: ${s.passes || 0} passed, ${s.failures || 0} failed${skipped}\n`);
    });
  }
}
module.exports = FlotillaReporter;
