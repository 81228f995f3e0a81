//! The generated documents, parsed and checked element by element.

mod common;

use lago_provider_local_libvirt::domain::{domain_xml, DomainXmlOptions};
use lago_provider_local_libvirt::net::{network_xml, NetXmlOptions};
use lago_provider_local_libvirt::options::{DomainType, SeedBus};
use roxmltree::{Document, Node};
use serde_json::json;

use common::sample_env;

fn child<'a, 'i>(n: Node<'a, 'i>, name: &str) -> Node<'a, 'i> {
    n.children()
        .find(|c| c.has_tag_name(name))
        .unwrap_or_else(|| panic!("<{}> has no <{name}>", n.tag_name().name()))
}

fn children<'a, 'i>(n: Node<'a, 'i>, name: &str) -> Vec<Node<'a, 'i>> {
    n.children().filter(|c| c.has_tag_name(name)).collect()
}

fn opts(domain_type: DomainType) -> DomainXmlOptions {
    DomainXmlOptions {
        domain_type,
        ..DomainXmlOptions::default()
    }
}

#[test]
fn domain_basics_and_devices() {
    let env = sample_env(std::path::Path::new("/prefix"));
    let vm = &env.domains["vm0"];
    let xml = domain_xml(&env, vm, &opts(DomainType::Qemu)).expect("xml");
    let doc = Document::parse(&xml).expect("parses");
    let dom = doc.root_element();
    assert_eq!(dom.attribute("type"), Some("qemu"));
    assert_eq!(child(dom, "name").text(), Some(vm.libvirt_name.as_str()));
    let mem = child(dom, "memory");
    assert_eq!(
        (mem.attribute("unit"), mem.text()),
        (Some("MiB"), Some("256"))
    );
    assert_eq!(child(dom, "vcpu").text(), Some("2"));
    let os_type = child(child(dom, "os"), "type");
    assert_eq!(os_type.attribute("arch"), Some("x86_64"));
    assert_eq!(os_type.attribute("machine"), Some("pc"));
    assert_eq!(os_type.text(), Some("hvm"));
    let features = child(dom, "features");
    child(features, "acpi");
    child(features, "apic");
    assert_eq!(child(dom, "on_poweroff").text(), Some("destroy"));

    // TCG: no host-passthrough; every emulated feature but la57.
    let cpu = child(dom, "cpu");
    assert_eq!(cpu.attribute("mode"), Some("maximum"));
    let topo = child(cpu, "topology");
    assert_eq!(
        (
            topo.attribute("sockets"),
            topo.attribute("cores"),
            topo.attribute("threads")
        ),
        (Some("2"), Some("1"), Some("1"))
    );
    let f = child(cpu, "feature");
    assert_eq!(
        (f.attribute("name"), f.attribute("policy")),
        (Some("la57"), Some("disable"))
    );

    let devices = child(dom, "devices");
    let disks = children(devices, "disk");
    assert_eq!(disks.len(), 3, "no seed given");
    let buses: Vec<_> = disks
        .iter()
        .map(|d| {
            let t = child(*d, "target");
            (
                t.attribute("dev").unwrap_or(""),
                t.attribute("bus").unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        buses,
        vec![("vda", "virtio"), ("sda", "scsi"), ("sdb", "scsi")]
    );
    let drv: Vec<_> = disks
        .iter()
        .map(|d| {
            let drv = child(*d, "driver");
            (
                drv.attribute("type").unwrap_or(""),
                drv.attribute("cache").unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        drv,
        vec![("qcow2", "unsafe"), ("raw", "unsafe"), ("qcow2", "unsafe")]
    );
    assert_eq!(
        child(disks[0], "source").attribute("file"),
        Some("/prefix/images/vm0_root.qcow2")
    );
    assert_eq!(child(disks[0], "boot").attribute("order"), Some("1"));
    let scsi: Vec<_> = children(devices, "controller")
        .into_iter()
        .filter(|c| c.attribute("type") == Some("scsi"))
        .collect();
    assert_eq!(scsi.len(), 1, "one virtio-scsi controller for two sd disks");
    assert_eq!(scsi[0].attribute("model"), Some("virtio-scsi"));

    let nics = children(devices, "interface");
    assert_eq!(nics.len(), 3);
    assert_eq!(nics[0].attribute("type"), Some("network"));
    assert_eq!(
        child(nics[0], "source").attribute("network"),
        Some(env.nets["lago"].libvirt_name.as_str())
    );
    assert_eq!(
        child(nics[0], "mac").attribute("address"),
        Some("54:52:c0:a8:c8:02")
    );
    assert_eq!(child(nics[0], "model").attribute("type"), Some("virtio"));
    assert!(nics[0].children().all(|c| !c.has_tag_name("mtu")));
    assert_eq!(child(nics[1], "mtu").attribute("size"), Some("9000"));

    let serial = child(devices, "serial");
    assert_eq!(serial.attribute("type"), Some("pty"));
    let log = child(serial, "log");
    assert_eq!(log.attribute("file"), Some("/prefix/logs/vm0.console.log"));
    assert_eq!(log.attribute("append"), Some("off"));
    assert_eq!(child(devices, "console").attribute("type"), Some("pty"));
    let channel = child(devices, "channel");
    assert_eq!(
        child(channel, "target").attribute("name"),
        Some("org.qemu.guest_agent.0")
    );
    let rng = child(devices, "rng");
    assert_eq!(child(rng, "backend").text(), Some("/dev/urandom"));
    assert_eq!(
        child(devices, "memballoon").attribute("model"),
        Some("none")
    );
    assert!(devices.children().all(|c| !c.has_tag_name("graphics")));
}

#[test]
fn kvm_uses_host_passthrough() {
    let env = sample_env(std::path::Path::new("/prefix"));
    let xml = domain_xml(&env, &env.domains["vm0"], &opts(DomainType::Kvm)).expect("xml");
    let doc = Document::parse(&xml).expect("parses");
    assert_eq!(doc.root_element().attribute("type"), Some("kvm"));
    let cpu = child(doc.root_element(), "cpu");
    assert_eq!(cpu.attribute("mode"), Some("host-passthrough"));
    assert_eq!(child(cpu, "topology").attribute("sockets"), Some("2"));
}

#[test]
fn tcg_cpu_choices() {
    let env = sample_env(std::path::Path::new("/prefix"));
    let vm = &env.domains["vm0"];
    let mut o = opts(DomainType::Qemu);
    o.tcg_cpu = "default".into();
    let xml = domain_xml(&env, vm, &o).expect("xml");
    let doc = Document::parse(&xml).expect("parses");
    assert!(doc
        .root_element()
        .children()
        .all(|c| !c.has_tag_name("cpu")));
    o.tcg_cpu = "Nehalem".into();
    let xml = domain_xml(&env, vm, &o).expect("xml");
    let doc = Document::parse(&xml).expect("parses");
    let cpu = child(doc.root_element(), "cpu");
    assert_eq!(child(cpu, "model").text(), Some("Nehalem"));
}

#[test]
fn cpu_model_is_exact_with_nested_feature_under_kvm_only() {
    let env = sample_env(std::path::Path::new("/prefix"));
    let vm = &env.domains["vm1"];
    for (domain_type, want_feature) in [(DomainType::Kvm, true), (DomainType::Qemu, false)] {
        let o = DomainXmlOptions {
            domain_type,
            nested_feature: Some("vmx".into()),
            ..DomainXmlOptions::default()
        };
        let xml = domain_xml(&env, vm, &o).expect("xml");
        let doc = Document::parse(&xml).expect("parses");
        let cpu = child(doc.root_element(), "cpu");
        assert_eq!(cpu.attribute("mode"), Some("custom"));
        assert_eq!(cpu.attribute("match"), Some("exact"));
        assert_eq!(child(cpu, "model").text(), Some("Westmere"));
        assert_eq!(child(cpu, "topology").attribute("sockets"), Some("1"));
        let feats = children(cpu, "feature");
        if want_feature {
            assert_eq!(feats.len(), 1);
            assert_eq!(feats[0].attribute("name"), Some("vmx"));
            assert_eq!(feats[0].attribute("policy"), Some("require"));
        } else {
            assert!(feats.is_empty());
        }
    }
}

#[test]
fn cpu_custom_is_mapped_and_topology_filled_once() {
    let env = sample_env(std::path::Path::new("/prefix"));
    let vm = &env.domains["vm2"];
    let xml = domain_xml(&env, vm, &opts(DomainType::Qemu)).expect("xml");
    let doc = Document::parse(&xml).expect("parses");
    let cpu = child(doc.root_element(), "cpu");
    assert_eq!(cpu.attribute("mode"), Some("custom"));
    assert_eq!(cpu.attribute("match"), Some("exact"));
    let model = child(cpu, "model");
    assert_eq!(model.attribute("fallback"), Some("allow"));
    assert_eq!(model.text(), Some("Westmere"));
    assert_eq!(child(cpu, "feature").attribute("policy"), Some("optional"));
    assert_eq!(children(cpu, "topology").len(), 1);
    assert_eq!(child(cpu, "topology").attribute("sockets"), Some("2"));

    // A topology in cpu_custom is kept as written.
    let mut vm = vm.clone();
    vm.cpu_custom = Some(json!({"@mode": "custom", "model": "Westmere",
        "topology": {"@sockets": 1, "@cores": 2, "@threads": 1}}));
    let xml = domain_xml(&env, &vm, &opts(DomainType::Qemu)).expect("xml");
    let doc = Document::parse(&xml).expect("parses");
    let cpu = child(doc.root_element(), "cpu");
    assert_eq!(children(cpu, "topology").len(), 1);
    assert_eq!(child(cpu, "topology").attribute("cores"), Some("2"));

    // Both cpu_model and cpu_custom: refused, as Lago does.
    vm.cpu_model = Some("Westmere".into());
    let err = domain_xml(&env, &vm, &opts(DomainType::Qemu)).expect_err("refused");
    assert!(
        err.to_string().contains("both cpu_model and cpu_custom"),
        "{err}"
    );
}

#[test]
fn iso_is_a_readonly_cdrom_and_seed_uses_a_free_dev() {
    let env = sample_env(std::path::Path::new("/prefix"));
    let vm = &env.domains["vm1"]; // vda + hdc iso
    for (bus, want_bus, want_dev, want_device) in [
        (SeedBus::Sata, "sata", "sda", "cdrom"),
        (SeedBus::Ide, "ide", "hda", "cdrom"),
        (SeedBus::Scsi, "scsi", "sda", "cdrom"),
        (SeedBus::Virtio, "virtio", "vdb", "disk"),
    ] {
        let o = DomainXmlOptions {
            seed: Some("/prefix/images/vm1-seed.iso".into()),
            seed_bus: bus,
            ..DomainXmlOptions::default()
        };
        let xml = domain_xml(&env, vm, &o).expect("xml");
        let doc = Document::parse(&xml).expect("parses");
        let devices = child(doc.root_element(), "devices");
        let disks = children(devices, "disk");
        assert_eq!(disks.len(), 3);
        let iso = disks[1];
        assert_eq!(iso.attribute("device"), Some("cdrom"));
        assert_eq!(child(iso, "target").attribute("bus"), Some("ide"));
        assert_eq!(child(iso, "driver").attribute("type"), Some("raw"));
        child(iso, "readonly");
        let seed = disks[2];
        assert_eq!(seed.attribute("device"), Some(want_device));
        assert_eq!(
            child(seed, "source").attribute("file"),
            Some("/prefix/images/vm1-seed.iso")
        );
        let t = child(seed, "target");
        assert_eq!(
            (t.attribute("bus"), t.attribute("dev")),
            (Some(want_bus), Some(want_dev))
        );
        child(seed, "readonly");
        assert!(
            seed.children().all(|c| !c.has_tag_name("boot")),
            "the seed is not bootable"
        );
        let scsi = children(devices, "controller")
            .into_iter()
            .filter(|c| c.attribute("type") == Some("scsi"))
            .count();
        assert_eq!(scsi, usize::from(bus == SeedBus::Scsi));
    }
}

#[test]
fn spec_errors_are_clear() {
    let env = sample_env(std::path::Path::new("/prefix"));
    let mut vm = env.domains["vm0"].clone();
    vm.nics[0].net = "nowhere".into();
    let err = domain_xml(&env, &vm, &opts(DomainType::Qemu)).expect_err("unknown net");
    assert!(err.to_string().contains("nowhere"), "{err}");

    let mut vm = env.domains["vm0"].clone();
    vm.disks[0].path = None;
    let err = domain_xml(&env, &vm, &opts(DomainType::Qemu)).expect_err("no path");
    assert!(err.to_string().contains("no planned path"), "{err}");

    let mut vm = env.domains["vm0"].clone();
    vm.disks[1].dev = "vda".into();
    let err = domain_xml(&env, &vm, &opts(DomainType::Qemu)).expect_err("dup dev");
    assert!(err.to_string().contains("two disks use dev 'vda'"), "{err}");

    let mut vm = env.domains["vm0"].clone();
    vm.disks[0].format = "vmdk".into();
    let err = domain_xml(&env, &vm, &opts(DomainType::Qemu)).expect_err("format");
    assert!(err.to_string().contains("vmdk"), "{err}");
}

#[test]
fn nat_network_shape() {
    let env = sample_env(std::path::Path::new("/prefix"));
    let net = &env.nets["lago"];
    let xml = network_xml(&env, net, &NetXmlOptions { ipv6: true }).expect("xml");
    let doc = Document::parse(&xml).expect("parses");
    let root = doc.root_element();
    assert_eq!(child(root, "name").text(), Some(net.libvirt_name.as_str()));
    assert_eq!(child(root, "forward").attribute("mode"), Some("nat"));
    let br = child(root, "bridge");
    assert_eq!(br.attribute("name"), Some(net.bridge.as_str()));
    assert_eq!(br.attribute("stp"), Some("off"));
    let domain = child(root, "domain");
    assert_eq!(domain.attribute("name"), Some("lago.local"));
    assert_eq!(domain.attribute("localOnly"), Some("yes"));

    let ips = children(root, "ip");
    assert_eq!(ips.len(), 2);
    assert_eq!(ips[0].attribute("address"), Some("192.168.200.1"));
    assert_eq!(ips[0].attribute("prefix"), Some("24"));
    let dhcp = child(ips[0], "dhcp");
    let range = child(dhcp, "range");
    assert_eq!(range.attribute("start"), Some("192.168.200.100"));
    assert_eq!(range.attribute("end"), Some("192.168.200.254"));
    let hosts = children(dhcp, "host");
    assert_eq!(hosts.len(), 3);
    assert_eq!(hosts[0].attribute("mac"), Some("54:52:c0:a8:c8:02"));
    assert_eq!(hosts[0].attribute("ip"), Some("192.168.200.2"));
    assert_eq!(hosts[0].attribute("name"), Some("vm0"));
    assert_eq!(ips[1].attribute("family"), Some("ipv6"));
    assert_eq!(ips[1].attribute("address"), Some("fd8f:1391:3a82:200::1"));
    assert_eq!(ips[1].attribute("prefix"), Some("64"));
    // DHCPv6 reservations by MAC (whatever DUID the guest sends), as dnsmasq
    // options in libvirt's namespace; none through libvirt's DUID-only <host>.
    assert!(children(ips[1], "dhcp")
        .iter()
        .all(|d| children(*d, "host").is_empty()));
    let options = root
        .children()
        .find(|c| c.has_tag_name(("http://libvirt.org/schemas/network/dnsmasq/1.0", "options")))
        .expect("<dnsmasq:options>");
    let lines: Vec<&str> = options
        .children()
        .filter(|c| c.is_element())
        .filter_map(|c| c.attribute("value"))
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines.contains(&"dhcp-host=54:52:c0:a8:c8:02,[fd8f:1391:3a82:200::192.168.200.2],vm0"),
        "{lines:?}"
    );

    // The management net answers for every nic of the environment.
    let dns = child(root, "dns");
    let names: Vec<(String, String)> = children(dns, "host")
        .iter()
        .flat_map(|h| {
            let ip = h.attribute("ip").unwrap_or("").to_string();
            children(*h, "hostname")
                .into_iter()
                .map(move |n| (ip.clone(), n.text().unwrap_or("").to_string()))
        })
        .collect();
    for (ip, name) in [
        ("192.168.200.2", "vm0"),
        ("192.168.200.2", "vm0-eth0"),
        ("192.168.200.3", "vm1-lago"),
        ("192.168.201.2", "vm0-eth1"),
        ("192.168.201.2", "vm0-storage"),
        ("fd8f:1391:3a82:200::192.168.200.4", "vm2"),
    ] {
        assert!(
            names.contains(&(ip.to_string(), name.to_string())),
            "missing {name} -> {ip} in {names:?}"
        );
    }
}

#[test]
fn second_nat_network_and_ipv6_off() {
    let env = sample_env(std::path::Path::new("/prefix"));
    let net = &env.nets["storage"];
    let xml = network_xml(&env, net, &NetXmlOptions { ipv6: false }).expect("xml");
    let doc = Document::parse(&xml).expect("parses");
    let root = doc.root_element();
    assert!(
        root.children().all(|c| !c.has_tag_name("domain")),
        "not management"
    );
    assert_eq!(child(root, "mtu").attribute("size"), Some("9000"));
    assert_eq!(children(root, "ip").len(), 1, "no IPv6");
    assert!(
        root.children().all(|c| !c.has_tag_name("options")),
        "no DHCPv6 reservations"
    );
    let dns = child(root, "dns");
    let hosts = children(dns, "host");
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0].attribute("ip"), Some("192.168.201.2"));
}

#[test]
fn bridge_network_is_isolated() {
    let env = sample_env(std::path::Path::new("/prefix"));
    let net = &env.nets["isolated"];
    let xml = network_xml(&env, net, &NetXmlOptions::default()).expect("xml");
    let doc = Document::parse(&xml).expect("parses");
    let root = doc.root_element();
    assert_eq!(
        child(root, "bridge").attribute("name"),
        Some(net.bridge.as_str())
    );
    for absent in ["forward", "ip", "dns", "domain"] {
        assert!(root.children().all(|c| !c.has_tag_name(absent)), "{absent}");
    }
}

#[test]
fn nat_without_gateway_is_refused() {
    let env = sample_env(std::path::Path::new("/prefix"));
    let mut net = env.nets["storage"].clone();
    net.gw = None;
    let err = network_xml(&env, &net, &NetXmlOptions::default()).expect_err("refused");
    assert!(err.to_string().contains("gateway"), "{err}");
}
