//! Disk preparation at `init`, and the `build:` section's `virt-customize`.
//!
//! - `template`: a qcow2 overlay `qemu-img create -f qcow2 -F <base_format>
//!   -b <base> <path>` (without a `base`, `path` is used as it is);
//! - `empty`: `qemu-img create -f <format> <path> <size>`;
//! - `file`: `path` as it is, or a copy of the source when `make_a_copy`;
//! - `format: iso`: attached as it is.
//!
//! The template store (download, import) is the host's: `base`,
//! `base_format` and `path` arrive planned.

use std::path::{Path, PathBuf};
use std::process::Command;

use lago_plugin_api::spec::{truthy, DiskSpec, DiskType, EnvSpec, VmSpec, MAKE_A_COPY_KEY};
use serde_json::Value;

use crate::error::{ProviderError, Result};
use crate::tools::{run, run_logged, which};

pub(crate) fn planned_path<'a>(vm: &VmSpec, disk: &'a DiskSpec) -> Result<&'a Path> {
    disk.path.as_deref().ok_or_else(|| {
        ProviderError::Spec(format!(
            "VM {}: disk '{}' has no planned path",
            vm.name, disk.name
        ))
    })
}

/// The error for a disk image that is not there.
pub(crate) fn missing_image(vm: &VmSpec, disk: &DiskSpec, path: &Path) -> ProviderError {
    ProviderError::Spec(format!(
        "VM {}: disk '{}': {} does not exist",
        vm.name,
        disk.name,
        path.display()
    ))
}

fn ensure_parent(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| ProviderError::io("creating the folder of", path, e))?;
    }
    Ok(())
}

/// The image a `make_a_copy` file disk is copied from: its planned source
/// ([`DiskSpec::copy_source`]), else `url` when it is a local path or a
/// `file://` URL.
fn copy_source(vm: &VmSpec, disk: &DiskSpec) -> Result<PathBuf> {
    if let Some(src) = disk.copy_source() {
        return Ok(src);
    }
    if let Some(url) = &disk.url {
        if let Some(p) = url.strip_prefix("file://") {
            return Ok(PathBuf::from(p));
        }
        if url.starts_with('/') {
            return Ok(PathBuf::from(url));
        }
        return Err(ProviderError::Spec(format!(
            "VM {}: disk '{}': the provider copies local files only; the host downloads '{url}'",
            vm.name, disk.name
        )));
    }
    Err(ProviderError::Spec(format!(
        "VM {}: disk '{}' has make_a_copy but no source to copy (source_path or url)",
        vm.name, disk.name
    )))
}

/// The `qemu-img`/`cp` command that prepares one disk, or None when the disk
/// is used as it is.
pub fn prepare_command(vm: &VmSpec, disk: &DiskSpec) -> Result<Option<Command>> {
    let path = planned_path(vm, disk)?;
    match disk.disk_type {
        DiskType::Template => {
            let Some(base) = &disk.base else {
                return Ok(None);
            };
            let fmt = disk.base_format.as_deref().unwrap_or("qcow2");
            let mut cmd = Command::new("qemu-img");
            cmd.args(["create", "-q", "-f", "qcow2", "-F", fmt, "-b"])
                .arg(base)
                .arg(path);
            Ok(Some(cmd))
        }
        DiskType::Empty => {
            let size = disk.size.as_deref().ok_or_else(|| {
                ProviderError::Spec(format!(
                    "VM {}: empty disk '{}' has no size",
                    vm.name, disk.name
                ))
            })?;
            if !matches!(disk.format.as_str(), "qcow2" | "raw") {
                return Err(ProviderError::Spec(format!(
                    "VM {}: empty disk '{}': format must be qcow2 or raw, not {}",
                    vm.name, disk.name, disk.format
                )));
            }
            let mut cmd = Command::new("qemu-img");
            cmd.args(["create", "-q", "-f", &disk.format])
                .arg(path)
                .arg(size);
            Ok(Some(cmd))
        }
        DiskType::File => {
            if !truthy(disk.extra.get(MAKE_A_COPY_KEY)) {
                return Ok(None);
            }
            let src = copy_source(vm, disk)?;
            if src == path {
                return Ok(None);
            }
            let mut cmd = Command::new("cp");
            cmd.args(["--reflink=auto", "--sparse=always", "--"])
                .arg(src)
                .arg(path);
            Ok(Some(cmd))
        }
    }
}

