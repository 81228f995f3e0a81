//! The template store against real files and a real HTTP server on loopback.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;

use lago::templates::{TemplateError, TemplateRepo, TemplateStore};
use sha1::{Digest, Sha1};

fn sha1_hex(data: &[u8]) -> String {
    Sha1::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A fake qcow2 image: the magic, version 3, a header naming no other
/// file (no backing file, no external data file), then some bytes.
fn image_bytes(len: usize) -> Vec<u8> {
    let mut data = b"QFI\xfb\0\0\0\x03".to_vec();
    data.extend([0u8; 96]);
    data.extend((0..len).map(|i| (i * 7 % 251) as u8));
    data
}

fn file_repo(dir: &Path, image: &[u8], published_hash: &str) -> TemplateRepo {
    std::fs::write(dir.join("tiny-v1.qcow2"), image).expect("image");
    std::fs::write(dir.join("tiny-v1.qcow2.hash"), published_hash).expect("hash");
    std::fs::write(
        dir.join("tiny-v1.qcow2.metadata"),
        r#"{"distro": "tiny", "root-password": "pw"}"#,
    )
    .expect("metadata");
    let repo = format!(
        r#"{{"name": "local", "sources": {{"src": {{"type": "file", "args": {{"root": "{}"}}}}}},
            "templates": {{"tiny": {{"versions": {{"v1": {{"source": "src", "handle": "tiny-v1.qcow2", "timestamp": 1}}}}}}}}}}"#,
        dir.display()
    );
    let path = dir.join("repo.json");
    std::fs::write(&path, repo).expect("repo");
    TemplateRepo::load(&path.to_string_lossy()).expect("load repo")
}

#[test]
fn file_source_imports_once_with_hash_and_metadata() {
    let src = tempfile::tempdir().expect("tmp");
    let store_dir = tempfile::tempdir().expect("tmp");
    let image = image_bytes(100_000);
    let repo = file_repo(src.path(), &image, &sha1_hex(&image));
    let store = TemplateStore::new(store_dir.path());
    let version = repo.resolve("tiny", None).expect("resolve");

    // Many inits at once: one import, every caller gets the same image.
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8).map(|_| s.spawn(|| store.ensure(&version))).collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    for r in &results {
        let stored = r.as_ref().expect("ensure");
        assert_eq!(stored.format, "qcow2");
        assert_eq!(stored.hash, sha1_hex(&image));
        assert_eq!(stored.metadata["distro"], "tiny");
        assert_eq!(
            std::fs::read(&stored.path).expect("read stored"),
            image,
            "stored image is the source image"
        );
    }
    let mut names: Vec<String> = std::fs::read_dir(store_dir.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "local:tiny:v1",
            "local:tiny:v1.hash",
            "local:tiny:v1.lock",
            "local:tiny:v1.metadata"
        ]
    );
}

#[test]
fn hash_mismatch_keeps_nothing() {
    let src = tempfile::tempdir().expect("tmp");
    let store_dir = tempfile::tempdir().expect("tmp");
    let image = image_bytes(1000);
    let repo = file_repo(src.path(), &image, &"0".repeat(40));
    let store = TemplateStore::new(store_dir.path());
    let version = repo.resolve("tiny", Some("v1")).expect("resolve");
    let err = store.ensure(&version).expect_err("mismatch");
    assert!(matches!(err, TemplateError::HashMismatch { .. }), "{err}");
    assert!(err.is_user_error());
    let left: Vec<_> = std::fs::read_dir(store_dir.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert!(left.is_empty(), "nothing but the lock is kept: {left:?}");
}

/// A tiny HTTP/1.1 server on loopback serving a fixed set of paths (404 else),
/// counting requests per path.
struct Server {
    base: String,
    hits: Arc<std::sync::Mutex<HashMap<String, usize>>>,
}

fn serve(files: HashMap<String, Vec<u8>>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let hits = Arc::new(std::sync::Mutex::new(HashMap::new()));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            loop {
                let mut header = String::new();
                match reader.read_line(&mut header) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if header == "\r\n" => break,
                    Ok(_) => {}
                }
            }
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .to_string();
            *counter
                .lock()
                .expect("lock")
                .entry(path.clone())
                .or_insert(0) += 1;
            let _ = match files.get(&path) {
                Some(body) => stream
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .and_then(|_| stream.write_all(body)),
                None => stream.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                ),
            };
        }
    });
    Server { base, hits }
}

#[test]
fn http_source_prefers_xz_and_verifies_hash() {
    let image = image_bytes(300_000);
    let mut xz = Vec::new();
    lzma_rs::xz_compress(&mut std::io::Cursor::new(&image), &mut xz).expect("xz");
    let repo_json = r#"{"name": "web", "sources": {"s": {"type": "http", "args": {"baseurl": "BASE/repo/"}}},
        "templates": {"tiny": {"versions": {"v1": {"source": "s", "handle": "tiny-v1", "timestamp": 1}}}}}"#;
    let mut files = HashMap::new();
    files.insert("/repo/tiny-v1.xz".to_string(), xz);
    files.insert(
        "/repo/tiny-v1.hash".to_string(),
        sha1_hex(&image).into_bytes(),
    );
    files.insert(
        "/repo/tiny-v1.metadata".to_string(),
        br#"{"distro": "webby"}"#.to_vec(),
    );
    let server = serve(files);
    let served_repo = repo_json.replace("BASE", &server.base);
    // The repository document itself comes over http too.
    let server2 = serve(HashMap::from([(
        "/repo.json".to_string(),
        served_repo.into_bytes(),
    )]));
    let repo = TemplateRepo::load(&format!("{}/repo.json", server2.base)).expect("load");
    let store_dir = tempfile::tempdir().expect("tmp");
    let store = TemplateStore::new(store_dir.path());
    let version = repo.resolve("tiny", None).expect("resolve");
    let stored = store.ensure(&version).expect("ensure");
    assert_eq!(std::fs::read(&stored.path).expect("read"), image);
    assert_eq!(stored.metadata["distro"], "webby");
    let hits = server.hits.lock().expect("lock").clone();
    assert_eq!(hits.get("/repo/tiny-v1.xz"), Some(&1));
    assert_eq!(hits.get("/repo/tiny-v1"), None, "plain image not fetched");

    // A second ensure is served from the store.
    store.ensure(&version).expect("ensure again");
    assert_eq!(
        server.hits.lock().expect("lock").get("/repo/tiny-v1.xz"),
        Some(&1)
    );
}

