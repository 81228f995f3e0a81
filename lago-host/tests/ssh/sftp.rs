//! SFTP upload and download of files and folders, modes kept.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Instant;

use crate::ssh_support::{Keys, Server};
use lago::ssh::{SshError, SshPool};
use lago_test_support::fs::{mode, set_mode, sha1_file, snapshot};
use rand::RngCore;

fn make_tree(root: &Path) {
    std::fs::create_dir(root).unwrap();
    std::fs::write(root.join("a.txt"), "alpha\n").unwrap();
    set_mode(&root.join("a.txt"), 0o644);
    std::fs::write(root.join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    set_mode(&root.join("run.sh"), 0o755);
    std::fs::write(root.join("secret"), "s3cr3t").unwrap();
    set_mode(&root.join("secret"), 0o600);
    std::fs::write(root.join("empty-file"), "").unwrap();
    set_mode(&root.join("empty-file"), 0o444);
    std::fs::create_dir_all(root.join("sub/nested")).unwrap();
    std::fs::write(root.join("sub/nested/deep name.txt"), "deep\n").unwrap();
    set_mode(&root.join("sub/nested/deep name.txt"), 0o640);
    set_mode(&root.join("sub/nested"), 0o750);
    set_mode(&root.join("sub"), 0o700);
    std::fs::create_dir(root.join("empty-dir")).unwrap();
    set_mode(&root.join("empty-dir"), 0o755);
    let mut big = vec![0u8; 20 * 1024 * 1024 + 12345];
    rand::thread_rng().fill_bytes(&mut big);
    std::fs::write(root.join("big.bin"), &big).unwrap();
    set_mode(&root.join("big.bin"), 0o640);
    std::os::unix::fs::symlink("a.txt", root.join("link")).unwrap();
    set_mode(root, 0o751);
}

#[test]
fn folder_round_trip_keeps_content_and_modes() {
    require_dropbear!();
    let keys = Keys::new();
    let server = Server::start(&keys);
    let t = server.target(&keys);
    let pool = SshPool::new();

    let local = tempfile::tempdir().unwrap();
    let tree = local.path().join("tree");
    make_tree(&tree);
    let want = snapshot(&tree);
    // The symlink arrives as a copy of its target.
    assert!(want
        .iter()
        .any(|(p, m, h)| p == "link" && *m == 0o644 && h.is_some()));

    // The "VM" is this machine: the remote side is another temporary folder.
    let remote = tempfile::tempdir().unwrap();
    let remote_str = remote.path().to_str().unwrap().to_string();
    let start = Instant::now();
    // An existing remote folder: the tree goes inside it, as `scp -r`.
    pool.upload(&t, &tree, &remote_str).unwrap();
    let up = start.elapsed();
    let uploaded = remote.path().join("tree");
    assert_eq!(snapshot(&uploaded), want, "uploaded tree differs");

    let back = tempfile::tempdir().unwrap();
    let dest = back.path().join("copy");
    let start = Instant::now();
    // A new local name: the tree is created under that name.
    pool.download(&t, uploaded.to_str().unwrap(), &dest)
        .unwrap();
    let down = start.elapsed();
    assert_eq!(snapshot(&dest), want, "downloaded tree differs");
    assert_eq!(
        sha1_file(&dest.join("big.bin")),
        sha1_file(&tree.join("big.bin"))
    );
    let mb = 20.0;
    eprintln!(
        "SFTP over loopback: upload {:.0} MB/s, download {:.0} MB/s (20 MB file + small files)",
        mb / up.as_secs_f64(),
        mb / down.as_secs_f64()
    );
    // One connection for everything.
    assert_eq!(server.connections(), 1);
}

#[test]
fn single_files() {
    require_dropbear!();
    let keys = Keys::new();
    let server = Server::start(&keys);
    let t = server.target(&keys);
    let pool = SshPool::new();
    let local = tempfile::tempdir().unwrap();
    let remote = tempfile::tempdir().unwrap();

    let f = local.path().join("tool");
    std::fs::write(&f, "#!/bin/sh\nexit 0\n").unwrap();
    set_mode(&f, 0o750);
    // To a new remote name.
    let r = remote.path().join("renamed");
    pool.upload(&t, &f, r.to_str().unwrap()).unwrap();
    assert_eq!(std::fs::read(&r).unwrap(), std::fs::read(&f).unwrap());
    assert_eq!(mode(&r), 0o750);
    // Over an existing remote file.
    std::fs::write(&f, "v2").unwrap();
    pool.upload(&t, &f, r.to_str().unwrap()).unwrap();
    assert_eq!(std::fs::read_to_string(&r).unwrap(), "v2");
    // Into an existing remote folder.
    pool.upload(&t, &f, remote.path().to_str().unwrap())
        .unwrap();
    assert!(remote.path().join("tool").is_file());

    // Download into an existing local folder keeps the remote name.
    let into = tempfile::tempdir().unwrap();
    pool.download(&t, r.to_str().unwrap(), into.path()).unwrap();
    assert_eq!(
        std::fs::read_to_string(into.path().join("renamed")).unwrap(),
        "v2"
    );
    assert_eq!(mode(&into.path().join("renamed")), 0o750);
}

#[test]
fn missing_paths_are_clear_errors() {
    require_dropbear!();
    let keys = Keys::new();
    let server = Server::start(&keys);
    let t = server.target(&keys);
    let pool = SshPool::new();
    let dir = tempfile::tempdir().unwrap();

    let err = pool
        .download(&t, "/nonexistent/lago-test", &dir.path().join("x"))
        .unwrap_err();
    assert!(
        matches!(err, SshError::Sftp { .. }),
        "{}",
        err.chain_string()
    );
    let msg = err.to_string();
    assert!(
        msg.contains("/nonexistent/lago-test") && msg.contains(&t.name),
        "{msg}"
    );

    let err = pool
        .upload(&t, &dir.path().join("absent"), "/tmp/whatever")
        .unwrap_err();
    assert!(matches!(err, SshError::Io { .. }), "{}", err.chain_string());
}
