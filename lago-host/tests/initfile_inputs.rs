//! Init files as attackers and as Lago's users write them, through the
//! `lago` binary on libvirt's test driver: refused input exits 2 with one
//! line naming file:line:col and leaves nothing under the workdir or the
//! lease dir; accepted input is stored as Lago read it. Ends with property
//! tests that mutate valid init and config files.

use std::path::PathBuf;
use std::process::{Command, Output};

use lago::prefix::Prefix;
use lago_test_support::{lago_bin, ok, qemu_img, Project};
use proptest::prelude::*;

/// A valid file the cases below change one line of.
const BASE: &str = "\
domains:
  vm0:
    memory: 256
    nics: [{net: mgmt}]
    disks:
      - {type: empty, size: 1G, dev: vda, name: root}
    groups: [web]
nets:
  mgmt:
    type: nat
    management: true
";

/// A project (with its lease store made) on libvirt's test driver; its
/// runs have `SOME_DIR` set to the project folder.
struct Sb(Project);

impl std::ops::Deref for Sb {
    type Target = Project;
    fn deref(&self) -> &Project {
        &self.0
    }
}

impl Sb {
    fn new() -> Sb {
        let p = Project::new(lago_bin!()).test_driver();
        std::fs::create_dir_all(p.leases()).expect("mkdir");
        let proj = p.proj();
        Sb(p.configure(|l| l.env("SOME_DIR", proj)))
    }
    fn init(&self, file: &str) -> Output {
        self.lago(&["init", "--skip-bootstrap", file])
    }
    /// Nothing of lago's is left: no workdir, no lease.
    fn assert_clean(&self, what: &str) {
        assert!(!self.proj().join(".lago").exists(), "{what}: workdir left");
        // The store's own `.lock` may stay; no lease may.
        let leases = std::fs::read_dir(self.leases())
            .map(|rd| rd.flatten().filter(|e| e.file_name() != ".lock").count())
            .unwrap_or(0);
        assert_eq!(leases, 0, "{what}: lease dir not empty");
    }
    /// `init` refuses `text` with exit 2 and one line holding every part of
    /// `wants`.
    fn refused(&self, what: &str, name: &str, text: &str, wants: &[&str]) {
        self.write(name, text);
        let out = self.init(name);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        let line = err
            .lines()
            .find(|l| l.contains(name) && !l.contains("WARN"))
            .unwrap_or_else(|| panic!("{what}: no error line naming {name}: {err}"));
        for w in wants {
            assert!(line.contains(w), "{what}: expected {w:?} in {line:?}");
        }
        self.assert_clean(what);
    }
    fn env(&self) -> lago_plugin_api::spec::EnvSpec {
        self.env_at(".lago/default")
    }
    /// The stored spec of the prefix at `rel` in the project.
    fn env_at(&self, rel: &str) -> lago_plugin_api::spec::EnvSpec {
        Prefix::open(&self.proj().join(rel))
            .expect("prefix")
            .load_env()
            .expect("env")
    }
}

fn edit(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from:?}");
    BASE.replacen(from, to, 1)
}

