//! exec, exec_script, exec_stream against a real dropbear on loopback.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use crate::ssh_support::{Keys, Server};
use lago::ssh::{SshError, SshPool, StreamEvent};

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn exit_codes_and_streams_kept_apart() {
    require_dropbear!();
    let keys = Keys::new();
    let server = Server::start(&keys);
    let t = server.target(&keys);
    let pool = SshPool::new();

    let st = pool.exec(&t, &["true"], None, None).unwrap();
    assert_eq!(
        (st.code, st.out.as_slice(), st.err.as_slice()),
        (0, &b""[..], &b""[..])
    );

    let st = pool
        .exec(
            &t,
            &["sh", "-c", "echo out; echo err >&2; exit 42"],
            None,
            None,
        )
        .unwrap();
    assert_eq!(st.code, 42);
    assert_eq!(st.out_str(), "out\n");
    assert_eq!(st.err_str(), "err\n");

    let st = pool.exec(&t, &["false"], None, None).unwrap();
    assert_eq!(st.code, 1);
    assert!(!st.success());

    // A missing program: the shell's 127.
    let st = pool.exec(&t, &["/nonexistent/prog"], None, None).unwrap();
    assert_eq!(st.code, 127, "{}", st.err_str());
}

#[test]
fn killed_by_signal_reports_128_plus_n() {
    require_dropbear!();
    let keys = Keys::new();
    let server = Server::start(&keys);
    let t = server.target(&keys);
    let pool = SshPool::new();
    // Exec the killed process itself (not under a shell, which would turn
    // the signal into a plain exit status).
    let st = pool
        .exec(&t, &["sh", "-c", "exec sh -c 'kill -9 $$'"], None, None)
        .unwrap();
    assert!(st.code == 137, "code {}", st.code);
}

#[test]
fn argv_passes_through_untouched() {
    require_dropbear!();
    let keys = Keys::new();
    let server = Server::start(&keys);
    let t = server.target(&keys);
    let pool = SshPool::new();
    let args = s(&[
        "",
        "two words",
        "it's",
        "\"dq\"",
        "$HOME",
        "$(id)",
        "`id`",
        "-c",
        "--",
        "-n",
        "a\nb",
        "*",
        "~",
        "a=b",
        ";ls",
        "|",
        "\\",
    ]);
    let mut argv = s(&["printf", "%s\\0"]);
    argv.extend(args.iter().cloned());
    let st = pool.exec(&t, &argv, None, None).unwrap();
    assert_eq!(st.code, 0, "{}", st.err_str());
    let got: Vec<String> = st
        .out
        .split(|b| *b == 0)
        .map(|p| String::from_utf8(p.to_vec()).unwrap())
        .collect();
    assert_eq!(&got[..got.len() - 1], &args[..]);

    // `-c` as the program's own option, with a script that uses $HOME.
    let st = pool
        .exec(&t, &["sh", "-c", "echo \"$HOME\" '$HOME'"], None, None)
        .unwrap();
    assert_eq!(st.out_str(), "/root $HOME\n");

    // A raw command line is parsed by the remote shell.
    let st = pool
        .exec_command(&t, "echo $((6*7)) | tr 4 X", None, None)
        .unwrap();
    assert_eq!(st.out_str(), "X2\n");
}

