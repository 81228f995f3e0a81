use super::*;

const GOOD: &str = "\
vm_common: &common
  memory: 512
  vcpu: 1
  disks:
    - type: template
      template_name: tiny
      dev: vda
      format: qcow2
domains:
  vm0:
    <<: *common
    nics:
      - net: lago
      - net: storage
        ip: 192.168.210.5
    groups: web
    my-plugin-key: {a: 1}
  vm1:
    <<: *common
    memory: 1024
    nics:
      - net: lago
nets:
  lago:
    type: nat
    management: true
    dhcp: {start: 100, end: 254}
    dns_domain_name: lago.local
  storage:
    type: nat
    gw: 192.168.210.1
";

fn parse(s: &str) -> Result<InitFile, InitError> {
    parse_str(s, Some(PathBuf::from("LagoInitFile")), Format::Yaml)
}

#[test]
fn good_file_with_anchors() {
    let f = parse(GOOD).expect("valid");
    assert_eq!(f.domains.len(), 2);
    assert_eq!(f.domains["vm0"].memory, Some(512));
    assert_eq!(f.domains["vm1"].memory, Some(1024));
    assert_eq!(
        f.domains["vm1"].disks[0].template_name.as_deref(),
        Some("tiny")
    );
    assert_eq!(f.domains["vm0"].groups, vec!["web".to_string()]);
    assert!(f.domains["vm0"].extra.contains_key("my-plugin-key"));
    assert!(f.extra.contains_key("vm_common"));
    assert_eq!(f.nets["lago"].dhcp, Some((100, 254)));
    assert_eq!(f.mgmt_nets().into_iter().collect::<Vec<_>>(), vec!["lago"]);
}

fn bad(s: &str) -> InitError {
    parse(s).expect_err("must be refused")
}

fn replace(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "{from}");
    GOOD.replacen(from, to, 1)
}

#[test]
fn unknown_net() {
    let e = bad(&replace("      - net: storage\n", "      - net: storag\n"));
    assert_eq!(e.path.to_string(), "domains/vm0/nics/1/net");
    assert!(e.message.contains("unknown network \"storag\""), "{e}");
    assert_eq!((e.line, e.column), (Some(14), Some(9)), "{e}");
    let shown = e.to_string();
    assert!(
        shown.starts_with("LagoInitFile:14:9: domains/vm0/nics/1/net: "),
        "{shown}"
    );
}

#[test]
fn two_management_nets() {
    let e = bad(&replace(
        "    gw: 192.168.210.1\n",
        "    gw: 192.168.210.1\n    management: true\n",
    ));
    assert!(e.message.contains("two management networks"), "{e}");
    assert_eq!(e.path.to_string(), "domains/vm0/nics/1/net");
    assert!(e.line.is_some());
}

#[test]
fn vm_without_management_nic() {
    let e = bad(&replace(
        "    nics:\n      - net: lago\nnets",
        "    nics:\n      - net: storage\nnets",
    ));
    assert!(
        e.message.contains("no nic on the management network lago"),
        "{e}"
    );
    assert_eq!(e.path.to_string(), "domains/vm1/nics");
}

#[test]
fn duplicate_static_ip() {
    let e = bad(&replace(
        "    nics:\n      - net: lago\nnets",
        "    nics:\n      - net: lago\n      - net: storage\n        ip: 192.168.210.5\nnets",
    ));
    assert!(
        e.message.contains("duplicate static IP 192.168.210.5"),
        "{e}"
    );
    assert_eq!(e.path.to_string(), "domains/vm1/nics/1/ip");
}

#[test]
fn static_ip_outside_subnet() {
    let e = bad(&replace("ip: 192.168.210.5", "ip: 192.168.211.5"));
    assert!(
        e.message.contains("outside the subnet 192.168.210.0/24"),
        "{e}"
    );
    let e = bad(&replace("ip: 192.168.210.5", "ip: 10.0.0.5"));
    assert!(e.message.contains("outside"), "{e}");
    let e = bad(&replace("ip: 192.168.210.5", "ip: 192.168.210.1"));
    assert!(e.message.contains("gateway"), "{e}");
    let e = bad(&replace("ip: 192.168.210.5", "ip: 192.168.210.300"));
    assert!(e.message.contains("malformed IPv4 address"), "{e}");
}

