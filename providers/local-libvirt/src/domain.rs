//! Domain XML, as Lago writes it.
//!
//! [`domain_xml`] is a pure function of the planned environment, the VM and
//! [`DomainXmlOptions`]; the session fills the options from the connection
//! (domain type, host CPU) and the prefix (is there a seed?).

use std::path::{Path, PathBuf};

use lago_plugin_api::spec::{DiskSpec, EnvSpec, VmSpec};

use crate::error::{ProviderError, Result};
use crate::options::{DomainType, SeedBus};
use crate::xml::{element_from_dict, Element};

/// The guest agent's virtio-serial channel name.
pub const GUEST_AGENT_CHANNEL: &str = "org.qemu.guest_agent.0";
/// The virtio-serial port of the guest's identity agent (warm starts).
pub const IDENTITY_CHANNEL: &str = "org.lago.id.0";

/// What [`domain_xml`] needs besides the spec.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainXmlOptions {
    pub domain_type: DomainType,
    /// The nested-virtualisation CPU feature (`vmx`/`svm`) to require with
    /// `cpu_model`, when the host has it and the model is of the host's
    /// vendor (see [`nested_feature`]). Only used for KVM domains.
    pub nested_feature: Option<String>,
    /// The CPU of TCG guests without `cpu_model`/`cpu_custom`:
    /// `maximum`, `default` or a model name (see
    /// [`crate::options::ProviderOptions::tcg_cpu`]).
    pub tcg_cpu: String,
    /// The NoCloud seed image to attach, if any.
    pub seed: Option<PathBuf>,
    pub seed_bus: SeedBus,
    /// Where the serial console is logged; None: the prefix's
    /// `logs/<vm>.console.log` (a VM on another host logs into a volume
    /// there).
    pub console_log: Option<PathBuf>,
    /// A warm image's boot domain: `<genid/>` (libvirt makes a new one at
    /// each restore, which reseeds a vmgenid-aware guest's RNG) and the
    /// identity agent's channel [`IDENTITY_CHANNEL`].
    pub warm_identity: bool,
}

impl Default for DomainXmlOptions {
    fn default() -> Self {
        DomainXmlOptions {
            domain_type: DomainType::Qemu,
            nested_feature: None,
            tcg_cpu: "maximum".to_string(),
            seed: None,
            seed_bus: SeedBus::Sata,
            console_log: None,
            warm_identity: false,
        }
    }
}

/// The bus of a guest disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskBus {
    Virtio,
    Scsi,
    Ide,
    Sata,
}

impl DiskBus {
    pub fn as_str(self) -> &'static str {
        match self {
            DiskBus::Virtio => "virtio",
            DiskBus::Scsi => "scsi",
            DiskBus::Ide => "ide",
            DiskBus::Sata => "sata",
        }
    }
}

/// `disk` or `cdrom`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskDevice {
    Disk,
    Cdrom,
}

impl DiskDevice {
    pub fn as_str(self) -> &'static str {
        match self {
            DiskDevice::Disk => "disk",
            DiskDevice::Cdrom => "cdrom",
        }
    }
}

/// Chooses bus and device kind from the guest device name and the format:
/// `vd*` → virtio, `sd*` → virtio-scsi, `hd*` → IDE; `format: iso` → a
/// cdrom (on virtio-scsi for `sd*`, otherwise IDE, as Lago: a cdrom cannot
/// sit on virtio-blk).
pub fn disk_bus(dev: &str, format: &str) -> Result<(DiskBus, DiskDevice)> {
    let valid = dev.len() > 2 && dev[2..].chars().all(|c| c.is_ascii_lowercase());
    let prefix = if valid { &dev[..2] } else { "" };
    let bus = match prefix {
        "vd" => DiskBus::Virtio,
        "sd" => DiskBus::Scsi,
        "hd" => DiskBus::Ide,
        _ => {
            return Err(ProviderError::Spec(format!(
                "disk dev '{dev}': expected vdX (virtio), sdX (virtio-scsi) or hdX (IDE)"
            )))
        }
    };
    if format == "iso" {
        let bus = if bus == DiskBus::Scsi {
            DiskBus::Scsi
        } else {
            DiskBus::Ide
        };
        Ok((bus, DiskDevice::Cdrom))
    } else {
        Ok((bus, DiskDevice::Disk))
    }
}

