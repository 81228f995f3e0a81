//! `copy-from-vm` (and `collect`'s SFTP fallback, which is the same
//! download) against a hostile SFTP server: an SSH server on 127.0.0.1
//! made of russh and russh-sftp's server side, serving a made-up tree with
//! names such as `../../x`, `/tmp/x`, a NUL byte or nothing, setuid modes,
//! and folders whose listing never ends. Each test checks that nothing
//! outside the destination changed and that the error names the entry.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lago::ssh::{generate_ed25519_key, Auth, HostKeyPolicy, PoolOptions, SshPool, SshTarget};
use lago::workflows::copy::copy_from_vm;
use russh::server::{Auth as ServerAuth, Msg, Session};
use russh::{Channel, ChannelId};
use russh_sftp::protocol::{
    Attrs, Data, File, FileAttributes, Handle, Name, OpenFlags, Status, StatusCode, Version,
};

/// One node of the served tree.
#[derive(Clone)]
enum Node {
    File(Vec<u8>, u32),
    /// A folder: its entries, as the server lists them (names as they are).
    Dir(Vec<String>, u32),
    /// A folder whose listing never ends: every READDIR answers `batch`
    /// new names (none when 0).
    Endless(usize),
}

fn attrs(node: &Node) -> FileAttributes {
    let (size, perm) = match node {
        Node::File(data, mode) => (data.len() as u64, 0o100000 | mode),
        Node::Dir(_, mode) => (0, 0o040000 | mode),
        Node::Endless(_) => (0, 0o040755),
    };
    FileAttributes {
        size: Some(size),
        permissions: Some(perm),
        ..FileAttributes::empty()
    }
}

type Tree = Arc<BTreeMap<String, Node>>;

fn ok(id: u32) -> Status {
    Status {
        id,
        status_code: StatusCode::Ok,
        error_message: "Ok".into(),
        language_tag: "en-US".into(),
    }
}

struct Sftp {
    tree: Tree,
    listed: HashMap<String, usize>,
}

impl Sftp {
    fn node(&self, path: &str) -> Result<&Node, StatusCode> {
        self.tree.get(path).ok_or(StatusCode::NoSuchFile)
    }
}

impl russh_sftp::server::Handler for Sftp {
    type Error = StatusCode;

    fn unimplemented(&self) -> StatusCode {
        StatusCode::OpUnsupported
    }

    async fn init(&mut self, _: u32, _: HashMap<String, String>) -> Result<Version, StatusCode> {
        Ok(Version::new())
    }

    async fn stat(&mut self, id: u32, path: String) -> Result<Attrs, StatusCode> {
        let attrs = attrs(self.node(&path)?);
        Ok(Attrs { id, attrs })
    }

    async fn lstat(&mut self, id: u32, path: String) -> Result<Attrs, StatusCode> {
        self.stat(id, path).await
    }

    async fn opendir(&mut self, id: u32, path: String) -> Result<Handle, StatusCode> {
        self.node(&path)?;
        self.listed.insert(path.clone(), 0);
        Ok(Handle { id, handle: path })
    }

    async fn readdir(&mut self, id: u32, handle: String) -> Result<Name, StatusCode> {
        let node = self.node(&handle)?.clone();
        let done = self.listed.entry(handle.clone()).or_default();
        let files = match node {
            Node::Dir(names, _) => {
                if *done > 0 {
                    return Err(StatusCode::Eof);
                }
                let mut files = vec![File::dummy("."), File::dummy("..")];
                for n in names {
                    let child = format!("{}/{n}", handle.trim_end_matches('/'));
                    let a = self
                        .tree
                        .get(&child)
                        .map(attrs)
                        .unwrap_or_else(|| attrs(&Node::File(vec![], 0o644)));
                    files.push(File::new(n, a));
                }
                files
            }
            Node::Endless(batch) => (0..batch)
                .map(|i| {
                    File::new(
                        format!("f{}", *done * batch + i),
                        attrs(&Node::File(vec![], 0o644)),
                    )
                })
                .collect(),
            Node::File(..) => return Err(StatusCode::Failure),
        };
        *self.listed.get_mut(&handle).unwrap() += 1;
        Ok(Name { id, files })
    }

