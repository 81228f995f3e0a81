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