#[test]
fn stdin_is_delivered_then_closed() {
    require_dropbear!();
    let keys = Keys::new();
    let server = Server::start(&keys);
    let t = server.target(&keys);
    let pool = SshPool::new();
    let st = pool
        .exec(&t, &["cat"], Some(b"hello\nworld"), None)
        .unwrap();
    assert_eq!(st.out, b"hello\nworld");
    // No stdin: an empty one (cat must not hang).
    let st = pool
        .exec(&t, &["cat"], None, Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(st.out, b"");
    // Large input and output at the same time (no deadlock): 4 MiB through
    // cat while also echoing to stderr.
    let big: Vec<u8> = (0..4 * 1024 * 1024u32)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let st = pool
        .exec(
            &t,
            &["sh", "-c", "tee /dev/stderr"],
            Some(&big),
            Some(Duration::from_secs(60)),
        )
        .unwrap();
    assert_eq!(st.code, 0);
    assert!(st.out == big, "stdout differs ({} bytes)", st.out.len());
    assert!(st.err == big, "stderr differs ({} bytes)", st.err.len());
}

#[test]
fn all_output_is_read_until_the_channel_closes() {
    require_dropbear!();
    let keys = Keys::new();
    let server = Server::start(&keys);
    let t = server.target(&keys);
    let pool = SshPool::new();
    // The process exits with output still in the pipe: the exit status
    // arrives before the last of the data, which must not be lost. (A
    // background process that outlives the command is not waited for by
    // dropbear, unlike OpenSSH's sshd.)
    let st = pool
        .exec(
            &t,
            &[
                "sh",
                "-c",
                "head -c 3000000 /dev/zero | tr '\\0' x; echo tail >&2; exit 3",
            ],
            None,
            Some(Duration::from_secs(30)),
        )
        .unwrap();
    assert_eq!(st.code, 3);
    assert_eq!(st.out.len(), 3_000_000);
    assert!(st.out.iter().all(|b| *b == b'x'));
    assert_eq!(st.err_str(), "tail\n");
}

#[test]
fn scripts_run_with_their_interpreter_and_keep_stdin_safe() {
    require_dropbear!();
    let keys = Keys::new();
    let server = Server::start(&keys);
    let t = server.target(&keys);
    let pool = SshPool::new();
    // `cat` inside the script reads stdin: it must get /dev/null, not the
    // rest of the script.
    let script = b"echo one\ncat\necho \"two $0\" >&2\nexit 5\n";
    let st = pool.exec_script(&t, script, None).unwrap();
    assert_eq!(st.code, 5);
    assert_eq!(st.out_str(), "one\n");
    assert!(st.err_str().starts_with("two /"), "{}", st.err_str());

    let bash = b"#!/bin/bash\nset -e\nx=(a b c)\necho ${#x[@]}\n";
    let st = pool.exec_script(&t, bash, None).unwrap();
    assert_eq!(
        (st.code, st.out_str().as_str()),
        (0, "3\n"),
        "{}",
        st.err_str()
    );

    // The temporary file is gone afterwards.
    let st = pool.exec_script(&t, b"echo \"$0\"", None).unwrap();
    let path = st.out_str().trim().to_string();
    let st = pool.exec(&t, &["test", "-e", &path], None, None).unwrap();
    assert_eq!(st.code, 1, "{path} still exists");
}

#[test]
fn timeout_kills_and_reports() {
    require_dropbear!();
    let keys = Keys::new();
    let server = Server::start(&keys);
    let t = server.target(&keys);
    let pool = SshPool::new();
    let err = pool
        .exec(&t, &["sleep", "30"], None, Some(Duration::from_millis(700)))
        .unwrap_err();
    assert!(matches!(err, SshError::Timeout { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&t.name) && msg.contains("`sleep`"), "{msg}");
    // The connection is still usable.
    assert_eq!(pool.exec(&t, &["true"], None, None).unwrap().code, 0);
}

#[test]
fn one_connection_serves_many_calls() {
    require_dropbear!();
    let keys = Keys::new();
    let server = Server::start(&keys);
    let t = server.target(&keys);
    let pool = SshPool::new();
    let start = Instant::now();
    for i in 0..50 {
        let st = pool
            .exec(&t, &["echo", &i.to_string()], None, None)
            .unwrap();
        assert_eq!(st.out_str(), format!("{i}\n"));
    }
    let per_call = start.elapsed() / 50;
    assert_eq!(pool.connection_count(), 1);
    assert_eq!(server.connections(), 1, "{}", server.log_text());
    eprintln!("exec round trip on a pooled connection: {per_call:?}");

    // A clone shares the connection.
    let clone = pool.clone();
    clone.exec(&t, &["true"], None, None).unwrap();
    assert_eq!(server.connections(), 1);

    // After disconnect, the next call connects again.
    pool.disconnect(&t);
    assert_eq!(pool.connection_count(), 0);
    pool.exec(&t, &["true"], None, None).unwrap();
    assert_eq!(server.connections(), 2);
}

#[test]
fn broken_pooled_connection_is_replaced() {
    require_dropbear!();
    let keys = Keys::new();
    let mut server = Server::start(&keys);
    let t = server.target(&keys);
    let pool = SshPool::new();
    pool.exec(&t, &["true"], None, None).unwrap();
    // Kill the server (and its session process), start a new one on the
    // same port: the pooled connection is dead.
    server.stop();
    let server2 = Server::start_with(crate::ssh_support::ServerOptions {
        port: server.port,
        host_key: &keys.host_key,
        authorized_keys: &keys.client_pub,
        allow_password: false,
        delay: Duration::ZERO,
    });
    let st = pool.exec(&t, &["echo", "again"], None, None).unwrap();
    assert_eq!(st.out_str(), "again\n");
    assert_eq!(server2.connections(), 1);
}

#[test]
fn parallel_exec_from_threads() {
    require_dropbear!();
    let keys = Keys::new();
    let server = Server::start(&keys);
    let t = server.target(&keys);
    let pool = SshPool::new();
    let handles: Vec<_> = (0..12)
        .map(|th| {
            let pool = pool.clone();
            let t = t.clone();
            std::thread::spawn(move || {
                for i in 0..8 {
                    let word = format!("{th}-{i}");
                    let st = pool
                        .exec(
                            &t,
                            &["sh", "-c", "sleep 0.05; echo \"$1\"", "sh", &word],
                            None,
                            None,
                        )
                        .unwrap();
                    assert_eq!(
                        st.out_str(),
                        format!("{word}\n"),
                        "code {} err {}",
                        st.code,
                        st.err_str()
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(server.connections(), 1, "{}", server.log_text());
}

#[test]
fn parallel_exec_on_several_vms() {
    require_dropbear!();
    let keys = Keys::new();
    let servers: Vec<Server> = (0..3).map(|_| Server::start(&keys)).collect();
    let pool = SshPool::new();
    let start = Instant::now();
    std::thread::scope(|scope| {
        for srv in &servers {
            let t = srv.target(&keys);
            let pool = &pool;
            scope.spawn(move || {
                let st = pool
                    .exec(&t, &["sh", "-c", "sleep 1; echo ok"], None, None)
                    .unwrap();
                assert_eq!(st.out_str(), "ok\n");
            });
        }
    });
    // Three 1 s commands in parallel, not in series.
    assert!(
        start.elapsed() < Duration::from_millis(2500),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(pool.connection_count(), 3);
}

#[test]
fn streaming_output() {
    require_dropbear!();
    let keys = Keys::new();
    let server = Server::start(&keys);
    let t = server.target(&keys);
    let pool = SshPool::new();
    let stream = pool.exec_stream(
        &t,
        &[
            "sh",
            "-c",
            "for i in 1 2 3; do echo $i; sleep 0.1; done; echo e >&2; exit 4",
        ],
        None,
        None,
    );
    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut code = None;
    let mut events = 0;
    for ev in stream {
        events += 1;
        match ev.unwrap() {
            StreamEvent::Stdout(d) => out.extend(d),
            StreamEvent::Stderr(d) => err.extend(d),
            StreamEvent::Exit(c) => code = Some(c),
        }
    }
    assert_eq!(out, b"1\n2\n3\n");
    assert_eq!(err, b"e\n");
    assert_eq!(code, Some(4));
    assert!(events >= 4, "output arrived in pieces");
}

#[test]
fn stdout_as_a_reader_streams_a_tar() {
    require_dropbear!();
    let keys = Keys::new();
    let server = Server::start(&keys);
    let t = server.target(&keys);
    let pool = SshPool::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("d")).unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(dir.path().join("d/big"), &big).unwrap();
    let mut reader = pool
        .exec_stream(
            &t,
            &[
                "sh",
                "-c",
                "tar -C \"$1\" -cf - d; echo warn >&2; exit 2",
                "sh",
                dir.path().to_str().unwrap(),
            ],
            None,
            None,
        )
        .into_reader();
    // Unpack locally with the system tar, fed from the reader.
    let out = tempfile::tempdir().unwrap();
    let mut tar = std::process::Command::new("tar")
        .args(["-xf", "-", "-C"])
        .arg(out.path())
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::copy(&mut reader, tar.stdin.as_mut().unwrap()).unwrap();
    drop(tar.stdin.take());
    assert!(tar.wait().unwrap().success());
    let st = reader.finish().unwrap();
    assert_eq!(st.code, 2);
    assert_eq!(st.err_str(), "warn\n");
    assert!(std::fs::read(out.path().join("d/big")).unwrap() == big);
}