    async fn open(
        &mut self,
        id: u32,
        path: String,
        _: OpenFlags,
        _: FileAttributes,
    ) -> Result<Handle, StatusCode> {
        match self.node(&path)? {
            Node::File(..) => Ok(Handle { id, handle: path }),
            _ => Err(StatusCode::Failure),
        }
    }

    async fn read(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        len: u32,
    ) -> Result<Data, StatusCode> {
        let Node::File(data, _) = self.node(&handle)? else {
            return Err(StatusCode::Failure);
        };
        let start = usize::try_from(offset).unwrap().min(data.len());
        if start == data.len() {
            return Err(StatusCode::Eof);
        }
        let end = (start + len as usize).min(data.len());
        Ok(Data {
            id,
            data: data[start..end].to_vec(),
        })
    }

    async fn close(&mut self, id: u32, _: String) -> Result<Status, StatusCode> {
        Ok(ok(id))
    }
}

struct Ssh {
    tree: Tree,
    channels: HashMap<ChannelId, Channel<Msg>>,
}

impl russh::server::Handler for Ssh {
    type Error = russh::Error;

    async fn auth_publickey(
        &mut self,
        _: &str,
        _: russh::server::VerifiedPublicKey<'_>,
    ) -> Result<ServerAuth, Self::Error> {
        Ok(ServerAuth::Accept)
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        id: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        match self.channels.remove(&id) {
            Some(channel) if name == "sftp" => {
                session.channel_success(id)?;
                let sftp = Sftp {
                    tree: self.tree.clone(),
                    listed: HashMap::new(),
                };
                russh_sftp::server::run(channel.into_stream(), sftp).await;
            }
            _ => session.channel_failure(id)?,
        }
        Ok(())
    }
}

/// The hostile server, on its own runtime; stops when dropped.
struct Server {
    _rt: tokio::runtime::Runtime,
    port: u16,
    _keys: tempfile::TempDir,
    client_key: PathBuf,
    host_pub: String,
}

impl Server {
    fn start(tree: BTreeMap<String, Node>) -> Server {
        let keys = tempfile::tempdir().unwrap();
        let client_key = keys.path().join("client");
        generate_ed25519_key(&client_key, "client").unwrap();
        let host_path = keys.path().join("host");
        let host_pub = generate_ed25519_key(&host_path, "host").unwrap();
        let host_key = russh::keys::load_secret_key(&host_path, None).unwrap();
        let config = Arc::new(russh::server::Config {
            keys: vec![host_key],
            auth_rejection_time: std::time::Duration::ZERO,
            ..Default::default()
        });
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let tree: Tree = Arc::new(tree);
        rt.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let handler = Ssh {
                    tree: tree.clone(),
                    channels: HashMap::new(),
                };
                let config = config.clone();
                tokio::spawn(async move {
                    if let Ok(session) = russh::server::run_stream(config, stream, handler).await {
                        let _ = session.await;
                    }
                });
            }
        });
        Server {
            _rt: rt,
            port,
            _keys: keys,
            client_key,
            host_pub,
        }
    }

    fn target(&self) -> SshTarget {
        SshTarget {
            name: "hostile".into(),
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: self.port,
            user: "root".into(),
            auth: Auth::Key(self.client_key.clone()),
            host_key: HostKeyPolicy::Pinned(self.host_pub.clone()),
            jump: None,
        }
    }
}

fn tree(entries: &[(&str, Node)]) -> BTreeMap<String, Node> {
    entries
        .iter()
        .map(|(p, n)| (p.to_string(), n.clone()))
        .collect()
}

fn dir(names: &[&str], mode: u32) -> Node {
    Node::Dir(names.iter().map(|s| s.to_string()).collect(), mode)
}

