//! Benchmark of the SSH layer against a real dropbear on loopback (not a
//! timed test): exec round trips, connection set-up beside OpenSSH's `ssh`,
//! wait_for_ssh latency, SFTP throughput.
//!
//! `LAGO_SSH_BENCH=full cargo test --release -p lago-host --bench ssh_bench -- --nocapture`
//! prints a Markdown table; without the variable (e.g. under
//! `cargo test --all-targets`) it runs as a quick smoke test.
#![allow(clippy::unwrap_used)]

#[path = "../tests/ssh_support/mod.rs"]
mod ssh_support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lago::ssh::SshPool;
use ssh_support::{free_port, Keys, Server, ServerOptions};

fn bench_mode() -> bool {
    std::env::var("LAGO_SSH_BENCH").is_ok_and(|v| v == "full")
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn pct(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[test]
fn ssh_layer() {
    if !ssh_support::have_dropbear() {
        eprintln!("dropbear not installed; skipping");
        return;
    }
    let full = bench_mode();
    let n = |big: usize, small: usize| if full { big } else { small };
    let keys = Keys::new();
    let server = Server::start(&keys);
    let t = server.target(&keys);
    let mut rows: Vec<(String, String)> = Vec::new();

    // Exec round trip on a pooled connection.
    let pool = SshPool::new();
    pool.exec(&t, &["true"], None, None).unwrap();
    let times: Vec<Duration> = (0..n(300, 10))
        .map(|_| {
            let s = Instant::now();
            pool.exec(&t, &["true"], None, None).unwrap();
            s.elapsed()
        })
        .collect();
    rows.push((
        "exec `true`, pooled connection (median / p90)".into(),
        format!("{} / {}", ms(median(times.clone())), ms(pct(times, 0.9))),
    ));

    // Connect + authenticate + `true`, a new connection each time.
    let times: Vec<Duration> = (0..n(40, 3))
        .map(|_| {
            let p = SshPool::new();
            let s = Instant::now();
            p.exec(&t, &["true"], None, None).unwrap();
            s.elapsed()
        })
        .collect();
    rows.push((
        "connect + auth + `true`, new connection (median)".into(),
        ms(median(times)),
    ));

    // The same with OpenSSH's client, as the reference.
    let kh = keys.dir.path().join("ssh_known_hosts");
    std::fs::write(
        &kh,
        lago::ssh::known_hosts_line(t.host, t.port, &keys.host_pub) + "\n",
    )
    .unwrap();
    if Command::new("ssh")
        .arg("-V")
        .stderr(Stdio::null())
        .status()
        .is_ok()
    {
        let times: Vec<Duration> = (0..n(40, 3))
            .map(|_| {
                let s = Instant::now();
                let st = Command::new("ssh")
                    .args(["-F", "/dev/null", "-o", "BatchMode=yes", "-o"])
                    .arg(format!("UserKnownHostsFile={}", kh.display()))
                    .args(["-o", "StrictHostKeyChecking=yes", "-i"])
                    .arg(&keys.client_key)
                    .args(["-p", &t.port.to_string(), "root@127.0.0.1", "true"])
                    .stdin(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .unwrap();
                assert!(st.success(), "ssh failed");
                s.elapsed()
            })
            .collect();
        rows.push((
            "OpenSSH `ssh host true`, new connection (median)".into(),
            ms(median(times)),
        ));
    }

    // wait_for_ssh: time from the server listening to the call returning.
    let mut lat = Vec::new();
    for _ in 0..n(10, 1) {
        let delay = Duration::from_millis(500);
        let port = free_port();
        let start = Instant::now();
        let srv = Server::start_with(ServerOptions {
            port,
            host_key: &keys.host_key,
            authorized_keys: &keys.client_pub,
            allow_password: false,
            delay,
        });
        // Find when it started listening by a probe thread.
        let probe = std::thread::spawn(move || {
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                std::thread::sleep(Duration::from_millis(2));
            }
            start.elapsed()
        });
        let p = SshPool::new();
        p.wait_for_ssh(
            &srv.target(&keys),
            0,
            Duration::from_secs(3),
            Duration::from_secs(20),
        )
        .unwrap();
        let ready = start.elapsed();
        let listening = probe.join().unwrap();
        lat.push(ready.saturating_sub(listening));
    }
    rows.push((
        "wait_for_ssh return after the port opens (median / max)".into(),
        format!(
            "{} / {}",
            ms(median(lat.clone())),
            ms(*lat.iter().max().unwrap())
        ),
    ));

    // Parallel execs on one connection.
    let k = n(200, 16);
    let s = Instant::now();
    std::thread::scope(|sc| {
        for _ in 0..8 {
            let pool = &pool;
            let t = &t;
            sc.spawn(move || {
                for _ in 0..k / 8 {
                    pool.exec(t, &["true"], None, None).unwrap();
                }
            });
        }
    });
    rows.push((
        "execs/s, 8 threads on one connection".into(),
        format!("{:.0}", k as f64 / s.elapsed().as_secs_f64()),
    ));

    // SFTP throughput.
    let size = n(64, 4) * 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("blob");
    let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(&src, &data).unwrap();
    let remote = dir.path().join("remote-blob");
    let s = Instant::now();
    pool.upload(&t, &src, remote.to_str().unwrap()).unwrap();
    let up = s.elapsed();
    let back = dir.path().join("back");
    let s = Instant::now();
    pool.download(&t, remote.to_str().unwrap(), &back).unwrap();
    let down = s.elapsed();
    assert_eq!(std::fs::read(&back).unwrap(), data);
    let mb = size as f64 / 1e6;
    rows.push((
        format!("SFTP upload / download of {:.0} MB", mb),
        format!(
            "{:.0} / {:.0} MB/s",
            mb / up.as_secs_f64(),
            mb / down.as_secs_f64()
        ),
    ));

    println!("\n| SSH layer, dropbear on loopback | value |\n|---|---|");
    for (k, v) in rows {
        println!("| {k} | {v} |");
    }
}