/// Issue 8: keys lago plans, text that would inject lines, values that
/// could only fail later. Each with its position in the file.
#[test]
fn refused_with_position_and_nothing_left() {
    let vm = |extra: &str| {
        edit(
            "    groups: [web]\n",
            &format!("    groups: [web]\n{extra}"),
        )
    };
    let net = |extra: &str| format!("{BASE}{extra}");
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "libvirt_name",
            vm("    libvirt_name: test\n"),
            vec![
                "LagoInitFile:8:5:",
                "domains/vm0/libvirt_name",
                "planned by lago",
            ],
        ),
        (
            "ssh_host_key",
            vm("    ssh_host_key: null\n"),
            vec![":8:5:", "domains/vm0/ssh_host_key"],
        ),
        (
            "mgmt_net",
            vm("    mgmt_net: other\n"),
            vec![":8:5:", "domains/vm0/mgmt_net"],
        ),
        (
            "nic mac",
            edit("[{net: mgmt}]", "[{net: mgmt, mac: '54:52:00:00:00:01'}]"),
            vec!["domains/vm0/nics/0/mac"],
        ),
        (
            "net bridge",
            net("    bridge: virbr0\n"),
            vec![":12:5:", "nets/mgmt/bridge"],
        ),
        (
            "net subnet",
            net("    subnet: 192.168.200.0\n"),
            vec!["nets/mgmt/subnet"],
        ),
        (
            "net hosts",
            net("    hosts: [a]\n"),
            vec!["nets/mgmt/hosts"],
        ),
        ("net name", net("    name: x\n"), vec!["nets/mgmt/name"]),
        (
            "ssh-user newline",
            vm("    ssh-user: \"root\\nProxyCommand=touch /tmp/pwned\"\n"),
            vec![":8:5:", "domains/vm0/ssh-user", "U+000A"],
        ),
        (
            "group newline",
            edit("[web]", "[\"web\\n[all:vars]\"]"),
            vec!["domains/vm0/groups/0"],
        ),
        (
            "dns <",
            net("    dns_domain_name: \"a<b\"\n"),
            vec![":12:5:", "nets/mgmt/dns_domain_name"],
        ),
        (
            "dns NUL",
            net("    dns_domain_name: \"a\\0b\"\n"),
            vec!["nets/mgmt/dns_domain_name"],
        ),
        (
            "dns newline",
            net("    dns_domain_name: \"a\\nb\"\n"),
            vec!["nets/mgmt/dns_domain_name"],
        ),
        (
            "dns empty",
            net("    dns_domain_name: ''\n"),
            vec!["nets/mgmt/dns_domain_name"],
        ),
        (
            "dns long",
            net(&format!(
                "    dns_domain_name: {}\n",
                vec!["a".repeat(60); 5].join(".")
            )),
            vec!["nets/mgmt/dns_domain_name"],
        ),
        (
            "cpu_model /",
            vm("    cpu_model: ../../x\n"),
            vec!["domains/vm0/cpu_model"],
        ),
        (
            "cpu_model NUL",
            vm("    cpu_model: \"a\\0\"\n"),
            vec!["domains/vm0/cpu_model"],
        ),
        (
            "cpu_custom and model",
            vm("    cpu_model: qemu64\n    cpu_custom: {'@mode': custom}\n"),
            vec!["domains/vm0/cpu_custom", "both set"],
        ),
        // Issue 18: Lago's OVA domains are refused, not planned without
        // their disks and memory.
        (
            "ova domain",
            vm("    type: ova\n    url: file:///srv/appliance.ova\n"),
            vec![":8:", "domains/vm0/type", "type `ova`", "not supported"],
        ),
        // Issue 18: typos Lago tolerated (it used the last octet) are
        // refused, naming that rule.
        (
            "static IP with a comma",
            edit(
                "nics: [{net: mgmt}]",
                "nics:\n      - net: mgmt\n        ip: 192,168.200.3",
            ),
            vec![
                ":6:",
                "domains/vm0/nics/0/ip",
                "\"192,168.200.3\"",
                "Lago used only its last octet, 3",
            ],
        ),
        (
            "static IP out of range",
            edit(
                "nics: [{net: mgmt}]",
                "nics:\n      - net: mgmt\n        ip: 999.999.999.150",
            ),
            vec!["domains/vm0/nics/0/ip", "last octet, 150"],
        ),
        (
            "memory",
            edit("memory: 256", "memory: 9999999999999999"),
            vec![":3:5:", "more than libvirt accepts"],
        ),
        // Issue 18 (finding 8): a null memory and an integer past 64 bits,
        // each refused at its position like any other wrong value.
        (
            "memory null",
            edit("memory: 256", "memory: ~"),
            vec![":3:5:", "domains/vm0/memory", "null", "whole number of MiB"],
        ),
        (
            "memory past 64 bits",
            edit("memory: 256", "memory: 99999999999999999999"),
            vec![
                ":3:5:",
                "domains/vm0/memory",
                "99999999999999999999 is too large",
                "whole number of MiB",
            ],
        ),
        (
            "file path empty",
            edit("{type: empty, size: 1G,", "{type: file, path: '',"),
            vec!["domains/vm0/disks/0/path", "empty"],
        ),
        (
            "file path folder",
            edit("{type: empty, size: 1G,", "{type: file, path: $SOME_DIR,"),
            vec!["domains/vm0/disks/0/path", "is a folder"],
        ),
        (
            "service_provider",
            vm("    service_provider: upstart\n"),
            vec![":8:5:", "no vm-service plugin", "systemd"],
        ),
        (
            "size garbage",
            edit("size: 1G", "size: 1 0G"),
            vec!["domains/vm0/disks/0/size"],
        ),
    ];
    for (what, text, wants) in &cases {
        Sb::new().refused(what, "LagoInitFile", text, wants);
    }
}

