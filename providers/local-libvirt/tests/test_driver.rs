//! The provider against libvirt's in-process `test:///default` driver: it
//! parses and validates every generated XML document and keeps domains and
//! networks in memory (shared by every connection of this process while one
//! is open). DHCP, dnsmasq and QEMU are not involved.

mod common;

use std::sync::Arc;

use lago_provider_local_libvirt::domain::{domain_xml, DomainXmlOptions};
use lago_provider_local_libvirt::net::{network_xml, NetXmlOptions};
use lago_provider_local_libvirt::options::{DomainType, SeedBus};
use lago_provider_local_libvirt::session::LibvirtSession;
use virt::connect::Connect;

use common::{sample_env, test_options, TEST_URI};

/// Checks a document against libvirt's RNG schema with `virt-xml-validate`
/// (libvirt-clients) and `xmllint` (libxml2-utils); `scripts/install-deps.sh`
/// installs both.
fn schema_check(xml: &str, kind: &str) {
    use lago_provider_local_libvirt::tools::which;
    assert!(
        which("virt-xml-validate").is_some() && which("xmllint").is_some(),
        "virt-xml-validate and xmllint are needed: run scripts/install-deps.sh"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join(format!("{kind}.xml"));
    std::fs::write(&file, xml).expect("write");
    let out = std::process::Command::new("virt-xml-validate")
        .arg(&file)
        .arg(kind)
        .output()
        .expect("virt-xml-validate runs");
    assert!(
        out.status.success(),
        "{kind} XML fails libvirt's schema: {}{}\n{xml}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn connect() -> Connect {
    virt::error::clear_error_callback();
    Connect::open(Some(TEST_URI)).expect("test:///default opens")
}

#[test]
fn every_generated_network_and_domain_is_accepted_by_libvirt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = sample_env(dir.path());
    let conn = connect();
    for ipv6 in [true, false] {
        for net in env.nets.values() {
            let xml = network_xml(&env, net, &NetXmlOptions { ipv6 }).expect("net XML");
            schema_check(&xml, "network");
            let n = conn
                .define_network_xml(&xml)
                .unwrap_or_else(|e| panic!("libvirt refused network XML: {e}\n{xml}"));
            let back = n.xml_desc(0).expect("xml back");
            assert!(back.contains(&net.libvirt_name), "{back}");
            n.undefine().expect("undefine");
        }
    }
    let seed = dir.path().join("images/seed.iso");
    for vm in env.domains.values() {
        for (domain_type, seed_bus) in [
            (DomainType::Qemu, SeedBus::Sata),
            (DomainType::Kvm, SeedBus::Ide),
            (DomainType::Qemu, SeedBus::Scsi),
            (DomainType::Qemu, SeedBus::Virtio),
        ] {
            let opts = DomainXmlOptions {
                domain_type,
                nested_feature: Some("vmx".into()),
                seed: Some(seed.clone()),
                seed_bus,
                ..DomainXmlOptions::default()
            };
            let xml = domain_xml(&env, vm, &opts).expect("domain XML");
            schema_check(&xml, "domain");
            let d = conn
                .define_domain_xml_flags(&xml, virt::sys::VIR_DOMAIN_DEFINE_VALIDATE)
                .unwrap_or_else(|e| {
                    panic!("libvirt refused domain XML of {}: {e}\n{xml}", vm.name)
                });
            let back = d.xml_desc(0).expect("xml back");
            assert!(back.contains(&vm.libvirt_name));
            d.undefine().expect("undefine");
        }
    }
}

#[test]
fn the_validity_check_does_refuse_bad_xml() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = sample_env(dir.path());
    let xml = domain_xml(&env, &env.domains["vm0"], &DomainXmlOptions::default())
        .expect("xml")
        .replace("bus='virtio'", "bus='bogus'");
    let conn = connect();
    assert!(conn
        .define_domain_xml_flags(&xml, virt::sys::VIR_DOMAIN_DEFINE_VALIDATE)
        .is_err());
}