/// Prepares every disk of `vm`, then runs the disks' `build:` steps; then
/// marks the disks fresh ([`crate::warm::fresh_marker`]: the VM's first
/// start may be a warm one).
pub fn prepare_vm_disks(env: &EnvSpec, vm: &VmSpec) -> Result<()> {
    let marker = crate::warm::fresh_marker(env, vm);
    match std::fs::remove_file(&marker) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(ProviderError::io(
                "removing the warm-start marker",
                &marker,
                e,
            ))
        }
        _ => {}
    }
    for disk in &vm.disks {
        let path = planned_path(vm, disk)?;
        match prepare_command(vm, disk)? {
            Some(mut cmd) => {
                ensure_parent(path)?;
                if disk.disk_type == DiskType::File {
                    let src = copy_source(vm, disk)?;
                    if !src.exists() {
                        return Err(missing_image(vm, disk, &src));
                    }
                } else if path.exists() {
                    // A left-over of an earlier, failed init: start fresh.
                    std::fs::remove_file(path)
                        .map_err(|e| ProviderError::io("removing the old image", path, e))?;
                }
                run(
                    &mut cmd,
                    &format!("preparing disk '{}' of VM {}", disk.name, vm.name),
                )?;
            }
            None => {
                if !path.exists() {
                    return Err(missing_image(vm, disk, path));
                }
            }
        }
    }
    for disk in &vm.disks {
        if let Some(build) = &disk.build {
            run_build(env, vm, disk, build)?;
        }
    }
    ensure_parent(&marker)?;
    std::fs::write(&marker, b"")
        .map_err(|e| ProviderError::io("writing the warm-start marker", &marker, e))
}

/// The `virt-customize` arguments of one `virt-customize:` build step.
///
/// Each `option: value` becomes `--option value`; a list value repeats the
/// option once per item; `''`, `null` or `true` give `--option` alone;
/// `ssh-inject: ''` injects the prefix key: `--ssh-inject root:file:PUBKEY`.
/// The step may be a dict (options in key order) or a list of one-key dicts
/// (options in list order, for steps whose order matters).
pub fn virt_customize_args(step: &Value, pubkey: &Path) -> Result<Vec<String>> {
    let pairs: Vec<(&String, &Value)> = match step {
        Value::Object(map) => map.iter().collect(),
        Value::Array(items) => {
            let mut pairs = Vec::new();
            for item in items {
                match item {
                    Value::Object(map) => pairs.extend(map.iter()),
                    _ => {
                        return Err(ProviderError::Spec(
                            "virt-customize: a list of options must hold one-key dicts".into(),
                        ))
                    }
                }
            }
            pairs
        }
        _ => {
            return Err(ProviderError::Spec(
                "virt-customize: expected a dict of options".into(),
            ))
        }
    };
    let mut args = Vec::new();
    for (opt, value) in pairs {
        let flag = format!("--{opt}");
        if opt == "ssh-inject" && matches!(value, Value::String(s) if s.is_empty()) {
            args.push(flag);
            args.push(format!("root:file:{}", pubkey.display()));
            continue;
        }
        match value {
            Value::Null | Value::Bool(true) => args.push(flag),
            Value::Bool(false) => {}
            Value::String(s) if s.is_empty() => args.push(flag),
            Value::String(s) => {
                args.push(flag);
                args.push(s.clone());
            }
            Value::Number(n) => {
                args.push(flag);
                args.push(n.to_string());
            }
            Value::Array(items) => {
                for item in items {
                    let text = match item {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        _ => {
                            return Err(ProviderError::Spec(format!(
                                "virt-customize: {opt}: list items must be scalars"
                            )))
                        }
                    };
                    args.push(flag.clone());
                    args.push(text);
                }
            }
            Value::Object(_) => {
                return Err(ProviderError::Spec(format!(
                    "virt-customize: {opt}: a dict is not an option value"
                )))
            }
        }
    }
    Ok(args)
}

