import type { RpcServer } from '../rpc/server';
import type { AuditLog } from '../store/auditLog';

/** `audit.list`: the audit log, paged, for any member of the socket's group (the log holds no secret). */
export function registerAuditHandlers(server: RpcServer, audit: AuditLog): void {
  server.register('audit.list', (params) => audit.list(params));
}
