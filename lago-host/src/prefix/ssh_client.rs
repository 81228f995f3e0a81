//! Files for the user's own OpenSSH client, written at init:
//! `<prefix>/ssh_config` (one `Host` block per VM, aliased by the VM's name)
//! and `<prefix>/known_hosts` (each VM's host key pinned at init), so that
//! `ssh -F <prefix>/ssh_config VM` logs in with the prefix key and verifies
//! the same host key lago does.
//!
//! `<prefix>/known_hosts` is also where lago records the key of a VM that
//! has no pinned key (first seen, held from then on), so the user's client
//! checks those too once lago has connected.

use std::path::{Path, PathBuf};

use lago_plugin_api::spec::{EnvSpec, PrefixInfo};

use super::PrefixError;
use crate::files::{write_mode, WriteMode};
use crate::ssh::{known_hosts_line, ssh_config_block};

/// The SSH port lago connects to (see [`crate::environment::ssh_target`]).
const SSH_PORT: u16 = 22;

/// `<prefix>/ssh_config`.
pub fn ssh_config_path(info: &PrefixInfo) -> PathBuf {
    info.path.join("ssh_config")
}

/// `<prefix>/known_hosts`: the pinned keys, and the ones learned.
pub fn known_hosts_path(info: &PrefixInfo) -> PathBuf {
    info.path.join("known_hosts")
}

/// The text of `<prefix>/ssh_config`: a `Host` block per VM that has a
/// management address.
pub fn ssh_config_text(env: &EnvSpec) -> String {
    let known_hosts = known_hosts_path(&env.prefix);
    let key = env.prefix.ssh_key_path();
    let mut out = format!(
        "# Written by lago for the prefix {}: ssh -F {} VM\n",
        env.prefix.path.display(),
        ssh_config_path(&env.prefix).display()
    );
    for vm in env.domains.values() {
        let Some(ip) = vm.mgmt_ip() else {
            continue;
        };
        out.push('\n');
        out.push_str(&ssh_config_block(
            &vm.name,
            ip.into(),
            SSH_PORT,
            &vm.ssh_user,
            Some(&key),
            &known_hosts,
            env.host_of(vm)
                .and_then(|(_, h)| h.ssh_dest())
                .map(|d| d.to_string())
                .as_deref(),
        ));
    }
    if !env.hosts.is_empty() {
        out.push_str(crate::ssh::INCLUDE_USER_CONFIG);
    }
    out
}

/// The known_hosts lines of the VMs whose host key was pinned at init (a
/// key only offered in the seed is added when the VM presents it).
pub fn known_hosts_text(env: &EnvSpec) -> String {
    let mut out = String::new();
    for vm in env.domains.values() {
        let pinned = crate::templates::host_key_pinned(vm);
        if let (Some(ip), Some(key), true) = (vm.mgmt_ip(), vm.ssh_host_key.as_deref(), pinned) {
            out.push_str(&known_hosts_line(ip.into(), SSH_PORT, key));
            out.push('\n');
        }
    }
    out
}

fn write(path: &Path, text: &str) -> Result<(), PrefixError> {
    // Temp file and rename; init syncs the prefix before its marker.
    write_mode(path, text.as_bytes(), Some(0o644), WriteMode::Batch)
        .map_err(|e| PrefixError::io(path, e))
}

/// Writes `<prefix>/ssh_config` and `<prefix>/known_hosts` (atomically) for
/// a newly initialized environment.
pub fn write_files(env: &EnvSpec) -> Result<(), PrefixError> {
    write(&known_hosts_path(&env.prefix), &known_hosts_text(env))?;
    write(&ssh_config_path(&env.prefix), &ssh_config_text(env))
}
