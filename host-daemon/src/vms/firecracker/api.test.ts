import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rejectionOf } from '../../../../test/doubles/firecracker/harness';
import { FirecrackerApi } from './api';

let tmp: string;
const servers: net.Server[] = [];

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fdt-fcapi-'));
});

afterAll(async () => {
  for (const server of servers) await new Promise((resolve) => server.close(resolve));
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function listen(name: string, onConnection: (socket: net.Socket) => void): Promise<string> {
  const socketPath = path.join(tmp, name);
  const server = net.createServer(onConnection);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return socketPath;
}

describe('FirecrackerApi transport', () => {
  it('reports a socket nobody listens on as unavailable, naming it', async () => {
    const socketPath = path.join(tmp, 'absent.sock');
    const err = await rejectionOf(new FirecrackerApi(socketPath).describeInstance());
    expect(err.kind).toBe('unavailable');
    expect(err.message).toContain(socketPath);
    expect(err.details).toMatchObject({ method: 'GET', path: '/', code: 'ENOENT' });
  });

  it('times out a request that gets no answer', async () => {
    const held: net.Socket[] = [];
    const socketPath = await listen('silent.sock', (socket) => {
      held.push(socket);
    });
    const before = Date.now();
    const err = await rejectionOf(new FirecrackerApi(socketPath, { timeoutMs: 200 }).action('InstanceStart'));
    expect(err.kind).toBe('timeout');
    expect(err.message).toContain('PUT /actions');
    expect(Date.now() - before).toBeGreaterThanOrEqual(190);
    for (const socket of held) socket.destroy();
  });

  it('sends a Content-Length body (no chunking) and refuses an answer that is not InstanceInfo', async () => {
    let request = '';
    const socketPath = await listen('impostor.sock', (socket) => {
      socket.on('data', (chunk) => {
        request += chunk.toString('utf8');
        const body = '{"hello":"world"}';
        socket.end(
          `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
        );
      });
    });
    const api = new FirecrackerApi(socketPath);
    await api.putMachineConfig({ vcpu_count: 1, mem_size_mib: 128 });
    expect(request).toMatch(/^PUT \/machine-config HTTP\/1\.1\r\n/);
    expect(request).toMatch(/\r\ncontent-length: 35\r\n/i);
    expect(request).not.toMatch(/transfer-encoding/i);
    expect(request.endsWith('{"vcpu_count":1,"mem_size_mib":128}')).toBe(true);

    const err = await rejectionOf(api.describeInstance());
    expect(err.message).toMatch(/did not answer with Firecracker's InstanceInfo/);
  });
});
