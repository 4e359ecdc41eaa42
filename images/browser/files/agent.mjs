// Firedeck oauth agent (browser VM). This first version serves its health to the bearer of the session's token
// from the config drive, on the VM's private address only. The credential capture described in
// ARCHITECTURE.md ("Credentials") grows here.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';

const PORT = 8390;
const address = process.env.FIREDECK_ADDRESS || '127.0.0.1';
const vmId = process.env.FIREDECK_VM || '';
const token = fs.readFileSync('/run/firedeck/agent-token', 'utf8').trim();
if (token.length < 16) {
  console.error('agent token missing or too short');
  process.exit(1);
}
const expected = crypto.createHash('sha256').update(token).digest();
const startedAt = new Date().toISOString();

function authorized(req) {
  const m = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
  if (!m) return false;
  const given = crypto.createHash('sha256').update(m[1]).digest();
  return crypto.timingSafeEqual(given, expected);
}

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

const server = http.createServer((req, res) => {
  if (!authorized(req)) {
    res.setHeader('www-authenticate', 'Bearer');
    send(res, 401, { error: 'unauthorized' });
    return;
  }
  const url = new URL(req.url ?? '/', 'http://agent');
  if (req.method === 'GET' && url.pathname === '/health') {
    send(res, 200, { status: 'ok', vmId, startedAt });
    return;
  }
  send(res, 404, { error: 'not found' });
});
server.headersTimeout = 10_000;
server.requestTimeout = 30_000;
server.listen(PORT, address, () => console.log(`agent listening on ${address}:${PORT}`));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));
