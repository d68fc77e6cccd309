// One real server for the whole run (globalSetup), test files one after another: they share
// it, and the outage test takes its database away for a while.
module.exports = {
  testEnvironment: 'jsdom',
  // `ws` must load its Node build, not the browser stub jsdom's conditions would pick.
  testEnvironmentOptions: { customExportConditions: ['node', 'node-addons'] },
  globalSetup: '<rootDir>/harness/global-setup.js',
  globalTeardown: '<rootDir>/harness/global-teardown.js',
  testSequencer: '<rootDir>/harness/sequencer.js',
  testMatch: ['<rootDir>/specs/**/*.test.js'],
  maxWorkers: 1,
  testTimeout: 60000,
};