/// The libvirt driver type of an image format (`iso` images are raw).
fn driver_type(format: &str) -> Result<&str> {
    match format {
        "qcow2" => Ok("qcow2"),
        "raw" | "iso" => Ok("raw"),
        other => Err(ProviderError::Spec(format!(
            "disk format '{other}': expected qcow2, raw or iso"
        ))),
    }
}

/// The first unused guest device name `<prefix>a`, `<prefix>b`, ...
pub fn free_dev(prefix: &str, used: &[&str]) -> String {
    for c in b'a'..=b'z' {
        let name = format!("{prefix}{}", c as char);
        if !used.contains(&name.as_str()) {
            return name;
        }
    }
    for c1 in b'a'..=b'z' {
        for c2 in b'a'..=b'z' {
            let name = format!("{prefix}{}{}", c1 as char, c2 as char);
            if !used.contains(&name.as_str()) {
                return name;
            }
        }
    }
    format!("{prefix}zzz")
}

/// `<topology sockets=vcpu cores=1 threads=1/>`.
fn topology(vcpu: u32) -> Element {
    Element::new("topology")
        .attr("sockets", vcpu)
        .attr("cores", 1)
        .attr("threads", 1)
}

/// The `<cpu>` element (None: let QEMU choose).
///
/// - `cpu_custom`: the dict as XML (`@attr`, `#text`), with a topology of
///   `vcpu` sockets added when it has none;
/// - `cpu_model`: `<cpu mode='custom' match='exact'><model>..` with the
///   topology and, for KVM, the nested feature required;
/// - neither, KVM: `host-passthrough` (Lago's default);
/// - neither, TCG: host-passthrough is not possible under TCG, so
///   `mode='maximum'` (every feature TCG emulates; x86-64-v2 and later guests
///   such as EL9 need more than QEMU's default `qemu64`) without `la57`
///   (5-level paging makes every TCG page walk longer: measured here, a
///   kernel boots 0.2 s slower with it, while `maximum` without it is within
///   0.05 s of `qemu64`), or what `tcg_cpu` says.
pub fn cpu_xml(vm: &VmSpec, opts: &DomainXmlOptions) -> Result<Option<Element>> {
    if vm.cpu_custom.is_some() && vm.cpu_model.is_some() {
        return Err(ProviderError::Spec(format!(
            "VM {}: defining both cpu_model and cpu_custom is not supported",
            vm.name
        )));
    }
    if let Some(custom) = &vm.cpu_custom {
        if !custom.is_object() {
            return Err(ProviderError::Spec(format!(
                "VM {}: cpu_custom must be a dict (libvirt's <cpu> written as YAML)",
                vm.name
            )));
        }
        let what = format!("VM {}: cpu_custom", vm.name);
        let mut cpu = element_from_dict("cpu", custom, &what)?;
        if !cpu.has_child("topology") {
            cpu.push(topology(vm.vcpu));
        }
        return Ok(Some(cpu));
    }
    if let Some(model) = &vm.cpu_model {
        let mut cpu = Element::new("cpu")
            .attr("mode", "custom")
            .attr("match", "exact")
            .child(Element::new("model").text(model))
            .child(topology(vm.vcpu));
        if opts.domain_type == DomainType::Kvm {
            if let Some(feature) = &opts.nested_feature {
                cpu.push(
                    Element::new("feature")
                        .attr("policy", "require")
                        .attr("name", feature),
                );
            }
        }
        return Ok(Some(cpu));
    }
    let cpu = match opts.domain_type {
        DomainType::Kvm => Element::new("cpu")
            .attr("mode", "host-passthrough")
            .attr("check", "none")
            .attr("migratable", "off"),
        DomainType::Qemu => match opts.tcg_cpu.as_str() {
            "default" | "none" => return Ok(None),
            "maximum" | "max" | "" => Element::new("cpu")
                .attr("mode", "maximum")
                .attr("check", "none")
                .child(
                    Element::new("feature")
                        .attr("policy", "disable")
                        .attr("name", "la57"),
                ),
            model => Element::new("cpu")
                .attr("mode", "custom")
                .attr("match", "exact")
                .attr("check", "none")
                .child(Element::new("model").attr("fallback", "allow").text(model)),
        },
    };
    Ok(Some(cpu.child(topology(vm.vcpu))))
}

