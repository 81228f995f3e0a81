//! Snapshots of a VM: qcow2 internal snapshots, with the VM's memory when it
//! runs.
//!
//! - running (or paused) VM: a libvirt internal snapshot (QEMU's `savevm`):
//!   disks and memory go into the VM's own qcow2 images, the VM keeps
//!   running. libvirt's metadata of a transient domain dies with it, so the
//!   snapshot's XML is kept in the prefix (`snapshots/<vm>/<name>.xml`) and
//!   redefined when a revert finds it missing (after a `stop`/`start`, or in
//!   a new libvirtd);
//! - stopped VM: `qemu-img snapshot -c` on each disk (disk-only);
//! - revert with memory: the domain is created paused when it is down, the
//!   snapshot redefined when needed, then libvirt reverts it running (QEMU's
//!   `loadvm`): the VM continues from the snapshot without booting;
//! - revert disk-only: the domain is stopped, `qemu-img snapshot -a` on each
//!   disk; the VM stays down (the host starts it when it should run).
//!
//! Every image holding a snapshot is in the VM's disks, so `destroy` (which
//! removes the prefix) removes every snapshot; libvirt drops a transient
//! domain's snapshot metadata when the domain stops.

use std::path::{Path, PathBuf};
use std::process::Command;

use lago_plugin_api::spec::{valid_snapshot_name, SnapshotDisk, SnapshotInfo, VmSpec};
use lago_plugin_api::tracing;
use virt::domain::Domain;
use virt::sys;

use crate::error::{ProviderError, Result};
use crate::session::LibvirtSession;
use crate::tools::run;

fn check_name(name: &str) -> Result<()> {
    if valid_snapshot_name(name) {
        Ok(())
    } else {
        Err(ProviderError::Spec(format!(
            "snapshot name `{name}`: expected 1 to 64 letters, digits, `.`, `_` or `-`, \
             not starting with `.` or `-`"
        )))
    }
}

/// The VM's writable disks (every disk but ISO images), which a snapshot
/// holds; each must be a qcow2 image with a planned path.
pub fn snapshot_disks(vm: &VmSpec) -> Result<Vec<SnapshotDisk>> {
    vm.disks
        .iter()
        .filter(|d| d.format != "iso")
        .map(|d| {
            let path = d.path.clone().ok_or_else(|| {
                ProviderError::Spec(format!(
                    "VM {}: disk '{}' has no planned path",
                    vm.name, d.name
                ))
            })?;
            if d.format != "qcow2" {
                return Err(ProviderError::Spec(format!(
                    "VM {}: disk '{}' is {}: snapshots need qcow2 disks \
                     (leave the VM out with -n, or use a qcow2 disk)",
                    vm.name, d.name, d.format
                )));
            }
            Ok(SnapshotDisk {
                name: d.name.clone(),
                dev: d.dev.clone(),
                path,
                format: d.format.clone(),
            })
        })
        .collect()
}

/// The libvirt XML that asks for an internal snapshot named `name` (with
/// memory, on a running domain whose disks are qcow2).
pub fn snapshot_xml(name: &str) -> String {
    format!(
        "<domainsnapshot>\n  <name>{name}</name>\n  \
         <description>lago snapshot</description>\n</domainsnapshot>\n"
    )
}

/// A stored snapshot XML made fit for `REDEFINE` on a new domain: the
/// domain's uuid replaced by `uuid` (a transient domain gets a new one each
/// start), and the `<parent>` dropped (the parent may not be defined).
pub fn redefinable_xml(stored: &str, uuid: &str) -> Result<String> {
    let doc = roxmltree::Document::parse(stored)
        .map_err(|e| ProviderError::Spec(format!("stored snapshot XML: {e}")))?;
    let old = doc
        .descendants()
        .find(|n| n.has_tag_name("domain"))
        .and_then(|d| d.children().find(|n| n.has_tag_name("uuid")))
        .and_then(|n| n.text())
        .ok_or_else(|| ProviderError::Spec("stored snapshot XML has no domain uuid".into()))?;
    let mut xml = stored.replace(
        &format!("<uuid>{old}</uuid>"),
        &format!("<uuid>{uuid}</uuid>"),
    );
    if let (Some(start), Some(end)) = (xml.find("<parent>"), xml.find("</parent>")) {
        if start < end {
            xml.replace_range(start..end + "</parent>".len(), "");
        }
    }
    Ok(xml)
}

impl LibvirtSession {
    /// Where the XML of the VM's snapshot `name` is kept.
    pub fn snapshot_xml_path(&self, vm: &str, name: &str) -> PathBuf {
        self.env()
            .prefix
            .path
            .join("snapshots")
            .join(vm)
            .join(format!("{name}.xml"))
    }