#[test]
fn a_template_rebuilt_under_the_same_version_is_imported_again() {
    let src = tempfile::tempdir().expect("tmp");
    let store_dir = tempfile::tempdir().expect("tmp");
    let first = image_bytes(1000);
    let repo = file_repo(src.path(), &first, &sha1_hex(&first));
    let store = TemplateStore::new(store_dir.path());
    let version = repo.resolve("tiny", None).expect("resolve");
    assert_eq!(
        store.ensure(&version).expect("first").hash,
        sha1_hex(&first)
    );

    // Same repository, same version name, new content and hash.
    let second = image_bytes(2000);
    file_repo(src.path(), &second, &sha1_hex(&second));
    let stored = store.ensure(&version).expect("second");
    assert_eq!(stored.hash, sha1_hex(&second));
    assert_eq!(std::fs::read(&stored.path).expect("read"), second);
    // The first image stays where it was: prefixes may be built on it.
    let first_path = store_dir.path().join("local:tiny:v1");
    assert_ne!(stored.path, first_path);
    assert_eq!(
        stored.path,
        store_dir
            .path()
            .join(format!("local:tiny:v1:{}", sha1_hex(&second)))
    );
    assert_eq!(std::fs::read(&first_path).expect("read"), first);
    // Asked again: the new one, from the store, without importing again.
    std::fs::remove_file(src.path().join("tiny-v1.qcow2")).expect("rm source image");
    assert_eq!(store.ensure(&version).expect("third").path, stored.path);
}

/// Links and files planted in a shared store by another member of group
/// `lago` are never followed: a `.lock` or `.tmp` symbolic link neither
/// creates nor truncates its target; a linked image is refused.
#[test]
fn planted_links_in_the_store_are_not_followed() {
    use std::os::unix::fs::symlink;
    let src = tempfile::tempdir().expect("tmp");
    let store_dir = tempfile::tempdir().expect("tmp");
    let elsewhere = tempfile::tempdir().expect("tmp");
    let image = image_bytes(1000);
    let repo = file_repo(src.path(), &image, &sha1_hex(&image));
    let store = TemplateStore::new(store_dir.path());
    let version = repo.resolve("tiny", None).expect("resolve");

    let lock_target = elsewhere.path().join("nologin");
    symlink(&lock_target, store_dir.path().join("local:tiny:v1.lock")).expect("link");
    let e = store.ensure(&version).expect_err("a linked lock");
    assert!(matches!(e, TemplateError::BadStoreFile { .. }), "{e}");
    assert!(e.to_string().contains("a symbolic link"), "{e}");
    assert!(!lock_target.exists(), "the lock link was followed");
    std::fs::remove_file(store_dir.path().join("local:tiny:v1.lock")).expect("rm");

    let victim = elsewhere.path().join("victim");
    std::fs::write(&victim, "precious").expect("victim");
    for ext in ["tmp", "hash.partial", "metadata.partial"] {
        symlink(
            &victim,
            store_dir.path().join(format!("local:tiny:v1.{ext}")),
        )
        .expect("link");
    }
    let stored = store.ensure(&version).expect("import beside the links");
    assert_eq!(std::fs::read(&stored.path).expect("read"), image);
    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim"),
        "precious"
    );

    // An image that is a link (to a file that looks like the template) is refused.
    std::fs::remove_file(&stored.path).expect("rm");
    std::fs::write(&victim, &image).expect("victim");
    symlink(&victim, &stored.path).expect("link");
    let e = store.ensure(&version).expect_err("a linked image");
    assert!(e.to_string().contains("a symbolic link"), "{e}");
}

/// A store image that names another file (a qcow2 backing file, an
/// external data file) is refused, naming it: lago would hand that file to
/// QEMU and to libvirt's relabelling.
#[test]
fn a_store_image_naming_another_file_is_refused() {
    let src = tempfile::tempdir().expect("tmp");
    let store_dir = tempfile::tempdir().expect("tmp");
    let image = image_bytes(1000);
    let repo = file_repo(src.path(), &image, &sha1_hex(&image));
    let store = TemplateStore::new(store_dir.path());
    let version = repo.resolve("tiny", None).expect("resolve");
    let stored = store.ensure(&version).expect("import");
    for (at, value, what) in [
        (8, 0x200u64, "backing file"),
        (72, 1 << 2, "external data file"),
    ] {
        let mut poisoned = image.clone();
        poisoned[at..at + 8].copy_from_slice(&value.to_be_bytes());
        std::fs::write(&stored.path, &poisoned).expect("swap");
        let e = store.ensure(&version).expect_err("poisoned");
        assert!(matches!(e, TemplateError::BadStoreFile { .. }), "{e}");
        assert!(e.to_string().contains(what), "{e}");
        assert!(e.to_string().contains("local:tiny:v1"), "{e}");
    }
}
