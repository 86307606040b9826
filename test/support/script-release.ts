/**
 * A release whose one software type, `run`, runs the shell script of its parameters as its service, with
 * the plan `limits` of its parameters: what the partition isolation and usage tests need.
 */
export const SCRIPT_RELEASE: Record<string, string> = {
  'release.json': JSON.stringify({ name: 'script', version: '1.0.0', entry: 'release.mjs' }),
  'release.mjs': `
export default {
  softwareTypes: {
    run: {
      parameters: { type: 'object', required: ['script'], properties: { script: { type: 'string' }, limits: { type: 'object' } } },
      connection: { type: 'object' },
      profile(input) {
        return {
          services: [{ name: 'main', command: ['/bin/sh', '-c', input.parameters.script], stopTimeoutMs: 1000 }],
          ...(input.parameters.limits === undefined ? {} : { limits: input.parameters.limits }),
          publish: { partition: input.partition.path },
        };
      },
    },
  },
};
`,
};
