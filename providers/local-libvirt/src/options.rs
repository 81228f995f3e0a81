//! The provider's settings and the choice between KVM and TCG.
//!
//! Settings come from lago's layered configuration. Until the host hands them
//! over explicitly, [`ProviderOptions::from_env`] reads the environment
//! variables that the configuration layer maps to them (`LAGO_VAR` →
//! `[lago] var`, `LAGO__SECTION__VAR` → `[section] var`).

use std::path::Path;
use std::time::Duration;

use crate::error::{ProviderError, Result};

/// Default libvirt URI (Lago's `libvirt_url`).
pub const DEFAULT_LIBVIRT_URL: &str = "qemu:///system";

/// The hypervisor type written in `<domain type=..>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainType {
    /// Hardware acceleration.
    Kvm,
    /// QEMU's TCG emulation.
    Qemu,
}

impl DomainType {
    pub fn as_str(self) -> &'static str {
        match self {
            DomainType::Kvm => "kvm",
            DomainType::Qemu => "qemu",
        }
    }
}

/// `[lago] domain_type`: `auto`, `kvm` or `qemu`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DomainTypeSetting {
    /// KVM when [`kvm_usable`] says so, otherwise TCG.
    #[default]
    Auto,
    Kvm,
    Qemu,
}

impl std::str::FromStr for DomainTypeSetting {
    type Err = ProviderError;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(DomainTypeSetting::Auto),
            "kvm" => Ok(DomainTypeSetting::Kvm),
            "qemu" | "tcg" => Ok(DomainTypeSetting::Qemu),
            other => Err(ProviderError::Config(format!(
                "domain_type: '{other}' is not one of auto, kvm, qemu"
            ))),
        }
    }
}

/// How the NoCloud seed image is attached to the VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SeedBus {
    /// A read-only cdrom on the SATA (AHCI) bus, `sdX` (the default; needs
    /// the guest's `ahci`, `sr_mod` and `isofs` drivers).
    #[default]
    Sata,
    /// A read-only cdrom on the IDE bus, `hdX` (`ata_piix`).
    Ide,
    /// A read-only cdrom on the virtio-scsi bus, `sdX` (`virtio_scsi`).
    Scsi,
    /// A read-only virtio disk, `vdX` (`virtio_blk`, usually already loaded
    /// for the root disk).
    Virtio,
}

impl std::str::FromStr for SeedBus {
    type Err = ProviderError;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "sata" => Ok(SeedBus::Sata),
            "ide" => Ok(SeedBus::Ide),
            "scsi" => Ok(SeedBus::Scsi),
            "virtio" => Ok(SeedBus::Virtio),
            other => Err(ProviderError::Config(format!(
                "seed_bus: '{other}' is not one of sata, ide, scsi, virtio"
            ))),
        }
    }
}

/// Everything the provider can be told besides the environment itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderOptions {
    /// `[lago] libvirt_url` (`LAGO_LIBVIRT_URL`), default `qemu:///system`.
    pub libvirt_url: String,
    /// `[lago] libvirt_user` / `libvirt_password` (`LAGO_LIBVIRT_USER`,
    /// `LAGO_LIBVIRT_PASSWORD`): SASL credentials, unset by default.
    pub libvirt_auth: crate::auth::Credentials,
    /// `[lago] domain_type` (`LAGO_DOMAIN_TYPE`), default `auto`.
    pub domain_type: DomainTypeSetting,
    /// `[local-libvirt] ipv6` (`LAGO__LOCAL_LIBVIRT__IPV6`), default true:
    /// NAT networks also get Lago's IPv6 ULA subnet.
    pub ipv6: bool,
    /// `[local-libvirt] seed_bus` (`LAGO__LOCAL_LIBVIRT__SEED_BUS`).
    pub seed_bus: SeedBus,
    /// `[local-libvirt] tcg_cpu` (`LAGO__LOCAL_LIBVIRT__TCG_CPU`): the CPU of
    /// TCG guests without `cpu_model`/`cpu_custom`: `maximum` (default,
    /// every feature TCG emulates, QEMU's `-cpu max`), `default` (no `<cpu>`
    /// element: QEMU's `qemu64`), or a libvirt model name.
    pub tcg_cpu: String,
    /// `[local-libvirt] shutdown_timeout` seconds
    /// (`LAGO__LOCAL_LIBVIRT__SHUTDOWN_TIMEOUT`): how long `shutdown` waits
    /// for the domain to go away, default 300 (Lago's 5 minutes).
    pub shutdown_timeout: Duration,
}