/// Issue 8: only a regular file under the cap is read; JSON duplicates are
/// refused like YAML ones; a byte-order mark is fine.
#[test]
fn init_file_kinds() {
    let sb = Sb::new();
    for (path, want) in [
        ("/dev/zero", "not a regular file"),
        (".", "not a regular file"),
    ] {
        let out = sb.init(path);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{path}: {err}");
        assert!(err.contains(want), "{path}: {err}");
        sb.assert_clean(path);
    }
    let fifo = sb.proj().join("fifo");
    let status = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(status.success());
    let out = sb.init("fifo");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a FIFO"));
    sb.assert_clean("fifo");

    let big = format!("{BASE}# {}\n", "x".repeat(5 << 20));
    sb.refused("big", "big.yaml", &big, &["more than the"]);
    sb.refused(
        "json duplicate",
        "init.json",
        "{\"domains\": {\"vm0\": {\"memory\": 256,\n \"memory\": 512}}, \"nets\": {}}",
        &["init.json:2:", "duplicate key \"memory\""],
    );
    sb.refused(
        "yaml duplicate",
        "dup.yaml",
        &edit("    memory: 256\n", "    memory: 256\n    memory: 512\n"),
        &["duplicate"],
    );

    sb.write("bom.yaml", &format!("\u{feff}{BASE}"));
    let out = sb.init("bom.yaml");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sb.env().domains["vm0"].memory, 256);
}

/// Issue 8: a size is stored in the one spelling qemu-img is given.
#[test]
fn size_is_normalised() {
    let sb = Sb::new();
    sb.write("LagoInitFile", &edit("size: 1G", "size: \" 1 m \""));
    let out = sb.init("LagoInitFile");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sb.env().domains["vm0"].disks[0].size.as_deref(), Some("1M"));
}

/// A bare number is GiB whether written as a number or a string; a size
/// too big is called too big, at init, not by qemu-img later.
#[test]
fn size_units_and_limit() {
    for (given, stored) in [("\"1\"", "1G"), ("1", "1G"), ("4096b", "4096B")] {
        let sb = Sb::new();
        sb.write("LagoInitFile", &edit("size: 1G", &format!("size: {given}")));
        let out = sb.init("LagoInitFile");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            sb.env().domains["vm0"].disks[0].size.as_deref(),
            Some(stored)
        );
    }
    for big in [
        "\"99999999T\"",
        "\"18446744073709551615\"",
        "2048T",
        "1048577",
    ] {
        Sb::new().refused(
            big,
            "LagoInitFile",
            &edit("size: 1G", &format!("size: {big}")),
            &["domains/vm0/disks/0/size", "more than the 1P lago accepts"],
        );
    }
}

/// Issue 11: a misspelt known key warns with the likely key and is kept.
#[test]
fn misspelt_key_warns() {
    let sb = Sb::new();
    sb.write(
        "LagoInitFile",
        &edit("    memory: 256\n", "    memory: 256\n    vcpus: 2\n"),
    );
    let out = sb.init("LagoInitFile");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(
            "LagoInitFile:4:5: domains/vm0/vcpus: unknown key `vcpus` (kept); did you mean `vcpu`?"
        ),
        "{err}"
    );
    assert_eq!(sb.env().domains["vm0"].extra["vcpus"], 2);
}

