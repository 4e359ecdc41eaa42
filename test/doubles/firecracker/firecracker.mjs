#!/usr/bin/env node
// Test double for `firecracker` (the real binary ships only as a GitHub release, which test machines cannot
// download). It serves the API on the unix socket and holds every request to the contract,
// host-daemon/src/vms/firecracker/firecracker.yaml: method and path, body against the spec's definitions,
// and the pre-boot/post-boot order. Rejections are 400 `{fault_message}` as Firecracker sends them. Where a
// behaviour is Firecracker's own rather than the spec's, the source file it follows is named beside it
// (paths in the firecracker-microvm/firecracker repository).
//
// Command line: the real binary's arguments, parsed as src/utils/src/arg_parser.rs does (argParser.mjs);
// arguments it does not act on are accepted and ignored. Its own arguments, for tests, come before those (a
// wrapper script puts them there, so that they survive the jailer's exec):
//   --double-log PATH            JSON lines, one per request (default: <api-sock>.calls.jsonl)
//   --double-spec PATH           the Swagger file (default: the in-repo copy beside the driver)
//   --double-version X.Y.Z       answer as this release, with its API: no PUT /serial before 1.14, no serial
//                                rate limiter before 1.16, the serial file opened write-only before 1.14.2
//   --double-ignore-ctrl-alt-del answer SendCtrlAltDel but keep running (a guest without i8042/atkbd)
//   --double-guest-output BYTES  the guest writes this much to its serial port right after booting, as fast as
//                                it can (what the port drops is lost), then `FIREDECK-READY flood-done` on a
//                                line of its own, sent again until it gets through whole
//
// Under the jailer double (jailer.sh) the process runs with its working directory at the jail's root and
// FIREDECK_DOUBLE_CHROOT=1 in place of a real chroot(2): every path it is given resolves below that
// directory, opened as the unprivileged uid the jailer switched to, so ownership and permissions decide as
// they would in the jail.
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ArgParseError, instanceIdProblem, parseArgs, versionAtLeast } from './argParser.mjs';
import { FirecrackerSpec, MAX_PAYLOAD_BYTES } from './spec.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const defaultSpec = path.resolve(here, '../../../host-daemon/src/vms/firecracker/firecracker.yaml');

// src/firecracker/src/main.rs: the arguments of `firecracker` and their defaults.
const takesValue = { takesValue: true };
const ARGUMENTS = {
  'api-sock': { takesValue: true, default: '/run/firecracker.socket' },
  id: { takesValue: true, default: 'anonymous-instance' },
  'seccomp-filter': { takesValue: true, forbids: ['no-seccomp'] },
  'no-seccomp': { forbids: ['seccomp-filter'] },
  'start-time-us': takesValue,
  'start-time-cpu-us': takesValue,
  'parent-cpu-time-us': takesValue,
  'config-file': takesValue,
  'no-api': {},
  'log-path': takesValue,
  level: takesValue,
  module: takesValue,
  'show-level': {},
  'show-log-origin': {},
  'metrics-path': takesValue,
  'boot-timer': {},
  'snapshot-version': {},
  'describe-snapshot': takesValue,
  'http-api-max-payload-size': takesValue,
  'mmds-size-limit': takesValue,
  'enable-pci': {},
};
// The double's own flags come first (a wrapper puts them there) and are taken off before the real parse.
const DOUBLE_FLAGS = {
  'double-log': takesValue,
  'double-spec': takesValue,
  'double-version': takesValue,
  'double-ignore-ctrl-alt-del': {},
  'double-guest-output': takesValue,
};
const NOT_IMPLEMENTED = ['config-file', 'no-api', 'describe-snapshot', 'snapshot-version', 'metrics-path'];

// src/vmm/src/lib.rs FcExitCode.
const EXIT_GENERIC = 1;
const EXIT_ARG_PARSING = 153;

function fail(message, code = EXIT_GENERIC) {
  process.stderr.write(`Error: ${message}\n`);
  process.exit(code);
}

