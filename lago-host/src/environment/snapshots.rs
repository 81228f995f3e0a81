//! `lago snapshot` and `lago revert` over the providers' `create_snapshot`
//! and `revert_snapshot`.
//!
//! Each VM's snapshots are recorded in its stored spec (`snapshots`, as Lago
//! kept them): snapshot name → the disks it holds (`name`, `dev`, `path`,
//! `format`), each also saying whether the VM's memory was kept (`memory`)
//! and the VM's state when it was taken (`state`). A new lago process sees
//! them; `status` lists their names; `destroy` removes them with the prefix.

use std::collections::BTreeMap;
use std::sync::Mutex;

use lago_plugin_api::spec::{valid_snapshot_name, SnapshotInfo, VmSpec};
use serde_json::{json, Map, Value};

use super::{default_host_only, ssh_target, Env, VmState};
use crate::error::Error;
use crate::progress;

/// The key of a VM's spec that holds its snapshots.
pub const SNAPSHOTS_KEY: &str = "snapshots";

/// The recorded snapshots of a VM: name → its disks (Lago's shape).
pub fn vm_snapshots(vm: &VmSpec) -> Map<String, Value> {
    match vm.extra.get(SNAPSHOTS_KEY) {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    }
}

/// What was recorded for snapshot `name` of `vm`: whether memory was kept
/// and the VM's state then (the first disk's entry says it for the VM).
fn recorded(vm: &VmSpec, name: &str) -> Option<(bool, VmState)> {
    let snaps = vm_snapshots(vm);
    let disk = snaps.get(name)?.as_array()?.first().cloned();
    let memory = disk
        .as_ref()
        .and_then(|d| d.get("memory"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let state = disk
        .as_ref()
        .and_then(|d| d.get("state"))
        .and_then(Value::as_str)
        .map_or(VmState::Down, VmState::from_provider);
    Some((memory, state))
}

/// A snapshot as recorded: one entry per disk.
fn record(info: &SnapshotInfo) -> Value {
    Value::Array(
        info.disks
            .iter()
            .map(|d| {
                json!({
                    "name": d.name,
                    "dev": d.dev,
                    "path": d.path.display().to_string(),
                    "format": d.format,
                    "memory": info.memory,
                    "state": info.state,
                })
            })
            .collect(),
    )
}

impl Env<'_> {
    /// `lago snapshot -l`: `{VM: {snapshot: [disk, ...]}}` for the VMs named
    /// (all when none).
    pub(crate) fn snapshots_of(&self, names: &[String]) -> Result<Value, Error> {
        let vms = self.select(names)?;
        Ok(Value::Object(
            vms.iter()
                .map(|vm| (vm.name.clone(), Value::Object(vm_snapshots(vm))))
                .collect(),
        ))
    }

    /// `lago snapshot NAME [-n VM...]`: flushes each running VM's file
    /// systems (`sync` over SSH), then snapshots every VM in parallel and
    /// records the snapshots in the prefix. All or nothing: a bad or taken
    /// name, or a VM its provider cannot snapshot (a raw disk), is refused
    /// before any snapshot is taken; when one still fails, the snapshots
    /// this call took are removed again.
    pub(crate) fn snapshot_vms(&mut self, name: &str, names: &[String]) -> Result<(), Error> {
        if !valid_snapshot_name(name) {
            return Err(Error::user(format!(
                "snapshot name `{name}`: expected 1 to 64 letters, digits, `.`, `_` or `-`, \
                 not starting with `.` or `-`"
            )));
        }
        let vms = self.select(names)?;
        default_host_only(&vms, "snapshots")?;
        let taken: Vec<&str> = vms
            .iter()
            .filter(|vm| vm_snapshots(vm).contains_key(name))
            .map(|vm| vm.name.as_str())
            .collect();
        if !taken.is_empty() {
            return Err(Error::user(format!(
                "snapshot name `{name}` is already taken by VM {}; choose another name",
                taken.join(", ")
            )));
        }
        let refused: Vec<String> = vms
            .iter()
            .filter_map(|vm| {
                let checked = self.provider(vm).and_then(|p| p.check_snapshot(vm, name));
                checked.err().map(|e| e.to_string())
            })
            .collect();
        if !refused.is_empty() {
            return Err(Error::user(format!(
                "snapshot `{name}`: {}; no snapshot was taken",
                refused.join("; ")
            )));
        }
        let made: Mutex<BTreeMap<String, SnapshotInfo>> = Mutex::new(BTreeMap::new());
        let result = self.each_vm(&vms, |vm| {
            let provider = self.provider(vm)?;
            if provider.state(vm)?.is_running() {
                self.flush(vm);
            }
            let json = provider.create_snapshot(vm, name)?;
            let info: SnapshotInfo = serde_json::from_str(&json)?;
            tracing::info!(
                "VM `{}`: snapshot `{name}` taken ({})",
                vm.name,
                if info.memory {
                    "with memory"
                } else {
                    "disk only"
                }
            );
            made.lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(vm.name.clone(), info);
            Ok(())
        });
        let mut made = made.into_inner().unwrap_or_else(|p| p.into_inner());
        if result.is_err() {
            // All or nothing: what was taken is removed again; what cannot
            // be is recorded (listed, removed with the prefix).
            made.retain(|vm_name, _| !self.undo_snapshot(vm_name, name));
        }
        let prefix = &self.prefix;
        for (vm_name, info) in made {
            if !self.spec.domains.contains_key(&vm_name) {
                continue;
            }
            // Recorded on the stored spec under the state lock: another
            // process may have changed this VM since it was loaded.
            let stored = prefix.update_vm(&vm_name, |vm| {
                let mut snaps = vm_snapshots(vm);
                snaps.insert(name.to_string(), record(&info));
                vm.extra
                    .insert(SNAPSHOTS_KEY.to_string(), Value::Object(snaps));
            })?;
            if let Some(vm) = self.spec.domains.get_mut(&vm_name) {
                vm.extra = stored.extra;
            }
        }
        result
    }

    /// Removes snapshot `name` of VM `vm_name` that this `lago snapshot`
    /// took before another VM's failed; false (with a warning) when it
    /// cannot.
    fn undo_snapshot(&self, vm_name: &str, name: &str) -> bool {
        let Some(vm) = self.spec.domains.get(vm_name) else {
            return false;
        };
        let deleted = self
            .provider(vm)
            .and_then(|p| p.delete_snapshot(vm_name, name));
        match deleted {
            Ok(()) => {
                tracing::info!("VM `{vm_name}`: snapshot `{name}` removed again");
                true
            }
            Err(e) => {
                tracing::warn!("snapshot `{name}` could not be removed again: {e}");
                false
            }
        }
    }

    /// Flushes the guest's file systems before a snapshot; a VM that does not
    /// answer gets a warning (its snapshot is then crash-consistent).
    fn flush(&self, vm: &VmSpec) {
        let r = ssh_target(&self.spec, vm).and_then(|t| {
            self.ssh
                .exec(&t, &["sync"], None, None)
                .map_err(|e| Error::user(e.chain_string()))
        });
        match r {
            Ok(st) if st.code == 0 => {}
            Ok(st) => tracing::warn!("VM `{}`: sync exited with {}", vm.name, st.code),
            Err(e) => tracing::warn!("VM `{}`: cannot flush its file systems: {e}", vm.name),
        }
    }

    /// `lago revert NAME`: every VM back to its snapshot `name`, disks and
    /// run state. A VM that lacks the snapshot is an error before anything
    /// changes. VMs that were running when it was taken run again and answer
    /// SSH when this returns; the others are down.
    pub(crate) fn revert_vms(&self, name: &str, names: &[String]) -> Result<(), Error> {
        let vms = self.select(names)?;
        let mut plan = BTreeMap::new();
        for vm in &vms {
            let Some(rec) = recorded(vm, name) else {
                let have: Vec<String> = vm_snapshots(vm).keys().cloned().collect();
                return Err(Error::user(format!(
                    "VM `{}` has no snapshot named `{name}` (it has: {}); nothing was reverted",
                    vm.name,
                    if have.is_empty() {
                        "none".to_string()
                    } else {
                        have.join(", ")
                    }
                )));
            };
            plan.insert(vm.name.clone(), rec);
        }
        let runs = |vm: &VmSpec| plan.get(&vm.name).is_some_and(|(_, s)| s.is_defined());
        let running: Vec<&VmSpec> = vms.iter().copied().filter(|vm| runs(vm)).collect();
        self.start_networks_of(&running)?;
        self.each_vm(&vms, |vm| {
            self.forget_ssh(vm);
            let provider = self.provider(vm)?;
            provider.revert_snapshot(vm, name)?;
            if !runs(vm) {
                return Ok(());
            }
            // A disk-only snapshot of a running VM: boot it from the disks.
            if !provider.state(vm)?.is_running() {
                provider.start(vm)?;
            }
            let waiting = "reverted, waiting for SSH";
            let stage = progress::stage(&vm.name, waiting);
            self.wait_for_ssh(vm, &stage, waiting)
        })?;
        let down: Vec<&VmSpec> = vms.iter().copied().filter(|vm| !runs(vm)).collect();
        self.stop_idle_networks(&down)
    }
}