/// Mutations of a valid file: one line dropped, duplicated, or a byte
/// replaced by something YAML or lago cares about.
fn mutate(text: &str, pick: usize, kind: u8, byte: u8) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let i = pick % lines.len();
    let mut out: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    match kind % 4 {
        0 => {
            out.remove(i);
        }
        1 => out.insert(i, lines[i].to_string()),
        _ => {
            let specials = b":-[]{}&*!|>'\"%@`#,?\n\t\0 0aZ.$\\";
            let c = specials[byte as usize % specials.len()] as char;
            let line = &mut out[i];
            let at = (byte as usize / 7) % (line.len() + 1);
            let at = (0..=at)
                .rev()
                .find(|n| line.is_char_boundary(*n))
                .unwrap_or(0);
            if kind % 4 == 2 {
                line.insert(at, c);
            } else if at < line.len() {
                line.replace_range(
                    at..at + line[at..].chars().next().map_or(0, char::len_utf8),
                    &c.to_string(),
                );
            }
        }
    }
    out.join("\n") + "\n"
}

/// The richer file the properties start from: every kind of key.
const RICH: &str = "\
x-vm: &vm
  memory: 256
  vcpu: 1
domains:
  vm0:
    <<: *vm
    nics:
      - net: mgmt
      - {net: storage, ip: 192.168.210.20}
    disks:
      - {type: empty, size: 1G, dev: vda, name: root}
      - {type: empty, size: 512M, dev: vdb, name: data}
    groups: [web, db]
    ssh-user: root
    artifacts: [/var/log]
  vm1:
    <<: *vm
    nics: [{net: mgmt}]
    disks: [{type: empty, size: 1G}]
nets:
  mgmt:
    type: nat
    management: yes
    dhcp: {start: 100, end: 254}
    dns_domain_name: lago.local
  storage:
    gw: 192.168.210.1
";

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// Issue 8: a mutated init file never panics; rejected input is exit 2
    /// with a message and leaves nothing; accepted input can be destroyed.
    #[test]
    fn mutated_init_files(pick in 0usize..64, kind in 0u8..4, byte in any::<u8>()) {
        let sb = Sb::new();
        sb.write("LagoInitFile", &mutate(RICH, pick, kind, byte));
        let out = sb.init("LagoInitFile");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        match out.status.code() {
            Some(0) => {
                let d = sb.lago(&["destroy", "-y"]);
                prop_assert!(d.status.success(), "{}", String::from_utf8_lossy(&d.stderr));
            }
            Some(2) => {
                prop_assert!(err.contains("LagoInitFile"), "no message naming the file: {err}");
                sb.assert_clean("mutated");
            }
            other => prop_assert!(false, "exit {other:?}: {err}"),
        }
    }

    /// Issue 8: a mutated config file never panics: init runs (exit 0) or
    /// refuses (exit 2) with a message, leaving nothing.
    #[test]
    fn mutated_config_files(pick in 0usize..64, kind in 0u8..4, byte in any::<u8>()) {
        let sb = Sb::new();
        sb.write("LagoInitFile", BASE);
        let conf = "[lago]\nssh_user = root\nlease_timeout = 10\ndefault_vm_provider = local-libvirt\n[init]\ntemplate_store = /var/lib/lago/store\n";
        sb.conf(&mutate(conf, pick, kind, byte));
        let out = sb.init("LagoInitFile");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        match out.status.code() {
            Some(0) => {
                let d = sb.lago(&["destroy", "-y"]);
                prop_assert!(d.status.success(), "{}", String::from_utf8_lossy(&d.stderr));
            }
            Some(2) => {
                prop_assert!(!err.trim().is_empty(), "no message");
                sb.assert_clean("mutated config");
            }
            other => prop_assert!(false, "exit {other:?}: {err}"),
        }
    }
}

