//! `lago init` writes `<prefix>/ssh_config` and `<prefix>/known_hosts` for
//! the user's own OpenSSH client (no hypervisor: libvirt's test driver).

use std::path::{Path, PathBuf};
use std::process::Command;

use lago_test_support::{lago_bin, qemu_img, Project};

use lago::prefix::Prefix;

/// vm0's template installs the seed's host key (template metadata
/// `ssh-host-key: seed`): pinned. vm1 has no template: its seed offers a
/// host key too, pinned only once the VM presents it (else learned).
const INIT: &str = r#"
domains:
  vm0:
    memory: 256
    nics: [{net: mgmt}]
    disks: [{template_name: seeded, type: template, dev: vda, name: root}]
  vm1:
    ssh-user: tester
    nics: [{net: mgmt, ip: 192.168.200.77}]
    disks: [{type: empty, size: 1G, dev: vda, name: root}]
nets:
  mgmt: {type: nat, management: true}
"#;

/// A project holding `initfile`, on libvirt's test driver, with its own
/// template store.
fn project(initfile: &str) -> Project {
    let p = Project::with_init(lago_bin!(), initfile).test_driver();
    let store = p.root().join("store");
    p.configure(|l| l.env("LAGO__INIT__TEMPLATE_STORE", store))
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
    let p = project(INIT);
    let dir = p.root();
    let repo = seeded_template_repo(&dir.join("repo"));
    let out = p.lago(&["init", "--template-repo-path", &repo]);
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
    assert!(
        env.domains["vm1"].ssh_host_key.is_some(),
        "vm1's seed offers a host key"
    );
    assert!(
        prefix_path.join("host-keys/vm1").exists(),
        "the offered host key's private half is kept for the seed"
    );
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
        let Some(pinned) = vm.ssh_host_key.as_deref().filter(|_| alias == "vm0") else {
            continue;
        };
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
    assert_eq!(known.lines().count(), 1, "only vm0 is pinned: {known}");

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
    let status = || -> serde_json::Value {
        let out = p.lago(&["status", "-f", "json"]);
        assert!(
            out.status.success(),
            "status: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("status json")
    };
    let v = status();
    assert_eq!(v["Prefix"]["VMs"]["vm0"]["ssh host key"], "pinned", "{v}");
    assert_eq!(
        v["Prefix"]["VMs"]["vm1"]["ssh host key"], "not seen yet",
        "{v}"
    );
    // Once lago learned a key (here: written as lago writes it), status says
    // where it came from.
    let kh_path = prefix_path.join("known_hosts");
    let some_key: Vec<&str> = env.domains["vm0"]
        .ssh_host_key
        .as_deref()
        .expect("vm0 pinned")
        .split_whitespace()
        .take(2)
        .collect();
    let learned = format!(
        "{known}192.168.200.77 {} lago:console\n",
        some_key.join(" ")
    );
    std::fs::write(&kh_path, learned).expect("write known_hosts");
    let v = status();
    assert_eq!(v["Prefix"]["VMs"]["vm1"]["ssh host key"], "console", "{v}");
    // The key offered in the seed, recorded when the VM presented it.
    let seeded = format!("{known}192.168.200.77 {} lago:seed\n", some_key.join(" "));
    std::fs::write(&kh_path, seeded).expect("write known_hosts");
    let v = status();
    assert_eq!(v["Prefix"]["VMs"]["vm1"]["ssh host key"], "pinned", "{v}");
    let _ = Prefix::open(&prefix_path).expect("prefix");

    let out = p.lago(&["destroy", "--yes"]);
    assert!(
        out.status.success(),
        "destroy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A file-source template repo holding one real (empty) qcow2 image whose
/// metadata says it installs the seed's host key; returns the repo file.
fn seeded_template_repo(dir: &Path) -> String {
    std::fs::create_dir_all(dir).expect("mkdir repo");
    let image = dir.join("seeded-v1.qcow2");
    qemu_img::create(&image, "qcow2", "16M");
    std::fs::write(
        dir.join("seeded-v1.qcow2.metadata"),
        r#"{"distro": "seeded", "ssh-host-key": "seed"}"#,
    )
    .expect("metadata");
    let repo = format!(
        r#"{{"name": "local", "sources": {{"src": {{"type": "file", "args": {{"root": "{}"}}}}}},
            "templates": {{"seeded": {{"versions": {{"v1": {{"source": "src", "handle": "seeded-v1.qcow2", "timestamp": 1}}}}}}}}}}"#,
        dir.display()
    );
    let path = dir.join("repo.json");
    std::fs::write(&path, repo).expect("repo");
    path.display().to_string()
}

/// Without a seed (`--skip-bootstrap`, or `bootstrap: false`), the VM never
/// gets the key lago made: nothing is pinned, the key will be learned.
#[test]
fn no_seed_no_pinned_host_key() {
    let init = INIT
        .replace(
            "    memory: 256\n",
            "    memory: 256\n    bootstrap: false\n",
        )
        .replace(
            "    ssh-user: tester\n",
            "    ssh-user: tester\n    bootstrap: false\n",
        );
    let p = project(&init);
    let dir = p.root();
    let repo = seeded_template_repo(&dir.join("repo"));
    for args in [
        vec!["init", "--template-repo-path", &repo],
        vec![
            "-P",
            "p2",
            "init",
            "--skip-bootstrap",
            "--template-repo-path",
            &repo,
        ],
    ] {
        let out = p.lago(&args);
        assert!(
            out.status.success(),
            "init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for prefix in ["default", "p2"] {
        let path = dir.join("proj/.lago").join(prefix);
        let env = Prefix::open(&path)
            .expect("prefix")
            .load_env()
            .expect("env");
        for vm in env.domains.values() {
            assert!(vm.ssh_host_key.is_none(), "{prefix}/{}: pinned", vm.name);
        }
        let known = std::fs::read_to_string(path.join("known_hosts")).unwrap_or_default();
        assert_eq!(known.trim(), "", "{prefix}: {known}");
    }
}
