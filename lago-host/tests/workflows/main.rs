//! The workflows behind copy-to-vm/copy-from-vm, deploy and collect, against
//! a real SSH server (dropbear on 127.0.0.1, see `ssh_support`) serving this
//! machine's filesystem: the "VM" is the host, its paths temporary folders.
#![allow(clippy::unwrap_used)]

#[macro_use]
#[path = "../ssh_support/mod.rs"]
mod ssh_support;

mod notar;

use std::path::Path;

use lago::ssh::SshPool;
use lago::workflows::collect::{collect_vm, CollectError};
use lago::workflows::copy::{copy_from_vm, copy_to_vm, CopyError};
use lago::workflows::deploy::{deploy_vm, DeployError};
use lago_test_support::fs::{lmode as mode, set_mode, snapshot, write_file as write_script};
use rand::RngCore;
use ssh_support::{Keys, Server};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A tree with modes, odd names, nesting, an empty folder and a 3 MB file.
fn make_tree(root: &Path) {
    std::fs::create_dir_all(root.join("sub/nested")).unwrap();
    std::fs::write(root.join("messages"), "line 1\nline 2\n").unwrap();
    set_mode(&root.join("messages"), 0o640);
    std::fs::write(root.join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    set_mode(&root.join("run.sh"), 0o755);
    std::fs::write(root.join("sub/nested/we ird 'name\".txt"), "odd\n").unwrap();
    set_mode(&root.join("sub/nested/we ird 'name\".txt"), 0o600);
    set_mode(&root.join("sub/nested"), 0o750);
    set_mode(&root.join("sub"), 0o700);
    std::fs::create_dir(root.join("empty")).unwrap();
    set_mode(&root.join("empty"), 0o555);
    let mut big = vec![0u8; 3 * 1024 * 1024 + 77];
    rand::thread_rng().fill_bytes(&mut big);
    std::fs::write(root.join("big.bin"), &big).unwrap();
    set_mode(&root.join("big.bin"), 0o644);
    set_mode(root, 0o751);
}

struct Vm {
    _keys: Keys,
    _server: Server,
    target: lago::ssh::SshTarget,
    pool: SshPool,
}

fn vm() -> Vm {
    let keys = Keys::new();
    let server = Server::start(&keys);
    let target = server.target(&keys);
    Vm {
        _keys: keys,
        _server: server,
        target,
        pool: SshPool::new(),
    }
}

#[test]
fn copy_round_trip_keeps_content_and_modes() {
    require_dropbear!();
    let vm = vm();
    let local = tempfile::tempdir().unwrap();
    let tree = local.path().join("tree");
    make_tree(&tree);
    let want = snapshot(&tree);

    // Into an existing remote folder: lands under its own name.
    let remote = tempfile::tempdir().unwrap();
    copy_to_vm(&vm.pool, &vm.target, &tree, s(remote.path())).unwrap();
    assert_eq!(snapshot(&remote.path().join("tree")), want);
    // To a new remote name.
    let renamed = remote.path().join("renamed");
    copy_to_vm(&vm.pool, &vm.target, &tree, s(&renamed)).unwrap();
    assert_eq!(snapshot(&renamed), want);

    // And back, to a new local name and into an existing local folder.
    let back = tempfile::tempdir().unwrap();
    let dest = back.path().join("copy");
    copy_from_vm(&vm.pool, &vm.target, s(&renamed), &dest).unwrap();
    assert_eq!(snapshot(&dest), want);
    copy_from_vm(&vm.pool, &vm.target, s(&renamed), back.path()).unwrap();
    assert_eq!(snapshot(&back.path().join("renamed")), want);

    // Single files, modes kept.
    let f = tree.join("run.sh");
    let rf = remote.path().join("tool");
    copy_to_vm(&vm.pool, &vm.target, &f, s(&rf)).unwrap();
    assert_eq!(mode(&rf), 0o755);
    let lf = back.path().join("tool");
    copy_from_vm(&vm.pool, &vm.target, s(&rf), &lf).unwrap();
    assert_eq!(std::fs::read(&lf).unwrap(), std::fs::read(&f).unwrap());
    assert_eq!(mode(&lf), 0o755);
}

#[test]
fn copy_errors_name_the_missing_side() {
    require_dropbear!();
    let vm = vm();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, "x").unwrap();

    let e = copy_to_vm(&vm.pool, &vm.target, &dir.path().join("absent"), "/tmp/x").unwrap_err();
    assert!(matches!(e, CopyError::LocalMissing(_)), "{e}");
    assert!(e.is_user_error());
    assert!(e.to_string().contains("absent"), "{e}");

    let nowhere = dir.path().join("no/such/folder/f");
    let e = copy_to_vm(&vm.pool, &vm.target, &file, s(&nowhere)).unwrap_err();
    assert!(
        matches!(e, CopyError::RemoteFolderMissing { .. }),
        "{}",
        e.chain_string()
    );
    assert!(e.to_string().contains(&vm.target.name), "{e}");

    let gone = dir.path().join("gone");
    let e = copy_from_vm(&vm.pool, &vm.target, s(&gone), &dir.path().join("g")).unwrap_err();
    assert!(
        matches!(e, CopyError::RemoteMissing { .. }),
        "{}",
        e.chain_string()
    );
    assert_eq!(
        e.to_string(),
        format!("{} does not exist in VM {}", s(&gone), vm.target.name)
    );

    let e = copy_from_vm(&vm.pool, &vm.target, s(&file), &dir.path().join("a/b/c")).unwrap_err();
    assert!(matches!(e, CopyError::LocalFolderMissing(_)), "{e}");
}