/// Issue 11: paths inside the prefix are stored relative to it (Lago's
/// `$LAGO_PREFIX_PATH/...`), so a copied workdir uses its own images and
/// scripts.
#[test]
fn copied_workdir_uses_its_own_images() {
    let sb = Sb::new();
    sb.write("s.sh", "#!/bin/sh\n");
    sb.write(
        "LagoInitFile",
        &edit(
            "    groups: [web]\n",
            "    groups: [web]\n    metadata: {deploy-scripts: [$LAGO_INITFILE_PATH/s.sh]}\n",
        ),
    );
    let out = sb.init("LagoInitFile");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored = std::fs::read_to_string(sb.proj().join(".lago/default/virt/vms/vm0.json"))
        .expect("stored vm");
    assert!(
        stored.contains("\"$LAGO_PREFIX_PATH/images/vm0_root.qcow2\""),
        "{stored}"
    );
    assert!(
        !stored.contains(&sb.proj().display().to_string()),
        "{stored}"
    );

    let copy = sb.dir.path().join("copy");
    let st = Command::new("cp")
        .arg("-a")
        .arg(sb.proj())
        .arg(&copy)
        .status()
        .expect("cp");
    assert!(st.success());
    let env = Prefix::open(&copy.join(".lago/default"))
        .expect("prefix")
        .load_env()
        .expect("env");
    let vm = &env.domains["vm0"];
    let disk = vm.disks[0].path.as_deref().expect("path");
    assert_eq!(disk, copy.join(".lago/default/images/vm0_root.qcow2"));
    assert!(disk.is_file(), "the copy's own image exists");
    let script = vm.metadata["deploy-scripts"][0].as_str().expect("script");
    assert!(script.starts_with(&copy.display().to_string()), "{script}");
}

/// Control characters and bidi controls are refused in every key and string
/// of the file, free-form ones (`metadata`, `distro`) included, at the
/// position of the key that holds them.
#[test]
fn control_and_bidi_refused_everywhere() {
    let vm = |extra: &str| {
        edit(
            "    groups: [web]\n",
            &format!("    groups: [web]\n{extra}"),
        )
    };
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "metadata value newline",
            vm("    metadata: {foo: \"a\\nVMs/vm1/status: up\"}\n"),
            vec![":8:5:", "domains/vm0/metadata/foo", "U+000A"],
        ),
        (
            "metadata escape sequence",
            vm("    metadata: {bar: \"\\e]0;pwned\\a\\e[2J\"}\n"),
            vec![":8:5:", "domains/vm0/metadata/bar", "U+001B"],
        ),
        (
            "metadata key newline",
            vm("    metadata: {\"k\\ney\": 1}\n"),
            vec![":8:5:", "domains/vm0/metadata/k\\ney", "the key", "U+000A"],
        ),
        (
            "distro bidi",
            vm("    distro: \"x\\u202eevil\"\n"),
            vec![":8:5:", "domains/vm0/distro", "bidirectional", "U+202E"],
        ),
        (
            "group bidi",
            edit("[web]", "[\"w\\u2066eb\"]"),
            vec![":7:5:", "domains/vm0/groups/0", "U+2066"],
        ),
        (
            "nested free-form C1",
            vm("    my-plugin:\n      deep: [ok, \"a\\x85b\"]\n"),
            vec![":9:7:", "domains/vm0/my-plugin/deep/1", "U+0085"],
        ),
        (
            "top-level extra DEL",
            format!("{BASE}note: \"a\\x7fb\"\n"),
            vec![":12:1:", "note", "U+007F"],
        ),
    ];
    for (what, text, wants) in &cases {
        Sb::new().refused(what, "LagoInitFile", text, wants);
    }
}

