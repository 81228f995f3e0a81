#!/usr/bin/env bash
# The installed-package tests (issue 20), run by scripts/test.sh after the
# end-to-end loop; needs root, the embedded template and a built workspace.
#
# 1. Builds the .deb (scripts/package.sh; LAGO_PACKAGE_PROFILE, default `dev`
#    here: the debug build the tests already made), installs it with apt,
#    checks its files, and runs init, start, shell, destroy with the
#    installed /usr/bin/lago from a folder outside the source tree with no
#    LAGO_PLUGIN_PATH (the plugins come from /usr/lib/lago/plugins,
#    `lago plugins` says `packaged`), in sandbox lago-deb.
# 2. In a system-like sandbox (lago-deb-sys: LAGO_SB_SYSTEM=1, QEMU as
#    libvirt-qemu, socket group libvirt 0770), a normal user in groups
#    libvirt and lago runs init, start, shell, destroy in a workdir under
#    their home with the package's default folders; the error when QEMU
#    cannot reach the images (a home of mode 0700) names the file and
#    QEMU's user; a user outside group libvirt gets the socket error.
# 3. Removes, then purges the package; the workdirs stay. (Group `lago`
#    stays, as Debian leaves system groups.)
#
# Prints "test result: ok. N passed; M failed" (scripts/test.sh counts it);
# exits non-zero when a check failed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export PATH="$HOME/.cargo/bin:$PATH"
# the embedded template (scripts/template/build.sh; LAGO_EMBEDDED_REPO as in tests/e2e)
repo=${LAGO_EMBEDDED_REPO:-/var/lib/lago/repos/embedded}/repo.json
[ -f "$repo" ] || { echo "test-package.sh: no template repository $repo (run scripts/template/build.sh)" >&2; exit 1; }

