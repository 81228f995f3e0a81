# Shared by up.sh, run.sh, down.sh, pair-up.sh and pair-down.sh (sourced, not run).
#
# A sandbox NAME is:
#   - network namespace NAME (ip netns): libvirtd, its bridges, dnsmasq and
#     every QEMU live there, so VM traffic never leaves it;
#   - a private mount namespace around libvirtd and virtlogd whose /dev is a
#     tmpfs copy of /dev without kvm (so libvirt never probes KVM) and whose
#     /etc/libvirt, /var/lib/libvirt and /var/log/libvirt are bound from
#     $SB_STATE (qemu.conf with namespaces = [], no autostart, per-sandbox
#     state and logs);
#   - its own /run/libvirt (bound from $SB_STATE/run inside that mount
#     namespace), so several sandboxes run at once. Commands enter both
#     namespaces through run.sh, where "virsh -c qemu:///system" and lago's
#     default libvirt URL reach this sandbox's libvirtd; from outside, the
#     socket is $SB_STATE/run/libvirt-sock (SB_URI_OUTSIDE).

SB_NAME=${1:-lago-sb}
case "$SB_NAME" in
  "" | *[!A-Za-z0-9_.-]* | .*) echo "sandbox: bad name '$SB_NAME'" >&2; exit 2 ;;
esac
SB_ROOT=/run/lago-sandbox
SB_STATE=$SB_ROOT/$SB_NAME
SB_URI=qemu:///system
SB_URI_OUTSIDE="qemu:///system?socket=$SB_STATE/run/libvirt-sock"

sb_say() { echo "sandbox $SB_NAME: $*" >&2; }
sb_die() { echo "sandbox $SB_NAME: error: $*" >&2; exit 1; }

sb_require_root() {
  [ "$(id -u)" = 0 ] || sb_die "must run as root"
}

sb_netns_exists() {
  [ -e "/run/netns/$SB_NAME" ]
}

# prints the pid stored in FILE if that process is alive
sb_pid_alive() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

sb_virsh_ok() {
  timeout 5 virsh -q -c "$SB_URI_OUTSIDE" version >/dev/null 2>&1
}

# runs CMD inside the sandbox: libvirtd's mount namespace (its /run/libvirt,
# its /dev without kvm) and network namespace NAME
sb_enter() {
  local pid
  pid=$(sb_pid_alive "$SB_STATE/libvirtd.pid") || sb_die "libvirtd is not running (run scripts/sandbox/up.sh $SB_NAME)"
  nsenter --mount="/proc/$pid/ns/mnt" --net="/run/netns/$SB_NAME" --wd="$PWD" -- \
    env LIBVIRT_DEFAULT_URI="$SB_URI" LAGO_SANDBOX="$SB_NAME" \
    LAGO_SANDBOX_NETNS="$SB_NAME" LAGO_SANDBOX_STATE="$SB_STATE" "$@"
}

sb_running() {
  sb_netns_exists && sb_pid_alive "$SB_STATE/libvirtd.pid" >/dev/null && sb_virsh_ok
}

sb_print_env() {
  cat <<EOF
export LAGO_SANDBOX=$SB_NAME
export LAGO_SANDBOX_NETNS=$SB_NAME
export LAGO_SANDBOX_STATE=$SB_STATE
export LIBVIRT_DEFAULT_URI='$SB_URI_OUTSIDE'
EOF
}

# ---- sandbox pairs (pair-up.sh, pair-down.sh) ---------------------------------
# Two sandboxes A and B joined by a veth pair, B reachable from A over SSH
# (see pair-up.sh for the addresses). The device names are constants: a
# sandbox belongs to at most one pair and each pair has its own two network
# namespaces, so pairs of different names never collide.
SB_PAIR_A_DEV=lago-pa # veth end in netns A
SB_PAIR_B_DEV=lago-pb # veth end in netns B
# under $SB_STATE: "A B" in both sandboxes of pair A+B
SB_PAIR_MARK=pair
# under B's $SB_STATE: B's sshd (config, host key, authorized_keys, pid, log)
SB_PAIR_SSHD=sshd
# under A's $SB_STATE: bound onto /root/.ssh in A's libvirtd mount namespace
SB_PAIR_DOT_SSH=dot-ssh
SB_COMMON=${BASH_SOURCE[0]}

# prints the pid of pair host B's sshd (B's $SB_STATE is $1) if it runs; a
# zombie does not count (daemons are reaped late by this machine's pid 1)
sb_pair_sshd_pid() {
  local pid state
  pid=$(sb_pid_alive "$1/$SB_PAIR_SSHD/sshd.pid") || return 1
  state=$(awk '/^State:/ { print $2 }' "/proc/$pid/status" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ] &&
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = sshd ] && echo "$pid"
}

# runs CMD in a subshell with this file sourced for sandbox NAME (SB_NAME,
# SB_STATE, sb_enter, ... of that sandbox): the pair scripts handle two
sb_as() {
  (
    # shellcheck source=common.sh
    . "$SB_COMMON" "$1"
    shift
    "$@"
  )
}