#[test]
fn deploy_runs_scripts_in_order_and_stops_at_a_failure() {
    require_dropbear!();
    let vm = vm();
    let scripts = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let log = work.path().join("order");
    let first = write_script(
        scripts.path(),
        "first.sh",
        &format!("#!/bin/sh\necho first >> '{}'\n", s(&log)),
    );
    let second = write_script(
        scripts.path(),
        "second.sh",
        &format!(
            "#!/bin/bash\nset -e\necho second >> '{}'\n[ \"$BASH_VERSION\" ]\n",
            s(&log)
        ),
    );
    let runs = deploy_vm(&vm.pool, &vm.target, &[first.clone(), second.clone()], None).unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].script, first);
    assert!(runs.iter().all(|r| r.code == 0));
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "first\nsecond\n");

    let failing = write_script(
        scripts.path(),
        "fail.sh",
        "for i in $(seq 1 30); do echo \"out $i\"; done\necho 'it broke' >&2\nexit 3\n",
    );
    let never = write_script(
        scripts.path(),
        "never.sh",
        &format!("echo never >> '{}'\n", s(&log)),
    );
    let e = deploy_vm(&vm.pool, &vm.target, &[first, failing.clone(), never], None).unwrap_err();
    match &e {
        DeployError::Failed {
            vm: name,
            script,
            code,
            ..
        } => {
            assert_eq!(name, &vm.target.name);
            assert_eq!(script, &failing);
            assert_eq!(*code, 3);
        }
        other => panic!("not a script failure: {other}"),
    }
    let msg = e.to_string();
    assert!(
        msg.contains(&format!(
            "deploy script {} failed on VM {} with exit code 3",
            s(&failing),
            vm.target.name
        )),
        "{msg}"
    );
    assert!(msg.contains("out 30") && msg.contains("out 11"), "{msg}");
    assert!(!msg.contains("out 10\n"), "only the tail: {msg}");
    assert!(msg.contains("it broke"), "{msg}");
    // The script after the failing one did not run.
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "first\nsecond\nfirst\n"
    );

    let e = deploy_vm(
        &vm.pool,
        &vm.target,
        &[scripts.path().join("absent.sh")],
        None,
    )
    .unwrap_err();
    assert!(matches!(e, DeployError::Read { .. }), "{e}");
}

/// A "guest" tree: a log folder, a file, a link to a folder and a link to
/// a file, under a temporary folder.
fn make_guest(root: &Path) {
    make_tree(&root.join("logs"));
    std::fs::write(root.join("hostname"), "vm0\n").unwrap();
    set_mode(&root.join("hostname"), 0o604);
    std::fs::create_dir(root.join("real-dir")).unwrap();
    std::fs::write(root.join("real-dir/inside"), "in\n").unwrap();
    std::os::unix::fs::symlink(root.join("real-dir"), root.join("dir-link")).unwrap();
    std::os::unix::fs::symlink(root.join("hostname"), root.join("file-link")).unwrap();
}

fn name_of(p: &Path) -> String {
    s(p).replace('/', "_")
}

