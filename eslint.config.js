// Lint configuration: typescript-eslint's recommended type-aware rules over the TypeScript
// in src, test and bench; the recommended JavaScript rules over the plain JS files, the
// dashboard's browser-side scripts included (with the browser's globals).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const nodeGlobals = { process: 'readonly', console: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly' };
// What the dashboard's scripts (src/web/static, plain scripts run by the browser) may use.
const browserGlobals = Object.fromEntries(
  ['window', 'document', 'navigator', 'location', 'fetch', 'console', 'URL', 'URLSearchParams', 'FormData', 'Intl', 'Date',
    'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'requestAnimationFrame', 'HTMLElement', 'Event', 'CustomEvent',
    'cancelAnimationFrame', 'AbortController', 'Node', 'Element', 'DOMParser', 'CSS', 'matchMedia'].map((name) => [name, 'readonly']),
);

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'test-artifacts/**', '.first-run/**'] },
  js.configs.recommended,
  {
    files: ['**/*.ts'],
    extends: [...tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true, allowNullish: true }],
    },
  },
  {
    // The dashboard's code is the dashboard's: what another program needs of it (the html
    // template, say) lives in src/shared, so the bot never loads the dashboard's modules.
    files: ['src/**/*.ts'],
    ignores: ['src/web/**'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/web/*', '**/web/**'], message: 'Only the dashboard imports src/web; move what others need to src/shared.' }] }],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    ignores: ['src/web/static/**'],
    languageOptions: { sourceType: 'module', globals: nodeGlobals },
  },
  {
    files: ['src/web/static/**/*.js'],
    languageOptions: { sourceType: 'script', ecmaVersion: 2022, globals: browserGlobals },
  },
);
