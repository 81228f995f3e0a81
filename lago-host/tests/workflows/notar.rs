//! `collect` from a machine without `tar`: the paths come over SFTP
//! instead. The SSH server is dropbear on 127.0.0.1 in a private mount
//! namespace where a script that exits 127 ("command not found") is bound
//! over `tar` (and root's `~/.ssh`, `/etc/shadow` and `~/.bashrc` are
//! replaced as in `ssh_support`, whose keys this test reuses).
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ssh_support::{key_target, Keys, NamespaceFiles, LOCALHOST};
use lago::ssh::{SshPool, SshTarget};
use lago::workflows::collect::collect_vm;
use lago_test_support::free_port;
use lago_test_support::fs::lmode as mode;

struct NoTarServer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl NoTarServer {
    fn start(keys: &Keys) -> NoTarServer {
        let dir = tempfile::tempdir().unwrap();
        // Root's account unlocked ("*": no password), so key logins work.
        let ns = NamespaceFiles::new(dir.path(), &keys.client_pub, "*");
        let bind_bashrc = ns.bind_bashrc;
        let fake_tar = dir.path().join("tar");
        std::fs::write(&fake_tar, "#!/bin/sh\necho 'tar: not here' >&2\nexit 127\n").unwrap();
        std::fs::set_permissions(&fake_tar, std::fs::Permissions::from_mode(0o755)).unwrap();
        let tar_path = std::fs::canonicalize("/usr/bin/tar").unwrap();
        let port = free_port();
        let script = format!(
            "mount --bind \"$1\" /root/.ssh && mount --bind \"$2\" /etc/shadow && \
             {bind_bashrc}mount --bind \"$5\" \"$6\" && \
             exec dropbear -F -E -m -s -p 127.0.0.1:{port} -r \"$3\""
        );
        let child = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script, "sh"])
            .arg(&ns.dotssh)
            .arg(&ns.shadow)
            .arg(&keys.host_key)
            .arg(&ns.bashrc)
            .arg(&fake_tar)
            .arg(&tar_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = NoTarServer {
            child,
            port,
            _dir: dir,
        };
        let start = Instant::now();
        while std::net::TcpStream::connect((LOCALHOST, port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "dropbear did not listen"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        server
    }

    fn target(&self, keys: &Keys) -> SshTarget {
        key_target("notar", self.port, keys)
    }
}

impl Drop for NoTarServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn collect_without_tar_in_the_vm_falls_back_to_sftp() {
    require_dropbear!();
    let keys = Keys::new();
    let server = NoTarServer::start(&keys);
    let target = server.target(&keys);
    let pool = SshPool::new();
    // The fake is in place: tar "is not installed" for the SSH sessions.
    let st = pool
        .exec(&target, &["tar", "--version"], None, None)
        .unwrap();
    assert_eq!(st.code, 127, "{}", st.err_str());

    let guest = tempfile::tempdir().unwrap();
    let logs = guest.path().join("logs");
    std::fs::create_dir_all(logs.join("sub")).unwrap();
    std::fs::write(logs.join("sub/app.log"), "started\n").unwrap();
    std::fs::set_permissions(logs.join("sub"), std::fs::Permissions::from_mode(0o750)).unwrap();
    let file = guest.path().join("version");
    std::fs::write(&file, "1.0\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o604)).unwrap();
    let paths = vec![
        logs.to_str().unwrap().to_string(),
        file.to_str().unwrap().to_string(),
        guest.path().join("absent").to_str().unwrap().to_string(),
    ];

    let out = tempfile::tempdir().unwrap();
    let report = collect_vm(&pool, &target, &paths, out.path(), false).unwrap();
    assert_eq!(report.collected, paths[..2]);
    assert_eq!(report.missing, paths[2..]);
    let name = |p: &str| out.path().join(p.replace('/', "_"));
    assert_eq!(
        std::fs::read_to_string(name(&paths[0]).join("sub/app.log")).unwrap(),
        "started\n"
    );
    assert_eq!(mode(&name(&paths[0]).join("sub")), 0o750);
    assert_eq!(std::fs::read_to_string(name(&paths[1])).unwrap(), "1.0\n");
    assert_eq!(mode(&name(&paths[1])), 0o604);
}
