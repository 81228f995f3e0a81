use super::*;
use std::os::unix::fs::PermissionsExt;

#[test]
fn atomic_write_and_mode() {
    let t = tempfile::tempdir().expect("tmp");
    let p = t.path().join("f");
    write_atomic(&p, b"one", Some(0o600)).expect("write");
    write_atomic(&p, b"two", Some(0o600)).expect("rewrite");
    assert_eq!(fs::read(&p).expect("read"), b"two");
    assert_eq!(
        fs::metadata(&p).expect("meta").permissions().mode() & 0o777,
        0o600
    );
    // no temp file left behind
    assert_eq!(fs::read_dir(t.path()).expect("ls").count(), 1);
}

#[test]
fn workdir_current_and_discovery() {
    let t = tempfile::tempdir().expect("tmp");
    let root = t.path().join("proj");
    let wd_path = root.join(WORKDIR_NAME);
    fs::create_dir_all(wd_path.join("a")).expect("mkdir");
    fs::create_dir_all(wd_path.join("b")).expect("mkdir");
    let wd = Workdir::open(&wd_path).expect("open");
    assert_eq!(wd.prefixes().expect("ls"), vec!["a", "b"]);
    assert_eq!(wd.current().expect("cur"), None);
    assert!(matches!(
        wd.resolve(None),
        Err(PrefixError::NoCurrent { .. })
    ));
    wd.set_current("b").expect("set");
    assert_eq!(
        fs::read_link(wd_path.join(CURRENT)).expect("link"),
        PathBuf::from("b")
    );
    assert_eq!(wd.resolve(None).expect("resolve").name(), "b");
    assert_eq!(wd.resolve(Some("a")).expect("resolve").name(), "a");
    let e = wd.resolve(Some("zz")).expect_err("unknown");
    assert!(e.to_string().contains("prefixes there: a, b"), "{e}");
    assert!(matches!(
        wd.set_current("zz"),
        Err(PrefixError::NoPrefix { .. })
    ));
    // discovery from below
    let deep = root.join("x/y");
    fs::create_dir_all(&deep).expect("mkdir");
    assert_eq!(Workdir::discover(&deep).expect("found").path(), wd_path);
    assert_eq!(
        Workdir::discover(&wd_path.join("a")).expect("found").path(),
        wd_path
    );
    // none above: candidates below are suggested
    let other = t.path().join("other");
    fs::create_dir_all(other.join("sub/.lago")).expect("mkdir");
    let e = Workdir::discover(&other).expect_err("none");
    let msg = e.to_string();
    assert!(msg.contains("no lago workdir"), "{msg}");
    assert!(msg.contains("sub/.lago"), "{msg}");
}

#[test]
fn symlinked_prefix_removes_only_the_link() {
    let t = tempfile::tempdir().expect("tmp");
    let real = t.path().join("real");
    fs::create_dir_all(&real).expect("mkdir");
    fs::write(real.join("uuid"), "u").expect("write");
    let link = t.path().join("link");
    std::os::unix::fs::symlink(&real, &link).expect("link");
    let p = Prefix::at(link.clone(), "link".into(), None);
    p.remove().expect("remove");
    assert!(!link.exists());
    assert!(real.join("uuid").exists());
}

#[test]
fn not_initialized_is_clear() {
    let t = tempfile::tempdir().expect("tmp");
    let p = Prefix::open(t.path()).expect("open");
    let e = p.require_initialized().expect_err("not init");
    assert!(e.to_string().contains("is not initialized"), "{e}");
    let e = p.load_env().expect_err("no state");
    assert!(matches!(e, PrefixError::NotInitialized { .. }), "{e}");
    let e = Prefix::open(&t.path().join("nope")).expect_err("missing");
    assert!(e.to_string().contains("no prefix at"), "{e}");
}
