//! The subnet lease store.
//!
//! NAT networks get a /24 from 192.168.200.0/24 to 192.168.255.0/24. The
//! store (`lease_dir`, shared by every prefix of the host) holds one file per
//! leased subnet, `192.168.<n>.0.lease`, naming the prefix that holds it:
//! `{"prefix": "/abs/path", "uuid": "<prefix uuid>"}`. Every change happens
//! under an exclusive lock of `lease_dir/.lock` (std `File::lock`, waited for
//! with a timeout), and lease files are written atomically.
//!
//! A lease is stale when its prefix is provably gone: the prefix's `uuid`
//! file does not exist (or a part of its path is not a folder) or holds
//! another uuid. A prefix lago cannot look into (permission denied, as
//! under another user's 0700 home, or any other error) is taken as alive:
//! "cannot tell" never frees a subnet. Stale leases are reclaimed when a
//! subnet is needed. So a prefix must write its `uuid` file before it leases.
//!
//! A lease file that cannot be read as a lease (garbage, too big, not a
//! regular file) is never taken as stale: its subnet may belong to a live
//! prefix. Leasing stops with [`LeaseError::Damaged`] naming it; releasing
//! leaves it with a warning. Files are opened without blocking (a FIFO put
//! in the store cannot hang lago while it holds the store lock).

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::initfile::LEASE_RANGE;

/// A problem with the lease store. All are user-facing.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("no free subnet: all {} subnets from 192.168.{}.0/24 to 192.168.{}.0/24 are leased (see the lease files in {dir})", LEASE_RANGE.len(), LEASE_RANGE.start(), LEASE_RANGE.end())]
    Full { dir: PathBuf },
    #[error("subnet {subnet}/24 is already leased by the prefix {holder}")]
    Taken { subnet: Ipv4Addr, holder: PathBuf },
    #[error("subnet {subnet}/24 overlaps {user}")]
    InUse { subnet: Ipv4Addr, user: String },
    #[error("no free subnet: of the subnets from 192.168.{}.0/24 to 192.168.{}.0/24 that are not leased, {overlapping} overlap networks on the hypervisor hosts (such as {example})", LEASE_RANGE.start(), LEASE_RANGE.end())]
    FullOnHosts { overlapping: usize, example: String },
    #[error("{addr} is out of the range lago leases subnets from (192.168.{}.0/24 to 192.168.{}.0/24)", LEASE_RANGE.start(), LEASE_RANGE.end())]
    OutOfRange { addr: Ipv4Addr },
    #[error("malformed subnet address {0:?}: expected an IPv4 address such as 192.168.200.1")]
    Malformed(String),
    #[error("no permission to use the lease store {dir}: {source} (join group `lago`, which shares the package's /var/lib/lago/subnets, or set `lease_dir` in lago.conf or LAGO_LEASE_DIR to a folder you can write)")]
    Permission {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("the lease store {dir} is locked by another lago process: gave up after {secs} s")]
    LockTimeout { dir: PathBuf, secs: u64 },
    #[error("the lease file {path} is damaged ({reason}); its subnet may be in use: if no prefix uses it, remove the file")]
    Damaged { path: PathBuf, reason: String },
    #[error("lease store {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl LeaseError {
    fn io(path: &Path, source: std::io::Error, dir: &Path) -> LeaseError {
        if source.kind() == ErrorKind::PermissionDenied {
            LeaseError::Permission {
                dir: dir.to_path_buf(),
                source,
            }
        } else {
            LeaseError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    }
}

/// What a lease file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The subnet's network address (`192.168.n.0`).
    #[serde(skip, default = "unspecified")]
    pub subnet: Ipv4Addr,
    pub prefix: PathBuf,
    pub uuid: String,
}

fn unspecified() -> Ipv4Addr {
    Ipv4Addr::UNSPECIFIED
}

impl Lease {
    /// Whether the prefix named by the lease is provably gone (or is
    /// another one now). A prefix this user cannot read (permission denied,
    /// e.g. under another user's 0700 home) is not stale: lago cannot tell.
    pub fn is_stale(&self) -> bool {
        match std::fs::read_to_string(self.prefix.join("uuid")) {
            Ok(u) => u.trim() != self.uuid,
            Err(e) => matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory),
        }
    }
}

/// A lease file is a few hundred bytes; anything much bigger is not one.
const MAX_LEASE_BYTES: u64 = 64 * 1024;