/// Deep nesting is refused by a linear pre-scan with the position of the
/// bracket that goes too deep (the parser alone took minutes on 100 000
/// levels before failing); moderate nesting in free-form keys is fine.
#[test]
fn deep_nesting_refused_before_parsing() {
    let sb = Sb::new();
    let n = 100_000;
    let text = edit(
        "    groups: [web]\n",
        &format!(
            "    groups: [web]\n    metadata: {{x: {}1{}}}\n",
            "[".repeat(n),
            "]".repeat(n)
        ),
    );
    sb.refused(
        "deep flow",
        "LagoInitFile",
        &text,
        &[":8:", "nested more than 64 levels"],
    );
    let ok = edit(
        "    groups: [web]\n",
        "    groups: [web]\n    metadata: {x: [[[[[[[[[[1]]]]]]]]]]}\n",
    );
    sb.write("ok", &ok);
    let out = sb.init("ok");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `memory: 010` was octal 8 for Lago (PyYAML, YAML 1.1) and would be 10
/// here: refused with its position; `0o10`, `0x10` and `"010"` mean the
/// same in both and are read.
#[test]
fn leading_zero_integers_refused() {
    Sb::new().refused(
        "memory 010",
        "LagoInitFile",
        &edit("memory: 256", "memory: 0400"),
        &[":3:13:", "0400", "leading zero", "octal"],
    );
    let sb = Sb::new();
    sb.write("LagoInitFile", &edit("memory: 256", "memory: 0o400"));
    let out = sb.init("LagoInitFile");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sb.env().domains["vm0"].memory, 256);
}

