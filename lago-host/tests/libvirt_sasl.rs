//! `libvirt_user` / `libvirt_password` through the `lago` binary: a private
//! libvirtd that demands SASL (DIGEST-MD5) on a loopback TCP port, reached as
//! `test+tcp://127.0.0.1:PORT/default`; lago's local-libvirt provider gets in
//! with the right credentials (flag, environment or lago.conf) and is
//! refused without them. Needs root, libvirtd and saslpasswd2
//! (scripts/install-deps.sh installs them).

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lago_test_support::{free_port, lago_bin, Project};

const INIT: &str = r#"
domains:
  vm0:
    nics: [{net: mgmt}]
    disks: [{type: empty, size: 1G, dev: vda, name: root}]
nets:
  mgmt: {type: nat, management: true}
"#;

/// Runs inside a private mount namespace: libvirtd's state folders on
/// tmpfs, the `libvirt-qemu` user it resolves at start, our config folder as
/// /etc/libvirt, our SASL config, then libvirtd (which forks).
const START: &str = r#"set -e
T=$1
for d in /run/libvirt /var/lib/libvirt /var/cache/libvirt; do
  mkdir -p "$d"; mount -t tmpfs lago-test "$d"
done
cp /etc/passwd /etc/group "$T/"
echo "libvirt-qemu:x:64055:64055::/var/lib/libvirt:/usr/sbin/nologin" >> "$T/passwd"
echo "libvirt-qemu:x:64055:" >> "$T/group"
mount --bind "$T/passwd" /etc/passwd
mount --bind "$T/group" /etc/group
mount --bind "$T/etc" /etc/libvirt
export SASL_CONF_PATH="$T/sasl"
exec libvirtd -d --listen -f "$T/etc/libvirtd.conf" -p "$T/libvirtd.pid"
"#;

/// The private libvirtd; stopped (by its pid) when dropped.
struct Daemon {
    dir: PathBuf,
    port: u16,
}

impl Daemon {
    fn start(dir: &Path) -> Daemon {
        for tool in ["libvirtd", "saslpasswd2", "unshare"] {
            let found = Command::new("sh")
                .args([
                    "-c",
                    "command -v \"$1\" || test -x /usr/sbin/\"$1\"",
                    "sh",
                    tool,
                ])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(found, "{tool} is missing: run scripts/install-deps.sh");
        }
        for d in ["sasl", "etc", "run"] {
            std::fs::create_dir_all(dir.join(d)).expect("mkdir");
        }
        std::fs::write(
            dir.join("sasl/libvirt.conf"),
            format!(
                "mech_list: digest-md5\nsasldb_path: {}\n",
                dir.join("sasl/passwd.db").display()
            ),
        )
        .expect("sasl conf");
        let mut add = Command::new("saslpasswd2")
            .args(["-p", "-c", "-a", "libvirt", "-f"])
            .arg(dir.join("sasl/passwd.db"))
            .arg("tester")
            .stdin(Stdio::piped())
            .spawn()
            .expect("saslpasswd2");
        add.stdin
            .take()
            .expect("stdin")
            .write_all(b"secret")
            .expect("password");
        assert!(add.wait().expect("saslpasswd2").success());
        let port = free_port();
        std::fs::write(
            dir.join("etc/libvirtd.conf"),
            format!(
                "listen_tls = 0\nlisten_tcp = 1\nlisten_addr = \"127.0.0.1\"\n\
                 tcp_port = \"{port}\"\nauth_tcp = \"sasl\"\n\
                 unix_sock_dir = \"{}\"\nlog_outputs = \"3:file:{}\"\n",
                dir.join("run").display(),
                dir.join("libvirtd.log").display()
            ),
        )
        .expect("libvirtd.conf");
        std::fs::write(
            dir.join("etc/qemu.conf"),
            "user = \"root\"\ngroup = \"root\"\nsecurity_driver = \"none\"\n\
             namespaces = []\ncgroup_controllers = []\n",
        )
        .expect("qemu.conf");
        let ok = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", START, "sh"])
            .arg(dir)
            .status()
            .expect("unshare");
        assert!(ok.success(), "libvirtd did not start");
        let daemon = Daemon {
            dir: dir.to_path_buf(),
            port,
        };
        // libvirtd listens a moment after it forked; bounded, not timed.
        let until = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < until,
                "libvirtd does not listen: {}",
                std::fs::read_to_string(dir.join("libvirtd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        daemon
    }

    fn url(&self) -> String {
        format!("test+tcp://127.0.0.1:{}/default", self.port)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = std::fs::read_to_string(self.dir.join("libvirtd.pid"))
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok());
        if let Some(pid) = pid.filter(|p| *p > 1) {
            // SAFETY: kill(2) on the pid of the libvirtd this test started.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
    }
}

/// The VM's status as `status -f json` reports it, and stderr.
fn vm_status(p: &Project, args: &[&str], env: &[(&str, &str)]) -> (String, String) {
    let mut all = vec!["-f", "json"];
    all.extend_from_slice(args);
    all.push("status");
    let out = p.cmd(&all).envs(env.iter().copied()).output();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    (
        v["Prefix"]["VMs"]["vm0"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn libvirt_user_and_password_answer_sasl() {
    let p = Project::with_init(lago_bin!(), INIT);
    let root = p.root();
    std::fs::create_dir_all(root.join("libvirtd")).expect("mkdir");
    let daemon = Daemon::start(&root.join("libvirtd"));
    let url = daemon.url();
    let out = p
        .cmd(&["-l", "error", "init"])
        .env("LAGO_LIBVIRT_URL", &url)
        .output();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let with_url = [("LAGO_LIBVIRT_URL", url.as_str())];
    let (status, err) = vm_status(&p, &[], &with_url);
    assert_eq!(status, "unknown", "no credentials: {err}");
    assert!(err.contains("authentication failed"), "{err}");
    let (status, err) = vm_status(
        &p,
        &["--libvirt-user", "tester", "--libvirt-password", "wrong"],
        &with_url,
    );
    assert_eq!(status, "unknown", "a wrong password: {err}");
    assert!(err.contains("authentication failed"), "{err}");

    let (status, err) = vm_status(
        &p,
        &["--libvirt-user", "tester", "--libvirt-password", "secret"],
        &with_url,
    );
    assert_eq!(status, "down", "flags: {err}");
    let (status, err) = vm_status(
        &p,
        &[],
        &[
            ("LAGO_LIBVIRT_URL", &url),
            ("LAGO_LIBVIRT_USER", "tester"),
            ("LAGO_LIBVIRT_PASSWORD", "secret"),
        ],
    );
    assert_eq!(status, "down", "environment: {err}");
    p.conf(&format!(
        "[lago]\nlibvirt_url = {url}\nlibvirt_user = tester\nlibvirt_password = secret\n"
    ));
    let (status, err) = vm_status(&p, &[], &[]);
    assert_eq!(status, "down", "lago.conf: {err}");
    // The command line wins over the file.
    let (status, _) = vm_status(&p, &["--libvirt-password", "wrong"], &[]);
    assert_eq!(status, "unknown");
}
