//! Host-key verification and authentication against a real dropbear.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::ssh_support::{new_host_key, Keys, Server, ServerOptions, PASSWORD};
use lago::ssh::{
    fingerprint_of_line, generate_ed25519_key, Auth, HostKeyPolicy, PoolOptions, SshError, SshPool,
};

#[test]
fn pinned_host_key_accepted() {
    require_dropbear!();
    let keys = Keys::new();
    let server = Server::start(&keys);
    let t = server.target(&keys);
    assert!(matches!(t.host_key, HostKeyPolicy::Pinned(_)));
    let st = SshPool::new().exec(&t, &["true"], None, None).unwrap();
    assert_eq!(st.code, 0);
}

#[test]
fn wrong_pinned_host_key_refused() {
    require_dropbear!();
    let keys = Keys::new();
    let server = Server::start(&keys);
    let (_, other_pub) = new_host_key(keys.dir.path(), "other_host_key");
    let mut t = server.target(&keys);
    t.host_key = HostKeyPolicy::Pinned(other_pub.clone());
    let err = SshPool::new().exec(&t, &["true"], None, None).unwrap_err();
    match &err {
        SshError::HostKeyMismatch {
            vm,
            expected_fingerprint,
            got_fingerprint,
        } => {
            assert_eq!(vm, &t.name);
            assert_eq!(
                Some(expected_fingerprint.clone()),
                fingerprint_of_line(&other_pub)
            );
            assert_eq!(
                Some(got_fingerprint.clone()),
                fingerprint_of_line(&keys.host_pub)
            );
        }
        other => panic!("expected HostKeyMismatch, got {}", other.chain_string()),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("does not match the one recorded at init"),
        "{msg}"
    );
    // No authentication was attempted with a server we do not trust.
    assert_eq!(server.connections(), 0);
    // wait_for_ssh gives up at once on a mismatch rather than retrying
    // until the tries run out (which would end in NotReachable).
    let err = SshPool::new()
        .wait_for_ssh(&t, 50, Duration::from_secs(2), Duration::from_secs(20))
        .unwrap_err();
    assert!(matches!(err, SshError::HostKeyMismatch { .. }), "{err}");
}

#[test]
fn learn_records_the_first_key_then_detects_a_change() {
    require_dropbear!();
    let keys = Keys::new();
    let kh = keys.dir.path().join("prefix/known_hosts");
    let mut server = Server::start(&keys);
    let mut t = server.target(&keys);
    t.host_key = HostKeyPolicy::Learn(kh.clone());

    SshPool::new().exec(&t, &["true"], None, None).unwrap();
    let recorded = std::fs::read_to_string(&kh).unwrap();
    let b64 = keys.host_pub.split_whitespace().nth(1).unwrap();
    assert_eq!(
        recorded,
        format!(
            "[127.0.0.1]:{} ssh-ed25519 {b64} lago:first-seen\n",
            server.port
        )
    );
    // Held: the same key is accepted again by a new pool (new connection).
    SshPool::new().exec(&t, &["true"], None, None).unwrap();
    assert_eq!(std::fs::read_to_string(&kh).unwrap(), recorded);

    // The "VM" comes back with another host key on the same address.
    server.stop();
    let (other_key, _) = new_host_key(keys.dir.path(), "replaced_host_key");
    let _server2 = Server::start_with(ServerOptions {
        port: server.port,
        host_key: &other_key,
        authorized_keys: &keys.client_pub,
        allow_password: false,
        delay: Duration::ZERO,
    });
    let err = SshPool::new().exec(&t, &["true"], None, None).unwrap_err();
    assert!(
        matches!(err, SshError::HostKeyMismatch { .. }),
        "{}",
        err.chain_string()
    );
    // The record is unchanged.
    assert_eq!(std::fs::read_to_string(&kh).unwrap(), recorded);
}

#[test]
fn unknown_client_key_is_an_auth_error() {
    require_dropbear!();
    let keys = Keys::new();
    let server = Server::start(&keys);
    let other = keys.dir.path().join("other_id");
    generate_ed25519_key(&other, "stranger").unwrap();
    let mut t = server.target(&keys);
    t.auth = Auth::Key(other.clone());
    let err = SshPool::new().exec(&t, &["true"], None, None).unwrap_err();
    match &err {
        SshError::Auth { vm, user, tried } => {
            assert_eq!(vm, &t.name);
            assert_eq!(user, "root");
            assert!(tried.contains(&other.display().to_string()), "{tried}");
        }
        other => panic!("expected Auth, got {}", other.chain_string()),
    }
}