/// `lago export` never writes through an entry already at an output name (a
/// planted symlink to a victim file), and the exported init file, which
/// holds root passwords, is 0600.
#[test]
fn export_refuses_existing_outputs_and_keeps_init_file_private() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sb::new();
    sb.write("LagoInitFile", BASE);
    let out = sb.init("LagoInitFile");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let victim = sb.proj().join("victim");
    std::fs::write(&victim, "precious").expect("victim");
    let trap = sb.proj().join("trap");
    std::fs::create_dir(&trap).expect("trap");
    std::os::unix::fs::symlink(&victim, trap.join("vm0_root.qcow2")).expect("symlink");
    let out = sb.lago(&["export", "-d", "trap"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "export through a symlink: {err}");
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim"),
        "precious"
    );

    let out = sb.lago(&["export", "-d", "clean"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let init = sb.proj().join("clean/LagoInitFile");
    let mode = std::fs::metadata(&init)
        .expect("init file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let out = sb.lago(&["export", "-d", "clean"]);
    assert!(!out.status.success(), "a second export over the first");
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
}

/// Issue 18: `init --ssh-key PATH` copies the user's private key into the
/// prefix (0600, its public half beside it) instead of generating one; a
/// file that is not a readable private key is refused before anything is
/// made.
#[test]
fn ssh_key_option() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sb::new();
    sb.write("LagoInitFile", BASE);
    let key = sb.proj().join("my_key");
    let status = Command::new("ssh-keygen")
        .args([
            "-q", "-t", "rsa", "-b", "2048", "-N", "", "-C", "me@ci", "-f",
        ])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(status.success());

    for (what, path, want) in [
        ("missing", "nothing-here", "cannot read the SSH key"),
        ("not a key", "LagoInitFile", "is not a readable private key"),
    ] {
        let out = sb.lago(&["init", "--ssh-key", path, "LagoInitFile"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert!(
            err.contains("--ssh-key: ") && err.contains(want),
            "{what}: {err}"
        );
        sb.assert_clean(what);
    }

    let out = sb.lago(&["init", "--ssh-key", "my_key", "LagoInitFile"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env = sb.env();
    let copied = env.prefix.ssh_key_path();
    assert_eq!(
        std::fs::read(&copied).expect("prefix key"),
        std::fs::read(&key).expect("user key")
    );
    let mode = std::fs::metadata(&copied)
        .expect("meta")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let public = std::fs::read_to_string(env.prefix.ssh_pubkey_path()).expect("pub");
    let mut user_pub = key.as_os_str().to_owned();
    user_pub.push(".pub");
    let user_pub = std::fs::read_to_string(&user_pub).expect("user pub");
    // Same key (the comment may differ).
    let body = |l: &str| l.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    assert_eq!(body(&public), body(&user_pub));
}

/// Issue 18: an export re-inits alone. Its init file points at nothing in
/// the source prefix: the deploy scripts are copied beside the images
/// (`scripts/`), so after the source is destroyed and the export folder
/// moved, a new init finds them (here on libvirt's test driver; the disks'
/// data is checked on real VMs by the e2e export tests).
#[test]
fn export_reinits_alone_with_its_scripts() {
    let sb = Sb::new();
    sb.write("setup.sh", "#!/bin/sh\necho configured > /root/setup-ran\n");
    sb.write(
        "LagoInitFile",
        &edit(
            "    groups: [web]\n",
            "    groups: [web]\n    metadata:\n      deploy-scripts: [$LAGO_INITFILE_PATH/setup.sh]\n",
        ),
    );
    ok(&sb.init("LagoInitFile"), "init");
    ok(&sb.lago(&["export", "-d", "out"]), "export");
    let text = std::fs::read_to_string(sb.proj().join("out/LagoInitFile")).expect("init file");
    assert!(!text.contains(".lago"), "points into the source: {text}");
    assert!(text.contains("$LAGO_INITFILE_PATH/scripts/"), "{text}");
    ok(&sb.lago(&["destroy", "--yes"]), "destroy");
    assert!(!sb.proj().join(".lago/default").exists());
    std::fs::rename(sb.proj().join("out"), sb.proj().join("moved")).expect("move");

    ok(
        &sb.lago(&["init", "--skip-bootstrap", "again", "moved/LagoInitFile"]),
        "re-init",
    );
    let env = sb.env_at("again/default");
    let scripts = env.domains["vm0"].metadata["deploy-scripts"]
        .as_array()
        .expect("scripts")
        .clone();
    assert_eq!(scripts.len(), 1);
    let script = PathBuf::from(scripts[0].as_str().expect("path"));
    assert!(script.starts_with(env.prefix.scripts_dir()), "{script:?}");
    assert_eq!(
        std::fs::read_to_string(&script).expect("script"),
        "#!/bin/sh\necho configured > /root/setup-ran\n"
    );
}

/// Issue 18 (finding 2): `lago export` keeps the addresses the init file
/// wrote, as Lago's `generate_init` did: a net's `gw` and `dhcp` (and its
/// other keys), a nic's `ip`; the addresses lago chose itself are left out
/// (leased anew). A re-init of the export comes back on the same addresses.
#[test]
fn export_keeps_written_addresses() {
    let sb = Sb::new();
    sb.write(
        "LagoInitFile",
        "\
domains:
  vm0:
    memory: 256
    nics:
      - {net: mgmt}
      - {net: data, ip: 192.168.210.10, comment: mine}
      - {net: data}
    disks:
      - {type: empty, size: 1G, dev: vda, name: root}
nets:
  mgmt: {type: nat, management: true}
  data:
    type: nat
    gw: 192.168.210.4
    dhcp: {start: 150, end: 200}
    comment: kept
",
    );
    ok(&sb.init("LagoInitFile"), "init");
    ok(&sb.lago(&["export", "-d", "out"]), "export");
    let text = std::fs::read_to_string(sb.proj().join("out/LagoInitFile")).expect("init file");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("json");
    let data = &doc["nets"]["data"];
    assert_eq!(data["gw"], "192.168.210.4", "{text}");
    assert_eq!(data["dhcp"], serde_json::json!({"start": 150, "end": 200}));
    assert_eq!(data["comment"], "kept", "{text}");
    let mgmt = &doc["nets"]["mgmt"];
    assert!(
        mgmt.get("gw").is_none() && mgmt.get("dhcp").is_none(),
        "{text}"
    );
    let nics = &doc["domains"]["vm0"]["nics"];
    assert_eq!(nics[1]["ip"], "192.168.210.10", "{text}");
    assert_eq!(nics[1]["comment"], "mine", "{text}");
    assert!(nics[0].get("ip").is_none() && nics[2].get("ip").is_none());
    assert!(!text.contains("lago_written"), "{text}");

    ok(&sb.lago(&["destroy", "--yes"]), "destroy");
    ok(
        &sb.lago(&["init", "--skip-bootstrap", "again", "out/LagoInitFile"]),
        "re-init",
    );
    let env = sb.env_at("again/default");
    let net = &env.nets["data"];
    assert_eq!(net.gw, Some("192.168.210.4".parse().expect("ip")));
    let dhcp = net.dhcp.as_ref().expect("dhcp");
    assert_eq!((dhcp.start.octets()[3], dhcp.end.octets()[3]), (150, 200));
    let ip = env.domains["vm0"].nics[1].ip;
    assert_eq!(ip, Some("192.168.210.10".parse().expect("ip")));

    // The mark is lago's: an init file cannot write it.
    Sb::new().refused(
        "lago_written",
        "LagoInitFile",
        &edit("{net: mgmt}", "{net: mgmt, lago_written: [ip]}"),
        &["lago_written", "planned by lago"],
    );
}

/// Issue 18 (finding 3): `lago snapshot` is all or nothing. A VM that
/// cannot be snapshotted (a raw disk, as in oVirt's suites) is refused
/// before any snapshot is taken, naming the VM and the disk; when one still
/// fails midway, the snapshots already taken are removed again, so the name
/// stays free.
#[test]
fn snapshot_is_all_or_nothing() {
    let two_vms = "\
domains:
  vm0:
    memory: 256
    nics: [{net: mgmt}]
    disks:
      - {type: empty, size: 1G, dev: vda, name: root}
  vm1:
    memory: 256
    nics: [{net: mgmt}]
    disks:
      - {type: empty, size: 1G, dev: vda, name: root}
      - {type: empty, size: 1G, dev: vdb, name: nfs, format: FORMAT}
nets:
  mgmt: {type: nat, management: true}
";
    let no_snapshots = |sb: &Sb, what: &str| {
        let env = sb.env();
        for vm in env.domains.values() {
            assert!(!vm.extra.contains_key("snapshots"), "{what}: {vm:?}");
            for d in &vm.disks {
                let path = d.path.as_ref().expect("path");
                let list = qemu_img::snapshots(path);
                assert!(!list.contains("s1"), "{what}: {}: {list}", path.display());
            }
        }
    };

    // A raw disk: refused before anything is done.
    let sb = Sb::new();
    sb.write("LagoInitFile", &two_vms.replace("FORMAT", "raw"));
    ok(&sb.init("LagoInitFile"), "init");
    let out = sb.lago(&["snapshot", "s1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("vm1")
            && err.contains("'nfs' is raw")
            && err.contains("no snapshot was taken"),
        "{err}"
    );
    no_snapshots(&sb, "raw disk");
    // The VMs that can be snapshotted, alone.
    ok(
        &sb.lago(&["snapshot", "-n", "vm0", "s1"]),
        "snapshot -n vm0",
    );
    assert!(sb.env().domains["vm0"].extra.contains_key("snapshots"));

    // A failure midway (vm1's disk is no qcow2 image any more): vm0's
    // snapshot is removed again and the name stays free.
    let sb = Sb::new();
    sb.write("LagoInitFile", &two_vms.replace("FORMAT", "qcow2"));
    ok(&sb.init("LagoInitFile"), "init");
    let broken = sb.env().domains["vm1"].disks[1].path.clone().expect("path");
    std::fs::write(&broken, b"").expect("truncate");
    let out = sb.lago(&["snapshot", "s1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("vm1"), "{err}");
    assert!(err.contains("removed again"), "{err}");
    no_snapshots(&sb, "failed midway");
    // Nothing is left to recover: with vm1 left out, the name is free.
    ok(&sb.lago(&["snapshot", "-n", "vm0", "s1"]), "snapshot again");
}
