//! Working inside real VMs, end to end: shell, copy-to-vm/copy-from-vm,
//! deploy, collect and ansible_hosts through the `lago` binary.
//! `scripts/test.sh` runs this inside the VM sandbox.

use std::path::{Path, PathBuf};
use std::process::Command;

use lago_e2e::{text, Destroy, Env};
use lago_test_support::fs::{lmode as mode, set_mode, snapshot_with, write_file as write_script};

/// (relative path, mode, SHA-1 of files) of a tree, sorted.
fn snapshot(root: &Path) -> Vec<lago_test_support::fs::Entry> {
    snapshot_with(root, mode)
}

const ONE_VM: &str = r#"
domains:
  vm0:
    memory: 256
    vcpu: 1
    disks:
      - {template_name: lago-tiny, type: template, name: root, dev: vda, format: qcow2}
    nics: [{net: mgmt}]
    artifacts:
      - /tmp/art/file.txt
      - /tmp/art/dir
      - /nonexistent/lago-artifact
      - /tmp/art/glob-*.log
      - /tmp/art/nomatch-*
    metadata:
      deploy-scripts:
        - $LAGO_INITFILE_PATH/deploy/first.sh
        - $LAGO_INITFILE_PATH/deploy/second.sh
        - $LAGO_INITFILE_PATH/deploy/third.sh
nets:
  mgmt: {type: nat, management: true}
"#;

const THREE_VMS: &str = r#"
x-vm: &vm
  memory: 256
  vcpu: 1
  disks:
    - {template_name: lago-tiny, type: template, name: root, dev: vda, format: qcow2}
domains:
  web0:
    <<: *vm
    nics: [{net: mgmt}]
    groups: [web]
  web1:
    <<: *vm
    nics: [{net: mgmt}]
    groups: [web, edge]
  db0:
    <<: *vm
    nics: [{net: mgmt}]
    groups: [db]
nets:
  mgmt: {type: nat, management: true}
"#;

