import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { FiredeckError } from '../../../src/shared/errors';
import type { DriverName } from '../../../src/shared/protocol/daemon';
import type { VmRecord } from '../store/vmStore';
import { noSpaceError } from '../system/noSpace';
import type { ResolvedImage } from './bootImage';
import { buildConfigDrive, ensureGuestKey, guestConfigFor, type BrowserProxy } from './guestConfig';

const run = promisify(execFile);

export interface VmDisksConfig {
  stateDir: string;
  runDir: string;
  /** `clone`: raw copy with reflink/sparse; `overlay`: qcow2 backed by the golden image (QEMU only). */
  rootfsMode: 'clone' | 'overlay';
  /** Put on every browser VM's config drive, for the `selftest` login. */
  selftest?: { issuer: string; clientId: string };
}

/** Browser VM secrets that go onto its config drive; kept 0600 beside the VM for the services that need them. */
export interface GuestSecrets {
  vncPassword: string;
  agentToken: string;
}

/**
 * A VM's disks and the directories that hold them: `${stateDir}/vms/<id>` (rootfs clone or overlay, config
 * drive, console log, secrets) and `${runDir}/vms/<id>` (hypervisor sockets, the console attach socket).
 */
export class VmDisks {
  /** One key generation for all concurrent creates. */
  private guestKey: Promise<{ privateKeyPath: string; publicKey: string }> | null = null;

  constructor(
    private readonly config: VmDisksConfig,
    /** The proxy browser VMs use, if the operator set one (`proxy.set`); read once per config drive. */
    private readonly browserProxy: () => BrowserProxy | null = () => null,
  ) {}

  stateDir(id: string): string {
    return path.join(this.config.stateDir, 'vms', id);
  }

  runDir(id: string): string {
    return path.join(this.config.runDir, 'vms', id);
  }

  attachSocketPath(id: string): string {
    return path.join(this.runDir(id), 'console.sock');
  }

  consoleLogPath(id: string): string {
    return path.join(this.stateDir(id), 'console.log');
  }

  configDrivePath(id: string): string {
    return path.join(this.stateDir(id), 'config.img');
  }

  guestKeyDir(): string {
    return path.join(this.config.stateDir, 'keys');
  }

  /**
   * `${runDir}/vms/<id>`: QEMU's sockets and the console attach socket, root-only. Members of the daemon's group
   * reach the console through the daemon (`channel.open`), never this socket: it would bypass the daemon.
   */
  makeRunDir(id: string): void {
    const parent = path.join(this.config.runDir, 'vms');
    fs.mkdirSync(parent, { recursive: true });
    fs.chmodSync(parent, 0o755);
    const dir = this.runDir(id);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.chmodSync(dir, 0o700); // also a dir left by an older firedeckd with group access
  }

  removeRunDir(id: string): void {
    fs.rmSync(this.runDir(id), { recursive: true, force: true });
  }

  /** Removes everything of the VM on disk: its state dir (disks included) and its run dir. */
  removeAll(id: string): void {
    fs.rmSync(this.stateDir(id), { recursive: true, force: true });
    this.removeRunDir(id);
  }

  guestSecrets(id: string): GuestSecrets | null {
    try {
      return JSON.parse(fs.readFileSync(path.join(this.stateDir(id), 'secrets.json'), 'utf8')) as GuestSecrets;
    } catch {
      return null;
    }
  }

  rootfsFile(id: string): { path: string; format: 'raw' | 'qcow2' } {
    const dir = this.stateDir(id);
    const qcow = path.join(dir, 'rootfs.qcow2');
    if (fs.existsSync(qcow)) return { path: qcow, format: 'qcow2' };
    return { path: path.join(dir, 'rootfs.raw'), format: 'raw' };
  }

  /**
   * The VM's rootfs (a clone of the golden image, or a qcow2 overlay on it) and its config drive. A full disk is
   * `resource_exhausted` (the create's rollback then removes what was made).
   */
  async prepare(rec: VmRecord, image: ResolvedImage, driver: DriverName): Promise<void> {
    try {
      await this.prepareDisks(rec, image, driver);
    } catch (err) {
      throw (
        noSpaceError(
          err,
          `the disks of VM ${rec.vm.name}`,
          this.config.stateDir,
          "destroying VMs no longer needed and 'firedeckd image gc' give space back",
        ) ?? err
      );
    }
  }

  private async prepareDisks(rec: VmRecord, image: ResolvedImage, driver: DriverName): Promise<void> {
    const { vm } = rec;
    const dir = this.stateDir(vm.id);
    fs.mkdirSync(dir, { recursive: true, mode: 0o750 });
    const imageBytes = fs.statSync(image.rootfsPath).size;
    const wantBytes = Math.max(imageBytes, vm.diskMib * 1024 * 1024);
    const overlay = this.config.rootfsMode === 'overlay' && driver === 'qemu';
    try {
      if (overlay) {
        await run(
          'qemu-img',
          [
            'create',
            '-q',
            '-f',
            'qcow2',
            '-b',
            image.rootfsPath,
            '-F',
            'raw',
            path.join(dir, 'rootfs.qcow2'),
            String(wantBytes),
          ],
          { timeout: 60_000 },
        );
      } else {
        const target = path.join(dir, 'rootfs.raw');
        // Instant on XFS/btrfs (reflink), sparse elsewhere: never a full copy.
        await run('cp', ['--reflink=auto', '--sparse=always', image.rootfsPath, target], { timeout: 600_000 });
        if (wantBytes > imageBytes) fs.truncateSync(target, wantBytes);
      }
    } catch (err) {
      const stderr = (err as { stderr?: string }).stderr?.trim();
      throw new FiredeckError('internal', `Could not clone the rootfs for ${vm.name}: ${stderr || String(err)}`, {
        cause: err,
      });
    }
    let authorizedKeys: string[] = [];
    let secrets: GuestSecrets | undefined;
    if (vm.kind === 'cli') {
      this.guestKey ??= ensureGuestKey(this.guestKeyDir()).catch((err: unknown) => {
        this.guestKey = null;
        throw err;
      });
      authorizedKeys = [(await this.guestKey).publicKey];
    } else {
      secrets = {
        vncPassword: randomBytes(6).toString('base64url'),
        agentToken: randomBytes(24).toString('base64url'),
      };
      fs.writeFileSync(path.join(dir, 'secrets.json'), JSON.stringify(secrets), { mode: 0o600 });
    }
    const proxy = vm.kind === 'browser' ? this.browserProxy() : null;
    await buildConfigDrive(
      this.configDrivePath(vm.id),
      guestConfigFor({
        vmId: vm.id,
        hostname: vm.name,
        kind: vm.kind,
        sessionId: rec.sessionId,
        authorizedKeys,
        ...(secrets ? { secrets } : {}),
        ...(this.config.selftest ? { selftest: this.config.selftest } : {}),
        ...(proxy ? { proxy } : {}),
      }),
    );
  }
}
