//! 16 processes lease subnets from one store at the same moment: each gets a
//! distinct subnet and the store is consistent afterwards.
//!
//! The children are this test executable run again with `LEASE_CHILD_*` set:
//! the `child` test then takes one lease and prints it.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use lago::network::LeaseStore;

const N: usize = 16;

#[test]
fn child() {
    let Ok(dir) = std::env::var("LEASE_CHILD_STORE") else {
        return; // not a child: nothing to do
    };
    let prefix = PathBuf::from(std::env::var("LEASE_CHILD_PREFIX").expect("prefix"));
    let uuid = std::fs::read_to_string(prefix.join("uuid")).expect("uuid");
    // Start together: wait for the go file.
    let go = PathBuf::from(std::env::var("LEASE_CHILD_GO").expect("go"));
    while !go.exists() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let store = LeaseStore::new(dir, Duration::from_secs(60));
    let got = store.acquire(&prefix, uuid.trim(), &[None]).expect("lease");
    println!("LEASED {}", got[0]);
}

#[test]
fn sixteen_processes_lease_distinct_subnets() {
    let t = tempfile::tempdir().expect("tmp");
    let store_dir = t.path().join("leases");
    let go = t.path().join("go");
    let exe = std::env::current_exe().expect("exe");
    let mut children = Vec::new();
    let mut prefixes = Vec::new();
    for i in 0..N {
        let prefix = t.path().join(format!("prefix{i}"));
        std::fs::create_dir_all(&prefix).expect("mkdir");
        let uuid = format!("{i:032x}");
        std::fs::write(prefix.join("uuid"), &uuid).expect("uuid");
        prefixes.push((prefix.clone(), uuid));
        let child = Command::new(&exe)
            .args(["--exact", "child", "--nocapture", "--test-threads=1"])
            .env("LEASE_CHILD_STORE", &store_dir)
            .env("LEASE_CHILD_PREFIX", &prefix)
            .env("LEASE_CHILD_GO", &go)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        children.push(child);
    }
    std::thread::sleep(Duration::from_millis(200));
    std::fs::write(&go, "").expect("go");
    let mut leased = Vec::new();
    for c in children {
        let out = c.wait_with_output().expect("wait");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "child failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = stdout
            .lines()
            .find_map(|l| l.split_once("LEASED ").map(|(_, rest)| rest))
            .unwrap_or_else(|| panic!("no lease printed: {stdout}"));
        leased.push(
            line.split_whitespace()
                .next()
                .unwrap_or_default()
                .parse::<Ipv4Addr>()
                .expect("addr"),
        );
    }
    let mut distinct = leased.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), N, "distinct subnets: {leased:?}");
    // The store agrees: N lease files, each naming one of the prefixes, each
    // prefix holding exactly one, and no temp file left behind.
    let store = LeaseStore::new(&store_dir, Duration::from_secs(5));
    let leases = store.list().expect("list");
    assert_eq!(leases.len(), N);
    for (prefix, uuid) in &prefixes {
        let held: Vec<_> = leases.iter().filter(|l| &l.uuid == uuid).collect();
        assert_eq!(held.len(), 1, "{uuid}");
        assert_eq!(&held[0].prefix, prefix);
        assert!(!held[0].is_stale());
    }
    let names: Vec<String> = std::fs::read_dir(&store_dir)
        .expect("ls")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| n == ".lock" || n.ends_with(".lease")),
        "{names:?}"
    );
    // Released, the store is empty again.
    for (_, uuid) in &prefixes {
        store.release_all(uuid).expect("release");
    }
    assert!(store.list().expect("list").is_empty());
}

/// The child of [`unreadable_prefix_keeps_its_lease`], run as another user:
/// asks for the subnet the unreadable prefix holds and prints the answer.
#[test]
fn peek_child() {
    let Ok(dir) = std::env::var("LEASE_PEEK_STORE") else {
        return; // not a child: nothing to do
    };
    let prefix = PathBuf::from(std::env::var("LEASE_PEEK_PREFIX").expect("prefix"));
    let store = LeaseStore::new(dir, Duration::from_secs(60));
    match store.acquire(&prefix, "peek", &[Some(Ipv4Addr::new(192, 168, 200, 1))]) {
        Ok(got) => println!("PEEK LEASED {got:?}"),
        Err(e) => println!("PEEK REFUSED {e}"),
    }
}

/// A lease whose prefix lago cannot look into (another user's 0700 home:
/// permission denied) is not stale: another user asking for its subnet is
/// refused, naming the holder, and the lease file is unchanged. Run as
/// root, the asking side is a child process running as `nobody`; run as a
/// normal user, the holder's folder is made 0000.
#[test]
fn unreadable_prefix_keeps_its_lease() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let t = tempfile::tempdir().expect("tmp");
    let perm = |p: &std::path::Path, mode: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod")
    };
    perm(t.path(), 0o755);
    let store_dir = t.path().join("leases");
    let private = t.path().join("home");
    let holder = private.join("w/.lago/default");
    std::fs::create_dir_all(&holder).expect("mkdir");
    std::fs::write(holder.join("uuid"), "aaaa").expect("uuid");
    let store = LeaseStore::new(&store_dir, Duration::from_secs(5));
    let got = store
        .acquire(&holder, "aaaa", &[Some(Ipv4Addr::new(192, 168, 200, 1))])
        .expect("holder leases");
    assert_eq!(got, vec![Ipv4Addr::new(192, 168, 200, 0)]);
    let lease_file = store_dir.join("192.168.200.0.lease");
    let before = std::fs::read(&lease_file).expect("lease");
    let asker = t.path().join("asker");
    std::fs::create_dir_all(&asker).expect("mkdir");
    std::fs::write(asker.join("uuid"), "peek").expect("uuid");
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let answer = if root {
        // the store is shared (as /var/lib/lago/subnets is with group lago)
        perm(&store_dir, 0o777);
        perm(&store_dir.join(".lock"), 0o666);
        perm(&asker, 0o777);
        perm(&private, 0o700);
        let out = Command::new(std::env::current_exe().expect("exe"))
            .args(["--exact", "peek_child", "--nocapture", "--test-threads=1"])
            .env("LEASE_PEEK_STORE", &store_dir)
            .env("LEASE_PEEK_PREFIX", &asker)
            .uid(65534)
            .gid(65534)
            .output()
            .expect("spawn as nobody");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "child failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
            .lines()
            .find_map(|l| l.find("PEEK ").map(|at| l[at..].to_string()))
            .unwrap_or_else(|| panic!("no answer: {stdout}"))
    } else {
        perm(&private, 0o000);
        let r = store.acquire(&asker, "peek", &[Some(Ipv4Addr::new(192, 168, 200, 1))]);
        perm(&private, 0o700);
        match r {
            Ok(got) => format!("PEEK LEASED {got:?}"),
            Err(e) => format!("PEEK REFUSED {e}"),
        }
    };
    assert!(
        answer.starts_with("PEEK REFUSED") && answer.contains(&holder.display().to_string()),
        "the unreadable prefix's lease was taken: {answer}"
    );
    assert_eq!(std::fs::read(&lease_file).expect("lease"), before);
}