const argv = process.argv.slice(2);
const own = new Map();
while (argv[0]?.startsWith('--double-')) {
  const name = argv.shift().slice(2);
  const flag = DOUBLE_FLAGS[name];
  if (flag === undefined) fail(`unknown flag of the double: --${name}`);
  own.set(name, flag.takesValue ? argv.shift() : true);
}
let parsed;
try {
  parsed = parseArgs(argv, ARGUMENTS);
} catch (err) {
  if (!(err instanceof ArgParseError)) throw err;
  fail(`Arguments parsing error: ${err.message} \n\nFor more information try --help.`, EXIT_ARG_PARSING);
}
const value = (name) => (name.startsWith('double-') ? own.get(name) : parsed.values.get(name));
const spec = new FirecrackerSpec(value('double-spec') ?? defaultSpec);
const version = value('double-version') ?? spec.version;
if (parsed.help) {
  process.stdout.write(`Firecracker v${version}\n\n(test double: see test/doubles/firecracker)\n`);
  process.exit(0);
}
if (parsed.version) {
  // main.rs: println!("Firecracker v{}\n", FIRECRACKER_VERSION)
  process.stdout.write(`Firecracker v${version}\n\n`);
  process.exit(0);
}
for (const name of NOT_IMPLEMENTED) {
  if (parsed.values.has(name)) fail(`the Firecracker test double does not implement --${name}`);
}
const args = {
  apiSock: value('api-sock'),
  id: value('id'),
  log: value('double-log') ?? null,
  ignoreCad: own.has('double-ignore-ctrl-alt-del'),
  guestOutput: Number(value('double-guest-output') ?? 0),
};
const idProblem = instanceIdProblem(args.id);
if (idProblem !== null) fail(`Invalid instance ID: ${idProblem}`);
const jailed = process.env.FIREDECK_DOUBLE_CHROOT === '1';
const features = {
  serial: versionAtLeast(version, 1, 14, 0),
  serialRateLimiter: versionAtLeast(version, 1, 16, 0),
  // src/vmm/src/utils/mod.rs: open_file_write_nonblock (1.14.0, 1.14.1) became open_file_nonblock, which also
  // reads, in 1.14.2 (CHANGELOG #5698: no ENXIO on a FIFO without a reader).
  serialOpenedReadWrite: versionAtLeast(version, 1, 14, 2),
};

/** A path as the process sees it: under the jail's root (its working directory) when jailed. */
function resolve(file) {
  if (!jailed) return file;
  return path.isAbsolute(file) ? `.${file}` : file;
}

// Firecracker binds without unlinking first: a stale socket file is the caller's to remove.
if (fs.existsSync(resolve(args.apiSock))) fail(`Failed to open the API socket at ${args.apiSock}: Address in use`);

const logPath = resolve(args.log ?? `${args.apiSock}.calls.jsonl`);
let seq = 0;