#[test]
fn disks_may_be_omitted() {
    // Lago defaulted `disks` to an empty list (e.g. `vm-provider: ssh`).
    let f = parse("domains:\n  vm0:\n    nics: [{net: n}]\nnets:\n  n: {}\n").expect("valid");
    assert!(f.domains["vm0"].disks.is_empty());
}

#[test]
fn template_without_name() {
    let e = bad(&replace(
        "    - type: template\n      template_name: tiny\n",
        "    - type: template\n",
    ));
    assert!(e.message.contains("without `template_name`"), "{e}");
    assert!(e.path.to_string().ends_with("disks/0/template_name"), "{e}");
}

#[test]
fn wrong_types() {
    let e = bad(&replace("memory: 1024", "memory: lots"));
    assert_eq!(e.path.to_string(), "domains/vm1/memory");
    assert!(e.message.contains("string \"lots\""), "{e}");
    assert_eq!(e.expected.as_deref(), Some("a whole number of MiB"));
    assert_eq!(e.line, Some(20));
    let e = bad(&replace("management: true", "management: yes please"));
    assert_eq!(e.path.to_string(), "nets/lago/management");
    let e = bad(&replace(
        "    nics:\n      - net: lago\nnets",
        "    nics: lago\nnets",
    ));
    assert_eq!(e.path.to_string(), "domains/vm1/nics");
}

#[test]
fn syntax_errors() {
    let e = bad("domains:\n  vm0: [\n");
    assert!(e.message.starts_with("not valid YAML"), "{e}");
    assert!(e.line.is_some());
    let e = parse_str("{\"domains\": {,}}", None, Format::Json).expect_err("bad json");
    assert_eq!(e.line, Some(1));
    assert!(e.message.starts_with("not valid JSON"), "{e}");
}

#[test]
fn json_input() {
    let j = serde_json::json!({
        "domains": {"vm0": {"nics": [{"net": "n"}], "disks": [{"type": "empty", "size": "1G"}]}},
        "nets": {"n": {"type": "nat"}}
    });
    let text = serde_json::to_string_pretty(&j).expect("json");
    let f = parse_str(&text, None, Format::Json).expect("valid");
    assert_eq!(f.domains["vm0"].disks[0].disk_type, DiskType::Empty);
}

#[test]
fn expansion() {
    let look = |n: &str| match n {
        "A" => Some("/a".to_string()),
        _ => None,
    };
    assert_eq!(expand_vars("$A/x", &look).as_deref(), Ok("/a/x"));
    assert_eq!(expand_vars("${A}x", &look).as_deref(), Ok("/ax"));
    assert_eq!(expand_vars("cost $ 5", &look).as_deref(), Ok("cost $ 5"));
    assert!(expand_vars("$B/x", &look).is_err());
}

#[test]
fn sizes_and_devs() {
    assert_eq!(parse_size("10G"), Some(10 << 30));
    assert_eq!(parse_size("512M"), Some(512 << 20));
    assert_eq!(parse_size("x"), None);
    assert!(valid_dev("vda") && valid_dev("sdb") && !valid_dev("xda") && !valid_dev("vd"));
    assert_eq!(dev_letters(0), "a");
    assert_eq!(dev_letters(25), "z");
    assert_eq!(dev_letters(26), "aa");
}

/// One VM on one net, with `vm` lines added to the VM and `net` lines to the net.
fn one(vm: &str, net: &str) -> String {
    format!(
        "domains:\n  vm0:\n    nics: [{{net: n}}]\n    disks: [{{type: empty, size: 1G}}]\n{vm}nets:\n  n:\n    type: nat\n{net}"
    )
}

#[test]
fn planned_keys_refused_with_position() {
    for (vm, net, path) in [
        ("    libvirt_name: test\n", "", "domains/vm0/libvirt_name"),
        ("    ssh_host_key: null\n", "", "domains/vm0/ssh_host_key"),
        ("    mgmt_net: n\n", "", "domains/vm0/mgmt_net"),
        ("    snapshots: {}\n", "", "domains/vm0/snapshots"),
        ("", "    bridge: virbr0\n", "nets/n/bridge"),
        ("", "    subnet: 192.168.200.0\n", "nets/n/subnet"),
        ("", "    hosts: []\n", "nets/n/hosts"),
        ("", "    name: other\n", "nets/n/name"),
    ] {
        let e = bad(&one(vm, net));
        assert_eq!(e.path.to_string(), path, "{e}");
        assert!(e.message.contains("planned by lago"), "{e}");
        assert!(e.line.is_some() && e.column.is_some(), "{e}");
    }
    let e =
        bad("domains:\n  vm0:\n    nics: [{net: n, mac: '54:52:00:00:00:01'}]\nnets:\n  n: {}\n");
    assert_eq!(e.path.to_string(), "domains/vm0/nics/0/mac", "{e}");
    let e = bad("domains:\n  vm0:\n    nics: [{net: n}]\n    disks: [{type: empty, size: 1G, base: /etc/passwd}]\nnets:\n  n: {}\n");
    assert_eq!(e.path.to_string(), "domains/vm0/disks/0/base", "{e}");
    let e = bad(&format!("prefix: {{}}\n{}", one("", "")));
    assert_eq!(e.path.to_string(), "prefix", "{e}");
}

