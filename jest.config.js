// Three projects: unit (pure logic, no I/O), integration (real broker, Postgres and
// registry from the local stack) and e2e (the whole pipeline through its HTTP surfaces).
const swc = ['@swc/jest', { jsc: { target: 'es2024', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } }];
// hyparquet and hyparquet-writer are ES modules only: compiled to CommonJS like the project's own code.
const transform = { '^.+\\.ts$': swc, '/node_modules/.*hyparquet[^/]*/.+\\.js$': swc };
const moduleNameMapper = {
  '^@sluice/local-stack$': '<rootDir>/deploy/local/src',
  '^@sluice/([a-z-]+)$': '<rootDir>/libs/$1/src',
};
const transformIgnorePatterns = ['/node_modules/(?!\\.pnpm/hyparquet|hyparquet)'];
const common = { rootDir: __dirname, transform, transformIgnorePatterns, moduleNameMapper, testEnvironment: 'node' };

module.exports = {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/**/src/**/*.test.ts', '<rootDir>/**/test/**/*.test.ts'], testPathIgnorePatterns: ['/node_modules/', '/dist/', '\\.int\\.test\\.ts$', '/e2e/'] },
    { ...common, displayName: 'integration', testMatch: ['<rootDir>/**/test/**/*.int.test.ts'], testPathIgnorePatterns: ['/node_modules/', '/dist/'] },
    { ...common, displayName: 'e2e', testMatch: ['<rootDir>/e2e/**/*.e2e.test.ts'], testPathIgnorePatterns: ['/node_modules/', '/dist/'] },
  ],
};
