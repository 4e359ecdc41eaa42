import fs from 'node:fs';

/** The lines of a colon-separated database such as /etc/group or /etc/passwd, split in fields; none if unreadable. */
function colonRecords(file: string): string[][] {
  try {
    return fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .map((line) => line.split(':'));
  } catch {
    return [];
  }
}

const isId = (field: string | undefined): field is string => field !== undefined && /^\d+$/.test(field);

/** The numeric id of a unix group from /etc/group, or null when the group does not exist. */
export function groupId(name: string, groupFile = '/etc/group'): number | null {
  const record = colonRecords(groupFile).find(([group, , gid]) => group === name && isId(gid));
  return record === undefined ? null : Number(record[2]);
}

/** The uid and primary gid of a unix user from /etc/passwd, or null when the user does not exist. */
export function userIds(name: string, passwdFile = '/etc/passwd'): { uid: number; gid: number } | null {
  const record = colonRecords(passwdFile).find(([user, , uid, gid]) => user === name && isId(uid) && isId(gid));
  return record === undefined ? null : { uid: Number(record[2]), gid: Number(record[3]) };
}

/** The name of a uid from /etc/passwd (its first entry), or null when no entry has that uid. */
export function userName(uid: number, passwdFile = '/etc/passwd'): string | null {
  const record = colonRecords(passwdFile).find(([user, , id]) => user !== undefined && isId(id) && Number(id) === uid);
  return record?.[0] ?? null;
}
