#!/bin/sh
# Test double for Firecracker's `jailer` (it ships only in the GitHub release, which test machines cannot
# download). jailer.mjs checks and prepares everything the real jailer does before its exec (arguments,
# canonical paths, the chroot at <chroot-base>/<exec-file-name>/<id>/root with a copy of the exec file, cgroups,
# jail folders and device nodes), refusing what the real one refuses; this script then does what the process
# itself does, following src/jailer/src/env.rs Env::run of firecracker-microvm/firecracker:
#   --daemonize   fork, the parent exits 0; the child calls setsid() and forks again, the middle one exits; the
#                 grandchild points stdio at /dev/null (the double fork of Firecracker >= 1.6, commit da92bf6d4)
#   the pid file  <chroot>/<exec-file-name>.pid, created exclusively (O_EXCL) holding the pid, no newline:
#                 without --new-pid-ns the process that then execs Firecracker writes its own pid, so with
#                 --daemonize it is the grandchild's, never the jailer's
#   --new-pid-ns  clone(CLONE_NEWPID); the child (pid 1 inside) execs Firecracker, the file holds its host pid
#                 and the parent exits 0 (here the child writes it, and its parent waits only for that)
#   the exec      into the chroot, as uid/gid, without the caller's environment: chroot(2) and pivot_root are
#                 replaced by the working directory (FIREDECK_DOUBLE_CHROOT=1 tells the Firecracker double to
#                 resolve every path below it); netns by nsenter, the uid/gid drop by setpriv, rlimits by prlimit.
# Run it through a wrapper that sets FIREDECK_DOUBLE_NODE (the node binary) and may put the double's own flags
# (--double-proc-mounts FILE, --double-version X.Y.Z) before the jailer's arguments.
set -u
here=$(dirname "$0")
node=${FIREDECK_DOUBLE_NODE:-node}

# Internal re-entry points of the forks below (their names cannot clash with the jailer's own arguments).
case "${1:-}" in
  --double-grandchild)
    shift
    # The second fork: the middle process exits, the grandchild carries on (not a session leader).
    /bin/sh "$0" --double-launch "$@" &
    exit 0
    ;;
  --double-launch)
    shift
    cd "$JAIL_ROOT" || exit 1
    if [ "$JAIL_NEW_PID_NS" = 1 ]; then
      ready=$(mktemp -u "${TMPDIR:-/tmp}/jailer-double-XXXXXX") || exit 1
      mkfifo -m 0600 "$ready" || exit 1
      # The child reads its host pid from /proc/self/stat (the host's /proc), writes the pid file, says so, execs.
      unshare --pid --fork /bin/sh -c '
        read -r pid _ </proc/self/stat
        set -C
        printf %s "$pid" >"$1" || { echo "Failed to open file $1: File exists (os error 17)" >&2; exit 1; }
        echo ready >&9
        exec 9>&-
        shift
        exec "$@"' sh "$JAIL_PID_FILE" "$@" 9>"$ready" &
      read -r _ <"$ready"
      status=$?
      rm -f "$ready"
      exit $status
    fi
    exec /bin/sh -c '
      set -C
      printf %s "$$" >"$1" || { echo "Failed to open file $1: File exists (os error 17)" >&2; exit 1; }
      shift
      exec "$@"' sh "$JAIL_PID_FILE" "$@"
    ;;
esac

plan=$("$node" "$here/jailer.mjs" --double-shell-pid "$$" "$@") || exit $?
# jailer.mjs prints shell: JAIL_* assignments, then `set -- <command>` (every word single-quoted); or, for
# --version and --help, what to print and `exit 0`.
eval "$plan"
export JAIL_ROOT JAIL_PID_FILE JAIL_NEW_PID_NS
if [ "$JAIL_DAEMONIZE" = 1 ]; then
  # The first fork: setsid -f forks, and the child becomes a session leader; this process exits 0 at once.
  setsid -f /bin/sh "$0" --double-grandchild "$@" </dev/null >/dev/null 2>&1
  exit 0
fi
exec /bin/sh "$0" --double-launch "$@"
