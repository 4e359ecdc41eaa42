import { defineConfig } from 'vitest/config';

/**
 * Three projects, one runner:
 *  - unit: beside the code, fast, no root or VMs needed;
 *  - integration: real sshd, daemon as root, QEMU guests from the pipeline's images (test/integration);
 *  - e2e: the renderer in Chromium (web mode) or Electron, driven by playwright-core (test/e2e).
 * Unit and integration run together; e2e runs after them. Both of the latter boot QEMU guests under TCG, which
 * are CPU-bound on a two-core machine: overlapping them finishes no sooner and slows each guest so far that
 * boot and readiness timeouts become a matter of luck.
 */
export default defineConfig({
  test: {
    reporters: ['default', './test/support/summaryReporter.ts'],
    projects: [
      {
        // Views' tests (*.test.tsx) compile JSX as the app's build does (tsconfig.web.json: react-jsx).
        esbuild: { jsx: 'automatic' },
        test: {
          name: 'unit',
          include: ['src/**/*.test.{ts,tsx}', 'host-daemon/src/**/*.test.ts', 'build/**/*.test.ts'],
          // The daemon's RPC server needs its peer-credentials addon (host-daemon/native), built here once.
          globalSetup: ['test/support/peerCredAddon.ts'],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 900_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          sequence: { groupOrder: 1 },
          testTimeout: 120_000,
          hookTimeout: 600_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
