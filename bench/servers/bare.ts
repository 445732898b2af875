// The baseline: a bare node:http server that parses a small JSON body and answers JSON.
// Every server benchmark reports its figures next to this one, measured in the same run.
import { createServer } from 'node:http';
const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    let parsed: unknown = null;
    try {
      parsed = JSON.parse(Buffer.concat(chunks).toString() || 'null');
    } catch {
      parsed = null;
    }
    const body = JSON.stringify({ ok: true, echo: parsed });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
server.listen(0, '127.0.0.1', () => {
  const a = server.address();
  process.stdout.write(`LISTENING http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
