use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use lago_plugin_api::spec::PrefixInfo;
use proptest::prelude::*;

use super::*;
use crate::initfile::{parse_str, Format};

fn info() -> PrefixInfo {
    PrefixInfo {
        name: "default".into(),
        path: PathBuf::from("/w/.lago/default"),
        workdir: Some(PathBuf::from("/w/.lago")),
        uuid: "0123456789abcdef0123456789abcdef".into(),
    }
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn plan_text(text: &str, subnets: &[(&str, u8)]) -> Result<Plan, crate::initfile::InitError> {
    let init = parse_str(text, None, Format::Yaml)?;
    let subnets: BTreeMap<String, Ipv4Addr> = subnets
        .iter()
        .map(|(n, o)| (n.to_string(), Ipv4Addr::new(192, 168, *o, 0)))
        .collect();
    let i = info();
    let vars = PathVars {
        initfile_dir: Some(Path::new("/init")),
        prefix: &i.path,
        workdir: i.workdir.as_deref(),
        env: &no_env,
    };
    plan(&init, &i, &subnets, &Defaults::default(), &vars)
}

const TWO_NETS: &str = "\
domains:
  vm0:
    nics: [{net: lago}, {net: data, ip: 192.168.220.7}, {net: data}]
    disks: [{template_name: t}]
  vm1:
    memory: 256
    nics: [{net: data}, {net: lago, ip: 192.168.200.2}]
    disks:
      - {template_name: t}
      - {type: empty, size: 1G}
      - {type: file, path: $LAGO_INITFILE_PATH/x.iso}
nets:
  lago: {management: true}
  data: {dhcp: {start: 100, end: 200}}
";

#[test]
fn addresses_macs_names() {
    let plan = plan_text(TWO_NETS, &[("lago", 203), ("data", 201)]).expect("plan");
    let env = &plan.env;
    let vm0 = &env.domains["vm0"];
    let vm1 = &env.domains["vm1"];
    // static IPs move into the leased subnet keeping their last octet
    assert_eq!(vm0.nics[1].ip, Some(Ipv4Addr::new(192, 168, 201, 7)));
    assert_eq!(vm1.nics[1].ip, Some(Ipv4Addr::new(192, 168, 203, 2)));
    // dynamic ones from .2, skipping taken ones (vm1's .2 on lago)
    assert_eq!(vm0.nics[0].ip, Some(Ipv4Addr::new(192, 168, 203, 3)));
    assert_eq!(vm0.nics[2].ip, Some(Ipv4Addr::new(192, 168, 201, 2)));
    assert_eq!(vm1.nics[0].ip, Some(Ipv4Addr::new(192, 168, 201, 3)));
    assert_eq!(vm0.nics[0].mac, "54:52:c0:a8:cb:03");
    assert_eq!(vm0.mgmt_net, "lago");
    assert_eq!(vm1.mgmt_ip(), Some(Ipv4Addr::new(192, 168, 203, 2)));
    assert_eq!(vm0.libvirt_name, "01234567-vm0");
    assert_eq!(vm0.memory, 1024);
    assert_eq!(vm1.memory, 256);
    let lago = &env.nets["lago"];
    assert!(lago.management);
    assert_eq!(lago.dns_domain_name.as_deref(), Some("lago.local"));
    assert_eq!(lago.gw, Some(Ipv4Addr::new(192, 168, 203, 1)));
    assert_eq!(lago.libvirt_name, "01234567-lago");
    let data = &env.nets["data"];
    assert_eq!(data.bridge, "lg01234567-0");
    assert_eq!(lago.bridge, "lg01234567-1");
    assert!(data.bridge.len() <= 15);
    assert_eq!(
        data.dhcp.as_ref().map(|d| d.start),
        Some(Ipv4Addr::new(192, 168, 201, 100))
    );
    assert_eq!(
        lago.dhcp.as_ref().map(|d| (d.start, d.end)),
        Some((
            Ipv4Addr::new(192, 168, 203, 100),
            Ipv4Addr::new(192, 168, 203, 254)
        ))
    );
    assert!(data.dns_domain_name.is_none());
    // DNS names
    let dns = env.dns_records();
    assert_eq!(dns["vm0"], Ipv4Addr::new(192, 168, 203, 3));
    assert_eq!(dns["vm1"], Ipv4Addr::new(192, 168, 203, 2));
    assert_eq!(dns["vm0-eth2"], Ipv4Addr::new(192, 168, 201, 2));
    assert_eq!(dns["vm0-data"], Ipv4Addr::new(192, 168, 201, 7));
    assert_eq!(dns["vm1-lago"], Ipv4Addr::new(192, 168, 203, 2));
    assert_eq!(data.mappings.len(), 3);
    // disks
    assert_eq!(
        vm1.disks[0].path.as_deref(),
        Some(Path::new("/w/.lago/default/images/vm1_root.qcow2"))
    );
    assert_eq!(vm1.disks[1].name, "disk1");
    assert_eq!(vm1.disks[1].dev, "vdb");
    assert_eq!(vm1.disks[2].path.as_deref(), Some(Path::new("/init/x.iso")));
    assert_eq!(vm1.disks[2].format, "iso");
    assert_eq!(vm1.disks[0].template_type.as_deref(), Some("lago"));
}

#[test]
fn default_pool_moves_above_plan() {
    let mut text = String::from("domains:\n");
    for i in 0..120 {
        text.push_str(&format!(
            "  vm{i:03}:\n    nics: [{{net: n}}]\n    disks: [{{template_name: t}}]\n"
        ));
    }
    text.push_str("nets:\n  n: {}\n");
    let plan = plan_text(&text, &[("n", 200)]).expect("plan");
    let d = plan.env.nets["n"].dhcp.clone().expect("pool");
    assert_eq!(d.start, Ipv4Addr::new(192, 168, 200, 122));
    // and a net too small for its nics is refused at the nic
    let mut text = String::from("domains:\n");
    for i in 0..200 {
        text.push_str(&format!(
            "  vm{i:03}:\n    nics: [{{net: n}}]\n    disks: [{{template_name: t}}]\n"
        ));
    }
    text.push_str("nets:\n  n: {dhcp: {start: 100, end: 254}}\n");
    let e = plan_text(&text, &[("n", 200)]).expect_err("full");
    assert!(e.message.contains("no free address"), "{e}");
    assert_eq!(e.path.to_string(), "domains/vm098/nics/0");
}

#[test]
fn undefined_variable_in_path() {
    let text = "domains:\n  vm0:\n    nics: [{net: n}]\n    disks: [{type: file, path: $NOPE/x.qcow2}]\nnets:\n  n: {}\n";
    let e = plan_text(text, &[("n", 200)]).expect_err("undefined");
    assert!(
        e.message.contains("undefined environment variable $NOPE"),
        "{e}"
    );
    assert_eq!(e.path.to_string(), "domains/vm0/disks/0/path");
}

#[test]
fn missing_deploy_script() {
    let text = "domains:\n  vm0:\n    nics: [{net: n}]\n    disks: [{template_name: t}]\n    metadata:\n      deploy-scripts: [/nonexistent/s.sh]\nnets:\n  n: {}\n";
    let e = plan_text(text, &[("n", 200)]).expect_err("missing");
    assert!(e.message.contains("does not exist"), "{e}");
    assert_eq!(e.path.to_string(), "domains/vm0/metadata/deploy-scripts/0");
}

#[test]
fn bridge_net_without_addresses() {
    let text = "domains:\n  vm0:\n    nics: [{net: n}, {net: br}, {net: br}]\n    disks: [{template_name: t}]\nnets:\n  n: {management: true}\n  br: {type: bridge}\n";
    let plan = plan_text(text, &[("n", 200)]).expect("plan");
    let vm = &plan.env.domains["vm0"];
    assert_eq!(vm.nics[1].ip, None);
    assert!(vm.nics[1].mac.starts_with("54:52:00:"));
    assert_ne!(vm.nics[1].mac, vm.nics[2].mac);
    assert!(plan.env.nets["br"].dhcp.is_none());
    assert!(plan.env.nets["br"].mappings.is_empty());
}

#[test]
fn several_management_nets() {
    let text = "domains:\n  a:\n    nics: [{net: m1}, {net: d}]\n    disks: [{template_name: t}]\n  b:\n    nics: [{net: d}, {net: m2}]\n    disks: [{template_name: t}]\nnets:\n  m1: {management: true}\n  m2: {management: true, dns_domain_name: two.test}\n  d: {}\n";
    let plan = plan_text(text, &[("m1", 200), ("m2", 201), ("d", 202)]).expect("plan");
    let env = &plan.env;
    assert_eq!(env.domains["a"].mgmt_net, "m1");
    assert_eq!(env.domains["b"].mgmt_net, "m2");
    assert!(env.nets["m1"].management && env.nets["m2"].management && !env.nets["d"].management);
    assert_eq!(env.nets["m2"].dns_domain_name.as_deref(), Some("two.test"));
    assert_eq!(
        env.nets["m1"].dns_domain_name.as_deref(),
        Some("lago.local")
    );
    let dns = env.dns_records();
    assert_eq!(dns["b"], Ipv4Addr::new(192, 168, 201, 2));
    assert_eq!(dns["a"], Ipv4Addr::new(192, 168, 200, 2));
    assert_eq!(
        env.domains["b"].mgmt_ip(),
        Some(Ipv4Addr::new(192, 168, 201, 2))
    );
    // a VM on two management nets is refused
    let bad = text.replace("[{net: m1}, {net: d}]", "[{net: m1}, {net: m2}]");
    let e = plan_text(&bad, &[("m1", 200), ("m2", 201), ("d", 202)]).expect_err("two");
    assert!(
        e.message
            .contains("is on two management networks: m1 (nic 0) and m2"),
        "{e}"
    );
}

/// A random environment: `vms` VMs on `nets` NAT nets; each nic may ask for
/// a static last octet.
/// Per VM, its extra nics as (net index, static last octet).
type VmNics = Vec<Vec<(usize, Option<u8>)>>;

fn arb_env() -> impl Strategy<Value = (usize, VmNics)> {
    (1usize..5).prop_flat_map(|nets| {
        let nic = (0..nets, proptest::option::weighted(0.3, 0u8..=255));
        (
            Just(nets),
            proptest::collection::vec(proptest::collection::vec(nic, 0..4), 1..40),
        )
    })
}

fn render(nets: usize, vms: &[Vec<(usize, Option<u8>)>]) -> String {
    let mut t = String::from("domains:\n");
    for (i, nics) in vms.iter().enumerate() {
        t.push_str(&format!(
            "  vm{i}:\n    disks: [{{template_name: t}}]\n    nics:\n      - net: n0\n"
        ));
        for (net, ip) in nics {
            t.push_str(&format!("      - net: n{}\n", net + 1));
            if let Some(o) = ip {
                t.push_str(&format!("        ip: 192.168.{}.{o}\n", 210 + net));
            }
        }
    }
    t.push_str("nets:\n  n0: {management: true}\n");
    for n in 0..nets {
        t.push_str(&format!("  n{}: {{}}\n", n + 1));
    }
    t
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// No duplicate IP or MAC; every static IP is honoured (its last octet
    /// kept in the leased subnet) or refused with a reason at its key.
    #[test]
    fn planner_properties((nets, vms) in arb_env()) {
        let text = render(nets, &vms);
        let subnets: Vec<(String, u8)> = (0..=nets).map(|n| (format!("n{n}"), 230 + n as u8)).collect();
        let sn: Vec<(&str, u8)> = subnets.iter().map(|(a, b)| (a.as_str(), *b)).collect();
        match plan_text(&text, &sn) {
            Ok(plan) => {
                let mut ips = BTreeSet::new();
                let mut macs = BTreeSet::new();
                for (i, nics) in vms.iter().enumerate() {
                    let vm = &plan.env.domains[&format!("vm{i}")];
                    prop_assert_eq!(vm.nics.len(), nics.len() + 1);
                    for (j, (net, ip)) in nics.iter().enumerate() {
                        let got = vm.nics[j + 1].ip.expect("nat nics have addresses");
                        prop_assert_eq!(got.octets()[2], 230 + *net as u8 + 1);
                        if let Some(o) = ip {
                            prop_assert_eq!(got.octets()[3], *o);
                        }
                    }
                    for nic in &vm.nics {
                        let ip = nic.ip.expect("address");
                        prop_assert!(ips.insert(ip), "duplicate ip {}", ip);
                        prop_assert!(macs.insert(nic.mac.clone()), "duplicate mac {}", &nic.mac);
                        prop_assert_eq!(&nic.mac, &mac_from_ip(ip));
                        let o = ip.octets()[3];
                        prop_assert!((2..=254).contains(&o));
                        let pool = plan.env.nets[&nic.net].dhcp.clone();
                        if let Some(p) = pool {
                            prop_assert!(o < p.start.octets()[3] || o > p.end.octets()[3], "{} in the pool", ip);
                        }
                    }
                }
            }
            Err(e) => {
                // A refusal names a nic and says why.
                let path = e.path.to_string();
                prop_assert!(path.starts_with("domains/vm"), "{}", e);
                let statics: Vec<u8> = vms.iter().flatten().filter_map(|(_, ip)| *ip).collect();
                let reason_ok = e.message.contains("network, broadcast or gateway")
                    || e.message.contains("duplicate static IP");
                prop_assert!(reason_ok, "unexpected refusal: {}", e);
                prop_assert!(!statics.is_empty());
            }
        }
    }
}

/// Two scripts whose paths flatten to one name (`a_b/c.sh`, `a/b_c.sh`) get
/// two copies; one script named twice (two VMs) is copied once.
#[test]
fn deploy_script_copies_never_replace_each_other() {
    let dir = tempfile::tempdir().expect("tmp");
    for rel in ["a_b/c.sh", "a/b_c.sh"] {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, rel).expect("write");
    }
    let d = dir.path().display();
    let text = format!(
        "domains:\n  vm0:\n    nics: [{{net: n}}]\n    disks: [{{template_name: t}}]\n    metadata:\n      \
         deploy-scripts: [{d}/a_b/c.sh, {d}/a/b_c.sh]\n  vm1:\n    nics: [{{net: n}}]\n    \
         disks: [{{template_name: t}}]\n    metadata:\n      deploy-scripts: [{d}/a/b_c.sh]\nnets:\n  n: {{}}\n"
    );
    let plan = plan_text(&text, &[("n", 200)]).expect("plan");
    assert_eq!(plan.copies.len(), 2, "{:?}", plan.copies);
    let dests: BTreeSet<&PathBuf> = plan.copies.iter().map(|(_, d)| d).collect();
    assert_eq!(dests.len(), 2, "two distinct copies: {:?}", plan.copies);
    let vm0 = &plan.env.domains["vm0"].metadata["deploy-scripts"];
    let vm1 = &plan.env.domains["vm1"].metadata["deploy-scripts"];
    assert_ne!(vm0[0], vm0[1]);
    assert_eq!(vm0[1], vm1[0], "one script, one copy");
}

