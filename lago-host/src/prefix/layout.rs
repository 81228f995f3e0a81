//! The layout of a new prefix (`write_layout`): its folders, keys,
//! metadata and copies.

use std::path::PathBuf;

use lago_plugin_api::spec::{EnvSpec, PrefixInfo};
use serde_json::json;

use super::interrupt::stop_if_interrupted;
use super::{keys, Prefix, PrefixError};
use crate::error::Error;
use crate::files::{write_atomic, write_mode, WriteMode};

/// Folders, keys, metadata and copies of a new prefix. The prefix's SSH key
/// is a copy of `user_key` (`--ssh-key`, 0600) when given, else generated.
pub(crate) fn write_layout(
    prefix: &Prefix,
    info: &PrefixInfo,
    env: &mut EnvSpec,
    copies: &[(PathBuf, PathBuf)],
    user_key: Option<&keys::KeyPair>,
) -> Result<(), Error> {
    let mk = |p: PathBuf| std::fs::create_dir_all(&p).map_err(|e| PrefixError::io(&p, e));
    mk(info.images_dir())?;
    mk(info.logs_dir())?;
    mk(info.host_keys_dir())?;
    mk(info.virt_dir())?;
    std::fs::File::create(info.log_path()).map_err(|e| PrefixError::io(&info.log_path(), e))?;
    let generated;
    let kp = match user_key {
        Some(k) => k,
        None => {
            generated =
                keys::generate(&format!("lago@{}", info.tag())).map_err(PrefixError::Keygen)?;
            &generated
        }
    };
    keys::write(&info.ssh_key_path(), kp).map_err(|e| PrefixError::io(&info.ssh_key_path(), e))?;
    for vm in env.domains.values_mut() {
        stop_if_interrupted()?;
        let hk = keys::generate(&format!("root@{}", vm.name)).map_err(PrefixError::Keygen)?;
        let p = info.host_key_path(&vm.name);
        // The private half only: the public one is in the VM's spec.
        write_mode(
            &p,
            hk.private_openssh.as_bytes(),
            Some(0o600),
            WriteMode::Fresh,
        )
        .map_err(|e| PrefixError::io(&p, e))?;
        vm.ssh_host_key = Some(hk.public_openssh);
    }
    mk(info.scripts_dir())?;
    if !copies.is_empty() {
        for (src, dest) in copies {
            std::fs::copy(src, dest).map_err(|e| PrefixError::io(src, e))?;
        }
    }
    let meta = json!({
        "lago_version": env!("CARGO_PKG_VERSION"),
        "created": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default(),
    });
    write_atomic(
        &prefix.path().join("metadata"),
        meta.to_string().as_bytes(),
        None,
    )
    .map_err(|e| PrefixError::io(prefix.path(), e))?;
    Ok(())
}