/// The nested-virtualisation feature to require with `cpu_model` (Lago's
/// rule): `vmx` for Intel, `svm` for AMD, only when the model's vendor is
/// the host's and the host CPU has the feature.
pub fn nested_feature(
    host_vendor: Option<&str>,
    host_features: &[String],
    model_vendor: Option<&str>,
) -> Option<String> {
    let flag = match host_vendor? {
        "Intel" => "vmx",
        "AMD" => "svm",
        _ => return None,
    };
    if model_vendor? != host_vendor? {
        return None;
    }
    host_features
        .iter()
        .any(|f| f == flag)
        .then(|| flag.to_string())
}

/// The vendor of a libvirt CPU model, from libvirt's CPU map
/// (`/usr/share/libvirt/cpu_map/x86_<model>.xml`).
pub fn model_vendor(model: &str) -> Option<String> {
    if model.contains('/') || model.contains("..") {
        return None;
    }
    let path = Path::new("/usr/share/libvirt/cpu_map").join(format!("x86_{model}.xml"));
    let text = std::fs::read_to_string(path).ok()?;
    let doc = roxmltree::Document::parse(&text).ok()?;
    doc.descendants()
        .find(|n| n.has_tag_name("vendor"))
        .and_then(|n| n.attribute("name"))
        .map(str::to_string)
}

/// The host CPU as libvirt's capabilities describe it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostCpu {
    pub vendor: Option<String>,
    pub features: Vec<String>,
    /// Whether libvirt offers a `kvm` domain for x86_64 hvm guests.
    pub kvm_offered: bool,
}

/// Parses `virConnectGetCapabilities` XML.
pub fn parse_capabilities(caps: &str) -> Result<HostCpu> {
    let doc = roxmltree::Document::parse(caps).map_err(|e| {
        ProviderError::Spec(format!("libvirt's capabilities XML does not parse: {e}"))
    })?;
    let mut host = HostCpu::default();
    if let Some(cpu) = doc
        .root_element()
        .children()
        .find(|n| n.has_tag_name("host"))
        .and_then(|h| h.children().find(|n| n.has_tag_name("cpu")))
    {
        host.vendor = cpu
            .children()
            .find(|n| n.has_tag_name("vendor"))
            .and_then(|n| n.text())
            .map(|s| s.trim().to_string());
        host.features = cpu
            .children()
            .filter(|n| n.has_tag_name("feature"))
            .filter_map(|n| n.attribute("name"))
            .map(str::to_string)
            .collect();
    }
    host.kvm_offered = doc
        .root_element()
        .children()
        .filter(|n| n.has_tag_name("guest"))
        .filter(|g| {
            g.children()
                .any(|n| n.has_tag_name("os_type") && n.text() == Some("hvm"))
        })
        .flat_map(|g| g.children().filter(|n| n.has_tag_name("arch")))
        .filter(|a| a.attribute("name") == Some("x86_64"))
        .flat_map(|a| a.children().filter(|n| n.has_tag_name("domain")))
        .any(|d| d.attribute("type") == Some("kvm"));
    Ok(host)
}

fn disk_path<'a>(vm: &VmSpec, disk: &'a DiskSpec) -> Result<&'a Path> {
    disk.path.as_deref().ok_or_else(|| {
        ProviderError::Spec(format!(
            "VM {}: disk '{}' ({}) has no planned path",
            vm.name, disk.name, disk.dev
        ))
    })
}

