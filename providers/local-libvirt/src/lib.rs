//! The `local-libvirt` vm-provider plugin: VMs and networks on a local
//! libvirt (QEMU/KVM or TCG), through the `virt` crate.
//!
//! Built as a `cdylib` (`liblago_provider_local_libvirt.so`, loaded by
//! `lago`) and as an `rlib` (for tests). The provider is
//! [`plugin::LocalLibvirt`], a plain
//! [`VmProviderPlugin`](lago_plugin_api::VmProviderPlugin); the macro below
//! exports it.

pub mod auth;
pub mod diagnose;
pub mod disks;
pub mod domain;
pub mod error;
pub mod export;
pub mod net;
pub mod offline;
pub mod options;
pub mod plugin;
pub mod remote;
pub mod saveimage;
pub mod seed;
pub mod session;
pub mod snapshot;
pub mod tools;
pub mod tunnel;
pub mod warm;
mod warm_start;
pub mod xml;

lago_plugin_api::export_plugins! {
    providers: ["local-libvirt" => plugin::LocalLibvirt],
}