const vm = {
  state: 'Not started',
  bootSource: null,
  drives: new Map(),
  machine: { vcpu_count: 1, mem_size_mib: 128, smt: false, track_dirty_pages: false, huge_pages: 'None' },
  nets: new Map(),
  /** iface_id → the helper process holding the TAP open (Firecracker keeps the tap fd for the VM's life). */
  taps: new Map(),
  serial: null,
  serialOut: null,
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
  async 'PUT /network-interfaces/{iface_id}'(body) {
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
    // The device is built, and its TAP opened, at PUT time (src/vmm/src/vmm_config/net.rs).
    const tap = await openTap(body.host_dev_name);
    vm.taps.get(body.iface_id)?.kill('SIGKILL');
    vm.taps.set(body.iface_id, tap);
    vm.nets.set(body.iface_id, body);
  },
  'PUT /serial'(body) {
    if (!features.serial) throw new Fault(`Invalid request method and/or path: PUT /serial.`);
    if (body.rate_limiter !== undefined && !features.serialRateLimiter) {
      throw new Fault(
        'An error occurred when deserializing the json body of a request: unknown field `rate_limiter`, expected `serial_out_path`.',
      );
    }
    // Only recorded here: the file is opened when the VM is built (src/vmm/src/rpc_interface.rs ConfigureSerial).
    vm.serial = body;
  },
  async 'PUT /vsock'(body) {
    if (vm.vsockServer !== null) vm.vsockServer.close();
    const server = net.createServer((conn) => conn.destroy());
    await new Promise((listening, reject) => {
      server.once('error', (err) => reject(new Fault(`Cannot create backend for vsock device: ${err.message}`)));
      server.listen(resolve(body.uds_path), listening);
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
    fs.closeSync(fs.openSync(resolve(file), mode));
  } catch (err) {
    throw new Fault(`${what}: ${osError(err)}`);
  }
}

function osError(err) {
  const codes = { ENOENT: 2, EACCES: 13, EPERM: 1, ENXIO: 6, EISDIR: 21 };
  const text = String(err.message)
    .replace(/^[A-Z]+: /, '')
    .replace(/, \w+ .*$/, '');
  return codes[err.code] === undefined
    ? String(err.message)
    : `${text[0].toUpperCase()}${text.slice(1)} (os error ${codes[err.code]})`;
}

/**
 * Opens a TAP as Firecracker does (src/vmm/src/devices/virtio/net/tap.rs Tap::open_named): /dev/net/tun,
 * then TUNSETIFF with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, as the process's own uid and in its own network
 * namespace, so the kernel decides: an existing TAP another uid owns, or a new one without CAP_NET_ADMIN, is
 * EPERM. Node has no ioctl; a small perl helper holds the fd until this process ends.
 */
function openTap(name) {
  if (Buffer.byteLength(name) >= 16) {
    return Promise.reject(
      new Fault('Could not create the network device: Open tap device failed: Invalid interface name'),
    );
  }
  const script = [
    'use Fcntl;',
    'sysopen(my $fh, $ARGV[0], O_RDWR | O_NONBLOCK) or do { printf "open %d %s\\n", $!, $!; exit 1 };',
    // TUNSETIFF = _IOW('T', 202, int); struct ifreq: a 16-byte name, then the flags.
    'ioctl($fh, 0x400454ca, pack("Z16 s", $ARGV[1], 0x0002 | 0x1000 | 0x4000)) or do { printf "ifreq %d %s\\n", $!, $!; exit 1 };',
    '$| = 1; print "ok\\n"; 1 while sysread(STDIN, my $b, 1);',
  ].join(' ');
  const helper = spawn('perl', ['-e', script, resolve('/dev/net/tun'), name], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolveTap, reject) => {
    let out = '';
    helper.stdout.on('data', (chunk) => {
      out += chunk;
      if (!out.includes('\n')) return;
      const line = out.split('\n')[0];
      if (line === 'ok') {
        resolveTap(helper);
        return;
      }
      // The error as Rust prints an io::Error: its text, then "(os error N)".
      const [what, errno, ...reason] = line.split(' ');
      const text = `${reason.join(' ')} (os error ${errno})`;
      reject(
        new Fault(
          what === 'open'
            ? `Could not create the network device: Open tap device failed: Couldn't open /dev/net/tun: ${text}`
            : `Could not create the network device: Open tap device failed: Error while creating ifreq structure: ${text}. Invalid TUN/TAP Backend provided by ${name}. Check our documentation on setting up the network devices.`,
        ),
      );
    });
    helper.once('error', (err) => reject(new Fault(`the double could not run perl for its TAP: ${err.message}`)));
  });
}

/**
 * The serial port's output, as src/vmm/src/devices/legacy/serial.rs SerialOut writes it: through the optional
 * rate limiter (a token bucket; what it refuses is dropped, src/vmm/src/rate_limiter/mod.rs), then to a
 * non-blocking file. A full pipe (EAGAIN) loses the bytes and the guest never blocks (CHANGELOG 0.24.0).
 */
class SerialOut {
  constructor(fd, bucket) {
    this.fd = fd;
    this.bucket = bucket === undefined ? null : new TokenBucket(bucket);
    this.written = 0;
    this.lost = 0;
    this.limited = 0;
  }

  /** Writes what the port takes now; returns false when bytes were lost (to the rate limiter or a full pipe). */
  write(text) {
    let data = Buffer.from(text);
    let whole = true;
    if (this.bucket !== null) {
      const allowed = this.bucket.take(data.length);
      this.limited += data.length - allowed;
      whole = allowed === data.length;
      data = data.subarray(0, allowed);
    }
    if (this.fd === 'stdout') {
      process.stdout.write(data);
      this.written += data.length;
      return true;
    }
    while (data.length > 0) {
      let n;
      try {
        n = fs.writeSync(this.fd, data);
      } catch (err) {
        if (err.code !== 'EAGAIN' && err.code !== 'EPIPE') throw err;
        this.lost += data.length;
        return false;
      }
      this.written += n;
      data = data.subarray(n);
    }
    return whole;
  }
}

/** TokenBucket of src/vmm/src/rate_limiter/mod.rs, byte by byte as the UART writes: starts full. */
class TokenBucket {
  constructor({ size, refill_time: refillMs, one_time_burst: burst }) {
    this.size = size;
    this.refillMs = refillMs;
    this.burst = burst ?? 0;
    this.budget = size;
    this.last = process.hrtime.bigint();
  }

  take(wanted) {
    const now = process.hrtime.bigint();
    const elapsedMs = Number(now - this.last) / 1e6;
    this.last = now;
    this.budget = Math.min(this.size, this.budget + Math.floor((elapsedMs * this.size) / this.refillMs));
    let granted = Math.min(wanted, this.burst);
    this.burst -= granted;
    const fromBudget = Math.min(wanted - granted, this.budget);
    this.budget -= fromBudget;
    granted += fromBudget;
    return granted;
  }
}

function openSerial() {
  const out = vm.serial?.serial_out_path;
  if (out === undefined) return new SerialOut('stdout', vm.serial?.rate_limiter);
  // src/vmm/src/device_manager/mod.rs setup_serial_device → utils/mod.rs open_file_nonblock.
  const flags =
    (features.serialOpenedReadWrite ? fs.constants.O_RDWR : fs.constants.O_WRONLY) |
    fs.constants.O_NONBLOCK |
    fs.constants.O_CREAT;
  let fd;
  try {
    fd = fs.openSync(resolve(out), flags, 0o644);
  } catch (err) {
    throw new Fault(
      `Start microvm error: Failed to create device manager: Error creating serial device: ${osError(err)}`,
    );
  }
  return new SerialOut(fd, vm.serial?.rate_limiter);
}

function instanceStart() {
  if (vm.state !== 'Not started')
    throw new Fault('The requested operation is not supported after starting the microVM.');
  if (vm.bootSource === null) throw new Fault('Cannot start microvm without kernel configuration.');
  const head = Buffer.alloc(4);
  const fd = fs.openSync(resolve(vm.bootSource.kernel_image_path), 'r');
  fs.readSync(fd, head, 0, 4, 0);
  fs.closeSync(fd);
  if (!head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) {
    throw new Fault(
      'Cannot load kernel due to invalid memory configuration or invalid kernel image: Invalid ELF magic number',
    );
  }
  if (jailed) {
    // The jail's /dev/kvm is the node the jailer made and gave to the jailed uid; a host without KVM (ENXIO,
    // ENODEV) is left alone here, unlike Firecracker, so that the jail's ownership is what gets tested.
    try {
      fs.closeSync(fs.openSync(resolve('/dev/kvm'), 'r+'));
    } catch (err) {
      if (err.code !== 'ENXIO' && err.code !== 'ENODEV')
        throw new Fault(`Start microvm error: Kvm error: ${osError(err)}`);
    }
  }
  vm.serialOut = openSerial();
  vm.state = 'Running';
  const bootArgs = vm.bootSource.boot_args ?? '';
  // The kernel prints only with a console on the port; 8250.nr_uarts=0 leaves the guest without one.
  if (/\b8250\.nr_uarts=0\b/.exec(bootArgs) === null) {
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
    vm.serialOut.write(`${lines.join('\n')}\n`);
    if (args.guestOutput > 0) setImmediate(() => flood(args.guestOutput));
  }
  return undefined;
}

/** A guest that writes `bytes` to its console as fast as it can, then a marker it repeats until it is taken. */
function flood(bytes) {
  let left = bytes;
  let line = 0;
  const step = () => {
    for (let i = 0; i < 64 && left > 0; i++) {
      const text = `guest flood line ${++line} ${'x'.repeat(100)}\n`.slice(0, left);
      vm.serialOut.write(text);
      left -= text.length;
    }
    if (left > 0) {
      setImmediate(step);
      return;
    }
    record({ method: 'GUEST', path: 'serial', body: serialStats(), state: vm.state, status: 0 });
    // A line of its own (the flood's last line may have been cut), sent again until it went through whole.
    const marker = () => {
      if (!vm.serialOut.write('\nFIREDECK-READY flood-done\n')) setTimeout(marker, 5);
    };
    marker();
  };
  step();
}

function serialStats() {
  const out = vm.serialOut;
  return out === null ? null : { written: out.written, lost: out.lost, rate_limited: out.limited };
}

function ctrlAltDel() {
  if (args.ignoreCad) return;
  vm.serialOut?.write('reboot: Restarting system\n');
  // The socket file stays behind, as it does when Firecracker exits.
  process.exit(0);
}

function record(entry) {
  fs.appendFileSync(logPath, `${JSON.stringify({ seq: ++seq, ...entry })}\n`);
}

function describeInstance() {
  return { app_name: 'Firecracker', id: args.id, state: vm.state, vmm_version: version };
}

const getters = {
  '/': describeInstance,
  '/version': () => ({ firecracker_version: version }),
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
server.listen(resolve(args.apiSock));