fn file(data: &str, mode: u32) -> Node {
    Node::File(data.as_bytes().to_vec(), mode)
}

/// Every path below `root` (links not followed) with its inode, mode and
/// content.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, (u64, u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        let body = if m.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            Vec::new()
        } else if m.file_type().is_symlink() {
            std::fs::read_link(&p)
                .unwrap()
                .into_os_string()
                .into_encoded_bytes()
        } else {
            std::fs::read(&p).unwrap()
        };
        out.insert(p, (m.ino(), m.mode(), body));
    }
    out
}

/// A temporary folder with `dest/` (where downloads go) and `host/`, the
/// rest of the host (a `victim` file).
struct Scene {
    tmp: tempfile::TempDir,
}

impl Scene {
    fn new() -> Scene {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("dest")).unwrap();
        std::fs::create_dir(tmp.path().join("host")).unwrap();
        std::fs::write(tmp.path().join("host/victim"), "host data\n").unwrap();
        Scene { tmp }
    }
    fn dest(&self) -> PathBuf {
        self.tmp.path().join("dest")
    }
    fn host(&self) -> PathBuf {
        self.tmp.path().join("host")
    }
    fn victim(&self) -> PathBuf {
        self.host().join("victim")
    }
}

fn pool() -> SshPool {
    SshPool::with_options(PoolOptions {
        sftp_max_entries: 1000,
        ..PoolOptions::default()
    })
}

/// Downloads `/data` of a server serving `t` into the scene's `dest`;
/// checks that the host side did not change; returns the error text.
fn attack(scene: &Scene, t: BTreeMap<String, Node>) -> Option<String> {
    let server = Server::start(t);
    let before = snapshot(&scene.host());
    let tmp_before: Vec<_> = std::fs::read_dir("/tmp")
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let result = copy_from_vm(&pool(), &server.target(), "/data", &scene.dest());
    assert_eq!(snapshot(&scene.host()), before, "the host side changed");
    let tmp_after: Vec<_> = std::fs::read_dir("/tmp")
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    for n in &tmp_after {
        assert!(
            tmp_before.contains(n) || !n.to_string_lossy().starts_with("lago-hostile"),
            "/tmp/{n:?} was written"
        );
    }
    result.err().map(|e| e.chain_string())
}

#[test]
fn a_plain_tree_is_downloaded() {
    let scene = Scene::new();
    let err = attack(
        &scene,
        tree(&[
            ("/data", dir(&["a", "sub"], 0o750)),
            ("/data/a", file("A", 0o640)),
            ("/data/sub", dir(&["b"], 0o700)),
            ("/data/sub/b", file("B", 0o755)),
        ]),
    );
    assert_eq!(err, None);
    let d = scene.dest().join("data");
    assert_eq!(std::fs::read_to_string(d.join("a")).unwrap(), "A");
    assert_eq!(std::fs::read_to_string(d.join("sub/b")).unwrap(), "B");
    let mode = |p: PathBuf| std::fs::metadata(p).unwrap().mode() & 0o7777;
    assert_eq!(mode(d.join("sub/b")), 0o755);
    assert_eq!(mode(d.clone()), 0o750);
}

#[test]
fn names_that_are_not_one_component_are_refused() {
    for (bad, why) in [
        ("../../lago-hostile-up", "contains `/`"),
        ("/tmp/lago-hostile-abs", "contains `/`"),
        ("sub/../../../lago-hostile-x", "contains `/`"),
        ("a\0b", "NUL"),
        ("", "is empty"),
    ] {
        let scene = Scene::new();
        let path = format!("/data/{bad}");
        let err = attack(
            &scene,
            tree(&[
                ("/data", dir(&["ok", bad], 0o755)),
                ("/data/ok", file("fine", 0o644)),
                (path.as_str(), file("owned", 0o644)),
            ]),
        )
        .unwrap_or_else(|| panic!("{bad:?} was accepted"));
        assert!(err.contains(&format!("{bad:?}")), "{bad:?}: {err}");
        assert!(err.contains(why), "{bad:?}: {err}");
        // Nothing of the listing was written.
        assert!(!scene.dest().join("data/ok").exists());
        assert!(!scene.tmp.path().join("lago-hostile-up").exists());
        assert!(!Path::new("/tmp/lago-hostile-abs").exists());
    }
}

