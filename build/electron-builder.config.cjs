/**
 * electron-builder configuration: macOS dmg + zip, Linux AppImage + deb.
 * The app ships only what the renderer, preload and main process need; firedeckd is installed on hosts
 * separately (host-daemon), never inside the app.
 * @type {import('electron-builder').Configuration}
 */
module.exports = {
  appId: 'dev.firedeck.console',
  productName: 'Firedeck',
  electronVersion: require('electron/package.json').version,
  directories: { output: 'release', buildResources: 'build/resources' },
  files: ['out/**/*', 'package.json', '!**/*.map'],
  // better-sqlite3 is a native module: it must live outside the asar archive to be loadable.
  asarUnpack: ['**/node_modules/better-sqlite3/**', '**/*.node'],
  npmRebuild: true,
  extraMetadata: { main: 'out/main/index.js' },
  mac: {
    category: 'public.app-category.developer-tools',
    target: [
      { target: 'dmg', arch: ['x64', 'arm64'] },
      { target: 'zip', arch: ['x64', 'arm64'] },
    ],
    hardenedRuntime: true,
  },
  dmg: { writeUpdateInfo: false },
  linux: {
    category: 'Development',
    maintainer: 'Firedeck <firedeck@localhost>',
    target: [
      { target: 'AppImage', arch: ['x64'] },
      { target: 'deb', arch: ['x64'] },
    ],
    executableName: 'firedeck',
  },
  deb: { depends: ['libnss3', 'libgtk-3-0', 'libxss1', 'libasound2'] },
};
