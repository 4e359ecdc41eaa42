import { FiredeckError } from '../../../src/shared/errors';

/** One operation per VM at a time: a second one gets `conflict` naming the one in progress. */
export class VmLocks {
  private readonly held = new Map<string, string>();

  isHeld(id: string): boolean {
    return this.held.has(id);
  }

  claim(id: string, operation: string): void {
    const current = this.held.get(id);
    if (current !== undefined) {
      throw new FiredeckError('conflict', `VM ${id} is busy (${current} in progress)`, {
        hint: 'Wait for the running operation to finish, then retry.',
        details: { operation: current },
      });
    }
    this.held.set(id, operation);
  }

  release(id: string): void {
    this.held.delete(id);
  }
}
