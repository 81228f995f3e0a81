#!/usr/bin/env bash
# Builds lago's Debian package: target/debian/lago_<version>_<arch>.deb.
#
# Holds /usr/bin/lago and lagocli, the default plugins in
# /usr/lib/lago/plugins, the man page, bash/zsh/fish completions, a commented
# /etc/lago/lago.conf (conffile), the docs in /usr/share/doc/lago and the
# embedded template's build script (/usr/sbin/lago-build-template over
# /usr/share/lago/template). The package's metadata is lago-host/Cargo.toml's
# [package.metadata.deb]; see docs/install.md.
#
# Usage: scripts/package.sh
#   LAGO_PACKAGE_PROFILE: the cargo profile of the binaries, `release` (the
#   default: what users get) or e.g. `dev` (CI: reuses the debug build the
#   tests already made instead of a release build of the whole dependency
#   tree, which takes long on a small machine; cargo-deb strips it).
# Idempotent: installs cargo-deb (cargo install --locked, a pinned version)
# only when it is missing or another version.
# Prints the package's path as its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

profile=${LAGO_PACKAGE_PROFILE:-release}
case "$profile" in
  release) profile_dir=release ;;
  dev) profile_dir=debug ;;
  *[!A-Za-z0-9_-]* | "") echo "package.sh: bad LAGO_PACKAGE_PROFILE '$profile'" >&2; exit 2 ;;
  *) profile_dir=$profile ;;
esac

# cargo-deb, at the version this script was written against (3.8 packages
# the `dev` profile with a warning; a later one may refuse it)
cargo_deb_version=3.8.0
if [ "$(cargo deb --version 2>/dev/null | awk '{ print $NF }')" != "$cargo_deb_version" ]; then
  echo "package.sh: installing cargo-deb $cargo_deb_version" >&2
  cargo install cargo-deb --version "$cargo_deb_version" --locked
fi

# every file of scripts/template must be an asset of the package
template_missing=$(
  cd scripts/template && find . -type f | sed 's|^\./||' | sort | while read -r f; do
    grep -qF "\"../scripts/template/$f\"" ../../lago-host/Cargo.toml || echo "$f"
  done
)
if [ -n "$template_missing" ]; then
  echo "package.sh: scripts/template files not listed in lago-host/Cargo.toml's" \
    "[package.metadata.deb] assets: $template_missing" >&2
  exit 1
fi

plugins=(lago-provider-local-libvirt lago-provider-ssh lago-service-systemd
  lago-service-sysvinit lago-out-dot)
cargo build --profile "$profile" -p lago-host "${plugins[@]/#/-p}"

# Generated assets, from the binaries just built, in a clean environment (no
# user configuration, no plugin path: only the plugins beside the binary).
bin=target/$profile_dir
out=target/package
rm -rf "$out"
mkdir -p "$out"
empty=$(mktemp -d)
trap 'rm -rf "$empty"' EXIT
gen() { # gen NAME ARGS...: runs target/PROFILE/NAME ARGS in a clean environment
  local name=$1
  shift
  env -i PATH=/usr/bin:/bin HOME="$empty" XDG_CONFIG_HOME="$empty" XDG_CONFIG_DIRS="$empty" \
    "$bin/$name" "$@"
}
gen lago man | gzip -9n >"$out/lago.1.gz"
gen lago completion bash >"$out/lago.bash"
gen lagocli completion bash >"$out/lagocli.bash"
gen lago completion zsh >"$out/_lago"
gen lago completion fish >"$out/lago.fish"
{
  cat <<'EOF'
# lago's system configuration (/etc/lago/lago.conf).
#
# Every key is commented out: its built-in default applies. Uncomment and edit
# a key to change it for every user of this machine; a user's own
# ~/.config/lago/lago.conf, LAGO_* environment variables and command-line
# flags override it (docs: /usr/share/doc/lago/configuration.md).
# `lago generate-config --verbose` prints the effective values and their sources.
#
# The shared folders (lease_dir, template_store, template_repos) belong to
# group `lago` (mode 2775): users in groups `lago` and `libvirt` share them.

EOF
  # keys and their values commented out; section headers and help kept
  gen lago generate-config --verbose | grep -vx '# (from built-in default)' |
    sed -E 's/^([A-Za-z_][A-Za-z0-9_]*[[:space:]]*=)/# \1/'
} >"$out/lago.conf"
grep -qE '^[[:space:]]*[A-Za-z_]+[[:space:]]*=' "$out/lago.conf" && {
  echo "package.sh: $out/lago.conf has an uncommented key" >&2
  exit 1
}

mkdir -p target/debian
# a CI build (not release) is compressed fast: it is installed once and dropped
fast=()
[ "$profile" = release ] || fast=(--fast)
cargo deb -p lago-host --no-build --profile "$profile" "${fast[@]}" -o target/debian/ >&2
deb=$(ls -t target/debian/lago_*.deb | head -n 1)
echo "$deb"
