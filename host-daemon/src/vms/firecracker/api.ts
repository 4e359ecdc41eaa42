import http from 'node:http';
import { z } from 'zod';
import { FiredeckError } from '../../../../src/shared/errors';

// Request bodies as `firecracker.yaml` (beside this file) defines them; field names stay snake_case because
// they are the wire format. Only what the driver sends is typed here.

/** definitions/TokenBucket */
export interface TokenBucket {
  size: number;
  refill_time: number;
  one_time_burst?: number;
}

/** definitions/RateLimiter */
export interface RateLimiter {
  bandwidth?: TokenBucket;
  ops?: TokenBucket;
}

/** definitions/BootSource */
export interface BootSource {
  kernel_image_path: string;
  boot_args?: string;
  initrd_path?: string;
}

/** definitions/Drive (virtio-block variant) */
export interface Drive {
  drive_id: string;
  is_root_device: boolean;
  path_on_host: string;
  is_read_only: boolean;
  partuuid?: string;
  cache_type?: 'Unsafe' | 'Writeback';
  io_engine?: 'Sync' | 'Async';
  rate_limiter?: RateLimiter;
}

/** definitions/MachineConfiguration */
export interface MachineConfiguration {
  vcpu_count: number;
  mem_size_mib: number;
  smt?: boolean;
  track_dirty_pages?: boolean;
  huge_pages?: 'None' | 'Transparent' | '2M';
}

/** definitions/NetworkInterface */
export interface NetworkInterface {
  iface_id: string;
  host_dev_name: string;
  guest_mac?: string;
  mtu?: number;
  rx_rate_limiter?: RateLimiter;
  tx_rate_limiter?: RateLimiter;
}

/** definitions/SerialDevice: both fields are optional in the spec; the driver always sends the path. */
export interface SerialDevice {
  serial_out_path?: string;
  rate_limiter?: TokenBucket;
}

/** definitions/Vsock */
export interface Vsock {
  guest_cid: number;
  uds_path: string;
}

/** definitions/InstanceActionInfo.action_type */
export type InstanceActionType = 'FlushMetrics' | 'InstanceStart' | 'SendCtrlAltDel';

/** definitions/InstanceInfo, checked on receipt: the socket may belong to something else. */
export const InstanceInfo = z.object({
  app_name: z.string(),
  id: z.string(),
  state: z.enum(['Not started', 'Running', 'Paused']),
  vmm_version: z.string(),
});
export type InstanceInfo = z.infer<typeof InstanceInfo>;

const FaultBody = z.object({ fault_message: z.string() });

/** A request Firecracker answered with an error status; `faultMessage` is its own words. */
export class FirecrackerApiError extends FiredeckError {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly faultMessage: string;

  constructor(method: string, path: string, status: number, faultMessage: string) {
    super('internal', `Firecracker rejected ${method} ${path} (HTTP ${status}): ${faultMessage}`, {
      details: { method, path, status, faultMessage },
    });
    this.name = 'FirecrackerApiError';
    this.method = method;
    this.path = path;
    this.status = status;
    this.faultMessage = faultMessage;
  }
}

export interface FirecrackerApiOptions {
  /** Per request, from connect to the last byte of the answer (default 5 s). */
  timeoutMs?: number;
}

type Method = 'GET' | 'PUT' | 'PATCH';

/** Firecracker's REST API over its unix socket (HTTP/1.1, one connection per request). */
export class FirecrackerApi {
  readonly socketPath: string;
  private readonly timeoutMs: number;

  constructor(socketPath: string, options: FirecrackerApiOptions = {}) {
    this.socketPath = socketPath;
    this.timeoutMs = options.timeoutMs ?? 5000;
  }

  putBootSource(body: BootSource): Promise<void> {
    return this.put('/boot-source', body);
  }

  putDrive(body: Drive): Promise<void> {
    return this.put(`/drives/${encodeURIComponent(body.drive_id)}`, body);
  }

  putMachineConfig(body: MachineConfiguration): Promise<void> {
    return this.put('/machine-config', body);
  }

  putNetworkInterface(body: NetworkInterface): Promise<void> {
    return this.put(`/network-interfaces/${encodeURIComponent(body.iface_id)}`, body);
  }

  putSerial(body: SerialDevice): Promise<void> {
    return this.put('/serial', body);
  }

  putVsock(body: Vsock): Promise<void> {
    return this.put('/vsock', body);
  }

  action(actionType: InstanceActionType): Promise<void> {
    return this.put('/actions', { action_type: actionType });
  }

  async describeInstance(): Promise<InstanceInfo> {
    const body = await this.request('GET', '/');
    const parsed = InstanceInfo.safeParse(body);
    if (!parsed.success) {
      throw new FiredeckError(
        'internal',
        `GET / on ${this.socketPath} did not answer with Firecracker's InstanceInfo`,
        {
          details: { issues: parsed.error.issues.map((issue) => issue.message) },
        },
      );
    }
    return parsed.data;
  }

  private async put(path: string, body: object): Promise<void> {
    await this.request('PUT', path, body);
  }

  /** Sends one request; resolves with the parsed JSON answer (null for 204). */
  request(method: Method, path: string, body?: unknown): Promise<unknown> {
    const payload = body === undefined ? null : Buffer.from(JSON.stringify(body), 'utf8');
    const headers: http.OutgoingHttpHeaders = { Accept: 'application/json' };
    // Firecracker's HTTP server has no chunked transfer encoding: always send a Content-Length.
    if (payload !== null) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = payload.length;
    }
    return new Promise((resolve, reject) => {
      const req = http.request({ socketPath: this.socketPath, method, path, headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', (err) => reject(this.transportError(method, path, err)));
        res.on('end', () => {
          clearTimeout(deadline);
          const status = res.statusCode ?? 0;
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown = null;
          if (text.length > 0) {
            try {
              json = JSON.parse(text);
            } catch {
              json = text;
            }
          }
          if (status >= 200 && status < 300) {
            resolve(json);
            return;
          }
          const fault = FaultBody.safeParse(json);
          reject(new FirecrackerApiError(method, path, status, fault.success ? fault.data.fault_message : text));
        });
      });
      const deadline = setTimeout(() => {
        req.destroy(
          new FiredeckError('timeout', `Firecracker API ${method} ${path} did not answer within ${this.timeoutMs} ms`, {
            details: { method, path, socket: this.socketPath },
          }),
        );
      }, this.timeoutMs);
      req.on('error', (err) => {
        clearTimeout(deadline);
        reject(err instanceof FiredeckError ? err : this.transportError(method, path, err));
      });
      req.end(payload ?? undefined);
    });
  }

  private transportError(method: string, path: string, err: Error): FiredeckError {
    const code = (err as NodeJS.ErrnoException).code;
    return new FiredeckError(
      'unavailable',
      `Firecracker API socket ${this.socketPath} does not answer ${method} ${path}: ${code ?? err.message}`,
      { details: { method, path, socket: this.socketPath, code: code ?? null }, cause: err },
    );
  }
}