/// Read a regular file of at most `max` bytes without ever blocking on it:
/// opened non-blocking and without following a symlink, then checked. A
/// FIFO, device, socket, symlink or folder, or a bigger file, is an
/// `InvalidData` error saying which.
fn read_regular(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            // O_NOFOLLOW on a symlink.
            Some(libc::ELOOP) => std::io::Error::new(ErrorKind::InvalidData, "a symlink"),
            _ => e,
        })?;
    let meta = file.metadata()?;
    let t = meta.file_type();
    if !t.is_file() {
        let what = if t.is_fifo() {
            "a FIFO"
        } else if t.is_dir() {
            "a folder"
        } else if t.is_socket() {
            "a socket"
        } else {
            "a device or other special file"
        };
        return Err(std::io::Error::new(
            ErrorKind::InvalidData,
            format!("{what}, not a regular file"),
        ));
    }
    if meta.len() > max {
        return Err(std::io::Error::new(
            ErrorKind::InvalidData,
            format!("{} bytes, more than a lease file holds", meta.len()),
        ));
    }
    let mut out = Vec::new();
    file.take(max + 1).read_to_end(&mut out)?;
    Ok(out)
}

/// The network address of the /24 holding `addr`, checked against the range.
pub fn subnet_of(addr: Ipv4Addr) -> Result<Ipv4Addr, LeaseError> {
    let o = addr.octets();
    if o[0] != 192 || o[1] != 168 || !LEASE_RANGE.contains(&o[2]) {
        return Err(LeaseError::OutOfRange { addr });
    }
    Ok(Ipv4Addr::new(192, 168, o[2], 0))
}

/// Parse an address given as text, for `subnet_of`.
pub fn parse_subnet(s: &str) -> Result<Ipv4Addr, LeaseError> {
    let addr: Ipv4Addr = s
        .trim()
        .parse()
        .map_err(|_| LeaseError::Malformed(s.to_string()))?;
    subnet_of(addr)
}

/// The lease store in a folder.
#[derive(Debug, Clone)]
pub struct LeaseStore {
    dir: PathBuf,
    timeout: Duration,
}

struct StoreLock {
    _file: File,
}

