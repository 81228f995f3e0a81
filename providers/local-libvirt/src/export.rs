//! `lago export`: a VM's disks written into a folder with `qemu-img
//! convert`, never touching the VM's own images.
//!
//! - layered (default): a template disk becomes a qcow2 layer holding only
//!   what the VM changed (`convert -B BASE`), whose backing file is then
//!   named by the template's store name (`repo:template:version`, relative),
//!   so the store of another machine provides it;
//! - standalone: the disk merged with its whole backing chain;
//! - disks without a backing file are copied whole either way; internal
//!   snapshots are not exported; ISO images are not exported.

use std::path::{Path, PathBuf};
use std::process::Command;

use lago_plugin_api::spec::{DiskSpec, VmSpec};
use lago_plugin_api::tracing;

use crate::error::{ProviderError, Result};
use crate::session::LibvirtSession;
use crate::tools::run;

/// The file name a disk is exported as: `<vm>_<disk>.qcow2`.
pub fn export_name(vm: &VmSpec, disk: &DiskSpec) -> String {
    format!("{}_{}.qcow2", vm.name, disk.name)
}

/// The `qemu-img convert` that exports `disk` to `dst`.
pub fn convert_command(src: &Path, disk: &DiskSpec, dst: &Path, standalone: bool) -> Command {
    let mut cmd = Command::new("qemu-img");
    cmd.args(["convert", "-p", "-O", "qcow2"]);
    if let (false, Some(base)) = (standalone, &disk.base) {
        let fmt = disk.base_format.as_deref().unwrap_or("qcow2");
        cmd.arg("-B").arg(base).args(["-F", fmt]);
    }
    cmd.arg(src).arg(dst);
    cmd
}

impl LibvirtSession {
    /// Exports the VM's disks into `dst_dir` (see [`crate::export`]); returns
    /// the written paths. The VM must be down.
    pub fn export_disks(&self, vm: &str, dst_dir: &str, standalone: bool) -> Result<Vec<String>> {
        let spec = self.vm(vm)?;
        if self.state(vm)? != "down" {
            return Err(ProviderError::Spec(format!(
                "VM {vm} is running: stop it before exporting its disks"
            )));
        }
        let dst_dir = PathBuf::from(dst_dir);
        std::fs::create_dir_all(&dst_dir)
            .map_err(|e| ProviderError::io("creating the export folder", &dst_dir, e))?;
        let mut written = Vec::new();
        for disk in spec.disks.iter().filter(|d| d.format != "iso") {
            let Some(src) = &disk.path else { continue };
            let dst = dst_dir.join(export_name(spec, disk));
            // qemu-img would write through a file or symlink already there
            // (DIR/vm0_root.qcow2 -> /victim): refuse any existing entry.
            if dst.symlink_metadata().is_ok() {
                return Err(ProviderError::Spec(format!(
                    "{} already exists: export into a folder without it",
                    dst.display()
                )));
            }
            let size = std::fs::metadata(src).map(|m| m.len()).unwrap_or(0);
            tracing::info!(
                "VM {vm}: exporting disk '{}' ({size} bytes) to {}",
                disk.name,
                dst.display()
            );
            let what = format!("exporting disk '{}' of VM {vm}", disk.name);
            run(&mut convert_command(src, disk, &dst, standalone), &what)?;
            if let (false, Some(base)) = (standalone, &disk.base) {
                // Name the backing file by the template's store name, relative.
                let name = base.file_name().map(PathBuf::from).unwrap_or_default();
                let fmt = disk.base_format.as_deref().unwrap_or("qcow2");
                run(
                    Command::new("qemu-img")
                        .args(["rebase", "-u", "-F", fmt, "-b"])
                        .arg(&name)
                        .arg(&dst),
                    &what,
                )?;
            }
            let out = std::fs::metadata(&dst).map(|m| m.len()).unwrap_or(0);
            tracing::info!("VM {vm}: disk '{}' exported: {out} bytes", disk.name);
            written.push(dst.display().to_string());
        }
        Ok(written)
    }
}