#[test]
fn nets_span_the_hosts_of_their_vms() {
    let text = "\
hosts:
  hv2: {libvirt_url: 'qemu+ssh://root@hv2/system'}
domains:
  vm0: {nics: [{net: lago}, {net: data}]}
  vm1: {host: hv2, nics: [{net: lago}]}
  vm2: {nics: [{net: lago}]}
nets:
  lago: {management: true}
  data: {mtu: 9000}
";
    let plan = plan_text(text, &[("lago", 203), ("data", 201)]).expect("plan");
    let env = &plan.env;
    assert_eq!(env.hosts.len(), 1);
    assert_eq!(env.domains["vm1"].host.as_deref(), Some("hv2"));
    let lago = &env.nets["lago"];
    let span = lago.span.as_ref().expect("lago spans hv2");
    assert_eq!(span.hosts, vec!["hv2".to_string()]);
    assert_eq!(span.vni, super::vxlan_id(&env.prefix.uuid, "lago"));
    assert!(span.vni > 0 && span.vni < 1 << 24);
    // hv2's bridge takes an address no nic, gateway or DHCP pool has.
    let hv2 = span.host_addresses["hv2"];
    let taken: Vec<Ipv4Addr> = lago.mappings.iter().map(|m| m.ip).collect();
    assert!(
        !taken.contains(&hv2) && Some(hv2) != lago.gw,
        "{hv2} {taken:?}"
    );
    let dhcp = lago.dhcp.as_ref().expect("pool");
    assert!(hv2 < dhcp.start, "{hv2} in {dhcp:?}");
    // Room for VXLAN's headers, unless the init file says otherwise.
    assert_eq!(lago.mtu, Some(super::SPAN_MTU));
    // `data` has no VM on hv2: it stays on the default host.
    assert_eq!(env.nets["data"].span, None);
    assert_eq!(env.nets["data"].mtu, Some(9000));
    // Without hosts, no net spans and no MTU is set.
    let plain = plan_text(TWO_NETS, &[("lago", 203), ("data", 201)]).expect("plan");
    assert!(plain
        .env
        .nets
        .values()
        .all(|n| n.span.is_none() && n.mtu.is_none()));
    assert!(plain.env.hosts.is_empty());
}