    /// The disks a snapshot `name` of the VM would hold, when it can be
    /// taken: a valid name, every disk qcow2, the name on none of them.
    fn snapshot_plan(&self, vm: &str, name: &str) -> Result<(&VmSpec, Vec<SnapshotDisk>)> {
        check_name(name)?;
        let spec = self.vm(vm)?;
        self.default_host_only(spec, "snapshots")?;
        let disks = snapshot_disks(spec)?;
        let mut taken = self.snapshot_xml_path(vm, name).exists();
        for d in disks.iter().filter(|d| d.path.exists()) {
            if taken {
                break;
            }
            taken = internal_snapshots(&d.path)?.iter().any(|s| s == name);
        }
        if taken {
            return Err(ProviderError::Spec(format!(
                "VM {vm} already has a snapshot named `{name}`"
            )));
        }
        Ok((spec, disks))
    }

    /// Whether [`Self::create_snapshot`] can take snapshot `name` of the VM.
    pub fn check_snapshot(&self, vm: &str, name: &str) -> Result<()> {
        self.snapshot_plan(vm, name).map(|_| ())
    }

    /// Snapshots the VM as [`crate::snapshot`] describes; a name the VM
    /// already has is an error naming it.
    pub fn create_snapshot(&self, vm: &str, name: &str) -> Result<SnapshotInfo> {
        let (spec, disks) = self.snapshot_plan(vm, name)?;
        let conn = self.connection()?;
        let what = || format!("snapshot {name} of VM {vm}");
        let dom = self
            .lookup_domain(&conn, &spec.libvirt_name)?
            .filter(|d| d.is_active().unwrap_or(false));
        let xml_path = self.snapshot_xml_path(vm, name);
        let Some(dom) = dom else {
            for (i, d) in disks.iter().enumerate() {
                let made = run(
                    Command::new("qemu-img")
                        .args(["snapshot", "-c", name])
                        .arg(&d.path),
                    &what(),
                );
                if let Err(e) = made {
                    // All or nothing: the disks done before are undone.
                    for done in &disks[..i] {
                        let undo = run(
                            Command::new("qemu-img")
                                .args(["snapshot", "-d", name])
                                .arg(&done.path),
                            &format!("removing snapshot {name} of VM {vm} again"),
                        );
                        if let Err(u) = undo {
                            tracing::warn!("{u}");
                        }
                    }
                    return Err(e);
                }
            }
            return Ok(SnapshotInfo {
                memory: false,
                state: "down".into(),
                disks,
            });
        };
        let state = self.state(vm)?;
        let snap = dom
            .create_snapshot_xml(&snapshot_xml(name), 0)
            .map_err(|e| ProviderError::libvirt(what(), e))?;
        let xml = snap
            .xml_desc(sys::VIR_DOMAIN_SNAPSHOT_XML_SECURE)
            .map_err(|e| ProviderError::libvirt(what(), e))?;
        if let Some(dir) = xml_path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| ProviderError::io("creating the snapshots folder", dir, e))?;
        }
        std::fs::write(&xml_path, xml)
            .map_err(|e| ProviderError::io("keeping the snapshot XML", &xml_path, e))?;
        Ok(SnapshotInfo {
            memory: true,
            state,
            disks,
        })
    }

    /// Removes snapshot `name` of the VM: through libvirt when the VM runs
    /// and libvirt knows it, else from each disk that holds it (`qemu-img
    /// snapshot -d`); and its kept XML.
    pub fn delete_snapshot(&self, vm: &str, name: &str) -> Result<()> {
        check_name(name)?;
        let spec = self.vm(vm)?;
        let disks = snapshot_disks(spec)?;
        let what = || format!("removing snapshot {name} of VM {vm}");
        let conn = self.connection()?;
        let dom = self
            .lookup_domain(&conn, &spec.libvirt_name)?
            .filter(|d| d.is_active().unwrap_or(false));
        if let Some(snap) = dom.and_then(|d| Domain::lookup_snapshot_by_name(&d, name, 0).ok()) {
            snap.delete(0)
                .map_err(|e| ProviderError::libvirt(what(), e))?;
        } else {
            for d in disks.iter().filter(|d| d.path.exists()) {
                if internal_snapshots(&d.path)?.iter().any(|s| s == name) {
                    run(
                        Command::new("qemu-img")
                            .args(["snapshot", "-d", name])
                            .arg(&d.path),
                        &what(),
                    )?;
                }
            }
        }
        let xml_path = self.snapshot_xml_path(vm, name);
        match std::fs::remove_file(&xml_path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(ProviderError::io("removing the snapshot XML", &xml_path, e))
            }
            _ => Ok(()),
        }
    }

    /// Whether every disk holds an internal snapshot `name` (`qemu-img
    /// snapshot -l`, shared so a running VM's images can be read).
    fn disks_have(&self, disks: &[SnapshotDisk], name: &str) -> Result<bool> {
        if disks.is_empty() {
            return Ok(false);
        }
        for d in disks {
            if !internal_snapshots(&d.path)?.iter().any(|s| s == name) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Reverts the VM to its snapshot `name` (see [`crate::snapshot`]).
    pub fn revert_snapshot(&self, vm: &str, name: &str) -> Result<()> {
        check_name(name)?;
        let spec = self.vm(vm)?;
        self.default_host_only(spec, "snapshots")?;
        let disks = snapshot_disks(spec)?;
        let xml_path = self.snapshot_xml_path(vm, name);
        if xml_path.exists() {
            return self.revert_with_memory(spec, name, &xml_path);
        }
        if !self.disks_have(&disks, name)? {
            return Err(ProviderError::NotFound(format!(
                "VM {vm} has no snapshot named `{name}`"
            )));
        }
        self.stop(vm)?;
        for d in &disks {
            run(
                Command::new("qemu-img")
                    .args(["snapshot", "-a", name])
                    .arg(&d.path),
                &format!("reverting disk '{}' of VM {vm} to snapshot {name}", d.name),
            )?;
        }
        Ok(())
    }

    fn revert_with_memory(&self, spec: &VmSpec, name: &str, xml_path: &Path) -> Result<()> {
        let vm = &spec.name;
        let what = || format!("reverting VM {vm} to snapshot {name}");
        let conn = self.connection()?;
        let dom = match self.lookup_domain(&conn, &spec.libvirt_name)? {
            Some(d) if d.is_active().unwrap_or(false) => d,
            _ => {
                // Created paused: QEMU runs no guest code before the revert
                // loads the snapshot's memory.
                self.create_domain(&conn, spec, sys::VIR_DOMAIN_START_PAUSED)?;
                self.lookup_domain(&conn, &spec.libvirt_name)?
                    .ok_or_else(|| ProviderError::Spec(format!("{}: domain vanished", what())))?
            }
        };
        let snap = match Domain::lookup_snapshot_by_name(&dom, name, 0) {
            Ok(s) => s,
            Err(_) => {
                let stored = std::fs::read_to_string(xml_path)
                    .map_err(|e| ProviderError::io("reading the snapshot XML", xml_path, e))?;
                let uuid = dom
                    .uuid_string()
                    .map_err(|e| ProviderError::libvirt(what(), e))?;
                tracing::debug!("VM {vm}: redefining snapshot {name} in libvirt");
                dom.create_snapshot_xml(
                    &redefinable_xml(&stored, &uuid)?,
                    sys::VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE,
                )
                .map_err(|e| ProviderError::libvirt(what(), e))?
            }
        };
        snap.revert(sys::VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING | sys::VIR_DOMAIN_SNAPSHOT_REVERT_FORCE)
            .map_err(|e| ProviderError::libvirt(what(), e))
    }

    /// Removes the snapshots lago recorded for the environment's VMs (the
    /// keys of each VM's `snapshots`) from their images, and the kept XML.
    /// For `cleanup`, after the domains are gone; images that are missing
    /// are skipped.
    pub fn remove_snapshots(&self) -> Result<()> {
        for vm in self.env().domains.values() {
            let names: Vec<&String> = match vm.extra.get("snapshots") {
                Some(serde_json::Value::Object(m)) => m.keys().collect(),
                _ => continue,
            };
            let Ok(disks) = snapshot_disks(vm) else {
                continue;
            };
            for d in disks.iter().filter(|d| d.path.exists()) {
                let present = internal_snapshots(&d.path)?;
                for name in names.iter().filter(|n| present.contains(n)) {
                    run(
                        Command::new("qemu-img")
                            .args(["snapshot", "-d", name.as_str()])
                            .arg(&d.path),
                        &format!("removing snapshot {name} of VM {}", vm.name),
                    )?;
                }
            }
        }
        let dir = self.env().prefix.path.join("snapshots");
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(ProviderError::io("removing the snapshots folder", &dir, e))
            }
            _ => Ok(()),
        }
    }
}