/// A virtio-serial channel `name` on a unix socket libvirt places itself.
fn virtio_channel(name: &str) -> Element {
    Element::new("channel")
        .attr("type", "unix")
        .child(Element::new("source").attr("mode", "bind"))
        .child(
            Element::new("target")
                .attr("type", "virtio")
                .attr("name", name),
        )
}

/// The domain XML of `vm` (see the module docs for the choices).
///
/// Disks get boot order 1, 2, ... in spec order (the first disk is the
/// bootable one, as in Lago); the seed cdrom gets none. Domains are created
/// transient, so there is no `<uuid>`: libvirt makes one.
pub fn domain_xml(env: &EnvSpec, vm: &VmSpec, opts: &DomainXmlOptions) -> Result<String> {
    if vm.vcpu == 0 {
        return Err(ProviderError::Spec(format!(
            "VM {}: vcpu must be at least 1",
            vm.name
        )));
    }
    if vm.memory == 0 {
        return Err(ProviderError::Spec(format!(
            "VM {}: memory must be at least 1 MiB",
            vm.name
        )));
    }
    let mut devices = Element::new("devices").child(
        Element::new("controller")
            .attr("type", "usb")
            .attr("model", "none"),
    );

    // Disks.
    let mut used: Vec<&str> = Vec::new();
    let mut disk_elements = Vec::new();
    let mut need_scsi = false;
    for (i, disk) in vm.disks.iter().enumerate() {
        if used.contains(&disk.dev.as_str()) {
            return Err(ProviderError::Spec(format!(
                "VM {}: two disks use dev '{}'",
                vm.name, disk.dev
            )));
        }
        used.push(&disk.dev);
        let (bus, device) = disk_bus(&disk.dev, &disk.format)?;
        need_scsi |= bus == DiskBus::Scsi;
        let path = disk_path(vm, disk)?;
        let mut driver = Element::new("driver")
            .attr("name", "qemu")
            .attr("type", driver_type(&disk.format)?)
            .attr("cache", "unsafe");
        if device == DiskDevice::Disk {
            driver.set_attr("discard", "unmap");
        }
        let el = Element::new("disk")
            .attr("type", "file")
            .attr("device", device.as_str())
            .child(driver)
            .child(Element::new("source").attr("file", path.display()))
            .child(
                Element::new("target")
                    .attr("dev", &disk.dev)
                    .attr("bus", bus.as_str()),
            )
            .child(Element::new("serial").text(i + 1))
            .child(Element::new("boot").attr("order", i + 1));
        let el = if device == DiskDevice::Cdrom {
            el.child(Element::new("readonly"))
        } else {
            el
        };
        disk_elements.push(el.child_opt(store_backing(vm, disk)));
    }
    if let Some(seed) = &opts.seed {
        let (prefix, bus, device) = match opts.seed_bus {
            SeedBus::Sata => ("sd", DiskBus::Sata, DiskDevice::Cdrom),
            SeedBus::Ide => ("hd", DiskBus::Ide, DiskDevice::Cdrom),
            SeedBus::Scsi => ("sd", DiskBus::Scsi, DiskDevice::Cdrom),
            SeedBus::Virtio => ("vd", DiskBus::Virtio, DiskDevice::Disk),
        };
        need_scsi |= bus == DiskBus::Scsi;
        let dev = free_dev(prefix, &used);
        disk_elements.push(
            Element::new("disk")
                .attr("type", "file")
                .attr("device", device.as_str())
                .child(
                    Element::new("driver")
                        .attr("name", "qemu")
                        .attr("type", "raw"),
                )
                .child(Element::new("source").attr("file", seed.display()))
                .child(
                    Element::new("target")
                        .attr("dev", dev)
                        .attr("bus", bus.as_str()),
                )
                .child(Element::new("readonly")),
        );
    }
    if need_scsi {
        devices.push(
            Element::new("controller")
                .attr("type", "scsi")
                .attr("index", 0)
                .attr("model", "virtio-scsi")
                .child(Element::new("driver").attr("queues", vm.vcpu)),
        );
    }
    for d in disk_elements {
        devices.push(d);
    }

    // NICs.
    for (i, nic) in vm.nics.iter().enumerate() {
        let net = env.nets.get(&nic.net).ok_or_else(|| {
            ProviderError::Spec(format!(
                "VM {}: nic {i} is on net '{}', which the environment does not have",
                vm.name, nic.net
            ))
        })?;
        let mut iface = Element::new("interface")
            .attr("type", "network")
            .child(Element::new("source").attr("network", &net.libvirt_name))
            .child(Element::new("mac").attr("address", &nic.mac))
            .child(Element::new("model").attr("type", "virtio"))
            // No iPXE option ROM: lago boots from disks, and loading the ROM
            // costs the guest time under TCG.
            .child(Element::new("rom").attr("enabled", "no"));
        if let Some(mtu) = net.mtu {
            iface.push(Element::new("mtu").attr("size", mtu));
        }
        devices.push(iface);
    }

    // Serial console to a pty and to the prefix's log file.
    let log = opts
        .console_log
        .clone()
        .unwrap_or_else(|| env.prefix.console_log_path(&vm.name));
    devices.push(
        Element::new("serial")
            .attr("type", "pty")
            .child(
                Element::new("log")
                    .attr("file", log.display())
                    .attr("append", "off"),
            )
            .child(Element::new("target").attr("port", 0)),
    );
    devices.push(
        Element::new("console").attr("type", "pty").child(
            Element::new("target")
                .attr("type", "serial")
                .attr("port", 0),
        ),
    );
    devices.push(virtio_channel(GUEST_AGENT_CHANNEL));
    if opts.warm_identity {
        devices.push(virtio_channel(IDENTITY_CHANNEL));
    }
    devices.push(
        Element::new("rng").attr("model", "virtio").child(
            Element::new("backend")
                .attr("model", "random")
                .text("/dev/urandom"),
        ),
    );
    devices.push(Element::new("memballoon").attr("model", "none"));

    let dom = Element::new("domain")
        .attr("type", opts.domain_type.as_str())
        .child(Element::new("name").text(&vm.libvirt_name))
        .child_opt(opts.warm_identity.then(|| Element::new("genid")))
        .child(Element::new("memory").attr("unit", "MiB").text(vm.memory))
        .child(
            Element::new("vcpu")
                .attr("placement", "static")
                .text(vm.vcpu),
        )
        .child(
            Element::new("os")
                .child(
                    Element::new("type")
                        .attr("arch", "x86_64")
                        .attr("machine", "pc")
                        .text("hvm"),
                )
                .child(Element::new("bootmenu").attr("enable", "no")),
        )
        .child(
            Element::new("features")
                .child(Element::new("acpi"))
                .child(Element::new("apic"))
                .child(Element::new("pae"))
                .child(Element::new("vmport").attr("state", "off")),
        )
        .child_opt(cpu_xml(vm, opts)?)
        .child(Element::new("clock").attr("offset", "utc"))
        .child(Element::new("on_poweroff").text("destroy"))
        .child(Element::new("on_reboot").text("restart"))
        .child(Element::new("on_crash").text("destroy"))
        .child(
            Element::new("pm")
                .child(Element::new("suspend-to-mem").attr("enabled", "no"))
                .child(Element::new("suspend-to-disk").attr("enabled", "no")),
        )
        .child(devices);
    Ok(dom.render())
}