sb=lago-deb
sb_sys=lago-deb-sys
user=lago-deb-user   # in groups libvirt and lago
outsider=lago-deb-out # in neither
passed=0 failed=0
work=""
installed=""
finish() {
  status=$?
  cd "$root"
  [ -z "$work" ] || rm -rf "$work"
  bash scripts/sandbox/down.sh "$sb" >/dev/null 2>&1 || true
  bash scripts/sandbox/down.sh "$sb_sys" >/dev/null 2>&1 || true
  if [ -n "$installed" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq lago >/dev/null 2>&1 || true
  fi
  echo "test result: $([ "$failed" = 0 ] && echo ok || echo FAILED). $passed passed; $failed failed"
  [ "$failed" = 0 ] || status=1
  exit $status
}
trap finish EXIT

ok() { echo "ok: $*"; passed=$((passed + 1)); }
bad() { echo "FAILED: $*" >&2; failed=$((failed + 1)); }
check() { # check NAME CMD...: runs CMD, counts it
  local name=$1
  shift
  if "$@"; then ok "$name"; else bad "$name"; fi
}

# ---- 1. build and install the package ------------------------------------------
deb=$(LAGO_PACKAGE_PROFILE=${LAGO_PACKAGE_PROFILE:-dev} bash scripts/package.sh | tail -n 1)
echo "== package $deb"
dpkg-deb --info "$deb" | grep -E '^ (Package|Version|Architecture|Depends|Recommends):'
# with install-deps.sh's safeguards: the whole package list requested (with
# qemu-utils at qemu-system-x86's version), no recommends (they would bring
# libvirt-daemon-system), no service started while installing
bash scripts/install-deps.sh "./$deb"
installed=1

for f in /usr/bin/lago /usr/bin/lagocli /usr/lib/lago/plugins/liblago_provider_local_libvirt.so \
  /usr/lib/lago/plugins/liblago_provider_ssh.so /usr/lib/lago/plugins/liblago_service_systemd.so \
  /usr/lib/lago/plugins/liblago_service_sysvinit.so /usr/lib/lago/plugins/liblago_out_dot.so \
  /usr/share/man/man1/lago.1.gz /usr/share/bash-completion/completions/lago \
  /usr/share/zsh/vendor-completions/_lago /usr/share/fish/vendor_completions.d/lago.fish \
  /etc/lago/lago.conf /usr/share/doc/lago/install.md /usr/sbin/lago-build-template \
  /usr/share/lago/template/build.sh /usr/share/lago/template/rootfs/etc/init.d/rcS; do
  check "package holds $f" test -s "$f"
done
check "lago.conf is a conffile" grep -qx ' */etc/lago/lago.conf' <(dpkg-query -W -f='${Conffiles}\n' lago | awk '{ print $1 }')
check "group lago exists" getent group lago
check "lago-build-template --help names itself" \
  bash -c 'h=$(/usr/sbin/lago-build-template --help) && grep -q "Usage: lago-build-template" <<<"$h" && ! grep -q "scripts/template" <<<"$h"'
check "man page is roff naming the verbs" bash -c 'zcat /usr/share/man/man1/lago.1.gz | grep -q "^\.TH" &&
  zcat /usr/share/man/man1/lago.1.gz | grep -qF "generate\-config"'
check "bash completion loads" bash -c '. /usr/share/bash-completion/completions/lago && complete -p lago'
# the installed template script builds the same template as the source tree's
check "lago-build-template is the source tree's build.sh" \
  cmp /usr/share/lago/template/build.sh scripts/template/build.sh

work=$(mktemp -d /tmp/lago-deb.XXXXXX)
cd "$work"
plugins=$(env -u LAGO_PLUGIN_PATH HOME="$work" /usr/bin/lago plugins -f flat)
for p in vm-provider/local-libvirt vm-provider/ssh vm-service/systemd vm-service/sysvinit out-format/dot; do
  check "installed lago finds $p packaged" grep -qx "$p/origin: packaged" <<<"$plugins"
done
# a build-tree lago on this machine runs its own default plugins, no conflict
tree=$(env -u LAGO_PLUGIN_PATH HOME="$work" "$root/target/debug/lago" plugins -f flat 2>&1)
check "build-tree lago shadows the packaged plugins" \
  bash -c 'grep -qx "vm-provider/local-libvirt/origin: beside the executable" <<<"$1" && ! grep -q conflicts <<<"$1"' _ "$tree"

# ---- the installed lago on real VMs --------------------------------------------
initfile() { # a one-VM environment on the embedded template
  cat <<'EOF'
domains:
  vm0:
    memory: 256
    vcpu: 1
    disks:
      - template_name: lago-tiny
        type: template
        name: root
        dev: vda
        format: qcow2
    nics:
      - net: lago-net
nets:
  lago-net:
    type: nat
    management: true
EOF
}
echo "== installed lago, sandbox $sb"
bash scripts/sandbox/down.sh "$sb" >/dev/null 2>&1 || true
bash "$root/scripts/sandbox/up.sh" "$sb" >/dev/null
mkdir -p "$work/root/env"
initfile >"$work/root/env/LagoInitFile"
cd "$work/root/env"
in_sb() {
  bash "$root/scripts/sandbox/run.sh" "$sb" env -u LAGO_PLUGIN_PATH \
    LAGO_LEASE_DIR="$work/root/subnets" LAGO__INIT__TEMPLATE_STORE="$work/root/store" \
    LAGO__LAGO__DOMAIN_TYPE=qemu /usr/bin/lago "$@"
}
check "installed: init" in_sb init --template-repo-path "$repo"
check "installed: start" in_sb start
check "installed: shell" test "$(in_sb shell vm0 echo hello-from-vm0)" = hello-from-vm0
check "installed: destroy" in_sb destroy -y
check "installed: destroy left the workdir's init file" test -f "$work/root/env/LagoInitFile"
cd "$work"
bash "$root/scripts/sandbox/down.sh" "$sb" >/dev/null 2>&1

# ---- 2. a normal user against a system-like libvirtd ----------------------------
echo "== normal user, system-like sandbox $sb_sys"
bash scripts/sandbox/down.sh "$sb_sys" >/dev/null 2>&1 || true
LAGO_SB_SYSTEM=1 bash "$root/scripts/sandbox/up.sh" "$sb_sys" >/dev/null
state=/run/lago-sandbox/$sb_sys
add_user() { # add_user NAME UID GROUPS...: in the sandbox's passwd and group only
  local name=$1 uid=$2 g
  shift 2
  echo "$name:x:$uid:$uid:lago test user:/home/$name:/bin/bash" >>"$state/passwd"
  echo "$name:x:$uid:" >>"$state/group"
  # rewritten in place, not replaced (sed -i): the sandbox sees this inode
  for g in "$@"; do
    groups=$(sed -E "s/^($g:[^:]*:[0-9]+:.*)$/\1,$name/; s/^($g:[^:]*:[0-9]+:),/\1/" "$state/group")
    printf '%s\n' "$groups" >"$state/group"
  done
  mkdir -p "$state/home/$name"
  chown "$uid:$uid" "$state/home/$name"
  chmod 755 "$state/home/$name" # Debian 12's adduser default
}
add_user "$user" 64100 libvirt lago
add_user "$outsider" 64101
as() { # as USER CMD...: in the sandbox, as USER (its groups), in its home
  local who=$1
  shift
  cd / # run.sh enters the current folder: one the user may enter
  bash "$root/scripts/sandbox/run.sh" "$sb_sys" setpriv --reuid="$who" --regid="$who" --init-groups \
    env -i PATH=/usr/bin:/bin HOME="/home/$who" USER="$who" LAGO__LAGO__DOMAIN_TYPE=qemu \
    bash -c 'cd "$HOME/env" && exec "$@"' as "$@"
}
initfile >"$state/home/$user/LagoInitFile"
install -d -o 64100 -g 64100 "$state/home/$user/env"
install -o 64100 -g 64100 -m 644 "$state/home/$user/LagoInitFile" "$state/home/$user/env/"
check "user: init (default lease dir and store, group lago)" as "$user" lago init --template-repo-path "$repo"
# the shared store's images (name, numeric owner): libvirt must not take them over
store_images() {
  find "$state/var-lib-lago/store" -maxdepth 1 -type f -name '*:*' ! -name '*.*' -printf '%f %U:%G\n' | sort
}
images_before=$(store_images)
echo "store images: $images_before"
check "user: init put the template in the shared store" test -n "$images_before"
check "user: start" as "$user" lago start
# warm starts (the default) work for a user against the system libvirtd:
# the warm image libvirtd saved is readable by the user's lago
status_out=$(as "$user" lago status 2>&1 || true)
check "user: the first start was warm (warm image made and restored)" grep -q "last start: warm" <<<"$status_out"
check "user: start left the store image's owner alone (no libvirt relabel)" test "$(store_images)" = "$images_before"
check "user: shell" test "$(as "$user" lago shell vm0 echo hello-from-user)" = hello-from-user
check "user: the shared lease dir holds the user's lease" \
  bash -c "ls '$state/var-lib-lago/subnets/' | grep -q '\.lease$'"
check "user: destroy" as "$user" lago destroy -y
check "user: destroy left the store image's owner alone" test "$(store_images)" = "$images_before"
# a home QEMU cannot pass through: the error names the image and QEMU's user
chmod 700 "$state/home/$user"
check "user: init in a 0700 home" as "$user" lago init --template-repo-path "$repo"
active_nets() { (cd / && bash "$root/scripts/sandbox/run.sh" "$sb_sys" virsh -q -c qemu:///system net-list --name) | sort; }
nets_before=$(active_nets)
err=$(as "$user" lago start 2>&1 >/dev/null || true)
echo "$err" | tail -n 3
check "user: a failed start stops the networks it started" test "$(active_nets)" = "$nets_before"
check "user: 0700 home: the error names the image and QEMU's user" \
  bash -c 'grep -q "libvirt-qemu" <<<"$1" && grep -q "cannot open /home/'"$user"'/env/" <<<"$1"' _ "$err"
as "$user" lago destroy -y >/dev/null 2>&1 || true
chmod 755 "$state/home/$user"
# a user outside group libvirt (own folders: not in group lago either)
install -d -o 64101 -g 64101 "$state/home/$outsider/env"
initfile >"$state/home/$outsider/env/LagoInitFile"
chown 64101:64101 "$state/home/$outsider/env/LagoInitFile"
out_env=(env LAGO_LEASE_DIR="/home/$outsider/subnets" LAGO__INIT__TEMPLATE_STORE="/home/$outsider/store")
check "outsider: init (own lease dir and store)" as "$outsider" "${out_env[@]}" lago init --template-repo-path "$repo"
err=$(as "$outsider" "${out_env[@]}" lago start 2>&1 >/dev/null) && bad "outsider: start must fail" || true
echo "$err" | tail -n 2
check "outsider: the error says to join group libvirt" \
  bash -c 'grep -q "user '"$outsider"' may not use libvirtd.s socket: add it to group libvirt" <<<"$1"' _ "$err"
bash "$root/scripts/sandbox/down.sh" "$sb_sys" >/dev/null 2>&1

# ---- 3. remove the package ---------------------------------------------------------
cd "$work"
mkdir -p "$work/kept/.lago"
DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq lago >/dev/null
installed=""
check "removed: /usr/bin/lago is gone" test ! -e /usr/bin/lago
check "removed: the workdirs stay" test -f "$work/root/env/LagoInitFile" -a -d "$work/kept/.lago"
check "removed: the conffile stays until purge" test -f /etc/lago/lago.conf
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq lago >/dev/null
check "purged: the conffile is gone, the workdirs stay" \
  test ! -e /etc/lago/lago.conf -a -f "$work/root/env/LagoInitFile"
