import type { DaemonInfo } from '../../src/shared/protocol/daemon';

/** What a test daemon answers to `daemon.info`. */
export const testDaemonInfo: DaemonInfo = {
  version: '9.9.9',
  protocolVersion: 1,
  hostname: 'test-host',
  pid: 1,
  startedAt: new Date().toISOString(),
  drivers: [],
  defaultDriver: null,
};
