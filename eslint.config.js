import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/**
 * Layers import downward only:
 *   src/shared   ← imports nothing from Electron, Node or the DOM, and nothing else of ours
 *   src/main, src/preload, src/renderer, host-daemon ← may import src/shared
 *   the daemon never imports the app; the renderer never imports main or Node; main never imports the renderer.
 */
const nodeBuiltins = [
  'fs',
  'path',
  'os',
  'net',
  'child_process',
  'crypto',
  'http',
  'https',
  'stream',
  'events',
  'util',
];
const noNode = nodeBuiltins.map((name) => ({ name, message: 'Node built-ins are not allowed in this layer.' }));
const restrict = (patterns, paths = []) => ['error', { patterns, paths }];

export default tseslint.config(
  {
    ignores: ['node_modules/**', 'out/**', 'dist/**', 'host-daemon/dist/**', 'release/**', 'test-results/**'],
  },
  js.configs.recommended,
  ...tseslint.configs.strict,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  {
    files: ['src/shared/**/*.ts'],
    rules: {
      'no-restricted-imports': restrict(
        [
          {
            group: ['node:*', 'electron', 'react', 'react-dom', 'ssh2', 'better-sqlite3'],
            message: 'src/shared is plain TypeScript: no Electron, Node or DOM imports.',
          },
          {
            group: ['**/main/**', '**/preload/**', '**/renderer/**', '**/host-daemon/**', '../main/*', '../renderer/*'],
            message: 'src/shared imports nothing above it.',
          },
        ],
        noNode,
      ),
    },
  },
  {
    files: ['src/renderer/**/*.{ts,tsx}'],
    languageOptions: { globals: { ...globals.browser } },
    rules: {
      'no-restricted-imports': restrict(
        [
          {
            group: ['node:*', 'electron', 'ssh2', 'better-sqlite3'],
            message: 'The renderer runs in a sandboxed page: no Node or Electron.',
          },
          {
            group: ['**/main/**', '**/host-daemon/**', '../../main/*'],
            message: 'The renderer talks to main only through the preload API.',
          },
        ],
        noNode,
      ),
    },
  },
  {
    files: ['src/preload/**/*.ts'],
    rules: {
      'no-restricted-imports': restrict([
        {
          group: ['**/renderer/**', '**/host-daemon/**', '**/main/**'],
          message: 'The preload imports only src/shared and electron.',
        },
      ]),
    },
  },
  {
    files: ['src/main/**/*.ts'],
    rules: {
      'no-restricted-imports': restrict([
        {
          group: ['**/renderer/**', '**/host-daemon/**', '**/preload/index*'],
          message: 'main imports only src/shared.',
        },
      ]),
    },
  },
  {
    files: ['host-daemon/**/*.ts'],
    rules: {
      'no-restricted-imports': restrict([
        {
          group: ['**/src/main/**', '**/src/renderer/**', '**/src/preload/**', 'electron', 'react'],
          message: 'The daemon never imports the app.',
        },
      ]),
    },
  },
  {
    files: ['host-daemon/src/store/**/*.ts'],
    rules: {
      'no-restricted-imports': restrict([
        {
          group: ['**/src/main/**', '**/src/renderer/**', '**/src/preload/**', 'electron', 'react'],
          message: 'The daemon never imports the app.',
        },
        {
          group: ['../vms/*', '**/vms/**'],
          message: 'The store sits below the VMs: the types it persists live in store/ (e.g. store/vmHandle.ts).',
        },
      ]),
    },
  },
  {
    files: ['**/*.test.ts', '**/*.test.tsx', 'test/**/*.ts', 'bench/**/*.ts'],
    rules: { 'no-restricted-imports': 'off', '@typescript-eslint/no-non-null-assertion': 'off' },
  },
  {
    files: ['**/*.mjs', '**/*.cjs', '**/*.js'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { ...globals.node } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
