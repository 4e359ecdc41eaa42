#!/usr/bin/env node
// Test double for `firecracker --api-sock PATH` (the real binary ships only as a GitHub release, which test
// machines cannot download). It serves the API on the unix socket and holds every request to the contract,
// host-daemon/src/vms/firecracker/firecracker.yaml: method and path, body against the spec's definitions,
// and the pre-boot/post-boot order. Rejections are 400 `{fault_message}` as Firecracker sends them.
//
// Flags of the real binary it understands: --api-sock, --id, --version. Its own flags:
//   --double-log PATH            JSON lines, one per request (default: <api-sock>.calls.jsonl)
//   --double-spec PATH           the Swagger file (default: the in-repo copy beside the driver)
//   --double-ignore-ctrl-alt-del answer SendCtrlAltDel but keep running (a guest without i8042)
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FirecrackerSpec, MAX_PAYLOAD_BYTES } from './spec.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const defaultSpec = path.resolve(here, '../../../host-daemon/src/vms/firecracker/firecracker.yaml');

function parseArgs(argv) {
  const args = {
    apiSock: null,
    id: 'anonymous-instance',
    log: null,
    spec: defaultSpec,
    ignoreCad: false,
    version: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].startsWith('--') && argv[i].includes('=') ? argv[i].split(/=(.*)/s) : [argv[i]];
    const value = () => {
      if (inline !== undefined) return inline;
      const next = argv[++i];
      if (next === undefined) fail(`error: option '${flag}' requires a value`);
      return next;
    };
    switch (flag) {
      case '--api-sock':
        args.apiSock = value();
        break;
      case '--id':
        args.id = value();
        break;
      case '--version':
        args.version = true;
        break;
      case '--double-log':
        args.log = value();
        break;
      case '--double-spec':
        args.spec = value();
        break;
      case '--double-ignore-ctrl-alt-del':
        args.ignoreCad = true;
        break;
      default:
        fail(`error: unexpected argument '${argv[i]}' found`);
    }
  }
  return args;
}