/// Every key the planned specs serialize is either one the reader takes
/// or one refused as planned: no user key can land beside a planned one.
#[test]
fn planned_keys_cover_the_spec() {
    use lago_plugin_api::spec::{DiskSpec, NetSpec, NicSpec, VmSpec};
    let disk: DiskSpec = serde_json::from_value(serde_json::json!({
        "type": "template", "name": "root", "dev": "vda", "format": "qcow2", "path": "/p",
        "template_name": "t", "template_type": "lago", "template_version": "v1", "base": "/b",
        "base_format": "qcow2", "url": "u", "size": "1G", "build": [], "metadata": {"a": 1}
    }))
    .expect("disk");
    let nic: NicSpec =
        serde_json::from_value(serde_json::json!({"net": "n", "ip": "192.168.200.2", "mac": "m"}))
            .expect("nic");
    let vm: VmSpec = serde_json::from_value(serde_json::json!({
        "name": "vm0", "libvirt_name": "x-vm0", "memory": 1, "vcpu": 1, "cpu_model": "c",
        "cpu_custom": {}, "nics": [], "disks": [], "mgmt_net": "n", "artifacts": [], "groups": [],
        "bootstrap": true, "ssh-user": "root", "ssh-password": "p", "root-password": "p",
        "service_provider": "systemd", "vm-provider": "p", "vm-type": "t", "metadata": {},
        "boot_time_sec": 1, "distro": "d", "ssh_host_key": "k"
    }))
    .expect("vm");
    let net: NetSpec = serde_json::from_value(serde_json::json!({
        "name": "n", "type": "nat", "management": true, "libvirt_name": "x-n", "bridge": "b",
        "gw": "192.168.200.1", "prefix_len": 24,
        "dhcp": {"start": "192.168.200.100", "end": "192.168.200.254"},
        "dns_domain_name": "d", "mtu": 1500, "mappings": []
    }))
    .expect("net");
    let check = |v: serde_json::Value, known: &[&str], planned: &[&str]| {
        for k in v.as_object().expect("object").keys() {
            assert!(
                known.contains(&k.as_str()) || planned.contains(&k.as_str()),
                "spec key {k} is neither read nor refused"
            );
        }
    };
    let j = |v: Result<serde_json::Value, serde_json::Error>| v.expect("json");
    check(
        j(serde_json::to_value(&disk)),
        rules::DISK_KEYS,
        rules::DISK_PLANNED,
    );
    check(
        j(serde_json::to_value(&nic)),
        rules::NIC_KEYS,
        rules::NIC_PLANNED,
    );
    check(
        j(serde_json::to_value(&vm)),
        rules::VM_KEYS,
        rules::VM_PLANNED,
    );
    check(
        j(serde_json::to_value(&net)),
        rules::NET_KEYS,
        rules::NET_PLANNED,
    );
}

