//! [`Env`]'s snapshot, revert and export calls (`lago snapshot`, `lago
//! revert`, `lago export`), over the environment's own implementations.

use serde_json::Value;

use super::{Env, SdkError};
pub use crate::environment::ExportOptions;

impl Env<'_> {
    /// `lago snapshot NAME [-n VM...]`: snapshot the VMs named (all when
    /// `vms` is empty) under `name`; a running VM keeps its memory too. Its
    /// file systems are flushed first (`sync` over SSH). A bad or taken name
    /// is [`SdkError::BadInput`] before anything is done.
    pub fn snapshot(&mut self, name: &str, vms: &[String]) -> Result<(), SdkError> {
        Ok(self.snapshot_vms(name, vms)?)
    }

    /// `lago snapshot -l`: `{VM: {snapshot: [disk, ...]}}` for the VMs named
    /// (all when `vms` is empty).
    pub fn list_snapshots(&self, vms: &[String]) -> Result<Value, SdkError> {
        Ok(self.snapshots_of(vms)?)
    }

    /// `lago revert NAME [-n VM...]`: the VMs named (all when `vms` is
    /// empty) back to their snapshot `name`, disks and run state; VMs that
    /// were running answer SSH when this returns. A VM without that snapshot
    /// is [`SdkError::BadInput`] before anything changes.
    pub fn revert(&self, name: &str, vms: &[String]) -> Result<(), SdkError> {
        Ok(self.revert_vms(name, vms)?)
    }

    /// `lago export`: the disks of the VMs in `opts` (layered or standalone,
    /// optionally xz-compressed) and an init file into `opts.dst_dir`;
    /// returns what was (or, with `collect_only`, would be) exported.
    pub fn export(&self, opts: &ExportOptions) -> Result<Value, SdkError> {
        Ok(self.export_vms(opts)?)
    }
}
