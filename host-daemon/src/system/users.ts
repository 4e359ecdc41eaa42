import fs from 'node:fs';

/** The numeric id of a unix group from /etc/group, or null when the group does not exist. */
export function groupId(name: string, groupFile = '/etc/group'): number | null {
  let text: string;
  try {
    text = fs.readFileSync(groupFile, 'utf8');
  } catch {
    return null;
  }
  for (const line of text.split('\n')) {
    const [group, , gid] = line.split(':');
    if (group === name && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  return null;
}

/** The uid and primary gid of a unix user from /etc/passwd, or null when the user does not exist. */
export function userIds(name: string, passwdFile = '/etc/passwd'): { uid: number; gid: number } | null {
  let text: string;
  try {
    text = fs.readFileSync(passwdFile, 'utf8');
  } catch {
    return null;
  }
  for (const line of text.split('\n')) {
    const [user, , uid, gid] = line.split(':');
    if (user === name && uid !== undefined && gid !== undefined && /^\d+$/.test(uid) && /^\d+$/.test(gid)) {
      return { uid: Number(uid), gid: Number(gid) };
    }
  }
  return null;
}