/// The `virt-customize` command lines of a disk's `build:` section
/// (`[{virt-customize: {...}}, ...]`).
pub fn build_commands(
    env: &EnvSpec,
    vm: &VmSpec,
    disk: &DiskSpec,
    build: &Value,
) -> Result<Vec<Command>> {
    let steps: Vec<&Value> = match build {
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => vec![build],
        Value::Null => vec![],
        _ => {
            return Err(ProviderError::Spec(format!(
                "VM {}: disk '{}': build must be a list of builders",
                vm.name, disk.name
            )))
        }
    };
    let path = planned_path(vm, disk)?;
    let mut cmds = Vec::new();
    for step in steps {
        let Value::Object(map) = step else {
            return Err(ProviderError::Spec(format!(
                "VM {}: disk '{}': each build step is a dict like {{virt-customize: {{...}}}}",
                vm.name, disk.name
            )));
        };
        for (builder, opts) in map {
            if builder != "virt-customize" {
                return Err(ProviderError::Spec(format!(
                    "VM {}: disk '{}': unknown builder '{builder}' (known: virt-customize)",
                    vm.name, disk.name
                )));
            }
            let args = virt_customize_args(opts, &env.prefix.ssh_pubkey_path()).map_err(|e| {
                ProviderError::Spec(format!("VM {}: disk '{}': {e}", vm.name, disk.name))
            })?;
            let mut cmd = virt_customize(disk, path);
            cmd.args(args);
            cmds.push(cmd);
        }
    }
    Ok(cmds)
}

/// `virt-customize --format FORMAT -a PATH` for `disk` (its options
/// follow), with libguestfs's QEMU appliance forced to TCG (KVM may hang
/// here) and kept off the system libvirtd (backend `direct` unless
/// `LIBGUESTFS_BACKEND` says otherwise).
pub(crate) fn virt_customize(disk: &DiskSpec, path: &Path) -> Command {
    let mut cmd = Command::new("virt-customize");
    let fmt = if disk.format == "iso" {
        "raw"
    } else {
        disk.format.as_str()
    };
    // --format applies to the -a options after it only.
    cmd.args(["--format", fmt]);
    cmd.arg("-a").arg(path);
    cmd.env("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg");
    if std::env::var_os("LIBGUESTFS_BACKEND").is_none() {
        cmd.env("LIBGUESTFS_BACKEND", "direct");
    }
    cmd
}

fn run_build(env: &EnvSpec, vm: &VmSpec, disk: &DiskSpec, build: &Value) -> Result<()> {
    let cmds = build_commands(env, vm, disk, build)?;
    if cmds.is_empty() {
        return Ok(());
    }
    if which("virt-customize").is_none() {
        return Err(ProviderError::MissingTool(format!(
            "VM {}: disk '{}' has a virt-customize build step, but virt-customize is not \
             installed: install libguestfs (Debian: apt-get install libguestfs-tools) or \
             remove the build section",
            vm.name, disk.name
        )));
    }
    let log = env.prefix.log_path();
    for mut cmd in cmds {
        run_logged(
            &mut cmd,
            &format!(
                "building disk '{}' of VM {} with virt-customize",
                disk.name, vm.name
            ),
            Some(&log),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn virt_customize_mapping() {
        let pubkey = Path::new("/p/id_ed25519.pub");
        let args = virt_customize_args(&json!({"ssh-inject": ""}), pubkey).expect("maps");
        assert_eq!(args, vec!["--ssh-inject", "root:file:/p/id_ed25519.pub"]);
        let args = virt_customize_args(&json!({"touch": ["/a", "/b"]}), pubkey).expect("maps");
        assert_eq!(args, vec!["--touch", "/a", "--touch", "/b"]);
        let args = virt_customize_args(&json!({"selinux-relabel": ""}), pubkey).expect("maps");
        assert_eq!(args, vec!["--selinux-relabel"]);
        let args = virt_customize_args(&json!({"memsize": 512}), pubkey).expect("maps");
        assert_eq!(args, vec!["--memsize", "512"]);
        let args = virt_customize_args(&json!({"hostname": "x", "no-network": true}), pubkey)
            .expect("maps");
        assert_eq!(args.len(), 3);
        assert!(args.windows(2).any(|w| w == ["--hostname", "x"]));
        assert!(args.contains(&"--no-network".to_string()));

        let ordered = virt_customize_args(&json!([{"run-command": "b"}, {"install": "a"}]), pubkey)
            .expect("maps");
        assert_eq!(ordered, vec!["--run-command", "b", "--install", "a"]);

        assert!(virt_customize_args(&json!({"x": {"y": 1}}), pubkey).is_err());
        assert!(virt_customize_args(&json!("x"), pubkey).is_err());
    }
}
