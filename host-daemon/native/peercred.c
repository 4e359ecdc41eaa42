// firedeckd's one native addon: the credentials of a unix socket's peer, as the kernel recorded them when the
// peer connected (getsockopt SO_PEERCRED), so the daemon never has to take a client's word for who it is; and a
// TAP device opened by the (root) daemon (TUNSETIFF), whose descriptor an unprivileged QEMU is handed.
// N-API only: one build loads in any Node of the same CPU. Built by host-daemon/native/build-addon.mjs.
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <node_api.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static napi_value set_number(napi_env env, napi_value object, const char *name, double value) {
  napi_value number;
  if (napi_create_double(env, value, &number) != napi_ok) return NULL;
  if (napi_set_named_property(env, object, name, number) != napi_ok) return NULL;
  return object;
}

// peerCredentials(fd: number): { uid: number, gid: number, pid: number }
static napi_value peer_credentials(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, "EINVAL", "peerCredentials(fd): fd must be a non-negative integer");
    return NULL;
  }
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof cred) {
    char message[160];
    snprintf(message, sizeof message, "getsockopt(%d, SO_PEERCRED): %s", fd, strerror(errno));
    napi_throw_error(env, "ERR_PEERCRED", message);
    return NULL;
  }
  napi_value result;
  if (napi_create_object(env, &result) != napi_ok) return NULL;
  if (!set_number(env, result, "uid", cred.uid) || !set_number(env, result, "gid", cred.gid) ||
      !set_number(env, result, "pid", cred.pid))
    return NULL;
  return result;
}

// openTap(name: string): number — a descriptor attached to the existing (persistent) TAP `name` (IFF_TAP, IFF_NO_PI,
// IFF_VNET_HDR, as QEMU opens one itself), close-on-exec: a child gets it only where it is handed over.
static napi_value open_tap(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  char name[IFNAMSIZ + 1];
  size_t len = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len) != napi_ok || len == 0 ||
      len >= IFNAMSIZ) {
    napi_throw_type_error(env, "EINVAL", "openTap(name): name must be an interface name of 1-15 bytes");
    return NULL;
  }
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    char message[160];
    snprintf(message, sizeof message, "open(/dev/net/tun): %s", strerror(errno));
    napi_throw_error(env, "ERR_TAP", message);
    return NULL;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  memcpy(ifr.ifr_name, name, len);
  if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
    char message[160];
    snprintf(message, sizeof message, "TUNSETIFF %s: %s", name, strerror(errno));
    close(fd);
    napi_throw_error(env, "ERR_TAP", message);
    return NULL;
  }
  // TUNSETIFF makes a new, non-persistent device when none has the name: only the daemon's own TAP will do.
  if (ioctl(fd, TUNGETIFF, &ifr) != 0 || !(ifr.ifr_flags & IFF_PERSIST)) {
    char message[160];
    snprintf(message, sizeof message, "TAP %s does not exist", name);
    close(fd);
    napi_throw_error(env, "ERR_TAP", message);
    return NULL;
  }
  napi_value result;
  if (napi_create_int32(env, fd, &result) != napi_ok) {
    close(fd);
    return NULL;
  }
  return result;
}

static int export_function(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  if (napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn) != napi_ok) return 0;
  return napi_set_named_property(env, exports, name, fn) == napi_ok;
}

NAPI_MODULE_INIT() {
  if (!export_function(env, exports, "peerCredentials", peer_credentials)) return NULL;
  if (!export_function(env, exports, "openTap", open_tap)) return NULL;
  return exports;
}
