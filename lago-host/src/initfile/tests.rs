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
fn no_disks() {
    let e = bad("domains:\n  vm0:\n    nics: [{net: n}]\nnets:\n  n: {}\n");
    assert!(e.message.contains("has no disks"), "{e}");
    assert_eq!(e.path.to_string(), "domains/vm0/disks");
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
