/**
 * The demo service's program, rendered into the partition as server.mjs.
 * Plain JavaScript for `node`: it needs nothing but Node.js.
 */
export const SERVER_SOURCE = `import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
const config = JSON.parse(readFileSync(new URL('./config.json', import.meta.url), 'utf8'));
const start = () => {
  const server = createServer((req, res) => {
    if (req.url === '/health') { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('ok'); return; }
    const shared = config.sites.find((s) => req.url === '/' + s.reference || req.url.startsWith('/' + s.reference + '/'));
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(shared ? shared.greeting + '\\n' : config.greeting + '\\n');
  });
  server.listen(config.port, config.host, () => console.log('listening on ' + config.host + ':' + config.port));
  const stop = () => { server.close(() => process.exit(0)); server.closeAllConnections(); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
};
if (config.crash) { console.error('crashing on purpose'); process.exit(3); }
setTimeout(start, config.delayMs);
`;
