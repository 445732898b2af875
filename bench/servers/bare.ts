// The baseline: a bare node:http server that parses a small JSON body and answers JSON.
// Every server benchmark reports its figures next to this one, measured in the same run.
import { serveJsonBaseline } from '../lib.ts';

serveJsonBaseline((parsed, res) => {
  const body = JSON.stringify({ ok: true, echo: parsed });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
});
