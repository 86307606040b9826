/** The version `hox --version` prints; test/cli-startup.test.ts keeps it equal to package.json's. */
export const HOX_VERSION = '0.1.0';
