//! wait_for_ssh: fast polling, clear failures.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use crate::ssh_support::{free_port, Keys, Server, ServerOptions};
use lago::ssh::{SshError, SshPool};

#[test]
fn returns_soon_after_the_server_starts_listening() {
    require_dropbear!();
    let keys = Keys::new();
    let port = free_port();
    let start = Instant::now();
    let server = Server::start_with(ServerOptions {
        port,
        host_key: &keys.host_key,
        authorized_keys: &keys.client_pub,
        allow_password: false,
        delay: Duration::from_millis(1200),
    });
    let t = server.target(&keys);
    let pool = SshPool::new();
    let ready = pool
        .wait_for_ssh(&t, 0, Duration::from_secs(3), Duration::from_secs(20))
        .unwrap();
    let total = start.elapsed();
    eprintln!("ready after {total:?} in {} tries", ready.tries);
    assert!(ready.tries > 3, "it polled: {ready:?}");
    assert!(total >= Duration::from_millis(1200));
    // The connection made by the wait is reused.
    pool.exec(&t, &["true"], None, None).unwrap();
    assert_eq!(server.connections(), 1);
}

#[test]
fn gives_up_after_the_tries_with_a_clear_error() {
    require_dropbear!();
    let keys = Keys::new();
    // A target on a port where nothing listens.
    let port = free_port();
    let server = Server::start(&keys);
    let mut t = server.target(&keys);
    t.port = port;
    t.name = "vm-down".into();
    let start = Instant::now();
    let err = SshPool::new()
        .wait_for_ssh(&t, 5, Duration::from_secs(1), Duration::from_secs(30))
        .unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    match &err {
        SshError::NotReachable {
            vm, tries, last, ..
        } => {
            assert_eq!(vm, "vm-down");
            assert_eq!(*tries, 5);
            assert!(matches!(**last, SshError::Connect { .. }), "{last}");
        }
        other => panic!("{other}"),
    }
    let chain = err.chain_string();
    assert!(
        chain.contains("vm-down") && chain.contains("5 tries"),
        "{chain}"
    );
    assert!(chain.to_lowercase().contains("refused"), "{chain}");
}

#[test]
fn gives_up_at_the_deadline() {
    require_dropbear!();
    let keys = Keys::new();
    let server = Server::start(&keys);
    let mut t = server.target(&keys);
    t.port = free_port();
    let start = Instant::now();
    let err = SshPool::new()
        .wait_for_ssh(&t, 0, Duration::from_secs(1), Duration::from_millis(800))
        .unwrap_err();
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_millis(1300),
        "{took:?}"
    );
    match err {
        SshError::NotReachable { tries, .. } => assert!(tries >= 4, "{tries}"),
        other => panic!("{other}"),
    }
}