#[test]
fn dot_entries_are_skipped_and_long_names_refused() {
    let scene = Scene::new();
    let long = "x".repeat(256);
    let err = attack(&scene, tree(&[("/data", dir(&[".", "..", &long], 0o755))])).unwrap();
    assert!(err.contains("longer than 255 bytes"), "{err}");
}

#[test]
fn setuid_setgid_and_sticky_bits_are_dropped() {
    let scene = Scene::new();
    let err = attack(
        &scene,
        tree(&[
            ("/data", dir(&["suid", "sgid"], 0o1777)),
            ("/data/suid", file("#!/bin/sh\n", 0o4755)),
            ("/data/sgid", dir(&["f"], 0o2755)),
            ("/data/sgid/f", file("x", 0o6777)),
        ]),
    );
    assert_eq!(err, None);
    let d = scene.dest().join("data");
    let mode = |p: PathBuf| std::fs::symlink_metadata(p).unwrap().mode() & 0o7777;
    assert_eq!(mode(d.join("suid")), 0o755);
    assert_eq!(mode(d.join("sgid/f")), 0o777);
    assert_eq!(mode(d.join("sgid")), 0o755);
    assert_eq!(mode(d), 0o777);
    // A single file too.
    let scene = Scene::new();
    let err = attack(&scene, tree(&[("/data", file("x", 0o4711))]));
    assert_eq!(err, None);
    assert_eq!(mode(scene.dest().join("data")), 0o711);
}

#[test]
fn links_planted_at_the_destination_are_not_followed() {
    // Earlier content of the destination folder: links where the download
    // puts a file and a folder.
    let scene = Scene::new();
    let d = scene.dest().join("data");
    std::fs::create_dir(&d).unwrap();
    std::os::unix::fs::symlink(scene.victim(), d.join("f")).unwrap();
    std::os::unix::fs::symlink(scene.host(), d.join("sub")).unwrap();
    let t = tree(&[
        ("/data", dir(&["f"], 0o755)),
        ("/data/f", file("from the VM", 0o644)),
    ]);
    assert_eq!(attack(&scene, t), None);
    // The link was replaced by the file; the victim kept its content.
    assert!(std::fs::symlink_metadata(d.join("f")).unwrap().is_file());
    assert_eq!(std::fs::read_to_string(d.join("f")).unwrap(), "from the VM");
    let t = tree(&[
        ("/data", dir(&["sub"], 0o755)),
        ("/data/sub", dir(&["victim"], 0o755)),
        ("/data/sub/victim", file("owned", 0o644)),
    ]);
    let err = attack(&scene, t).unwrap();
    assert!(err.contains("not a folder"), "{err}");
    // A single file onto a link given as the destination.
    let scene = Scene::new();
    let link = scene.dest().join("link");
    std::os::unix::fs::symlink(scene.victim(), &link).unwrap();
    let server = Server::start(tree(&[("/data", file("from the VM", 0o600))]));
    copy_from_vm(&pool(), &server.target(), "/data", &link).unwrap();
    assert_eq!(
        std::fs::read_to_string(scene.victim()).unwrap(),
        "host data\n"
    );
    assert_eq!(std::fs::read_to_string(&link).unwrap(), "from the VM");
}

#[test]
fn listings_that_never_end_are_bounded() {
    for batch in [100, 1, 0] {
        let scene = Scene::new();
        let err = attack(&scene, tree(&[("/data", Node::Endless(batch))]))
            .unwrap_or_else(|| panic!("batch {batch}: an endless listing was accepted"));
        assert!(err.contains("limit of 1000 entries"), "{err}");
    }
    assert_eq!(PoolOptions::default().sftp_max_entries, 1_000_000);
}
