/**
 * electron-builder configuration: macOS dmg + zip and Linux AppImage + deb, each for x64 and arm64.
 * The app ships only what the renderer, preload and main process need (out/ and the production dependencies the
 * main bundle imports); firedeckd is installed on hosts separately (host-daemon), never inside the app.
 *
 * From the environment (never from this file):
 *   FIREDECK_FUSES          release (default) or test: the Electron fuse profile (build/electronFuses.cjs)
 *   CSC_LINK, CSC_KEY_PASSWORD                       macOS signing identity (a .p12, base64 or a path)
 *   APPLE_API_KEY, APPLE_API_KEY_ID, APPLE_API_ISSUER   notarization with an App Store Connect API key, or
 *   APPLE_ID, APPLE_APP_SPECIFIC_PASSWORD, APPLE_TEAM_ID an Apple ID; without either, notarization is skipped.
 * @type {import('electron-builder').Configuration}
 */
const { fuseProfile } = require('./electronFuses.cjs');

const both = ['x64', 'arm64'];

module.exports = {
  appId: 'dev.firedeck.console',
  productName: 'Firedeck',
  copyright: 'Copyright © Firedeck',
  electronVersion: require('electron/package.json').version,
  directories: { output: 'release', buildResources: 'build/resources' },
  files: [
    'out/**/*',
    'package.json',
    '!**/*.map',
    // Production dependencies only carry what runs: no sources, build intermediates, tests or docs of theirs.
    '!**/node_modules/**/*.{c,cc,cpp,cxx,h,hh,hpp,gyp,gypi,mk,ts,mts,cts,md,markdown}',
    '!**/node_modules/**/{test,tests,__tests__,doc,docs,example,examples,benchmark,benchmarks,.github}/**',
    '!**/node_modules/**/build/Release/{obj.target,.deps}/**',
    '!**/node_modules/**/build/{Makefile,config.gypi,*.Makefile,binding.Makefile,node_gyp_bins}',
    '!**/node_modules/**/test_extension.node',
    '!**/node_modules/better-sqlite3/{deps,src}/**',
    '!**/node_modules/cpu-features/deps/**',
    '!**/node_modules/nan/**',
  ],
  // Native modules cannot be loaded from inside the asar archive.
  asarUnpack: ['**/node_modules/better-sqlite3/**', '**/*.node'],
  // better-sqlite3, ssh2's sshcrypto and cpu-features are rebuilt for Electron's ABI and each target arch;
  // build/afterPack.cjs fails the build if what got packaged is not.
  npmRebuild: true,
  afterPack: './build/afterPack.cjs',
  electronFuses: fuseProfile(process.env),
  extraMetadata: { main: 'out/main/index.js' },
  mac: {
    category: 'public.app-category.developer-tools',
    icon: 'build/resources/icon.icns',
    target: [
      { target: 'dmg', arch: both },
      { target: 'zip', arch: both },
    ],
    hardenedRuntime: true,
    gatekeeperAssess: false,
    entitlements: 'build/entitlements.mac.plist',
    entitlementsInherit: 'build/entitlements.mac.inherit.plist',
  },
  dmg: { writeUpdateInfo: false },
  linux: {
    category: 'Development',
    icon: 'build/resources/icons',
    maintainer: 'Firedeck <firedeck@localhost>',
    synopsis: 'Admin console for microVM hosts',
    target: [
      { target: 'AppImage', arch: both },
      { target: 'deb', arch: both },
    ],
    executableName: 'firedeck',
  },
  // electron-builder's defaults, with the names Debian 13 and Ubuntu 24.04 gave them in the 64-bit time_t move.
  deb: {
    depends: [
      'libgtk-3-0 | libgtk-3-0t64',
      'libnotify4',
      'libnss3',
      'libxss1',
      'libxtst6',
      'xdg-utils',
      'libatspi2.0-0 | libatspi2.0-0t64',
      'libuuid1',
      'libsecret-1-0',
      'libasound2 | libasound2t64',
    ],
  },
};