#[test]
fn waiting_ends_with_the_auth_error_when_every_method_keeps_being_refused() {
    require_dropbear!();
    let keys = Keys::new();
    let server = Server::start(&keys);
    let other = keys.dir.path().join("other_id");
    generate_ed25519_key(&other, "stranger").unwrap();
    let mut t = server.target(&keys);
    t.auth = Auth::Key(other.clone());
    let pool = SshPool::with_options(PoolOptions {
        auth_refused_grace: Duration::from_millis(600),
        ..PoolOptions::default()
    });
    // A budget far longer than the grace: the refusal, not the budget, ends
    // the wait, and it says what was refused (not NotReachable/timed out).
    let err = pool
        .wait_for_ssh(&t, 0, Duration::from_secs(5), Duration::from_secs(600))
        .unwrap_err();
    match &err {
        SshError::Auth { user, tried, .. } => {
            assert_eq!(user, "root");
            assert!(tried.contains(&other.display().to_string()), "{tried}");
        }
        other => panic!("expected Auth, got {}", other.chain_string()),
    }
}

#[test]
fn a_watch_that_objects_ends_the_wait_at_once() {
    // Nothing listens on this port: without the watch the wait would retry
    // for its whole budget.
    let keys = Keys::new();
    let t = lago::ssh::SshTarget {
        name: "vm9".into(),
        host: std::net::IpAddr::from([127, 0, 0, 1]),
        port: crate::ssh_support::free_port(),
        user: "root".into(),
        auth: Auth::Key(keys.client_key.clone()),
        host_key: HostKeyPolicy::Pinned(keys.host_pub.clone()),
        jump: None,
    };
    let mut looks = 0;
    let watch: lago::ssh::WaitWatch = Box::new(move || {
        looks += 1;
        if looks < 3 {
            Ok(())
        } else {
            Err("its console shows \"Kernel panic\"".into())
        }
    });
    let err = SshPool::new()
        .wait_for_ssh_watched(
            &t,
            0,
            Duration::from_secs(5),
            Duration::from_secs(600),
            Some(watch),
        )
        .unwrap_err();
    match &err {
        SshError::Abandoned { vm, why } => {
            assert_eq!(vm, "vm9");
            assert!(why.contains("Kernel panic"), "{why}");
        }
        other => panic!("expected Abandoned, got {}", other.chain_string()),
    }
}

#[test]
fn key_readable_by_others_is_refused_before_connecting() {
    require_dropbear!();
    let keys = Keys::new();
    let server = Server::start(&keys);
    std::fs::set_permissions(&keys.client_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let t = server.target(&keys);
    let err = SshPool::new().exec(&t, &["true"], None, None).unwrap_err();
    assert!(
        matches!(err, SshError::KeyPermissions { mode: 0o644, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("chmod 600"));
    assert!(!err.is_transient());
}

#[test]
fn password_and_key_or_password() {
    require_dropbear!();
    let keys = Keys::new();
    let server = Server::start_with(ServerOptions {
        port: crate::ssh_support::free_port(),
        host_key: &keys.host_key,
        authorized_keys: &keys.client_pub,
        allow_password: true,
        delay: Duration::ZERO,
    });
    let pool = SshPool::new();
    let mut t = server.target(&keys);

    t.auth = Auth::Password(PASSWORD.into());
    assert_eq!(
        pool.exec(&t, &["echo", "pw"], None, None)
            .unwrap()
            .out_str(),
        "pw\n"
    );

    t.auth = Auth::Password("wrong".into());
    let err = pool.exec(&t, &["true"], None, None).unwrap_err();
    assert!(matches!(err, SshError::Auth { .. }), "{err}");
    // Neither the message nor the debug form shows a password.
    assert!(!format!("{err} {err:?}").contains("wrong"));
    assert!(!format!("{t:?}").contains("wrong"));

    // Key refused (unknown), password accepted.
    let stranger = keys.dir.path().join("stranger");
    generate_ed25519_key(&stranger, "x").unwrap();
    t.auth = Auth::KeyOrPassword {
        key: stranger,
        password: PASSWORD.into(),
    };
    assert_eq!(pool.exec(&t, &["true"], None, None).unwrap().code, 0);
    // Missing key file: straight to the password.
    t.auth = Auth::KeyOrPassword {
        key: keys.dir.path().join("absent"),
        password: PASSWORD.into(),
    };
    assert_eq!(pool.exec(&t, &["true"], None, None).unwrap().code, 0);
    // Both fail: the error lists both methods.
    t.auth = Auth::KeyOrPassword {
        key: keys.dir.path().join("stranger"),
        password: "nope".into(),
    };
    match pool.exec(&t, &["true"], None, None).unwrap_err() {
        SshError::Auth { tried, .. } => {
            assert!(
                tried.contains("public key") && tried.contains("password"),
                "{tried}"
            )
        }
        other => panic!("{other}"),
    }
    let log = server.log_text();
    assert!(!log.contains(PASSWORD));
}