impl LeaseStore {
    pub fn new(dir: impl Into<PathBuf>, timeout: Duration) -> LeaseStore {
        LeaseStore {
            dir: dir.into(),
            timeout,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lease_path(&self, subnet: Ipv4Addr) -> PathBuf {
        self.dir.join(format!("{subnet}.lease"))
    }

    fn lock(&self) -> Result<StoreLock, LeaseError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| LeaseError::io(&self.dir, e, &self.dir))?;
        let path = self.dir.join(".lock");
        // A store shared by the users of group `lago` (docs/install.md):
        // never through a planted symlink; another user's lock file may be
        // read-only to us.
        let file = crate::files::open_shared_lock(&path, true).map_err(|e| {
            if e.kind() == ErrorKind::InvalidData {
                LeaseError::Damaged {
                    path: path.clone(),
                    reason: format!("the store lock is {e}"),
                }
            } else {
                LeaseError::io(&path, e, &self.dir)
            }
        })?;
        let deadline = Instant::now() + self.timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(StoreLock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) => {
                    if Instant::now() >= deadline {
                        return Err(LeaseError::LockTimeout {
                            dir: self.dir.clone(),
                            secs: self.timeout.as_secs(),
                        });
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(LeaseError::io(&path, e, &self.dir))
                }
            }
        }
    }

    fn read(&self, subnet: Ipv4Addr) -> Result<Option<Lease>, LeaseError> {
        let path = self.lease_path(subnet);
        let bytes = match read_regular(&path, MAX_LEASE_BYTES) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) if e.kind() == ErrorKind::InvalidData => {
                return Err(LeaseError::Damaged {
                    path,
                    reason: e.to_string(),
                })
            }
            Err(e) => return Err(LeaseError::io(&path, e, &self.dir)),
        };
        let mut lease =
            serde_json::from_slice::<Lease>(&bytes).map_err(|e| LeaseError::Damaged {
                path: path.clone(),
                reason: format!("not a lease: {e}"),
            })?;
        lease.subnet = subnet;
        Ok(Some(lease))
    }

    /// As [`LeaseStore::read`], but a damaged lease file is left with a
    /// warning (releasing must not fail on a file that is not ours to judge).
    fn read_for_release(&self, subnet: Ipv4Addr) -> Result<Option<Lease>, LeaseError> {
        match self.read(subnet) {
            Err(e @ LeaseError::Damaged { .. }) => {
                tracing::warn!("{e}");
                Ok(None)
            }
            other => other,
        }
    }

    fn write(&self, lease: &Lease) -> Result<(), LeaseError> {
        let path = self.lease_path(lease.subnet);
        let bytes = serde_json::to_vec(lease).unwrap_or_default();
        crate::files::write_atomic(&path, &bytes, None)
            .map_err(|e| LeaseError::io(&path, e, &self.dir))
    }

    /// Every lease in the store (stale ones included).
    pub fn list(&self) -> Result<Vec<Lease>, LeaseError> {
        let mut out = Vec::new();
        if !self.dir.exists() {
            return Ok(out);
        }
        for n in LEASE_RANGE {
            if let Some(l) = self.read(Ipv4Addr::new(192, 168, n, 0))? {
                out.push(l);
            }
        }
        Ok(out)
    }

    /// Lease one subnet per request, all or none, for the prefix at `prefix`
    /// with uuid `uuid`. A request `Some(addr)` asks for the /24 of `addr`
    /// exactly; `None` takes the first free one. Leases the prefix already
    /// holds are given again. Returns the subnets' network addresses in the
    /// order of the requests.
    pub fn acquire(
        &self,
        prefix: &Path,
        uuid: &str,
        requests: &[Option<Ipv4Addr>],
    ) -> Result<Vec<Ipv4Addr>, LeaseError> {
        self.acquire_avoiding(prefix, uuid, requests, &[])
    }

    /// [`LeaseStore::acquire`], leasing no /24 that overlaps one of the
    /// `in_use` networks (`(address, prefix length, what uses it)`, e.g.
    /// the networks of the hypervisor hosts): a dynamic request skips it, an
    /// exact one is refused with [`LeaseError::InUse`].
    pub fn acquire_avoiding(
        &self,
        prefix: &Path,
        uuid: &str,
        requests: &[Option<Ipv4Addr>],
        in_use: &[(Ipv4Addr, u8, String)],
    ) -> Result<Vec<Ipv4Addr>, LeaseError> {
        let overlap = |s: Ipv4Addr| {
            in_use.iter().find(|(addr, len, _)| {
                // Two networks overlap when the shorter prefix covers both.
                let len = u32::from((*len).min(24));
                let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                u32::from(*addr) & mask == u32::from(s) & mask
            })
        };
        let wanted: Vec<Option<Ipv4Addr>> = requests
            .iter()
            .map(|r| r.map(subnet_of).transpose())
            .collect::<Result<_, _>>()?;
        let _lock = self.lock()?;
        let mut chosen: Vec<Option<Ipv4Addr>> = vec![None; wanted.len()];
        let mut used: BTreeSet<Ipv4Addr> = BTreeSet::new();
        // Exact requests first, so a dynamic one never takes a wanted subnet.
        for (i, w) in wanted.iter().enumerate() {
            let Some(s) = *w else { continue };
            if !used.insert(s) {
                return Err(LeaseError::Taken {
                    subnet: s,
                    holder: prefix.to_path_buf(),
                });
            }
            if let Some((_, _, user)) = overlap(s) {
                return Err(LeaseError::InUse {
                    subnet: s,
                    user: user.clone(),
                });
            }
            if let Some(l) = self.read(s)? {
                if l.uuid != uuid && !l.is_stale() {
                    return Err(LeaseError::Taken {
                        subnet: s,
                        holder: l.prefix,
                    });
                }
            }
            chosen[i] = Some(s);
        }
        let mut candidates = LEASE_RANGE.map(|n| Ipv4Addr::new(192, 168, n, 0));
        let mut overlapping: Vec<&str> = Vec::new();
        for slot in chosen.iter_mut().filter(|c| c.is_none()) {
            let found = loop {
                let Some(s) = candidates.next() else {
                    if let Some(first) = overlapping.first() {
                        return Err(LeaseError::FullOnHosts {
                            overlapping: overlapping.len(),
                            example: first.to_string(),
                        });
                    }
                    return Err(LeaseError::Full {
                        dir: self.dir.clone(),
                    });
                };
                if used.contains(&s) {
                    continue;
                }
                if let Some((_, _, user)) = overlap(s) {
                    overlapping.push(user);
                    continue;
                }
                match self.read(s)? {
                    None => break s,
                    Some(l) if l.uuid == uuid || l.is_stale() => break s,
                    Some(_) => continue,
                }
            };
            used.insert(found);
            *slot = Some(found);
        }
        let out: Vec<Ipv4Addr> = chosen.into_iter().flatten().collect();
        for (n, s) in out.iter().enumerate() {
            let lease = Lease {
                subnet: *s,
                prefix: prefix.to_path_buf(),
                uuid: uuid.to_string(),
            };
            if let Err(e) = self.write(&lease) {
                // All or none: take back what this call wrote.
                for s in &out[..n] {
                    let _ = std::fs::remove_file(self.lease_path(*s));
                }
                return Err(e);
            }
        }
        Ok(out)
    }

    /// Release the given subnets when `uuid` holds them (others' leases are
    /// left alone).
    pub fn release(&self, uuid: &str, subnets: &[Ipv4Addr]) -> Result<(), LeaseError> {
        if !self.dir.exists() {
            return Ok(());
        }
        let _lock = self.lock()?;
        for s in subnets {
            let s = subnet_of(*s)?;
            if let Some(l) = self.read_for_release(s)? {
                if l.uuid == uuid {
                    let p = self.lease_path(s);
                    std::fs::remove_file(&p).map_err(|e| LeaseError::io(&p, e, &self.dir))?;
                }
            }
        }
        Ok(())
    }

    /// Release the leases of the prefix at `prefix` with uuid `uuid`: those
    /// naming this uuid and either this folder or a folder that no longer
    /// holds this uuid (the prefix was moved). A copy of a prefix (same
    /// uuid, another folder) never releases the original's leases.
    pub fn release_prefix(&self, prefix: &Path, uuid: &str) -> Result<Vec<Ipv4Addr>, LeaseError> {
        self.release_where(|l| l.uuid == uuid && (same_folder(&l.prefix, prefix) || l.is_stale()))
    }

    /// Re-point to `prefix` the leases of `uuid` whose recorded folder no
    /// longer holds that uuid (the workdir was moved): otherwise they would
    /// look stale and be handed to another prefix. Returns the subnets
    /// re-pointed.
    pub fn repoint(&self, prefix: &Path, uuid: &str) -> Result<Vec<Ipv4Addr>, LeaseError> {
        self.each_lease(|mut l| {
            if l.uuid != uuid || same_folder(&l.prefix, prefix) || !l.is_stale() {
                return Ok(false);
            }
            l.prefix = prefix.to_path_buf();
            self.write(&l).map(|()| true)
        })
    }

    /// Release every lease held by `uuid` (a failed init: its uuid is new).
    pub fn release_all(&self, uuid: &str) -> Result<Vec<Ipv4Addr>, LeaseError> {
        self.release_where(|l| l.uuid == uuid)
    }

    /// Remove every lease `mine` accepts, under the store lock.
    fn release_where(&self, mine: impl Fn(&Lease) -> bool) -> Result<Vec<Ipv4Addr>, LeaseError> {
        self.each_lease(|l| {
            if !mine(&l) {
                return Ok(false);
            }
            let p = self.lease_path(l.subnet);
            std::fs::remove_file(&p).map_err(|e| LeaseError::io(&p, e, &self.dir))?;
            Ok(true)
        })
    }

    /// Under the store lock, call `f` on every readable lease (damaged ones
    /// are left with a warning); returns the subnets for which it said true.
    fn each_lease(
        &self,
        mut f: impl FnMut(Lease) -> Result<bool, LeaseError>,
    ) -> Result<Vec<Ipv4Addr>, LeaseError> {
        if !self.dir.exists() {
            return Ok(Vec::new());
        }
        let _lock = self.lock()?;
        let mut out = Vec::new();
        for n in LEASE_RANGE {
            let s = Ipv4Addr::new(192, 168, n, 0);
            if let Some(l) = self.read_for_release(s)? {
                if f(l)? {
                    out.push(s);
                }
            }
        }
        Ok(out)
    }
}

