//! `lago init` writes `<prefix>/ssh_config` and `<prefix>/known_hosts` for
//! the user's own OpenSSH client (no hypervisor: libvirt's test driver).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use lago::prefix::Prefix;

const INIT: &str = r#"
domains:
  vm0:
    memory: 256
    nics: [{net: mgmt}]
    disks: [{type: empty, size: 1G, dev: vda, name: root}]
  vm1:
    ssh-user: tester
    nics: [{net: mgmt, ip: 192.168.200.77}]
    disks: [{type: empty, size: 1G, dev: vda, name: root}]
nets:
  mgmt: {type: nat, management: true}
"#;

fn lago(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lago"))
        .args(args)
        .current_dir(dir.join("proj"))
        .env("HOME", dir.join("home"))
        .env("XDG_CONFIG_HOME", dir.join("home/.config"))
        .env("XDG_CONFIG_DIRS", dir.join("etc-xdg"))
        .env("LAGO_LEASE_DIR", dir.join("leases"))
        .env("LAGO_LIBVIRT_URL", "test:///default")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run lago")
}

/// `Host` alias → its `(keyword lowercased, value)` lines.
fn parse_ssh_config(text: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut hosts: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once(char::is_whitespace).expect("key value");
        let (key, value) = (key.to_ascii_lowercase(), value.trim().to_string());
        if key == "host" {
            hosts.push((value, Vec::new()));
        } else {
            hosts
                .last_mut()
                .expect("options follow a Host line")
                .1
                .push((key, value));
        }
    }
    hosts
}

fn opt<'a>(opts: &'a [(String, String)], key: &str) -> &'a str {
    opts.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {key} in {opts:?}"))
}

#[test]
fn init_writes_ssh_config_and_known_hosts() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("proj")).expect("mkdir");
    std::fs::write(dir.join("proj/LagoInitFile"), INIT).expect("write");
    let out = lago(dir, &["init"]);
    assert!(
        out.status.success(),
        "init failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let prefix_path: PathBuf = dir.join("proj/.lago/default");
    let env = Prefix::open(&prefix_path)
        .expect("prefix")
        .load_env()
        .expect("env");
    let config = std::fs::read_to_string(prefix_path.join("ssh_config")).expect("ssh_config");
    let known = std::fs::read_to_string(prefix_path.join("known_hosts")).expect("known_hosts");

    let hosts = parse_ssh_config(&config);
    let aliases: Vec<&str> = hosts.iter().map(|(h, _)| h.as_str()).collect();
    assert_eq!(aliases, ["vm0", "vm1"], "{config}");
    let key = prefix_path.join("id_ed25519").display().to_string();
    let kh = prefix_path.join("known_hosts").display().to_string();
    for (alias, opts) in &hosts {
        let vm = &env.domains[alias];
        let ip = vm.mgmt_ip().expect("mgmt ip").to_string();
        assert_eq!(opt(opts, "hostname"), ip);
        assert_eq!(opt(opts, "port"), "22");
        assert_eq!(opt(opts, "user"), vm.ssh_user);
        assert_eq!(opt(opts, "identityfile"), key);
        assert_eq!(opt(opts, "userknownhostsfile"), kh);
        assert_eq!(opt(opts, "stricthostkeychecking"), "yes");
        // The VM's pinned key, by its address, without a comment.
        let pinned = vm.ssh_host_key.as_deref().expect("pinned host key");
        let mut fields = pinned.split_whitespace();
        let want = format!(
            "{ip} {} {}",
            fields.next().expect("alg"),
            fields.next().expect("b64")
        );
        assert!(known.lines().any(|l| l == want), "{want} not in {known}");
    }
    assert_eq!(opt(&hosts[1].1, "user"), "tester");
    assert_eq!(opt(&hosts[1].1, "hostname"), "192.168.200.77");
    assert_eq!(known.lines().count(), 2, "{known}");

    // OpenSSH's own reading of the file, when its client is installed.
    if let Ok(out) = Command::new("ssh")
        .args(["-G", "-F"])
        .arg(prefix_path.join("ssh_config"))
        .arg("vm1")
        .output()
    {
        assert!(
            out.status.success(),
            "ssh -G: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let resolved = String::from_utf8_lossy(&out.stdout);
        for want in [
            "hostname 192.168.200.77".to_string(),
            "user tester".to_string(),
            format!("userknownhostsfile {kh}"),
            "stricthostkeychecking true".to_string(),
        ] {
            assert!(
                resolved.lines().any(|l| l == want),
                "`{want}` not in ssh -G output:\n{resolved}"
            );
        }
    }

    // `status` says how each VM's host key is verified.
    let status = |dir: &Path| -> serde_json::Value {
        let out = lago(dir, &["status", "-f", "json"]);
        assert!(
            out.status.success(),
            "status: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("status json")
    };
    let v = status(dir);
    for vm in ["vm0", "vm1"] {
        assert_eq!(v["Prefix"]["VMs"][vm]["ssh host key"], "pinned", "{v}");
    }
    // A VM whose template cannot take a host key has none in its spec.
    let prefix = Prefix::open(&prefix_path).expect("prefix");
    let mut vm1 = env.domains["vm1"].clone();
    vm1.ssh_host_key = None;
    prefix.save_vm(&vm1).expect("save vm1");
    let v = status(dir);
    assert_eq!(v["Prefix"]["VMs"]["vm0"]["ssh host key"], "pinned", "{v}");
    assert_eq!(v["Prefix"]["VMs"]["vm1"]["ssh host key"], "learned", "{v}");

    let out = lago(dir, &["destroy", "--yes"]);
    assert!(
        out.status.success(),
        "destroy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