impl Default for ProviderOptions {
    fn default() -> Self {
        ProviderOptions {
            libvirt_url: DEFAULT_LIBVIRT_URL.to_string(),
            libvirt_auth: crate::auth::Credentials::default(),
            domain_type: DomainTypeSetting::Auto,
            ipv6: true,
            seed_bus: SeedBus::Sata,
            tcg_cpu: "maximum".to_string(),
            shutdown_timeout: Duration::from_secs(300),
        }
    }
}

impl ProviderOptions {
    /// Reads the settings through `lookup(section, key)`; absent or empty
    /// values keep their defaults.
    pub fn from_lookup(lookup: impl Fn(&str, &str) -> Option<String>) -> Result<Self> {
        let get = |section: &str, key: &str| lookup(section, key).filter(|v| !v.trim().is_empty());
        let mut o = ProviderOptions::default();
        if let Some(v) = get("lago", "libvirt_url") {
            o.libvirt_url = v.trim().to_string();
        }
        o.libvirt_auth = crate::auth::Credentials {
            user: get("lago", "libvirt_user"),
            password: get("lago", "libvirt_password"),
        };
        if let Some(v) = get("lago", "domain_type") {
            o.domain_type = v.parse()?;
        }
        if let Some(v) = get("local-libvirt", "ipv6") {
            o.ipv6 = parse_bool(&v)
                .ok_or_else(|| ProviderError::Config(format!("ipv6: '{v}' is not a boolean")))?;
        }
        if let Some(v) = get("local-libvirt", "seed_bus") {
            o.seed_bus = v.parse()?;
        }
        if let Some(v) = get("local-libvirt", "tcg_cpu") {
            o.tcg_cpu = v.trim().to_string();
        }
        if let Some(v) = get("local-libvirt", "shutdown_timeout") {
            let secs: f64 = v.trim().parse().map_err(|_| {
                ProviderError::Config(format!(
                    "shutdown_timeout: '{v}' is not a number of seconds"
                ))
            })?;
            if !(0.0..=86_400.0).contains(&secs) {
                return Err(ProviderError::Config(format!(
                    "shutdown_timeout: {secs} is outside 0..86400 seconds"
                )));
            }
            o.shutdown_timeout = Duration::from_secs_f64(secs);
        }
        Ok(o)
    }

    /// Reads the settings from the environment: `LAGO_LIBVIRT_URL`,
    /// `LAGO_DOMAIN_TYPE`, `LAGO__LOCAL_LIBVIRT__<KEY>`.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|section, key| std::env::var(env_var_name(section, key)).ok())
    }
}