function fail(message) {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

const args = parseArgs(process.argv.slice(2));
const spec = new FirecrackerSpec(args.spec);
if (args.version) {
  process.stdout.write(`Firecracker v${spec.version}\n`);
  process.exit(0);
}
if (args.apiSock === null) fail('error: --api-sock is required (this double has no --no-api mode)');
if (/^[A-Za-z0-9-]{1,64}$/.exec(args.id) === null) fail(`Invalid instance ID: ${args.id}`);
// Firecracker binds without unlinking first: a stale socket file is the caller's to remove.
if (fs.existsSync(args.apiSock)) fail(`Failed to open the API socket at ${args.apiSock}: Address in use`);

const logPath = args.log ?? `${args.apiSock}.calls.jsonl`;
let seq = 0;

const vm = {
  state: 'Not started',
  bootSource: null,
  drives: new Map(),
  machine: { vcpu_count: 1, mem_size_mib: 128, smt: false, track_dirty_pages: false, huge_pages: 'None' },
  nets: new Map(),
  serial: null,
  serialFd: null,
  vsock: null,
  vsockServer: null,
  other: new Map(),
};

class Fault extends Error {}

/** Checks of Firecracker's own that go beyond the schema (files opened at PUT time, one root drive, ...). */
const semantics = {
  'PUT /boot-source'(body) {
    mustOpen(body.kernel_image_path, 'r', 'The kernel file cannot be opened');
    if (body.initrd_path !== undefined) mustOpen(body.initrd_path, 'r', 'The initrd file cannot be opened');
    vm.bootSource = body;
  },
  'PUT /drives/{drive_id}'(body) {
    if (body.is_root_device) {
      for (const [id, drive] of vm.drives) {
        if (id !== body.drive_id && drive.is_root_device) throw new Fault('A root block device already exists!');
      }
    }
    if (body.socket === undefined) {
      if (body.path_on_host === undefined) throw new Fault('Unable to create the block device: missing path_on_host');
      mustOpen(body.path_on_host, body.is_read_only === true ? 'r' : 'r+', 'Unable to create the block device');
    }
    vm.drives.set(body.drive_id, body);
  },
  'PUT /machine-config'(body) {
    if (body.smt === true && body.vcpu_count > 1 && body.vcpu_count % 2 !== 0) {
      throw new Fault(
        'The vCPU number is invalid! The vCPU number can only be 1 or an even number when SMT is enabled.',
      );
    }
    if (body.huge_pages === '2M' && body.mem_size_mib % 2 !== 0) {
      throw new Fault('The memory size (MiB) is either 0, or not a multiple of the configured page size.');
    }
    vm.machine = { smt: false, track_dirty_pages: false, huge_pages: 'None', ...body };
  },
  'PUT /network-interfaces/{iface_id}'(body) {
    if (body.guest_mac !== undefined && /^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/.exec(body.guest_mac) === null) {
      throw new Fault(
        `An error occurred when deserializing the json body of a request: invalid MAC address ${body.guest_mac}.`,
      );
    }
    for (const [id, other] of vm.nets) {
      if (id === body.iface_id) continue;
      if (other.host_dev_name === body.host_dev_name)
        throw new Fault(`The host device name ${body.host_dev_name} is already in use.`);
      if (body.guest_mac !== undefined && other.guest_mac === body.guest_mac) {
        throw new Fault(`The MAC address is already in use: ${body.guest_mac}.`);
      }
    }
    vm.nets.set(body.iface_id, body);
  },
  'PUT /serial'(body) {
    if (body.serial_out_path !== undefined) {
      try {
        const fd = fs.openSync(body.serial_out_path, 'a');
        if (vm.serialFd !== null) fs.closeSync(vm.serialFd);
        vm.serialFd = fd;
      } catch (err) {
        throw new Fault(`Failed to open the serial output file: ${err.message}`);
      }
    }
    vm.serial = body;
  },
  async 'PUT /vsock'(body) {
    if (vm.vsockServer !== null) vm.vsockServer.close();
    const server = net.createServer((conn) => conn.destroy());
    await new Promise((resolve, reject) => {
      server.once('error', (err) => reject(new Fault(`Cannot create backend for vsock device: ${err.message}`)));
      server.listen(body.uds_path, resolve);
    });
    vm.vsockServer = server;
    vm.vsock = body;
  },
  'PUT /actions'(body) {
    switch (body.action_type) {
      case 'InstanceStart':
        return instanceStart();
      case 'SendCtrlAltDel':
        if (vm.state !== 'Running')
          throw new Fault('The requested operation is not supported before starting the microVM.');
        return ctrlAltDel;
      case 'FlushMetrics':
        if (!vm.other.has('PUT /metrics')) throw new Fault('The metrics system is not initialized.');
        return undefined;
    }
    return undefined;
  },
};

function mustOpen(file, mode, what) {
  try {
    fs.closeSync(fs.openSync(file, mode));
  } catch (err) {
    throw new Fault(`${what}: ${err.code === 'ENOENT' ? 'No such file or directory (os error 2)' : err.message}`);
  }
}

function instanceStart() {
  if (vm.state !== 'Not started')
    throw new Fault('The requested operation is not supported after starting the microVM.');
  if (vm.bootSource === null) throw new Fault('Cannot start microvm without kernel configuration.');
  const head = Buffer.alloc(4);
  const fd = fs.openSync(vm.bootSource.kernel_image_path, 'r');
  fs.readSync(fd, head, 0, 4, 0);
  fs.closeSync(fd);
  if (!head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) {
    throw new Fault(
      'Cannot load kernel due to invalid memory configuration or invalid kernel image: Invalid ELF magic number',
    );
  }
  vm.state = 'Running';
  const bootArgs = vm.bootSource.boot_args ?? '';
  if (vm.serialFd !== null && /\b8250\.nr_uarts=0\b/.exec(bootArgs) === null) {
    const lines = [];
    if (/\bconsole=ttyS0\b/.exec(bootArgs) !== null) {
      lines.push(
        '[    0.000000] Linux version 6.1.0-firedeck-double (Firecracker API test double)',
        `[    0.000000] Command line: ${bootArgs}`,
        `[    0.010000] Memory: ${vm.machine.mem_size_mib}MiB, ${vm.machine.vcpu_count} vCPU(s)`,
      );
      for (const [id, drive] of vm.drives)
        lines.push(`[    0.020000] virtio_blk: ${id} ro=${drive.is_read_only === true}`);
      for (const [id, nic] of vm.nets) lines.push(`[    0.030000] virtio_net: ${id} mac=${nic.guest_mac ?? 'random'}`);
    }
    lines.push('FIREDECK-READY vm');
    fs.writeSync(vm.serialFd, `${lines.join('\n')}\n`);
  }
  return undefined;
}

function ctrlAltDel() {
  if (args.ignoreCad) return;
  if (vm.serialFd !== null) fs.writeSync(vm.serialFd, 'reboot: Restarting system\n');
  // The socket file stays behind, as it does when Firecracker exits.
  process.exit(0);
}

function record(entry) {
  fs.appendFileSync(logPath, `${JSON.stringify({ seq: ++seq, ...entry })}\n`);
}

function describeInstance() {
  return { app_name: 'Firecracker', id: args.id, state: vm.state, vmm_version: spec.version };
}

const getters = {
  '/': describeInstance,
  '/version': () => ({ firecracker_version: spec.version }),
  '/machine-config': () => vm.machine,
  '/vm/config': () => {
    const config = {
      drives: [...vm.drives.values()],
      'machine-config': vm.machine,
      'network-interfaces': [...vm.nets.values()],
    };
    if (vm.bootSource !== null) config['boot-source'] = vm.bootSource;
    if (vm.vsock !== null) config.vsock = vm.vsock;
    return config;
  },
};

async function handle(method, url, raw, headers) {
  if (headers['transfer-encoding'] !== undefined)
    throw new Fault('Unsupported transfer encoding: chunked bodies are not accepted.');
  if (raw.length > MAX_PAYLOAD_BYTES) {
    throw new Fault(
      `Request payload with size ${raw.length} is larger than the limit of ${MAX_PAYLOAD_BYTES} allowed by server.`,
    );
  }
  const urlPath = url.split('?')[0];
  const found = spec.route(method, urlPath);
  if ('error' in found) throw new Fault(found.error);
  const { template, operation, pathParams } = found;

  let body;
  const parameter = spec.bodyParameter(operation);
  if (parameter === null) {
    if (raw.length > 0) throw new Fault(`${method} ${urlPath} takes no body.`);
  } else if (raw.length === 0) {
    // Swagger's default for `required` is false, but Firecracker fails to deserialise an empty body; only an
    // explicit `required: false` makes the body optional.
    if (parameter.required !== false) throw new Fault('The request body is empty.');
  } else {
    if (/^application\/json\b/i.exec(headers['content-type'] ?? '') === null) {
      throw new Fault(`Unsupported media type ${headers['content-type'] ?? '(none)'}: expected application/json.`);
    }
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch (err) {
      throw new Fault(`An error occurred when deserializing the json body of a request: ${err.message}.`);
    }
    const problem = spec.validate(parameter.schema, body);
    if (problem !== null)
      throw new Fault(`An error occurred when deserializing the json body of a request: ${problem}.`);
    for (const [name, value] of Object.entries(pathParams)) {
      if (name in body && body[name] !== value) {
        throw new Fault(`The id from the path [${value}] does not match the id from the body [${body[name]}]!`);
      }
    }
  }

  const phase = spec.phaseOf(method, template, operation);
  if (phase === 'pre-boot' && vm.state !== 'Not started') {
    throw new Fault('The requested operation is not supported after starting the microVM.');
  }
  if (phase === 'post-boot' && vm.state === 'Not started') {
    throw new Fault('The requested operation is not supported before starting the microVM.');
  }

  const key = `${method} ${template}`;
  if (method === 'GET') {
    const getter = getters[template];
    if (getter === undefined) throw new Fault(`The test double does not implement ${key}.`);
    const payload = getter();
    const schema = spec.responseSchema(operation, 200);
    const problem = schema === null ? null : spec.validate(schema, payload, 'response');
    if (problem !== null) throw new Error(`the double's own ${key} response breaks the spec: ${problem}`);
    return { status: 200, payload };
  }
  const apply = semantics[key];
  if (apply === undefined) {
    vm.other.set(key, body);
    return { status: 204, payload: undefined, after: undefined };
  }
  return { status: 204, payload: undefined, after: await apply(body) };
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const raw = Buffer.concat(chunks);
    let parsed = null;
    try {
      parsed = raw.length > 0 ? JSON.parse(raw.toString('utf8')) : null;
    } catch {
      parsed = raw.toString('utf8');
    }
    const entry = { method: req.method, path: req.url, body: parsed, state: vm.state };
    handle(req.method ?? '', req.url ?? '', raw, req.headers).then(
      ({ status, payload, after }) => {
        record({ ...entry, status });
        const text = payload === undefined ? '' : JSON.stringify(payload);
        res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
        res.end(text, () => {
          if (typeof after === 'function') after();
        });
      },
      (err) => {
        const status = err instanceof Fault ? 400 : 500;
        const fault = err instanceof Error ? err.message : String(err);
        record({ ...entry, status, fault_message: fault });
        const text = JSON.stringify({ fault_message: fault });
        res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
        res.end(text);
      },
    );
  });
});

server.on('error', (err) => fail(`Failed to open the API socket at ${args.apiSock}: ${err.message}`));
server.listen(args.apiSock);
