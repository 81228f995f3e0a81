#!/usr/bin/env bash
# Brings up a pair of VM sandboxes for multi-host tests: host A (where lago
# runs, its default libvirt) and host B (reached only through libvirt's
# remote protocol, qemu+ssh://root@10.250.7.2/system, and plain SSH).
#   - sandboxes A and B, each from up.sh;
#   - a veth pair between netns A (10.250.7.1/24) and netns B (10.250.7.2/24),
#     MTU 1500 (VXLAN overhead is lago's business, not hidden here);
#   - an sshd for host B in B's libvirtd mount namespace and netns B, on
#     10.250.7.2:22 only, so a command run over SSH sees B's /run/libvirt and
#     B's network devices; its config, host key, authorized_keys, pid file and
#     log are in /run/lago-sandbox/B/sshd;
#   - root's SSH identity on host A: key, known_hosts (B's host key) and
#     config in /run/lago-sandbox/A/dot-ssh, bound onto /root/.ssh inside A's
#     libvirtd mount namespace only, so that in run.sh A both
#     "ssh root@10.250.7.2" and "virsh -c qemu+ssh://root@10.250.7.2/system"
#     work with no options;
#   - on host B, empty tmpfs over /work, /tmp, /root, /var/lib/lago, /var/tmp
#     and /run/lago-sandbox (but B's own state), so B (its sshd, libvirtd and
#     QEMU) shares no file with A: what lago needs on B, it must send there.
# No qemu+tcp:// listener: up.sh starts libvirtd without --listen.
#
# Usage: scripts/sandbox/pair-up.sh A B
#   Idempotent: on a running pair it only prints the environment.
#   Prints, on stdout, shell lines for the caller: eval "$(pair-up.sh A B)"
#   (up.sh's lines for A, then LAGO_PAIR_*). Run lago in A with
#   scripts/sandbox/run.sh A ...; remove the pair with pair-down.sh A B.
#   On failure it removes what it made (pair-down.sh A B) and exits non-zero.
set -euo pipefail
A_ADDR=10.250.7.1
B_ADDR=10.250.7.2
PREFIX=24
MTU=1500

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -eq 2 ] || { echo "usage: $0 A B" >&2; exit 2; }
A=$1 B=$2
# shellcheck source=common.sh
. "$HERE/common.sh" "$A"
sb_as "$B" true # checks B's name
[ "$A" != "$B" ] || { echo "pair: A and B must differ" >&2; exit 2; }
A_STATE=$SB_ROOT/$A B_STATE=$SB_ROOT/$B
SSHD_DIR=$B_STATE/$SB_PAIR_SSHD
DOT_SSH=$A_STATE/$SB_PAIR_DOT_SSH
B_URL="qemu+ssh://root@$B_ADDR/system"

pair_say() { echo "pair $A+$B: $*" >&2; }
pair_die() { echo "pair $A+$B: error: $*" >&2; exit 1; }

sb_require_root
for tool in ip nsenter findmnt ssh ssh-keygen /usr/sbin/sshd virsh; do
  command -v "$tool" >/dev/null || pair_die "$tool not found: run scripts/install-deps.sh"
done
cd /

# a sandbox belongs to one pair at most
for st in "$A_STATE" "$B_STATE"; do
  mark=$(cat "$st/$SB_PAIR_MARK" 2>/dev/null) || continue
  [ "$mark" = "$A $B" ] ||
    pair_die "${st##*/} already belongs to pair '$mark' (run scripts/sandbox/pair-down.sh $mark)"
done

print_env() {
  sb_as "$A" sb_print_env
  echo "export LAGO_PAIR_A=$A LAGO_PAIR_B=$B LAGO_PAIR_A_ADDR=$A_ADDR LAGO_PAIR_B_ADDR=$B_ADDR LAGO_PAIR_B_URL=$B_URL LAGO_PAIR_SSH_DIR=$DOT_SSH"
}

# the pid of B's sshd, if it runs (and is an sshd in netns B)
sshd_pid() {
  local pid
  pid=$(sb_pair_sshd_pid "$B_STATE") &&
    [ "$(ip netns identify "$pid" 2>/dev/null)" = "$B" ] && echo "$pid"
}

