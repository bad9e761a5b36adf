// Three projects: unit (pure logic, no I/O), integration (real broker, Postgres and
// registry from the local stack) and e2e (the whole pipeline through its HTTP surfaces).
const transform = {
  '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2024', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } }],
};
const moduleNameMapper = {
  '^@sluice/local-stack$': '<rootDir>/deploy/local/src',
  '^@sluice/([a-z-]+)$': '<rootDir>/libs/$1/src',
};
const common = { rootDir: __dirname, transform, moduleNameMapper, testEnvironment: 'node' };

module.exports = {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/**/src/**/*.test.ts', '<rootDir>/**/test/**/*.test.ts'], testPathIgnorePatterns: ['/node_modules/', '/dist/', '\\.int\\.test\\.ts$', '/e2e/'] },
    { ...common, displayName: 'integration', testMatch: ['<rootDir>/**/test/**/*.int.test.ts'], testPathIgnorePatterns: ['/node_modules/', '/dist/'] },
    { ...common, displayName: 'e2e', testMatch: ['<rootDir>/e2e/**/*.e2e.test.ts'], testPathIgnorePatterns: ['/node_modules/', '/dist/'] },
  ],
};