#[test]
fn lifecycle_start_state_stop_cleanup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = sample_env(dir.path());
    let session = LibvirtSession::new(env.clone(), test_options());

    for vm in env.domains.keys() {
        assert_eq!(session.state(vm).expect("state"), "down");
        assert!(!session.defined(vm).expect("defined"));
    }
    for net in env.nets.keys() {
        assert_eq!(session.network_state(net).expect("net state"), "down");
    }

    session.start_networks(&[]).expect("networks start");
    for net in env.nets.keys() {
        assert_eq!(session.network_state(net).expect("net state"), "up");
    }
    // Idempotent.
    session
        .start_networks(&["lago".to_string()])
        .expect("again");

    for vm in env.domains.keys() {
        session.start(vm).expect("start");
        assert_eq!(session.state(vm).expect("state"), "running");
        assert!(session.defined(vm).expect("defined"));
        // start on a running VM is a no-op.
        session.start(vm).expect("start again");
    }
    assert!(
        dir.path().join("logs").is_dir(),
        "logs folder made for the console log"
    );

    // A running VM keeps its networks up.
    let kept = session.stop_networks(&[]).expect("stop nets");
    assert!(kept.contains(&"lago".to_string()), "{kept:?}");
    assert_eq!(session.network_state("lago").expect("state"), "up");
    assert_eq!(
        session.network_state("isolated").expect("state"),
        "up",
        "vm0 uses it"
    );

    session.stop("vm0").expect("stop");
    assert_eq!(
        session.state("vm0").expect("state"),
        "down",
        "transient: gone"
    );
    session.stop("vm0").expect("stop a down VM is a no-op");

    session.shutdown("vm1").expect("shutdown");
    assert_eq!(session.state("vm1").expect("state"), "down");
    session
        .shutdown("vm1")
        .expect("shutdown a down VM is a no-op");

    session.reboot("vm2").expect("reboot");
    assert_eq!(session.state("vm2").expect("state"), "running");
    assert!(
        session.reboot("vm0").is_err(),
        "rebooting a down VM is an error"
    );

    // vm2 still uses lago; storage and isolated are free now.
    let kept = session.stop_networks(&[]).expect("stop nets");
    assert_eq!(kept, vec!["lago".to_string()]);
    assert_eq!(session.network_state("storage").expect("state"), "down");
    assert_eq!(session.network_state("isolated").expect("state"), "down");

    let report = session.cleanup().expect("cleanup");
    assert_eq!(
        report.domains,
        vec![env.domains["vm2"].libvirt_name.clone()]
    );
    assert_eq!(report.networks, vec![env.nets["lago"].libvirt_name.clone()]);
    assert_nothing_left(&session);
}

fn assert_nothing_left(session: &LibvirtSession) {
    let conn = session.connection().expect("conn");
    let tag = session.env().prefix.tag().to_string();
    let doms: Vec<String> = conn
        .list_all_domains(0)
        .expect("list")
        .iter()
        .filter_map(|d| d.name().ok())
        .filter(|n| n.starts_with(&tag))
        .collect();
    let nets: Vec<String> = conn
        .list_all_networks(0)
        .expect("list")
        .iter()
        .filter_map(|n| n.name().ok())
        .filter(|n| n.starts_with(&tag))
        .collect();
    assert!(doms.is_empty(), "left domains: {doms:?}");
    assert!(nets.is_empty(), "left networks: {nets:?}");
}

#[test]
fn parallel_starts_from_many_threads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = sample_env(dir.path());
    let session = Arc::new(LibvirtSession::new(env.clone(), test_options()));
    session.start_networks(&[]).expect("networks");
    let handles: Vec<_> = env
        .domains
        .keys()
        .flat_map(|vm| [vm.clone(), vm.clone()])
        .map(|vm| {
            let s = Arc::clone(&session);
            std::thread::spawn(move || s.start(&vm))
        })
        .collect();
    for h in handles {
        h.join().expect("thread").expect("start");
    }
    for vm in env.domains.keys() {
        assert_eq!(session.state(vm).expect("state"), "running");
    }
    session.cleanup().expect("cleanup");
    assert_nothing_left(&session);
}