/// Whether two paths name the same folder (equal, or the same inode).
fn same_folder(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    a == b
        || match (std::fs::metadata(a), std::fs::metadata(b)) {
            (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
            _ => false,
        }
}

/// At the binary edge: an I/O failure is lago's, anything else the user's.
impl From<LeaseError> for crate::error::Error {
    fn from(e: LeaseError) -> Self {
        match e {
            LeaseError::Io { .. } => crate::error::Error::internal_from(&e),
            _ => crate::error::Error::user_from(&e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(dir: &Path, name: &str, uuid: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::create_dir_all(&p).expect("mkdir");
        std::fs::write(p.join("uuid"), uuid).expect("uuid");
        p
    }

    #[test]
    fn networks_in_use_on_hosts_are_avoided() {
        let t = tempfile::tempdir().expect("tmp");
        let store = LeaseStore::new(t.path().join("leases"), Duration::from_secs(5));
        let a = prefix(t.path(), "a", "aaaa");
        let in_use = vec![
            (
                Ipv4Addr::new(192, 168, 200, 1),
                24,
                "network x on host hv2".to_string(),
            ),
            // A /16 on the host covers every /24 of 192.168.202-203 too.
            (
                Ipv4Addr::new(192, 168, 202, 1),
                23,
                "network y on host default".to_string(),
            ),
        ];
        let got = store
            .acquire_avoiding(&a, "aaaa", &[None, None], &in_use)
            .expect("leased");
        assert_eq!(
            got,
            vec![
                Ipv4Addr::new(192, 168, 201, 0),
                Ipv4Addr::new(192, 168, 204, 0)
            ]
        );
        let e = store
            .acquire_avoiding(
                &a,
                "aaaa",
                &[Some(Ipv4Addr::new(192, 168, 203, 9))],
                &in_use,
            )
            .expect_err("exact request on a used subnet");
        assert_eq!(
            e.to_string(),
            "subnet 192.168.203.0/24 overlaps network y on host default"
        );
        // A /16 on a host covers the whole range: said so, not "all leased".
        let wide = vec![(
            Ipv4Addr::new(192, 168, 0, 1),
            16,
            "network big on host hv2".to_string(),
        )];
        let e = store
            .acquire_avoiding(&a, "aaaa", &[None], &wide)
            .expect_err("nothing free");
        assert!(
            e.to_string().contains(
                "56 overlap networks on the hypervisor hosts (such as network big on host hv2)"
            ),
            "{e}"
        );
    }

    #[test]
    fn acquire_release_stale() {
        let t = tempfile::tempdir().expect("tmp");
        let store = LeaseStore::new(t.path().join("leases"), Duration::from_secs(5));
        let a = prefix(t.path(), "a", "aaaa");
        let b = prefix(t.path(), "b", "bbbb");
        let got = store
            .acquire(&a, "aaaa", &[None, Some(Ipv4Addr::new(192, 168, 200, 1))])
            .expect("a");
        assert_eq!(
            got,
            vec![
                Ipv4Addr::new(192, 168, 201, 0),
                Ipv4Addr::new(192, 168, 200, 0)
            ]
        );
        // b asks for a's subnet: taken, naming a.
        let e = store
            .acquire(&b, "bbbb", &[Some(Ipv4Addr::new(192, 168, 201, 7))])
            .expect_err("taken");
        assert!(
            matches!(&e, LeaseError::Taken { holder, .. } if holder == &a),
            "{e}"
        );
        assert!(e.to_string().contains("already leased by the prefix"));
        // out of range and malformed
        assert!(matches!(
            store.acquire(&b, "bbbb", &[Some(Ipv4Addr::new(10, 0, 0, 1))]),
            Err(LeaseError::OutOfRange { .. })
        ));
        assert!(matches!(
            parse_subnet("192.168.300.1"),
            Err(LeaseError::Malformed(_))
        ));
        // a's prefix is gone: its leases are stale and reclaimed.
        std::fs::remove_dir_all(&a).expect("rm");
        let got = store
            .acquire(&b, "bbbb", &[Some(Ipv4Addr::new(192, 168, 201, 7)), None])
            .expect("reclaim");
        assert_eq!(
            got,
            vec![
                Ipv4Addr::new(192, 168, 201, 0),
                Ipv4Addr::new(192, 168, 200, 0)
            ]
        );
        assert_eq!(store.list().expect("list").len(), 2);
        assert_eq!(store.release_all("bbbb").expect("release").len(), 2);
        assert!(store.list().expect("list").is_empty());
    }

    #[test]
    fn full_store() {
        let t = tempfile::tempdir().expect("tmp");
        let store = LeaseStore::new(t.path().join("leases"), Duration::from_secs(5));
        let a = prefix(t.path(), "a", "aaaa");
        let all = vec![None; LEASE_RANGE.len()];
        assert_eq!(store.acquire(&a, "aaaa", &all).expect("all").len(), 56);
        let b = prefix(t.path(), "b", "bbbb");
        let e = store.acquire(&b, "bbbb", &[None]).expect_err("full");
        assert!(matches!(e, LeaseError::Full { .. }));
        assert!(e.to_string().contains("no free subnet"));
        // release of someone else's lease does nothing
        store
            .release("bbbb", &[Ipv4Addr::new(192, 168, 200, 0)])
            .expect("noop");
        assert_eq!(store.list().expect("list").len(), 56);
    }

    /// A lease file with garbage, or a FIFO, names the file and is never
    /// taken as stale; releasing leaves it; nothing is created.
    #[test]
    fn damaged_and_special_lease_files() {
        let t = tempfile::tempdir().expect("tmp");
        let dir = t.path().join("leases");
        std::fs::create_dir_all(&dir).expect("mkdir");
        let store = LeaseStore::new(&dir, Duration::from_secs(5));
        let a = prefix(t.path(), "a", "aaaa");
        let bad = dir.join("192.168.200.0.lease");
        std::fs::write(&bad, b"{\"prefix\": 3").expect("write");
        let e = store.acquire(&a, "aaaa", &[None]).expect_err("damaged");
        assert!(
            matches!(&e, LeaseError::Damaged { path, .. } if path == &bad),
            "{e}"
        );
        assert!(e.to_string().contains("192.168.200.0.lease"), "{e}");
        assert_eq!(
            std::fs::read_dir(&dir).expect("ls").count(),
            2,
            "lock + bad only"
        );
        store.release_all("aaaa").expect("release leaves it");
        assert!(bad.exists());
        std::fs::remove_file(&bad).expect("rm");
        let fifo = std::ffi::CString::new(bad.as_os_str().as_encoded_bytes()).expect("c");
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let e = store.acquire(&a, "aaaa", &[None]).expect_err("fifo");
        assert!(e.to_string().contains("a FIFO, not a regular file"), "{e}");
        // the store lock was released: another call gets it at once
        assert!(store.lock().is_ok());
    }

    proptest::proptest! {
        /// Whatever a lease file holds: no panic; either a valid lease
        /// (then acquire works) or an error naming the file; nothing new.
        #[test]
        fn mutated_lease_files(content in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
                               valid in proptest::prelude::any::<bool>()) {
            let t = tempfile::tempdir().expect("tmp");
            let dir = t.path().join("leases");
            std::fs::create_dir_all(&dir).expect("mkdir");
            let store = LeaseStore::new(&dir, Duration::from_secs(5));
            let a = prefix(t.path(), "a", "aaaa");
            let mut bytes = if valid {
                format!("{{\"prefix\": \"{}\", \"uuid\": \"zz\"}}", t.path().join("gone").display()).into_bytes()
            } else {
                Vec::new()
            };
            bytes.extend(&content);
            let file = dir.join("192.168.200.0.lease");
            std::fs::write(&file, &bytes).expect("write");
            let parsed = serde_json::from_slice::<Lease>(&bytes).is_ok();
            match store.acquire(&a, "aaaa", &[None]) {
                Ok(got) => {
                    proptest::prop_assert!(parsed);
                    proptest::prop_assert_eq!(got, vec![Ipv4Addr::new(192, 168, 200, 0)]);
                }
                Err(e) => {
                    proptest::prop_assert!(matches!(&e, LeaseError::Damaged { path, .. } if path == &file), "{}", e);
                    proptest::prop_assert_eq!(std::fs::read_dir(&dir).expect("ls").count(), 2);
                }
            }
            proptest::prop_assert_eq!(store.list().is_ok(), parsed);
            proptest::prop_assert!(store.release_all("aaaa").is_ok());
        }
    }

    #[test]
    fn lock_timeout() {
        let t = tempfile::tempdir().expect("tmp");
        let store = LeaseStore::new(t.path().to_path_buf(), Duration::from_millis(100));
        let held = store.lock().expect("lock");
        // A second handle of the same file in this process conflicts too.
        let e = store.lock().err().expect("timeout");
        assert!(matches!(e, LeaseError::LockTimeout { .. }), "{e}");
        drop(held);
        assert!(store.lock().is_ok());
    }
}