#[test]
fn generated_text_values_refused() {
    for (vm, path) in [
        (
            "    ssh-user: \"root\\nProxyCommand=touch /tmp/x\"\n",
            "domains/vm0/ssh-user",
        ),
        ("    ssh-user: \"root x\"\n", "domains/vm0/ssh-user"),
        (
            "    groups: [\"web\\n[all:vars]\"]\n",
            "domains/vm0/groups/0",
        ),
        ("    groups: [\"a b\"]\n", "domains/vm0/groups/0"),
        (
            "    root-password: \"a\\u0000b\"\n",
            "domains/vm0/root-password",
        ),
        (
            "    artifacts: [\"/var/log\\n\"]\n",
            "domains/vm0/artifacts/0",
        ),
        (
            "    metadata: {deploy-scripts: [\"/x\\n\"]}\n",
            "domains/vm0/metadata/deploy-scripts/0",
        ),
        ("    cpu_model: \"a/b\"\n", "domains/vm0/cpu_model"),
        ("    cpu_model: \"a\\u0000\"\n", "domains/vm0/cpu_model"),
        (
            "    cpu_model: qemu64\n    cpu_custom: {\"@mode\": custom}\n",
            "domains/vm0/cpu_custom",
        ),
        ("    memory: 8796093022208\n", "domains/vm0/memory"),
    ] {
        let e = bad(&one(vm, ""));
        assert_eq!(e.path.to_string(), path, "{vm}: {e}");
    }
    for net in [
        "    dns_domain_name: \"a<b\"\n",
        "    dns_domain_name: \"\"\n",
        "    dns_domain_name: \"a\\nb\"\n",
        "    dns_domain_name: \"a\\u0000b\"\n",
    ] {
        let e = bad(&one("", net));
        assert_eq!(e.path.to_string(), "nets/n/dns_domain_name", "{net}: {e}");
    }
    let long = format!(
        "    dns_domain_name: {}\n",
        vec!["a".repeat(60); 5].join(".")
    );
    assert_eq!(
        bad(&one("", &long)).path.to_string(),
        "nets/n/dns_domain_name"
    );
    let e = bad("domains:\n  vm0:\n    nics: [{net: n}]\n    disks: [{type: file, path: ''}]\nnets:\n  n: {}\n");
    assert_eq!(e.path.to_string(), "domains/vm0/disks/0/path", "{e}");
}

#[test]
fn lago_spellings_of_numbers_and_booleans() {
    let f = parse(
        "domains:\n  vm0:\n    memory: \"4096\"\n    vcpu: \"2\"\n    bootstrap: no\n    nics: [{net: n}]\n    disks: [{type: empty, size: \" 1 m \"}]\nnets:\n  n:\n    management: yes\n    dhcp: {start: \"100\", end: \"254\"}\n  b: {type: bridge, management: Off}\n",
    )
    .expect("valid");
    let d = &f.domains["vm0"];
    assert_eq!(
        (d.memory, d.vcpu, d.bootstrap),
        (Some(4096), Some(2), Some(false))
    );
    assert_eq!(d.disks[0].size.as_deref(), Some("1M"));
    assert_eq!(f.nets["n"].management, Some(true));
    assert_eq!(f.nets["b"].management, Some(false));
    assert_eq!(f.nets["n"].dhcp, Some((100, 254)));
}

#[test]
fn misspelt_keys_warn_and_are_kept() {
    let f = parse(&one(
        "    memroy: 512\n    vcpus: 2\n    my-plugin-key: 1\n",
        "",
    ))
    .expect("valid");
    assert!(f.domains["vm0"].extra.contains_key("memroy"));
    assert_eq!(f.warnings.len(), 2, "{:?}", f.warnings);
    assert!(
        f.warnings[0].contains("domains/vm0/memroy") && f.warnings[0].contains("`memory`"),
        "{:?}",
        f.warnings
    );
    assert!(
        f.warnings[1].contains("did you mean `vcpu`"),
        "{:?}",
        f.warnings
    );
}

#[test]
fn ovirt_scripts_read_as_deploy_scripts() {
    let f = parse(&one("    metadata: {ovirt-scripts: [/s.sh]}\n", "")).expect("valid");
    let md = &f.domains["vm0"].metadata;
    assert_eq!(md["deploy-scripts"], serde_json::json!(["/s.sh"]));
    assert!(!md.contains_key("ovirt-scripts"));
    assert!(
        f.warnings[0].contains("deprecated `ovirt-scripts`"),
        "{:?}",
        f.warnings
    );
    let e = bad(&one("    metadata: {ovirt-scripts: [1]}\n", ""));
    assert_eq!(
        e.path.to_string(),
        "domains/vm0/metadata/ovirt-scripts/0",
        "{e}"
    );
}

#[test]
fn qcow2_template_needs_no_name_and_dns_records() {
    let f = parse("domains:\n  vm0:\n    nics: [{net: n}]\n    disks: [{type: template, template_type: qcow2, path: /images/e.qcow2, name: root, dev: vda}]\nnets:\n  n:\n    dns_records: {www.example.org: 127.0.0.1}\n").expect("valid");
    assert_eq!(
        f.nets["n"].dns_records["www.example.org"].to_string(),
        "127.0.0.1"
    );
    let e = bad("domains:\n  vm0:\n    nics: [{net: n}]\nnets:\n  n:\n    dns_records: {\"a b\": 127.0.0.1}\n");
    assert!(e.path.to_string().starts_with("nets/n/dns_records"), "{e}");
}