#[test]
fn cleanup_touches_only_this_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mine = sample_env(dir.path());
    let other_dir = tempfile::tempdir().expect("tempdir");
    let other = sample_env(other_dir.path());
    assert_ne!(mine.prefix.tag(), other.prefix.tag());

    let s_mine = LibvirtSession::new(mine.clone(), test_options());
    let s_other = LibvirtSession::new(other.clone(), test_options());
    // The other env's nets use the same subnets: the test driver does not
    // care, a real libvirtd would. Start just its isolated net and a VM.
    s_other
        .start_networks(&["isolated".to_string()])
        .expect("other net");
    s_mine.start_networks(&[]).expect("my nets");
    s_mine.start("vm0").expect("my vm");

    // A left-over of an interrupted start: a domain with my tag that the
    // spec does not name, and a persistent network with my tag.
    let conn = s_mine.connection().expect("conn");
    let stray_xml = domain_xml(
        &mine,
        &{
            let mut vm = mine.domains["vm2"].clone();
            vm.libvirt_name = format!("{}-stray", mine.prefix.tag());
            vm
        },
        &DomainXmlOptions::default(),
    )
    .expect("xml");
    conn.create_domain_xml(&stray_xml, 0).expect("stray domain");
    let stray_net = format!(
        "<network><name>{}-strnet</name><bridge name='{}-sn'/></network>",
        mine.prefix.tag(),
        mine.prefix.tag()
    );
    conn.define_network_xml(&stray_net).expect("stray net");

    // The other env's VM, started with a nic on its own isolated net only.
    let mut other_vm = other.domains["vm2"].clone();
    other_vm.nics[0].net = "isolated".into();
    let mut other_env = other.clone();
    other_env.domains.insert("vm2".into(), other_vm);
    let s_other = LibvirtSession::new(other_env, test_options());
    s_other.start("vm2").expect("other vm");

    let report = s_mine.cleanup().expect("cleanup");
    assert!(report
        .domains
        .contains(&format!("{}-stray", mine.prefix.tag())));
    assert!(report
        .networks
        .contains(&format!("{}-strnet", mine.prefix.tag())));
    assert_nothing_left(&s_mine);

    // Untouched: the other environment and the driver's own objects.
    assert_eq!(s_other.state("vm2").expect("state"), "running");
    assert_eq!(s_other.network_state("isolated").expect("state"), "up");
    assert!(
        conn.lookup_domain_by_name("test").is_ok(),
        "the test driver's own domain"
    );
    assert!(
        conn.lookup_network_by_name("default").is_ok(),
        "the test driver's own network"
    );

    s_other.cleanup().expect("other cleanup");
    assert_nothing_left(&s_other);
}

#[test]
fn start_failure_names_the_vm_and_libvirts_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = sample_env(dir.path());
    let session = LibvirtSession::new(env.clone(), test_options());
    // No networks started: libvirt refuses the nics... the test driver does
    // not check that, so break the XML instead: an unknown cpu_custom child
    // is accepted, but a zero-memory VM is not generated at all.
    let mut bad = env.clone();
    bad.domains.get_mut("vm0").expect("vm0").memory = 0;
    let s_bad = LibvirtSession::new(bad, test_options());
    let err = s_bad.start("vm0").expect_err("refused").to_string();
    assert!(err.contains("vm0"), "{err}");

    let err = session.start("nope").expect_err("unknown VM").to_string();
    assert!(err.contains("nope"), "{err}");
    let err = session
        .network_state("nope")
        .expect_err("unknown net")
        .to_string();
    assert!(err.contains("nope"), "{err}");

    // A network whose name is taken by a different, inactive definition is
    // started from that definition, not refused.
    let conn = session.connection().expect("conn");
    let net = &env.nets["isolated"];
    conn.define_network_xml(&format!(
        "<network><name>{}</name><bridge name='{}'/></network>",
        net.libvirt_name, net.bridge
    ))
    .expect("define");
    session
        .start_networks(&["isolated".to_string()])
        .expect("starts it");
    assert_eq!(session.network_state("isolated").expect("state"), "up");
    session.cleanup().expect("cleanup");
    assert_nothing_left(&session);
}

/// A second "host" on the test driver: `used_subnets` lists the networks of
/// every host (the test driver's `default` is 192.168.122.0/24), a VM's
/// verbs go to its host's connection, and a host that cannot be reached is
/// an error naming it.
#[test]
fn hosts_have_their_own_connections_and_networks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = sample_env(dir.path());
    env.hosts.insert(
        "hv2".into(),
        serde_json::from_value(serde_json::json!({"libvirt_url": TEST_URI})).expect("host"),
    );
    let session = LibvirtSession::new(env.clone(), test_options());
    let used = session.used_subnets().expect("subnets");
    let hv2: Vec<_> = used
        .iter()
        .filter(|(_, _, d)| d.ends_with("on host hv2"))
        .collect();
    assert!(
        hv2.iter()
            .any(|(a, l, d)| a.to_string() == "192.168.122.1" && *l == 24 && d.contains("default")),
        "{used:?}"
    );
    assert!(
        used.iter().any(|(_, _, d)| d.ends_with("on host default")),
        "{used:?}"
    );

    let vm = env.domains.keys().next().expect("a VM").clone();
    env.domains.get_mut(&vm).expect("vm").host = Some("hv2".into());
    env.hosts.insert(
        "gone".into(),
        serde_json::from_value(serde_json::json!({
            "libvirt_url": "test+unix:///default?socket=/nonexistent/libvirt-sock"
        }))
        .expect("host"),
    );
    let session = LibvirtSession::new(env.clone(), test_options());
    assert_eq!(session.state(&vm).expect("state on hv2"), "down");
    let e = session.used_subnets().expect_err("host gone");
    assert!(e.to_string().contains("host gone"), "{e}");
    // Snapshots are the default host's only: a clear refusal, nothing made.
    let e = session.create_snapshot(&vm, "s1").expect_err("refused");
    assert!(e.to_string().contains("runs on host hv2"), "{e}");
}