pair_running() {
  local apid
  [ "$(cat "$A_STATE/$SB_PAIR_MARK" 2>/dev/null)" = "$A $B" ] &&
    [ "$(cat "$B_STATE/$SB_PAIR_MARK" 2>/dev/null)" = "$A $B" ] &&
    sb_as "$A" sb_running && sb_as "$B" sb_running &&
    ip -n "$A" link show "$SB_PAIR_A_DEV" >/dev/null 2>&1 &&
    ip -n "$B" link show "$SB_PAIR_B_DEV" >/dev/null 2>&1 &&
    sshd_pid >/dev/null &&
    apid=$(sb_pid_alive "$A_STATE/libvirtd.pid") &&
    findmnt -N "$apid" -n /root/.ssh >/dev/null
}

if pair_running; then
  pair_say "already up"
  print_env
  exit 0
fi

# leftovers of a half-up pair, or sandboxes A or B up on their own (B must be
# fresh: its hidden view is made before anything runs in it)
if [ -e "/run/netns/$A" ] || [ -e "/run/netns/$B" ] || [ -d "$A_STATE" ] || [ -d "$B_STATE" ]; then
  pair_say "removing sandboxes $A and $B first (half up, or not a pair)"
  "$HERE/pair-down.sh" "$A" "$B" >/dev/null
fi

t0=$(date +%s.%N)
done_ok=
on_exit() {
  local rc=$?
  [ -z "$done_ok" ] || return 0
  pair_say "failed (exit $rc); removing the pair"
  [ ! -f "$SSHD_DIR/sshd.log" ] || tail -n 20 "$SSHD_DIR/sshd.log" >&2
  "$HERE/pair-down.sh" "$A" "$B" >/dev/null 2>&1 || true
  exit 1
}
trap on_exit EXIT

# ---- the two sandboxes -------------------------------------------------------
"$HERE/up.sh" "$A" >/dev/null
"$HERE/up.sh" "$B" >/dev/null
echo "$A $B" >"$A_STATE/$SB_PAIR_MARK"
echo "$A $B" >"$B_STATE/$SB_PAIR_MARK"

# ---- host B's view: none of A's files ------------------------------------------
# In B's libvirtd mount namespace (where its QEMU and, below, its sshd run):
# empty tmpfs over the places where A keeps lago's files, and over
# /run/lago-sandbox but for B's own state (bound aside and moved back).
# Creates nothing on the real file system but /run/sshd (sshd's fixed,
# empty privilege separation directory; like up.sh's /run/libvirt mount point).
# shellcheck disable=SC2016 # expanded by the inner shell
sb_as "$B" sb_enter sh -euc '
  b=$1 b_state=$2
  for d in /work /tmp /root /var/lib/lago /var/tmp; do
    [ -d "$d" ] || continue
    case $d in /tmp | /var/tmp) mode=1777 ;; /root) mode=0700 ;; *) mode=0755 ;; esac
    mount -t tmpfs -o "mode=$mode,nosuid,nodev" lago-pair-hidden "$d"
  done
  keep=/tmp/.lago-pair-keep
  mkdir "$keep"
  mount --bind "$b_state" "$keep"
  mount -t tmpfs -o mode=0755,nosuid,nodev lago-pair-hidden /run/lago-sandbox
  mkdir "/run/lago-sandbox/$b"
  mount --move "$keep" "/run/lago-sandbox/$b"
  rmdir "$keep"
  mkdir -p /var/lib/libvirt/images
  mkdir -p -m 0755 /run/sshd
' sh "$B" "$B_STATE"

# ---- the link ------------------------------------------------------------------
ip -n "$A" link add "$SB_PAIR_A_DEV" mtu "$MTU" type veth peer name "$SB_PAIR_B_DEV" netns "$B"
ip -n "$A" addr add "$A_ADDR/$PREFIX" dev "$SB_PAIR_A_DEV"
ip -n "$B" addr add "$B_ADDR/$PREFIX" dev "$SB_PAIR_B_DEV"
ip -n "$B" link set "$SB_PAIR_B_DEV" mtu "$MTU" up
ip -n "$A" link set "$SB_PAIR_A_DEV" up