/// The environment variable the configuration layer maps to `[section] key`.
pub fn env_var_name(section: &str, key: &str) -> String {
    let norm = |s: &str| s.replace('-', "_").to_ascii_uppercase();
    if section == "lago" {
        format!("LAGO_{}", norm(key))
    } else {
        format!("LAGO__{}__{}", norm(section), norm(key))
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Decides `auto`.
///
/// `auto` does NOT trust `/dev/kvm`'s mere presence: on nested "PVM" KVM
/// hosts (the `kvm_pvm` module) the device opens fine but ordinary guest
/// kernels hang under it. KVM is chosen only when all of these hold:
///
/// 1. `/dev/kvm` opens read-write;
/// 2. the `kvm_pvm` module is not loaded (`/sys/module/kvm_pvm` absent);
/// 3. the host CPU advertises hardware virtualisation (`vmx` or `svm` in
///    `/proc/cpuinfo`), which PVM hosts do not;
/// 4. libvirt offers a `kvm` domain for x86_64 hvm guests in its
///    capabilities (`caps_offer_kvm`, when the caller knows it: a libvirtd
///    that cannot see `/dev/kvm`, like the test sandbox's, says no).
///
/// Otherwise TCG (`qemu`). Set `domain_type = kvm` (or `LAGO_DOMAIN_TYPE=kvm`)
/// to force KVM, `qemu` to force TCG.
pub fn resolve_domain_type(setting: DomainTypeSetting, caps_offer_kvm: Option<bool>) -> DomainType {
    match setting {
        DomainTypeSetting::Kvm => DomainType::Kvm,
        DomainTypeSetting::Qemu => DomainType::Qemu,
        DomainTypeSetting::Auto => {
            if caps_offer_kvm == Some(false) || !kvm_usable(Path::new("/")) {
                DomainType::Qemu
            } else {
                DomainType::Kvm
            }
        }
    }
}

/// Checks 1–3 of [`resolve_domain_type`] under `root` (`/` in production).
pub fn kvm_usable(root: &Path) -> bool {
    let dev = root.join("dev/kvm");
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&dev)
        .is_err()
    {
        return false;
    }
    if root.join("sys/module/kvm_pvm").exists() {
        return false;
    }
    match std::fs::read_to_string(root.join("proc/cpuinfo")) {
        Ok(info) => cpuinfo_has_hw_virt(&info),
        Err(_) => false,
    }
}

fn cpuinfo_has_hw_virt(info: &str) -> bool {
    info.lines()
        .filter(|l| l.starts_with("flags"))
        .flat_map(|l| l.split_whitespace())
        .any(|f| f == "vmx" || f == "svm")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn defaults_and_lookup() {
        let o = ProviderOptions::from_lookup(|_, _| None).expect("defaults");
        assert_eq!(o, ProviderOptions::default());
        assert_eq!(o.libvirt_url, "qemu:///system");

        let m: HashMap<(&str, &str), &str> = [
            (("lago", "libvirt_url"), "test:///default"),
            (("lago", "domain_type"), "QEMU"),
            (("local-libvirt", "ipv6"), "no"),
            (("local-libvirt", "seed_bus"), "virtio"),
            (("local-libvirt", "shutdown_timeout"), "2.5"),
        ]
        .into_iter()
        .collect();
        let o = ProviderOptions::from_lookup(|s, k| m.get(&(s, k)).map(|v| v.to_string()))
            .expect("parsed");
        assert_eq!(o.libvirt_url, "test:///default");
        assert_eq!(o.domain_type, DomainTypeSetting::Qemu);
        assert!(!o.ipv6);
        assert_eq!(o.seed_bus, SeedBus::Virtio);
        assert_eq!(o.shutdown_timeout, Duration::from_millis(2500));
    }

    #[test]
    fn bad_values_are_config_errors() {
        for (s, k, v) in [
            ("lago", "domain_type", "xen"),
            ("local-libvirt", "ipv6", "maybe"),
            ("local-libvirt", "seed_bus", "usb"),
            ("local-libvirt", "shutdown_timeout", "soon"),
        ] {
            let err =
                ProviderOptions::from_lookup(|s2, k2| (s2 == s && k2 == k).then(|| v.to_string()))
                    .expect_err("refused");
            assert!(err.to_string().contains(v), "{err}");
        }
    }

    #[test]
    fn env_names() {
        assert_eq!(env_var_name("lago", "libvirt_url"), "LAGO_LIBVIRT_URL");
        assert_eq!(
            env_var_name("local-libvirt", "seed_bus"),
            "LAGO__LOCAL_LIBVIRT__SEED_BUS"
        );
    }

    #[test]
    fn explicit_settings_win() {
        assert_eq!(
            resolve_domain_type(DomainTypeSetting::Kvm, Some(false)),
            DomainType::Kvm
        );
        assert_eq!(
            resolve_domain_type(DomainTypeSetting::Qemu, Some(true)),
            DomainType::Qemu
        );
        assert_eq!(
            resolve_domain_type(DomainTypeSetting::Auto, Some(false)),
            DomainType::Qemu
        );
    }

    #[test]
    fn kvm_probe_refuses_pvm_and_missing_hw_virt() {
        let root = tempfile::tempdir().expect("tempdir");
        let r = root.path();
        // no /dev/kvm
        assert!(!kvm_usable(r));
        std::fs::create_dir_all(r.join("dev")).expect("dev");
        std::fs::create_dir_all(r.join("proc")).expect("proc");
        std::fs::write(r.join("dev/kvm"), "").expect("kvm");
        std::fs::write(r.join("proc/cpuinfo"), "flags\t: fpu sse2 hypervisor\n").expect("info");
        assert!(!kvm_usable(r), "no vmx/svm");
        std::fs::write(r.join("proc/cpuinfo"), "flags\t: fpu vmx sse2\n").expect("info");
        assert!(kvm_usable(r));
        std::fs::create_dir_all(r.join("sys/module/kvm_pvm")).expect("pvm");
        assert!(!kvm_usable(r), "PVM host");
    }

    #[test]
    fn this_machine_is_not_trusted_with_kvm_when_pvm() {
        // On the project's machines /dev/kvm is PVM: auto must pick TCG.
        if Path::new("/sys/module/kvm_pvm").exists() {
            assert_eq!(
                resolve_domain_type(DomainTypeSetting::Auto, None),
                DomainType::Qemu
            );
        }
    }
}