/// The backing chain of a disk made over a template of the store, given
/// explicitly so that libvirt does not relabel the store image: with
/// `dynamic_ownership` a system libvirtd would hand the shared template to
/// QEMU's user for good (it never restores a backing file's owner). The
/// image stays readable by QEMU through its mode (0644), and QEMU opens it
/// read-only. `<backingStore/>` ends the chain (a store image stands alone,
/// which the store checks). Only for a local VM whose overlay is made
/// directly over the store image (not a layer of an export).
fn store_backing(vm: &VmSpec, disk: &lago_plugin_api::spec::DiskSpec) -> Option<Element> {
    use lago_plugin_api::spec::{DiskType, TEMPLATE_IMAGE_KEY};
    if vm.host.is_some()
        || disk.disk_type != DiskType::Template
        || disk.extra.contains_key(TEMPLATE_IMAGE_KEY)
        || disk.format != "qcow2"
    {
        return None;
    }
    let (base, format) = disk.template_image()?;
    Some(
        Element::new("backingStore")
            .attr("type", "file")
            .child(Element::new("format").attr("type", format))
            .child(
                Element::new("source").attr("file", base.display()).child(
                    Element::new("seclabel")
                        .attr("model", "dac")
                        .attr("relabel", "no"),
                ),
            )
            .child(Element::new("backingStore")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_selection() {
        assert_eq!(
            disk_bus("vda", "qcow2").expect("ok"),
            (DiskBus::Virtio, DiskDevice::Disk)
        );
        assert_eq!(
            disk_bus("sdb", "raw").expect("ok"),
            (DiskBus::Scsi, DiskDevice::Disk)
        );
        assert_eq!(
            disk_bus("hdc", "qcow2").expect("ok"),
            (DiskBus::Ide, DiskDevice::Disk)
        );
        assert_eq!(
            disk_bus("sdc", "iso").expect("ok"),
            (DiskBus::Scsi, DiskDevice::Cdrom)
        );
        assert_eq!(
            disk_bus("hdd", "iso").expect("ok"),
            (DiskBus::Ide, DiskDevice::Cdrom)
        );
        assert_eq!(
            disk_bus("vdb", "iso").expect("ok"),
            (DiskBus::Ide, DiskDevice::Cdrom)
        );
        for bad in ["xvda", "sd", "vd1", "nvme0n1", ""] {
            assert!(disk_bus(bad, "qcow2").is_err(), "{bad}");
        }
    }

    #[test]
    fn free_dev_skips_used() {
        assert_eq!(free_dev("sd", &["vda"]), "sda");
        assert_eq!(free_dev("sd", &["sda", "sdb"]), "sdc");
        let many: Vec<String> = (b'a'..=b'z').map(|c| format!("vd{}", c as char)).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(free_dev("vd", &refs), "vdaa");
    }

    #[test]
    fn nested_feature_rules() {
        let feats = vec!["vmx".to_string(), "sse2".to_string()];
        assert_eq!(
            nested_feature(Some("Intel"), &feats, Some("Intel")).as_deref(),
            Some("vmx")
        );
        assert_eq!(nested_feature(Some("Intel"), &feats, Some("AMD")), None);
        assert_eq!(
            nested_feature(Some("AMD"), &feats, Some("AMD")),
            None,
            "no svm on host"
        );
        assert_eq!(nested_feature(None, &feats, Some("Intel")), None);
        assert_eq!(nested_feature(Some("Intel"), &feats, None), None);
    }

    #[test]
    fn capabilities_parse() {
        let caps = r#"<capabilities>
  <host><cpu><arch>x86_64</arch><model>EPYC</model><vendor>AMD</vendor>
    <feature name='svm'/><feature name='x2apic'/></cpu></host>
  <guest><os_type>hvm</os_type><arch name='x86_64'>
    <domain type='qemu'/><domain type='kvm'/></arch></guest>
</capabilities>"#;
        let host = parse_capabilities(caps).expect("parses");
        assert_eq!(host.vendor.as_deref(), Some("AMD"));
        assert_eq!(host.features, vec!["svm", "x2apic"]);
        assert!(host.kvm_offered);
        let no_kvm = caps.replace("<domain type='kvm'/>", "");
        assert!(!parse_capabilities(&no_kvm).expect("parses").kvm_offered);
    }
}
