import crypto from 'node:crypto';
import { FiredeckError } from '../../shared/errors';
import type { ExecChannel } from '../ssh/transport';
import { stderrReason } from './stderrReason';

export interface ChannelSink {
  data(channelId: string, chunk: Buffer): void;
  closed(channelId: string, error: FiredeckError | null): void;
}

/** Flow control: a stream pauses when this much is sent but not acknowledged, and resumes below the low mark. */
export const CHANNEL_HIGH_WATER = 512 * 1024;
export const CHANNEL_LOW_WATER = 128 * 1024;

interface OpenChannel {
  id: string;
  owner: string;
  exec: ExecChannel;
  unacked: number;
  paused: boolean;
}

/**
 * Console, shell and VNC streams on a host's transport. Output is held back (the remote end pauses) while the
 * renderer has not acknowledged enough of it, so a noisy console cannot flood the window.
 */
export class ChannelBroker {
  private readonly channels = new Map<string, OpenChannel>();

  /**
   * Takes over a started command's channel (`label` names it in a failure, e.g. `console exited with code 1`)
   * and returns its id, private to `owner`.
   */
  open(owner: string, exec: ExecChannel, label: string, sink: ChannelSink): string {
    const id = `ch-${crypto.randomBytes(12).toString('hex')}`;
    const ch: OpenChannel = { id, owner, exec, unacked: 0, paused: false };
    this.channels.set(id, ch);
    let stderr = '';
    exec.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-2000);
    });
    exec.stream.on('data', (chunk: Buffer) => {
      ch.unacked += chunk.length;
      sink.data(id, chunk);
      if (!ch.paused && ch.unacked >= CHANNEL_HIGH_WATER) {
        ch.paused = true;
        exec.stream.pause();
      }
    });
    exec.stream.on('error', () => undefined);
    void exec.exited.then((status) => {
      if (!this.channels.delete(id)) return;
      const failed = status.code !== 0 && status.code !== null;
      sink.closed(
        id,
        failed
          ? new FiredeckError('unavailable', stderrReason(stderr) ?? `${label} exited with code ${status.code}`)
          : null,
      );
    });
    return id;
  }

  ack(owner: string, id: string, bytes: number): void {
    const ch = this.get(owner, id);
    ch.unacked = Math.max(0, ch.unacked - bytes);
    if (ch.paused && ch.unacked <= CHANNEL_LOW_WATER) {
      ch.paused = false;
      ch.exec.stream.resume();
    }
  }

  write(owner: string, id: string, data: Buffer): void {
    this.get(owner, id).exec.stream.write(data);
  }

  resize(owner: string, id: string, cols: number, rows: number): void {
    this.get(owner, id).exec.resize(cols, rows);
  }

  close(owner: string, id: string): void {
    const ch = this.get(owner, id);
    ch.exec.close();
  }

  /** Ends every channel of one renderer session (its window closed or its socket dropped). */
  closeOwnedBy(owner: string): void {
    for (const ch of this.channels.values()) if (ch.owner === owner) ch.exec.close();
  }

  closeAll(): void {
    for (const ch of this.channels.values()) ch.exec.close();
  }

  private get(owner: string, id: string): OpenChannel {
    const ch = this.channels.get(id);
    // Another session's channel id is treated as unknown, not as forbidden, so ids cannot be probed.
    if (!ch || ch.owner !== owner) throw new FiredeckError('not_found', `No open channel ${id}`);
    return ch;
  }
}
