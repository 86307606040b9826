// The smallest hyper_edge app: answers which version and replica served the request.
// FAIL_HEALTH=1 makes its health check fail (to see a deploy rolled back).
import { createServer } from 'node:http';

const version = process.env.HOX_APP_VERSION ?? 'dev';
const replica = process.env.HOX_REPLICA ?? 'local';

const server = createServer((req, res) => {
  if (req.url === '/healthz') {
    const failing = process.env.FAIL_HEALTH === '1';
    res.writeHead(failing ? 500 : 200, { 'content-type': 'text/plain' });
    return res.end(failing ? 'failing on purpose\n' : 'ok\n');
  }
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end(`hello from ${version} on ${replica}${process.env.GREETING ? `: ${process.env.GREETING}` : ''}\n`);
});
server.keepAliveTimeout = 5000;
server.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