/// `sha1sum FILE` on the host.
fn sha1_local(p: &Path) -> String {
    let out = Command::new("sha1sum").arg(p).output().expect("sha1sum");
    assert!(out.status.success());
    text(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Deterministic pseudo-random bytes (xorshift), so no extra dependency.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(&seed.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A folder with modes, nesting, an odd name, an empty folder and a 20 MB
/// file.
fn make_tree(root: &Path) {
    std::fs::create_dir_all(root.join("sub/nested")).expect("mkdir");
    std::fs::write(root.join("notes.txt"), "alpha\n").expect("write");
    set_mode(&root.join("notes.txt"), 0o640);
    std::fs::write(root.join("run.sh"), "#!/bin/sh\necho hi\n").expect("write");
    set_mode(&root.join("run.sh"), 0o755);
    std::fs::write(root.join("sub/nested/with space.txt"), "deep\n").expect("write");
    set_mode(&root.join("sub/nested/with space.txt"), 0o600);
    set_mode(&root.join("sub/nested"), 0o750);
    set_mode(&root.join("sub"), 0o700);
    std::fs::create_dir(root.join("empty")).expect("mkdir");
    set_mode(&root.join("empty"), 0o555);
    std::fs::write(
        root.join("big.bin"),
        noise(20 * 1024 * 1024 + 321, 0x9e37_79b9),
    )
    .expect("write");
    set_mode(&root.join("big.bin"), 0o644);
    set_mode(root, 0o755);
}

#[test]
fn one_vm_shell_copy_deploy_collect() {
    let env = Env::new(ONE_VM);
    let dir = env.dir.path().to_path_buf();
    let deploy = dir.join("deploy");
    write_script(
        &deploy,
        "first.sh",
        "#!/bin/sh\necho one >> /tmp/deploy.log\necho first done\n",
    );
    // Fails once /tmp/lago-fail exists in the VM, after some output.
    write_script(
        &deploy,
        "second.sh",
        "#!/bin/sh\necho two >> /tmp/deploy.log\n\
         if [ -e /tmp/lago-fail ]; then\n\
           i=0; while [ $i -lt 30 ]; do i=$((i+1)); echo \"progress $i\"; done\n\
           echo 'second: giving up' >&2\n\
           exit 7\n\
         fi\n",
    );
    // No `#!` and bash syntax (an array, `[[`): Lago ran scripts with
    // `bash -s`, so this runs under bash (the guest has it), not sh.
    write_script(
        &deploy,
        "third.sh",
        "words=(three); [[ ${#words[@]} == 1 ]] && echo \"${words[0]}\" >> /tmp/deploy.log\n",
    );
    env.ok(&["init", "--template-repo-name", "embedded"]);
    let _destroy = Destroy(&env);
    env.ok(&["start"]);

    // ---- shell: exit codes and arguments passed through untouched.
    let out = env.lago(&["shell", "vm0", "sh", "-c", "exit 42"]);
    assert_eq!(out.status.code(), Some(42));
    let out = env.lago(&["shell", "vm0", "false"]);
    assert_eq!(out.status.code(), Some(1));
    let out = env.ok(&[
        "shell", "vm0", "printf", "%s|", "a b", "it's", "\"q\"", "-n", "--x", "$HOME", "*",
    ]);
    assert_eq!(out, "a b|it's|\"q\"|-n|--x|$HOME|*|");
    let out = env.ok(&["shell", "vm0", "-c", "echo $((6*7)) | tr 4 X"]);
    assert_eq!(out.trim(), "X2");
    // A unique suffix names the VM.
    assert_eq!(env.ok(&["shell", "0", "hostname"]).trim(), "vm0");
    // A local file as the only argument runs as a script.
    let script = write_script(
        &dir,
        "script.sh",
        "#!/bin/sh\necho \"from $(hostname)\"\nread x || echo no-stdin\nexit 3\n",
    );
    let out = env.lago(&["shell", "vm0", script.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "from vm0\nno-stdin\n");

    // ---- copy round trip: a folder with modes and a 20 MB file.
    let tree = dir.join("tree");
    make_tree(&tree);
    let want = snapshot(&tree);
    env.ok(&[
        "copy-to-vm",
        "vm0",
        tree.to_str().expect("utf-8"),
        "/tmp/tree",
    ]);
    let remote_sum = env.ok(&["shell", "vm0", "sha1sum", "/tmp/tree/big.bin"]);
    assert_eq!(
        remote_sum.split_whitespace().next(),
        Some(sha1_local(&tree.join("big.bin")).as_str())
    );
    let modes = env.ok(&[
        "shell",
        "vm0",
        "stat",
        "-c",
        "%a %n",
        "/tmp/tree",
        "/tmp/tree/run.sh",
        "/tmp/tree/sub",
        "/tmp/tree/sub/nested/with space.txt",
        "/tmp/tree/empty",
    ]);
    assert_eq!(
        modes,
        "755 /tmp/tree\n755 /tmp/tree/run.sh\n700 /tmp/tree/sub\n\
         600 /tmp/tree/sub/nested/with space.txt\n555 /tmp/tree/empty\n"
    );
    let back = dir.join("back");
    env.ok(&[
        "copy-from-vm",
        "vm0",
        "/tmp/tree",
        back.to_str().expect("utf-8"),
    ]);
    assert_eq!(
        sha1_local(&back.join("big.bin")),
        sha1_local(&tree.join("big.bin"))
    );
    assert!(snapshot(&back) == want, "the round trip changed the tree");
    // Single file into an existing folder keeps its name and mode.
    env.ok(&[
        "copy-from-vm",
        "vm0",
        "/tmp/tree/run.sh",
        dir.to_str().expect("utf-8"),
    ]);
    assert_eq!(mode(&dir.join("run.sh")), 0o755);
    // Clear errors for missing paths.
    let out = env.lago(&[
        "copy-from-vm",
        "vm0",
        "/nonexistent/x",
        dir.to_str().expect("utf-8"),
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("/nonexistent/x does not exist in VM vm0"),
        "{}",
        text(&out.stderr)
    );
    let out = env.lago(&["copy-to-vm", "vm0", "/nonexistent/local", "/tmp"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("local path /nonexistent/local does not exist"),
        "{}",
        text(&out.stderr)
    );

    // ---- deploy: success, then a failing script.
    env.ok(&["deploy"]);
    assert_eq!(
        env.ok(&["shell", "vm0", "cat", "/tmp/deploy.log"]),
        "one\ntwo\nthree\n"
    );
    let json = env.ok(&["-f", "json", "deploy"]);
    let tree: serde_json::Value = serde_json::from_str(&json).expect("deploy -f json");
    assert_eq!(tree["vm0"].as_array().map(Vec::len), Some(3), "{tree:#}");
    env.ok(&["shell", "vm0", "touch", "/tmp/lago-fail"]);
    env.ok(&["shell", "vm0", "rm", "/tmp/deploy.log"]);
    let out = env.lago(&["deploy"]);
    assert!(!out.status.success(), "a failing script fails deploy");
    let err = text(&out.stderr);
    assert!(
        err.contains("second.sh failed on VM vm0 with exit code 7"),
        "{err}"
    );
    assert!(
        err.contains("progress 30") && err.contains("second: giving up"),
        "{err}"
    );
    assert!(!err.contains("progress 10\n"), "only the tail: {err}");
    assert_eq!(
        env.ok(&["shell", "vm0", "cat", "/tmp/deploy.log"]),
        "one\ntwo\n",
        "the scripts after the failing one did not run"
    );

    // ---- collect: one missing path skipped, --no-skip fails, rotation.
    env.ok(&[
        "shell",
        "vm0",
        "-c",
        "mkdir -p /tmp/art/dir/sub && echo collected > /tmp/art/file.txt && \
         chmod 640 /tmp/art/file.txt && echo deep > /tmp/art/dir/sub/f && chmod 750 /tmp/art/dir/sub && \
         echo g1 > /tmp/art/glob-1.log && echo g2 > '/tmp/art/glob-2 $(touch pwned).log'",
    ]);
    let out_dir = dir.join("out");
    let out = env.lago(&["collect", "--output", out_dir.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("/nonexistent/lago-artifact"),
        "a warning names the missing path: {}",
        text(&out.stderr)
    );
    let vm_out = out_dir.join("vm0");
    let file = vm_out.join("_tmp_art_file.txt");
    assert_eq!(
        std::fs::read_to_string(&file).expect("file.txt"),
        "collected\n"
    );
    assert_eq!(mode(&file), 0o640);
    assert_eq!(
        std::fs::read_to_string(vm_out.join("_tmp_art_dir/sub/f")).expect("dir/sub/f"),
        "deep\n"
    );
    assert_eq!(mode(&vm_out.join("_tmp_art_dir/sub")), 0o750);
    assert!(!vm_out.join("_nonexistent_lago-artifact").exists());
    // A pattern is expanded in the VM, each match under its own name; the
    // names are data.
    assert_eq!(
        std::fs::read_to_string(vm_out.join("_tmp_art_glob-1.log")).expect("glob-1"),
        "g1\n"
    );
    assert_eq!(
        std::fs::read_to_string(vm_out.join("_tmp_art_glob-2 $(touch pwned).log")).expect("glob-2"),
        "g2\n"
    );
    assert!(!dir.join("pwned").exists() && !vm_out.join("pwned").exists());
    let ran = env.lago(&[
        "shell",
        "vm0",
        "-c",
        "test -e /pwned || test -e /root/pwned || test -e /tmp/pwned",
    ]);
    assert_eq!(
        ran.status.code(),
        Some(1),
        "nothing ran a guest's file name"
    );
    assert!(
        text(&out.stderr).contains("/tmp/art/nomatch-* matched nothing"),
        "{}",
        text(&out.stderr)
    );

    // Again into the same folder: the first one is moved aside.
    env.ok(&["shell", "vm0", "-c", "echo second > /tmp/art/file.txt"]);
    env.ok(&["collect", "--output", out_dir.to_str().expect("utf-8")]);
    assert_eq!(
        std::fs::read_to_string(&file).expect("file.txt"),
        "second\n"
    );
    let rotated: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("list")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("out.20"))
        })
        .collect();
    assert_eq!(rotated.len(), 1, "one rotated folder: {rotated:?}");
    assert_eq!(
        std::fs::read_to_string(rotated[0].join("vm0/_tmp_art_file.txt")).expect("rotated"),
        "collected\n"
    );

    let strict = dir.join("strict");
    let out = env.lago(&[
        "collect",
        "--output",
        strict.to_str().expect("utf-8"),
        "--no-skip",
    ]);
    assert!(!out.status.success(), "--no-skip fails on a missing path");
    let err = text(&out.stderr);
    assert!(
        err.contains("/nonexistent/lago-artifact") && err.contains("--no-skip"),
        "{err}"
    );
    assert!(
        err.contains("/tmp/art/nomatch-* (matched nothing)"),
        "{err}"
    );

    // A VM that is down: a clear error rather than a connection timeout.
    env.ok(&["stop"]);
    let out = env.lago(&[
        "collect",
        "--output",
        dir.join("down").to_str().expect("utf-8"),
    ]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("VM `vm0` is not running"), "{err}");
    let out = env.lago(&[
        "copy-from-vm",
        "vm0",
        "/tmp/tree",
        dir.join("x").to_str().expect("utf-8"),
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("VM `vm0` is not running"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn ansible_hosts_on_three_vms() {
    let env = Env::new(THREE_VMS);
    env.ok(&["init", "--template-repo-name", "embedded"]);
    let _destroy = Destroy(&env);
    env.ok(&["start"]);

    let ini = env.ok(&["ansible_hosts"]);
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for line in ini.lines() {
        if let Some(g) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            groups.push((g.to_string(), Vec::new()));
        } else if let Some((_, hosts)) = groups.last_mut() {
            hosts.push(line.to_string());
        }
    }
    let hosts_of = |g: &str| -> Vec<String> {
        groups
            .iter()
            .find(|(n, _)| n == g)
            .map(|(_, h)| {
                h.iter()
                    .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        hosts_of("vm-type=default"),
        ["db0", "web0", "web1"],
        "{ini}"
    );
    assert_eq!(
        hosts_of("vm-provider=local-libvirt"),
        ["db0", "web0", "web1"]
    );
    assert_eq!(hosts_of("groups=web"), ["web0", "web1"], "{ini}");
    assert_eq!(hosts_of("web"), ["web0", "web1"], "{ini}");
    assert_eq!(hosts_of("edge"), ["web1"], "{ini}");
    assert_eq!(hosts_of("db"), ["db0"], "{ini}");

    // Each host line (the same in every group) holds the VM's address and
    // the prefix's key file.
    let lines: std::collections::BTreeSet<&String> =
        groups.iter().flat_map(|(_, hosts)| hosts).collect();
    assert_eq!(lines.len(), 3, "one line per VM: {lines:?}");
    for l in lines {
        let mut parts = l.split_whitespace();
        let name = parts.next().unwrap_or_default();
        let fields: Vec<(&str, &str)> = parts.filter_map(|p| p.split_once('=')).collect();
        let get = |k: &str| {
            fields
                .iter()
                .find(|(f, _)| *f == k)
                .map(|(_, v)| *v)
                .unwrap_or_default()
        };
        let ip = get("ansible_host");
        let key = get("ansible_ssh_private_key_file");
        assert!(Path::new(key).is_file(), "{l}");
        let addrs = env.ok(&["shell", name, "ip", "-4", "-o", "addr"]);
        assert!(
            addrs.contains(&format!("inet {ip}/")),
            "{name} has {ip}: {addrs}"
        );
    }

    // The same inventory as data.
    let json = env.ok(&["-f", "json", "ansible_hosts", "-k", "vm-type"]);
    let tree: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(tree["vm-type=default"].as_array().map(Vec::len), Some(3));
    assert_eq!(tree["edge"].as_array().map(Vec::len), Some(1));
}