#[test]
fn collect_streams_paths_and_skips_missing_ones() {
    require_dropbear!();
    let vm = vm();
    let guest = tempfile::tempdir().unwrap();
    make_guest(guest.path());
    let g = |n: &str| guest.path().join(n);
    let paths: Vec<String> = ["logs", "hostname", "missing", "dir-link", "file-link"]
        .iter()
        .map(|n| s(&g(n)).to_string())
        .collect();
    let out = tempfile::tempdir().unwrap();
    let vm_out = out.path().join("vm0");

    let report = collect_vm(&vm.pool, &vm.target, &paths, &vm_out, false).unwrap();
    assert_eq!(report.missing, vec![s(&g("missing")).to_string()]);
    assert_eq!(
        report.collected,
        ["logs", "hostname", "dir-link", "file-link"]
            .iter()
            .map(|n| s(&g(n)).to_string())
            .collect::<Vec<_>>()
    );
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);

    let logs = vm_out.join(name_of(&g("logs")));
    assert_eq!(snapshot(&logs), snapshot(&g("logs")));
    let hostname = vm_out.join(name_of(&g("hostname")));
    assert_eq!(std::fs::read_to_string(&hostname).unwrap(), "vm0\n");
    assert_eq!(mode(&hostname), 0o604);
    assert!(!vm_out.join(name_of(&g("missing"))).exists());
    // Links given as artifacts are followed: their content is collected.
    let dir_link = vm_out.join(name_of(&g("dir-link")));
    assert!(std::fs::symlink_metadata(&dir_link).unwrap().is_dir());
    assert_eq!(
        std::fs::read_to_string(dir_link.join("inside")).unwrap(),
        "in\n"
    );
    let file_link = vm_out.join(name_of(&g("file-link")));
    assert!(std::fs::symlink_metadata(&file_link).unwrap().is_file());
    assert_eq!(std::fs::read_to_string(&file_link).unwrap(), "vm0\n");
}

#[test]
fn collect_with_no_skip_fails_on_a_missing_path_after_taking_the_rest() {
    require_dropbear!();
    let vm = vm();
    let guest = tempfile::tempdir().unwrap();
    make_guest(guest.path());
    let paths = vec![
        s(&guest.path().join("hostname")).to_string(),
        s(&guest.path().join("nope")).to_string(),
    ];
    let out = tempfile::tempdir().unwrap();
    let e = collect_vm(&vm.pool, &vm.target, &paths, out.path(), true).unwrap_err();
    match &e {
        CollectError::Missing {
            vm: name,
            paths: missing,
        } => {
            assert_eq!(name, &vm.target.name);
            assert_eq!(missing, &vec![paths[1].clone()]);
        }
        other => panic!("not a missing-path error: {other}"),
    }
    assert!(e.is_user_error());
    assert!(e.to_string().contains("--no-skip"), "{e}");
    assert_eq!(
        std::fs::read_to_string(out.path().join(name_of(&guest.path().join("hostname")))).unwrap(),
        "vm0\n"
    );
}

#[test]
fn collect_of_nothing_and_of_bad_paths() {
    require_dropbear!();
    let vm = vm();
    let out = tempfile::tempdir().unwrap();
    let vm_out = out.path().join("vm0");
    let report = collect_vm(&vm.pool, &vm.target, &[], &vm_out, true).unwrap();
    assert!(report.collected.is_empty() && report.missing.is_empty());
    assert!(vm_out.is_dir());
    // `..` is resolved by the VM (issue 18), but a path that names the VM's
    // root is still refused.
    for bad in ["/var/..", ".."] {
        let e = collect_vm(&vm.pool, &vm.target, &[bad.into()], &vm_out, false).unwrap_err();
        assert!(matches!(e, CollectError::BadPath { .. }), "{bad}: {e}");
    }
}

/// Issue 18 (finding 4): a path with `..` does not stop the VM's
/// collection: the VM resolves it (as Lago's `scp` did) and it lands under
/// its flattened name, beside the other paths.
#[test]
fn collect_resolves_parent_dirs_in_the_vm() {
    require_dropbear!();
    let vm = vm();
    let guest = tempfile::tempdir().unwrap();
    make_guest(guest.path());
    let up = format!("{}/logs/../hostname", s(guest.path()));
    let paths = vec![up.clone(), s(&guest.path().join("hostname")).to_string()];
    let out = tempfile::tempdir().unwrap();
    let report = collect_vm(&vm.pool, &vm.target, &paths, out.path(), true).unwrap();
    assert_eq!(report.collected, paths);
    let flat = out.path().join(up.replace('/', "_"));
    assert_eq!(
        std::fs::read_to_string(&flat).unwrap(),
        "vm0\n",
        "{report:?}"
    );
    let plain = out.path().join(name_of(&guest.path().join("hostname")));
    assert_eq!(std::fs::read_to_string(&plain).unwrap(), "vm0\n");
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 2);
}