/// The names of the internal snapshots of a qcow2 image.
pub fn internal_snapshots(path: &Path) -> Result<Vec<String>> {
    let out = run(
        Command::new("qemu-img")
            .args(["info", "--force-share", "--output=json"])
            .arg(path),
        &format!("reading the snapshots of {}", path.display()),
    )?;
    let info: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| ProviderError::Spec(format!("qemu-img info of {}: {e}", path.display())))?;
    Ok(info
        .get("snapshots")
        .and_then(|s| s.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.get("name").and_then(|n| n.as_str()))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_snapshot_name("clean-1.0_a"));
        for bad in ["", ".x", "-x", "a/b", "a b", "é", &"x".repeat(65)] {
            assert!(!valid_snapshot_name(bad), "{bad:?}");
            assert!(check_name(bad).is_err());
        }
    }

    #[test]
    fn redefinable_xml_takes_the_new_uuid_and_drops_the_parent() -> Result<()> {
        let stored = "<domainsnapshot><name>s2</name><parent><name>s1</name></parent>\
            <domain type='qemu'><name>d</name><uuid>aaaa</uuid></domain></domainsnapshot>";
        let xml = redefinable_xml(stored, "bbbb")?;
        assert_eq!(
            xml,
            "<domainsnapshot><name>s2</name>\
             <domain type='qemu'><name>d</name><uuid>bbbb</uuid></domain></domainsnapshot>"
        );
        assert!(redefinable_xml("<domainsnapshot/>", "b").is_err());
        Ok(())
    }
}
