import { spawn } from 'node:child_process';
import path from 'node:path';
import type { DaemonRig } from './daemon';
import type { OidcRig } from './oidc';
import { connectRfb } from './rfb';

/** What the desktop helpers need: the daemon whose `firedeckd vnc` they use, and where screenshots go. */
export interface DesktopRig {
  daemon: DaemonRig;
  /** A directory for the screenshots taken along the way. */
  shots: string;
}

/**
 * Logs in on the rig's OpenID provider's page in a browser VM's Firefox, through `firedeckd vnc`, as a person
 * types, and waits for the provider to receive the form. A person whose login was refused (keys lost by a guest
 * starved of CPU) types it again on the page shown anew, up to three times; the rig says what was wrong, never
 * the text. `shot` prefixes the screenshots' names.
 */
export async function typeLoginIntoDesktop(
  rig: DesktopRig & { oidc: OidcRig },
  browserVmId: string,
  shot: string,
): Promise<void> {
  const { daemon, oidc } = rig;
  const child = spawn(daemon.firedeckdCommand, ['vnc', browserVmId], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const refused: string[] = [];
  try {
    const rfb = await connectRfb(
      { input: child.stdout, output: child.stdin },
      { peer: 'firedeckd vnc', timeoutMs: 60_000 },
    );
    for (let attempt = 1; ; attempt++) {
      const submitted = oidc.loginsSubmitted();
      const shown = oidc.loginPagesShown();
      await rfb.screenshot(path.join(rig.shots, `${shot}-login-page-${attempt}.png`));
      await rfb.typeText(oidc.username);
      await rfb.key('Tab');
      await rfb.typeText(oidc.password);
      await rfb.key('Return');
      const outcome = await oidc.waitForLoginSubmitted(180_000, submitted).catch(async (err: unknown) => {
        await rfb.screenshot(path.join(rig.shots, `${shot}-not-submitted-${attempt}.png`)).catch(() => undefined);
        throw err;
      });
      if (outcome.ok) break;
      refused.push(JSON.stringify(outcome));
      if (attempt === 3)
        throw new Error(`the provider refused the login typed ${attempt} times: ${refused.join('; ')}`);
      // The provider shows its page again (empty fields, the username focused): type it again once it is shown.
      await oidc.waitForLoginShown(300_000, shown);
    }
    await rfb.close();
  } catch (err) {
    throw new Error(`${String(err)}; refused before: [${refused.join('; ')}]; firedeckd vnc said: ${stderr}`);
  } finally {
    child.kill();
  }
  if (refused.length > 0) process.stderr.write(`${shot}: login typed again after ${refused.join('; ')}\n`);
}

/** A screenshot of a browser VM's desktop (through `firedeckd vnc`), saved as `name` under the rig's shots. */
export async function desktopScreenshot(rig: DesktopRig, browserVmId: string, name: string): Promise<string> {
  const child = spawn(rig.daemon.firedeckdCommand, ['vnc', browserVmId], { stdio: ['pipe', 'pipe', 'ignore'] });
  try {
    const rfb = await connectRfb(
      { input: child.stdout, output: child.stdin },
      { peer: 'firedeckd vnc', timeoutMs: 60_000 },
    );
    const file = path.join(rig.shots, name);
    await rfb.screenshot(file);
    await rfb.close();
    return file;
  } finally {
    child.kill();
  }
}
