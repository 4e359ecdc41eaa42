import fs from 'node:fs';
import path from 'node:path';
import { openDb } from '../../store/db';
import { OfflineDiskWriter } from '../offlineDisk';
import { Secret } from '../secret';
import { CredentialVault } from '../vault';
import { loadOrCreateKeyFile } from '../vaultKey';

// The child process of the race and crash tests (bundled by childProcess.ts). It prints what it reaches on stdout,
// one line each, so the parent can kill it at a known point or at a random one. Commands:
//   key <file>                     print `ready`, wait for a line on stdin, then load or create the key file; print `key <id>`
//   rotate <stateDir> <step> <n>   open the vault and rotate its key again and again; at the n-th rotation's
//                                  <step> (or never, with `-`) die by SIGKILL at once
//   offline-write <spec.json>      write the files the spec names into its image (content from files the spec
//                                  names, so no secret is in this child's argv), printing `phase <name>` at each
//                                  phase; die by SIGKILL at the spec's `killAt` phase, if any

function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

function die(): never {
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable');
}

function waitForGo(): Promise<void> {
  print('ready');
  return new Promise((resolve) => process.stdin.once('data', () => resolve()));
}

async function main(argv: string[]): Promise<void> {
  const [command, ...args] = argv;
  if (command === 'key') {
    await waitForGo();
    const { key, created } = loadOrCreateKeyFile(args[0]!);
    print(`key ${key.id} ${created ? 'created' : 'read'}`);
    return;
  }
  if (command === 'rotate') {
    const [stateDir, killStep, killRound] = args as [string, string, string];
    const db = openDb(path.join(stateDir, 'firedeck.db'));
    const vault = CredentialVault.open({
      db,
      key: { kind: 'file', path: path.join(stateDir, 'vault.key'), create: true },
    });
    print(`open ${vault.keyId}`);
    for (let round = 1; ; round++) {
      vault.rotateKey({
        onStep: (step) => {
          print(`step ${round} ${step}`);
          if (step === killStep && round === Number(killRound)) die();
        },
      });
      print(`rotated ${round} ${vault.keyId}`);
    }
  }
  if (command === 'offline-write') {
    const spec = JSON.parse(fs.readFileSync(args[0]!, 'utf8')) as {
      image: string;
      stagingDir: string;
      killAt?: string;
      files: { path: string; contentFile: string; uid: number; gid: number }[];
    };
    const writer = new OfflineDiskWriter({
      stagingDir: spec.stagingDir,
      onPhase: (phase) => {
        print(`phase ${phase}`);
        if (phase === spec.killAt) die();
      },
    });
    print('phase start');
    const result = await writer.write({
      image: spec.image,
      files: spec.files.map((f) => ({
        path: f.path,
        content: Secret.from(fs.readFileSync(f.contentFile)),
        uid: f.uid,
        gid: f.gid,
      })),
      vmStopped: () => true,
    });
    print(`done ${JSON.stringify(result)}`);
    return;
  }
  throw new Error(`unknown command ${command ?? ''}`);
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
