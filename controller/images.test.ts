import { expect } from 'chai';
import { Reason } from '../lib/api/index.js';
import { StallingError, WaitingError } from '../lib/errors.js';
import { RegistryRefusedError } from '../lib/oci/index.js';
import { imageError } from './images.js';

const D1 = `sha256:${'1'.repeat(64)}`;
const unknown = () => new RegistryRefusedError('manifest unknown', { registry: 'src:5000', code: 'MANIFEST_UNKNOWN', status: 404 });

describe('images step errors', () => {
  it('a locked digest gone from the source at copy time (the tag moved, the old manifest deleted) names the bundle, the image and the digest', () => {
    const err = imageError(unknown(), 'repo-app', 'src:5000/team/app:v1', 'copying', D1);
    expect(err).to.be.instanceOf(StallingError).with.property('reason', Reason.ImageRelocationFailed);
    expect(err.message).to.contain('bundle repo-app').and.contain('src:5000/team/app:v1').and.contain(`locked digest ${D1} is gone from the source`);
  });

  it('an image missing when the lock is built waits (ImageNotFound): it may be pushed yet', () => {
    const err = imageError(unknown(), 'repo-app', 'src:5000/team/app:v1', 'resolving');
    expect(err).to.be.instanceOf(WaitingError).with.property('reason', Reason.ImageNotFound);
    expect(err.message).to.not.contain('locked digest');
  });

  it('a refused push stays ImageRelocationFailed without the moved-tag hint', () => {
    const err = imageError(new RegistryRefusedError('denied', { registry: 'dst', code: 'DENIED', status: 403 }), 'b', 'src:5000/app:v1', 'copying', D1);
    expect(err).to.have.property('reason', Reason.ImageRelocationFailed);
    expect(err.message).to.not.contain('locked digest');
  });
});
