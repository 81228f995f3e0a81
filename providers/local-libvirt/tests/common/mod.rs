//! Shared fixtures: a planned environment like the host's planner makes.

#![allow(dead_code)]

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use lago_plugin_api::spec::EnvSpec;
use lago_provider_local_libvirt::options::{DomainTypeSetting, ProviderOptions};
use serde_json::json;

pub const TEST_URI: &str = "test:///default";

/// A uuid unique to this process and call, so that tests running in
/// parallel on the shared `test:///default` driver never share a tag.
pub fn unique_uuid() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tag = (std::process::id().wrapping_mul(2_654_435_761) ^ nanos ^ (n << 24)) | 0x1000_0000;
    format!("{tag:08x}{:024x}", n)
}

/// A 3-network (management NAT, second NAT, bridge), 3-VM environment in
/// `prefix` whose every disk path and seed lives under the prefix.
pub fn sample_env(prefix: &Path) -> EnvSpec {
    let uuid = unique_uuid();
    let tag = &uuid[..8];
    let img = |f: &str| prefix.join("images").join(f).display().to_string();
    let v = json!({
        "prefix": {"name": "default", "path": prefix, "uuid": uuid},
        "nets": {
            "lago": {
                "name": "lago", "type": "nat", "management": true,
                "libvirt_name": format!("{tag}-lago"), "bridge": format!("{tag}-lago"),
                "gw": "192.168.200.1", "prefix_len": 24,
                "dhcp": {"start": "192.168.200.100", "end": "192.168.200.254"},
                "dns_domain_name": "lago.local",
                "mappings": [
                    {"vm": "vm0", "ip": "192.168.200.2", "mac": "54:52:c0:a8:c8:02",
                     "hostnames": ["vm0", "vm0-eth0", "vm0-lago"]},
                    {"vm": "vm1", "ip": "192.168.200.3", "mac": "54:52:c0:a8:c8:03",
                     "hostnames": ["vm1", "vm1-eth0", "vm1-lago"]},
                    {"vm": "vm2", "ip": "192.168.200.4", "mac": "54:52:c0:a8:c8:04",
                     "hostnames": ["vm2", "vm2-eth0", "vm2-lago"]}
                ]
            },
            "storage": {
                "name": "storage", "type": "nat",
                "libvirt_name": format!("{tag}-storage"), "bridge": format!("{tag}-stor"),
                "gw": "192.168.201.1", "mtu": 9000,
                "dhcp": {"start": "192.168.201.100", "end": "192.168.201.254"},
                "mappings": [
                    {"vm": "vm0", "ip": "192.168.201.2", "mac": "54:52:c0:a8:c9:02",
                     "hostnames": ["vm0-eth1", "vm0-storage"]}
                ]
            },
            "isolated": {
                "name": "isolated", "type": "bridge",
                "libvirt_name": format!("{tag}-isolated"), "bridge": format!("{tag}-iso")
            }
        },
        "domains": {
            "vm0": {
                "name": "vm0", "libvirt_name": format!("{tag}-vm0"),
                "memory": 256, "vcpu": 2, "mgmt_net": "lago",
                "vm-provider": "local-libvirt", "vm-type": "default",
                "nics": [
                    {"net": "lago", "ip": "192.168.200.2", "mac": "54:52:c0:a8:c8:02"},
                    {"net": "storage", "ip": "192.168.201.2", "mac": "54:52:c0:a8:c9:02"},
                    {"net": "isolated", "mac": "54:52:00:00:00:05"}
                ],
                "disks": [
                    {"type": "template", "name": "root", "dev": "vda", "format": "qcow2",
                     "path": img("vm0_root.qcow2"), "base": img("base.qcow2"), "base_format": "qcow2"},
                    {"type": "empty", "name": "data", "dev": "sda", "format": "raw",
                     "path": img("vm0_data.raw"), "size": "8M"},
                    {"type": "empty", "name": "more", "dev": "sdb", "format": "qcow2",
                     "path": img("vm0_more.qcow2"), "size": "16M"}
                ],
                "root-password": "secret"
            },
            "vm1": {
                "name": "vm1", "libvirt_name": format!("{tag}-vm1"),
                "memory": 256, "vcpu": 1, "mgmt_net": "lago", "cpu_model": "Westmere",
                "vm-provider": "local-libvirt", "vm-type": "default",
                "nics": [{"net": "lago", "ip": "192.168.200.3", "mac": "54:52:c0:a8:c8:03"}],
                "disks": [
                    {"type": "template", "name": "root", "dev": "vda", "format": "qcow2",
                     "path": img("vm1_root.qcow2"), "base": img("base.qcow2"), "base_format": "qcow2"},
                    {"type": "file", "name": "iso", "dev": "hdc", "format": "iso",
                     "path": img("install.iso")}
                ]
            },
            "vm2": {
                "name": "vm2", "libvirt_name": format!("{tag}-vm2"),
                "memory": 128, "vcpu": 2, "mgmt_net": "lago", "bootstrap": false,
                "cpu_custom": {
                    "@mode": "custom", "@match": "exact",
                    "model": {"@fallback": "allow", "#text": "Westmere"},
                    "feature": {"@policy": "optional", "@name": "vmx"}
                },
                "vm-provider": "local-libvirt", "vm-type": "default",
                "nics": [{"net": "lago", "ip": "192.168.200.4", "mac": "54:52:c0:a8:c8:04"}],
                "disks": [
                    {"type": "template", "name": "root", "dev": "sda", "format": "qcow2",
                     "path": img("vm2_root.qcow2"), "base": img("base.qcow2"), "base_format": "qcow2"}
                ]
            }
        }
    });
    serde_json::from_value(v).expect("the sample environment deserialises")
}

/// Options for the test driver, TCG, IPv6 on.
pub fn test_options() -> ProviderOptions {
    ProviderOptions {
        libvirt_url: TEST_URI.to_string(),
        domain_type: DomainTypeSetting::Qemu,
        ..ProviderOptions::default()
    }
}
