// Electron fuses for the packaged app, flipped in the binary by electron-builder (`electronFuses`) right before
// signing. Two profiles, chosen by FIREDECK_FUSES:
//   release (default): what ships. No ELECTRON_RUN_AS_NODE, NODE_OPTIONS or --inspect (each would let anyone who
//     can start the app run arbitrary code inside its signed identity), cookies encrypted, the app only from an
//     app.asar whose integrity is checked.
//   test: release with --inspect allowed, the one thing Playwright's Electron launcher needs: given an
//     executablePath it starts the app with `--inspect=0 --remote-debugging-port=0` and drives the main process
//     through the Node inspector (remote debugging is a Chromium switch, no fuse). It injects no `-r` loader, sets
//     no ELECTRON_RUN_AS_NODE and deletes NODE_OPTIONS, so the other fuses stay as released.
// GrantFileProtocolExtraPrivileges stays at Electron's default (on): the renderer is loaded with loadFile (file://).
'use strict';

const RELEASE = Object.freeze({
  runAsNode: false,
  enableCookieEncryption: true,
  enableNodeOptionsEnvironmentVariable: false,
  enableNodeCliInspectArguments: false,
  enableEmbeddedAsarIntegrityValidation: true,
  onlyLoadAppFromAsar: true,
  // Flipping fuses breaks the ad-hoc signature of an arm64 macOS build; re-sign it ad hoc (a real identity, when
  // configured, signs over it afterwards).
  resetAdHocDarwinSignature: true,
});

const PROFILES = Object.freeze({
  release: RELEASE,
  test: Object.freeze({ ...RELEASE, enableNodeCliInspectArguments: true }),
});

/**
 * @param {NodeJS.ProcessEnv} env
 * @returns {typeof RELEASE}
 */
function fuseProfile(env) {
  const name = env.FIREDECK_FUSES || 'release';
  if (!Object.hasOwn(PROFILES, name)) {
    throw new Error(`FIREDECK_FUSES must be one of ${Object.keys(PROFILES).join(', ')} (got ${JSON.stringify(name)})`);
  }
  return PROFILES[name];
}

module.exports = { PROFILES, fuseProfile };