#[test]
fn json_duplicate_keys_and_bom() {
    let e = parse_str("{\"domains\": {}, \"domains\": {}}", None, Format::Json).expect_err("dup");
    assert!(e.message.contains("duplicate key"), "{e}");
    let f = parse_str(&format!("\u{feff}{}", one("", "")), None, Format::Yaml).expect("bom");
    assert_eq!(f.domains.len(), 1);
}

const HOSTS: &str = "\
hosts:
  hv2:
    libvirt_url: qemu+ssh://root@hv2.example/system
  hv3:
    libvirt_url: qemu+tcp://10.0.0.3/system
    ssh: admin@10.0.0.3:2222
    address: 10.0.0.3
domains:
  vm0:
    nics: [{net: lago}]
  vm1:
    host: hv2
    nics: [{net: lago}]
nets:
  lago: {type: nat, management: true}
";

#[test]
fn hosts_and_vm_hosts() {
    let f = parse(HOSTS).expect("valid");
    assert_eq!(f.hosts.len(), 2);
    assert_eq!(f.hosts["hv3"].ssh.as_deref(), Some("admin@10.0.0.3:2222"));
    assert_eq!(f.hosts["hv3"].address, Some(Ipv4Addr::new(10, 0, 0, 3)));
    assert_eq!(f.domains["vm1"].host.as_deref(), Some("hv2"));
    assert_eq!(f.domains["vm0"].host, None);
    assert!(!f.extra.contains_key("hosts"));
    // Without `hosts:`, nothing changes.
    assert!(parse(GOOD).expect("valid").hosts.is_empty());
}

#[test]
fn bad_hosts_are_refused_where_they_are() {
    let cases: &[(&str, &str, &str)] = &[
        ("host: hv2", "host: hv9", "unknown host \"hv9\""),
        (
            "libvirt_url: qemu+ssh://root@hv2.example/system",
            "libvirt_url: qemu:///system",
            "names no host",
        ),
        (
            "libvirt_url: qemu+ssh://root@hv2.example/system",
            "libvirt_url: xen+ssh://root@hv2/system",
            "not one of libvirt's QEMU transports",
        ),
        (
            "libvirt_url: qemu+ssh://root@hv2.example/system",
            "ssh: root@hv2",
            "has no `libvirt_url`",
        ),
        (
            "ssh: admin@10.0.0.3:2222",
            "ssh: \"-oProxyCommand=sh\"",
            "not an SSH destination",
        ),
        (
            "ssh: admin@10.0.0.3:2222",
            "ssh: \"root@h;reboot\"",
            "not an SSH destination",
        ),
        (
            "address: 10.0.0.3",
            "address: hv3",
            "malformed IPv4 address",
        ),
        ("  hv2:\n", "  default:\n", "reserved"),
    ];
    for (from, to, want) in cases {
        let text = HOSTS.replacen(from, to, 1);
        assert_ne!(text, HOSTS, "{from}");
        let e = bad(&text);
        let msg = e.to_string();
        assert!(msg.contains(want), "{to}: {msg}");
        assert!(msg.contains("LagoInitFile:"), "{to}: no position: {msg}");
    }
    // A VM's host with no `hosts:` at all.
    let e = bad(&GOOD.replacen("    memory: 1024\n", "    memory: 1024\n    host: hv2\n", 1));
    assert!(e.to_string().contains("there is none"), "{e}");
}

#[test]
fn host_urls_without_parameters_and_hosts_once() {
    for url in [
        "qemu+ssh://root@hv2/system?command=/tmp/evil.sh",
        "qemu+libssh2://root@hv2/system?known_hosts_verify=ignore",
        "qemu+ssh://root@hv2/system%3Fcommand=x",
    ] {
        let text = HOSTS.replacen("qemu+ssh://root@hv2.example/system", url, 1);
        let e = bad(&text);
        assert!(e.to_string().contains("parameters"), "{url}: {e}");
    }
    let text = HOSTS.replacen(
        "qemu+tcp://10.0.0.3/system",
        "qemu+ssh://root@HV2.example:22/system",
        1,
    );
    let e = bad(&text.replacen("    address: 10.0.0.3\n", "", 1));
    assert!(e.to_string().contains("same machine as host hv2"), "{e}");
}