# ---- keys: B's host key, A's root identity ------------------------------------
mkdir -m 0700 "$SSHD_DIR" "$DOT_SSH"
ssh-keygen -q -t ed25519 -N '' -C "lago-pair host $B" -f "$SSHD_DIR/ssh_host_ed25519_key"
ssh-keygen -q -t ed25519 -N '' -C "root@$A (lago pair)" -f "$DOT_SSH/id_ed25519"
chmod 0600 "$SSHD_DIR/ssh_host_ed25519_key" "$DOT_SSH/id_ed25519"
install -m 0600 "$DOT_SSH/id_ed25519.pub" "$SSHD_DIR/authorized_keys"
read -r kt kb _ <"$SSHD_DIR/ssh_host_ed25519_key.pub"
echo "$B_ADDR $kt $kb" >"$DOT_SSH/known_hosts"
cat >"$DOT_SSH/config" <<EOF
# lago sandbox pair $A+$B: root on host $A -> host $B (scripts/sandbox/pair-up.sh)
Host $B_ADDR
  User root
  IdentityFile $DOT_SSH/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $DOT_SSH/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  UpdateHostKeys no
  BatchMode yes
  GSSAPIAuthentication no
  ConnectTimeout 10
EOF
chmod 0600 "$DOT_SSH/config" "$DOT_SSH/known_hosts"

# ---- B's sshd ------------------------------------------------------------------
cat >"$SSHD_DIR/sshd_config" <<EOF
# lago sandbox pair $A+$B: host $B's sshd (scripts/sandbox/pair-up.sh)
ListenAddress $B_ADDR:22
AddressFamily inet
HostKey $SSHD_DIR/ssh_host_ed25519_key
PidFile $SSHD_DIR/sshd.pid
AuthorizedKeysFile $SSHD_DIR/authorized_keys
AllowUsers root
UsePAM no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
MaxStartups 64:30:128
Subsystem sftp internal-sftp
LogLevel VERBOSE
EOF
sshd_run() { # /usr/sbin/sshd ARGS in B's libvirtd mount namespace and netns B
  sb_as "$B" sb_enter env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin /usr/sbin/sshd \
    -f "$SSHD_DIR/sshd_config" -E "$SSHD_DIR/sshd.log" "$@"
}
sshd_run -t || pair_die "sshd rejects its configuration (see $SSHD_DIR/sshd.log)"
sshd_run # forks; listens, then writes its pid file
for _ in $(seq 1 100); do
  sshd_pid >/dev/null && break
  sleep 0.1
done
sshd_pid >/dev/null || pair_die "sshd of $B did not start"

# ---- A's /root/.ssh ------------------------------------------------------------
apid=$(sb_pid_alive "$A_STATE/libvirtd.pid") || pair_die "libvirtd of $A is gone"
if [ ! -d "/proc/$apid/root/root/.ssh" ]; then
  # A's mount namespace shares /root with the host: this creates it there
  pair_say "creating the mount point /root/.ssh on the host (empty, mode 0700)"
  nsenter --mount="/proc/$apid/ns/mnt" -- mkdir -m 0700 /root/.ssh
fi
nsenter --mount="/proc/$apid/ns/mnt" -- mount --bind "$DOT_SSH" /root/.ssh

# ---- checks, from A, as lago will -------------------------------------------------
sb_as "$A" sb_enter ssh -G "$B_ADDR" 2>/dev/null | grep -qx "identityfile $DOT_SSH/id_ed25519" ||
  pair_die "ssh in $A does not read $DOT_SSH/config"
sb_as "$A" sb_enter timeout 20 ssh "root@$B_ADDR" true ||
  pair_die "ssh root@$B_ADDR from $A fails"
sb_as "$A" sb_enter timeout 30 virsh -q -c "$B_URL" uri >/dev/null ||
  pair_die "virsh -c $B_URL from $A fails"

done_ok=1
pair_say "up in $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $t0}") s (sshd of $B: pid $(sshd_pid))"
print_env
