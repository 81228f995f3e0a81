//! The plugin host seen from outside: the real `lago` binary with plugin
//! libraries on `LAGO_PLUGIN_PATH`.
//!
//! The plugin libraries are the workspace's cdylibs beside the binary
//! (`target/debug/lib*.so`): run `cargo build --workspace` before
//! `cargo test` (the project's test script does).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use lago_test_support::{lago_bin, stderr, stdout, Lago};
use serde_json::Value;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn bin_dir() -> PathBuf {
    lago_bin!()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The newest modification time of the files under `dir`.
fn newest(dir: &Path) -> Option<std::time::SystemTime> {
    let mut best = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let p = entry.path();
        let t = if p.is_dir() {
            newest(&p)
        } else {
            entry.metadata().and_then(|m| m.modified()).ok()
        };
        best = best.max(t);
    }
    best
}

/// A plugin library built by `cargo build --workspace` (`cargo test` does
/// not rebuild cdylibs): missing or older than its sources is an error.
fn lib(name: &str) -> PathBuf {
    let p = bin_dir().join(format!("lib{name}.so"));
    let hint = "run `cargo build --workspace` before `cargo test`";
    assert!(p.is_file(), "{} is missing: {hint}", p.display());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let crate_dir = match name {
        "test_plugin_toml" => "tests/plugins/toml-format",
        "test_plugin_hello" => "tests/plugins/hello-verb",
        "test_plugin_ovirt" => "tests/plugins/ovirt-vm-type",
        "test_plugin_panic" => "tests/plugins/panicky",
        "test_plugin_bad_version" => "tests/plugins/bad-version",
        "test_plugin_bad_layout" => "tests/plugins/bad-layout",
        "lago_out_dot" => "plugins/dot-format",
        "test_plugin_serial" => "tests/plugins/serial-provider",
        _ => "lago-plugin-api",
    };
    let built = std::fs::metadata(&p).and_then(|m| m.modified()).ok();
    let sources =
        newest(&root.join(crate_dir).join("src")).max(newest(&root.join("lago-plugin-api/src")));
    assert!(
        built >= sources,
        "{} is older than its sources: {hint}",
        p.display()
    );
    p
}

/// `lago` in an empty folder with an empty HOME, no configuration from the
/// environment, and `LAGO_PLUGIN_PATH` set to `plugin_path` (joined).
fn lago(plugin_path: &[&Path], args: &[&str]) -> Result<Output, std::io::Error> {
    let home = tempfile::tempdir()?;
    lago_in(home.path(), plugin_path, args)
}

/// `lago` with `home` as HOME and current folder (its plugin index is
/// `home/.cache/lago/plugin-index.json`).
fn lago_in(home: &Path, plugin_path: &[&Path], args: &[&str]) -> Result<Output, std::io::Error> {
    let mut run = Lago::new(lago_bin!())
        .args(args)
        .cwd(home)
        .home(home)
        .clean_env();
    if !plugin_path.is_empty() {
        let joined = std::env::join_paths(plugin_path).map_err(std::io::Error::other)?;
        run = run.env("LAGO_PLUGIN_PATH", joined);
    }
    Ok(run.output())
}

fn json(o: &Output) -> Result<Value, serde_json::Error> {
    serde_json::from_slice(&o.stdout)
}

#[test]
fn shipped_plugins_and_builtin_formats_are_listed() -> TestResult {
    let o = lago(&[], &["plugins", "-f", "json"])?;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "", "no warning expected");
    let v = json(&o)?;
    for f in ["default", "json", "yaml", "flat"] {
        assert_eq!(v["out-format"][f]["source"], "built-in", "{v}");
        assert_eq!(
            v["out-format"][f]["version"],
            lago_plugin_api::INTERFACE_VERSION
        );
    }
    let shipped = [
        (
            "vm-provider",
            "local-libvirt",
            "liblago_provider_local_libvirt.so",
        ),
        ("vm-provider", "ssh", "liblago_provider_ssh.so"),
        ("vm-service", "systemd", "liblago_service_systemd.so"),
        ("vm-service", "sysvinit", "liblago_service_sysvinit.so"),
    ];
    for (kind, name, file) in shipped {
        let src = v[kind][name]["source"].as_str().unwrap_or_default();
        assert_eq!(Path::new(src), bin_dir().join(file), "{kind} {name}: {v}");
        assert_eq!(v[kind][name]["origin"], "beside the executable", "{v}");
        assert_eq!(v[kind][name]["version"], lago_plugin_api::INTERFACE_VERSION);
    }
    assert_eq!(v["vm-type"]["default"]["source"], "built-in");
    assert_eq!(v["vm-type"]["default"]["origin"], "built-in");
    // The test plugins beside the binary are not loaded from there.
    assert!(v.get("cli").is_none(), "{v}");
    Ok(())
}

#[test]
fn plugins_renders_in_every_builtin_format() -> TestResult {
    for (fmt, needle) in [
        ("default", "[vm-provider]:"),
        ("json", "\"vm-provider\": {"),
        ("yaml", "vm-provider:\n  local-libvirt:"),
        ("flat", "vm-provider/ssh/source: "),
    ] {
        let o = lago(&[], &["-f", fmt, "plugins"])?;
        assert_eq!(o.status.code(), Some(0), "{fmt}: {}", stderr(&o));
        assert!(stdout(&o).contains(needle), "{fmt}:\n{}", stdout(&o));
    }
    Ok(())
}

#[test]
fn example_out_format_and_verb_load_and_work() -> TestResult {
    let toml = lib("test_plugin_toml");
    let hello = lib("test_plugin_hello");
    let path = [toml.as_path(), hello.as_path()];

    let o = lago(&path, &["plugins", "-f", "json"])?;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o)?;
    assert_eq!(
        Path::new(v["out-format"]["toml"]["source"].as_str().unwrap_or("")),
        toml
    );
    assert_eq!(
        Path::new(v["cli"]["hello"]["source"].as_str().unwrap_or("")),
        hello
    );

    let o = lago(&path, &["-f", "toml", "plugins"])?;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("[out-format.toml]\norigin = \"LAGO_PLUGIN_PATH\"\nsource = "),
        "{}",
        stdout(&o)
    );

    let o = lago(
        &path,
        &[
            "hello", "--name", "bob", "-s", "and", "-dashes-", "-f", "json",
        ],
    )?;
    assert_eq!(o.status.code(), Some(2), "`-dashes-` is not a known flag");
    let o = lago(
        &path,
        &["hello", "--name", "bob", "-s", "and", "more", "-f", "json"],
    )?;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o)?;
    assert_eq!(v["greeting"], "HELLO, BOB AND MORE");
    assert_eq!(v["out_format"], "json");
    assert_eq!(v["has_prefix"], false);

    // The verb's help comes from its spec.
    let o = lago(&path, &["hello", "--help"])?;
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("Say hello (an example plugin verb)"));
    assert!(stdout(&o).contains("--name <name>"));
    Ok(())
}

#[test]
fn plugin_logs_reach_the_host() -> TestResult {
    let hello = lib("test_plugin_hello");
    let o = lago(&[&hello], &["-l", "info", "hello"])?;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("hello plugin greeting"),
        "{}",
        stderr(&o)
    );
    let o = lago(&[&hello], &["-l", "warning", "hello"])?;
    assert_eq!(stderr(&o), "", "info records are below the warning level");
    Ok(())
}

/// A workdir with one initialized prefix holding an `ovirt-engine` VM and
/// a `default` one.
fn prefix_with_engine(root: &Path) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let wd = root.join(".lago");
    let path = wd.join("default");
    std::fs::create_dir_all(&path)?;
    let vm = |name: &str, vm_type: &str| {
        serde_json::json!({
            "name": name, "libvirt_name": format!("abcd1234-{name}"), "memory": 512, "vcpu": 1,
            "nics": [{"net": "lago", "ip": "192.168.200.2", "mac": "54:52:c0:a8:c8:02"}],
            "disks": [], "mgmt_net": "lago", "vm-provider": "local-libvirt", "vm-type": vm_type,
            "metadata": {"ovirt-distro": "el8"}
        })
    };
    let env: lago_plugin_api::spec::EnvSpec = serde_json::from_value(serde_json::json!({
        "prefix": {"name": "default", "path": path, "workdir": wd, "uuid": "abcd1234abcd1234abcd1234abcd1234"},
        "nets": {},
        "domains": {"engine": vm("engine", "ovirt-engine"), "plain": vm("plain", "default")}
    }))?;
    let prefix = lago::prefix::Prefix::at(path.clone(), "default".into(), Some(wd.clone()));
    prefix.save_env(&env)?;
    prefix.mark_initialized()?;
    lago::prefix::Workdir::at(&wd).set_current("default")?;
    Ok(wd)
}

#[test]
fn help_lists_plugin_verbs() -> TestResult {
    let ovirt = lib("test_plugin_ovirt");
    let hello = lib("test_plugin_hello");
    let o = lago(&[&ovirt, &hello], &["--help"])?;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let section = out
        .split_once("\nPlugin verbs:\n")
        .map(|(_, s)| s)
        .unwrap_or_default();
    let lines: Vec<&str> = section.lines().take(2).collect();
    assert_eq!(
        lines,
        [
            "  engine-info  Show what the ovirt-engine plugin knows of each engine VM \
             (vm-type `ovirt-engine`, on its VMs)",
            "  hello        Say hello (an example plugin verb) (cli plugin)",
        ],
        "{out}"
    );
    // The built-in verbs are there as before.
    assert!(out.contains("Usage: lago [OPTIONS] <VERB>") && out.contains("\n  status "));

    // Without arguments: the same help, on stderr, exit 2.
    let o = lago(&[&ovirt], &[])?;
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("  engine-info  "), "{}", stderr(&o));

    let o = lago(&[], &["--help"])?;
    assert!(
        stdout(&o).contains("No plugin adds verbs"),
        "{}",
        stdout(&o)
    );
    Ok(())
}

#[test]
fn vm_type_plugin_adds_a_verb() -> TestResult {
    let ovirt = lib("test_plugin_ovirt");
    let o = lago(&[&ovirt], &["plugins", "-f", "json"])?;
    let v = json(&o)?;
    assert_eq!(
        Path::new(
            v["vm-type"]["ovirt-engine"]["source"]
                .as_str()
                .unwrap_or("")
        ),
        ovirt
    );
    assert_eq!(
        Path::new(v["vm-type"]["ovirt-host"]["source"].as_str().unwrap_or("")),
        ovirt
    );

    let tmp = tempfile::tempdir()?;
    let wd = prefix_with_engine(tmp.path())?;
    let wd = wd.to_string_lossy().into_owned();
    let o = lago(&[&ovirt], &["-w", &wd, "engine-info", "-f", "json"])?;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o)?;
    assert_eq!(v["engine"]["vm-type"], "ovirt-engine", "{v}");
    assert_eq!(v["engine"]["api"], "https://engine/ovirt-engine/api");
    assert!(
        v.get("plain").is_none(),
        "only VMs of the plugin's type: {v}"
    );

    let o = lago(
        &[&ovirt],
        &["-w", &wd, "engine-info", "-F", "memory", "--vm", "engine"],
    )?;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "engine: 512\n");

    let o = lago(&[&ovirt], &["-w", &wd, "engine-info", "--vm", "plain"])?;
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("vm-type `default`"), "{}", stderr(&o));

    let o = lago(&[&ovirt], &["-w", &wd, "engine-info", "-F", "nope"])?;
    assert_eq!(o.status.code(), Some(2), "a plugin's user error exits 2");
    assert!(stderr(&o).contains("no field `nope`"), "{}", stderr(&o));
    Ok(())
}

/// One warning line naming the file, and lago goes on.
fn refused_with_one_warning(lib_name: &str, reason: &str) -> TestResult {
    let bad = lib(lib_name);
    let o = lago(&[&bad], &["plugins", "-f", "json"])?;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one warning line: {err}");
    assert!(lines[0].contains("WARN"), "{err}");
    assert!(lines[0].contains(&bad.display().to_string()), "{err}");
    assert!(lines[0].contains(reason), "{err}");
    let v = json(&o)?;
    assert_eq!(
        v["vm-provider"]["ssh"]["version"],
        lago_plugin_api::INTERFACE_VERSION
    );

    // abi_stable's report is there at debug level.
    let o = lago(&[&bad], &["-l", "debug", "plugins"])?;
    assert_eq!(o.status.code(), Some(0));
    assert!(stderr(&o).lines().count() > 1, "{}", stderr(&o));
    Ok(())
}

#[test]
fn library_of_another_interface_version_is_refused() -> TestResult {
    refused_with_one_warning(
        "test_plugin_bad_version",
        "built against lago-plugin-api 99.0.0, this lago needs 0.1.x",
    )
}

#[test]
fn library_of_another_layout_is_refused() -> TestResult {
    refused_with_one_warning(
        "test_plugin_bad_layout",
        "its interface layout does not match this lago's (lago-plugin-api 0.1.0): \
         type `LagoPlugin`: another package (expected lago-plugin-api, found \
         test-plugin-bad-layout); size 16 bytes expected, 16 found",
    )
}

#[test]
fn panicking_plugin_is_an_error_and_lago_survives() -> TestResult {
    let panicky = lib("test_plugin_panic");
    let o = lago(&[&panicky], &["-f", "panic", "plugins"])?;
    assert_eq!(
        o.status.code(),
        Some(1),
        "an exit, not an abort: {:?}",
        o.status
    );
    let err = stderr(&o);
    assert!(
        err.contains("out-format plugin `panic` panicked: the panic out-format always panics"),
        "{err}"
    );
    assert!(
        !err.contains("thread '"),
        "the panic message goes to the log only: {err}"
    );

    let o = lago(&[&panicky], &["explode"])?;
    assert_eq!(o.status.code(), Some(1), "{:?}", o.status);
    assert!(
        stderr(&o).contains("cli plugin `explode` panicked: index out of bounds"),
        "{}",
        stderr(&o)
    );

    // The same library's other plugins and lago itself keep working.
    let o = lago(&[&panicky], &["plugins", "-f", "json"])?;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        json(&o)?["cli"]["explode"]["version"],
        lago_plugin_api::INTERFACE_VERSION
    );
    Ok(())
}

#[test]
fn a_verb_whose_spec_panics_is_disabled_alone() -> TestResult {
    let panicky = lib("test_plugin_panic");
    let hello = lib("test_plugin_hello");
    let path = [panicky.as_path(), hello.as_path()];
    let warning = "the cli plugin `bad-spec` (";
    let why = "is disabled: its spec failed: cli plugin `bad-spec` panicked: \
               the bad-spec verb cannot describe itself";

    // Other verbs, of the same library and of another, work: one warning
    // (at `-l warning`: the default `info` shows the plugin's own records).
    let o = lago(&path, &["-l", "warning", "hello", "-f", "json"])?;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(json(&o)?["greeting"], "hello, world");
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("WARN") && err.contains(warning) && err.contains(why),
        "{err}"
    );
    let o = lago(&path, &["explode"])?;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("cli plugin `explode` panicked"));

    // An unknown verb is still an unknown verb.
    let o = lago(&path, &["nosuchverb"])?;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("unknown verb `nosuchverb`"),
        "{}",
        stderr(&o)
    );

    // The disabled verb says why, in its error line.
    let o = lago(&path, &["bad-spec"])?;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let last = stderr(&o).lines().last().unwrap_or_default().to_string();
    assert!(
        last.starts_with("lago: error: cannot run `bad-spec`: the cli plugin")
            && last.contains(why),
        "{last}"
    );
    Ok(())
}

/// `path` with byte `at` replaced by `bytes`.
fn patch(path: &Path, at: usize, bytes: &[u8]) -> std::io::Result<()> {
    let mut data = std::fs::read(path)?;
    data[at..at + bytes.len()].copy_from_slice(bytes);
    std::fs::write(path, data)
}

#[test]
fn files_the_loader_refuses_get_one_warning_with_its_reason() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("plugins");
    let deps = tmp.path().join("deps");
    std::fs::create_dir_all(&dir)?;
    std::fs::create_dir_all(&deps)?;
    // Not ELF: in a folder (lib*.so) and named directly (any name).
    std::fs::write(dir.join("libjunk.so"), b"not a library\n")?;
    let named = tmp.path().join("plugin.bin");
    std::fs::write(&named, b"")?;
    // Another architecture: a real plugin with e_machine = aarch64 (183).
    let arm = dir.join("libarm.so");
    std::fs::copy(lib("test_plugin_toml"), &arm)?;
    patch(&arm, 18, &183u16.to_le_bytes())?;
    // A missing dependency: a library linked against libdep.so, which is
    // not where the loader looks.
    let (dep_c, lib_c) = (tmp.path().join("dep.c"), tmp.path().join("needs.c"));
    std::fs::write(&dep_c, "int dep(void) { return 1; }\n")?;
    std::fs::write(&lib_c, "int dep(void);\nint f(void) { return dep(); }\n")?;
    let cc = |args: &[&std::ffi::OsStr]| -> TestResult {
        let o = Command::new("cc")
            .args(["-shared", "-fPIC"])
            .args(args)
            .output()?;
        assert!(o.status.success(), "cc: {}", stderr(&o));
        Ok(())
    };
    let libdep = deps.join("libdep.so");
    cc(&["-o".as_ref(), libdep.as_os_str(), dep_c.as_os_str()])?;
    let needs = dir.join("libneeds.so");
    cc(&[
        "-o".as_ref(),
        needs.as_os_str(),
        lib_c.as_os_str(),
        "-L".as_ref(),
        deps.as_os_str(),
        "-ldep".as_ref(),
    ])?;
    let missing = tmp.path().join("no-such-folder");
    let path = [dir.as_path(), named.as_path(), missing.as_path()];

    let home = tempfile::tempdir()?;
    for run in 0..2 {
        // The second run reads the plugin index: same warnings.
        let o = lago_in(home.path(), &path, &["plugins", "-f", "json"])?;
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let err = stderr(&o);
        let expected = [
            (
                missing.clone(),
                "neither a plugin library nor a readable folder",
            ),
            (
                arm.clone(),
                "it was built for another architecture (ELF machine 183, 64-bit)",
            ),
            (
                dir.join("libjunk.so"),
                "it is not an ELF shared library (loader: ",
            ),
            (
                needs.clone(),
                "the loader cannot open it: libdep.so: cannot open shared object file",
            ),
            (named.clone(), "it is not an ELF shared library"),
        ];
        assert_eq!(err.lines().count(), expected.len(), "run {run}: {err}");
        for (line, (file, reason)) in err.lines().zip(&expected) {
            assert!(line.contains("WARN"), "{line}");
            assert!(line.contains(&file.display().to_string()), "{line}");
            assert!(line.contains(reason), "{line}");
        }
        assert_eq!(
            json(&o)?["vm-provider"]["ssh"]["version"],
            lago_plugin_api::INTERFACE_VERSION
        );
    }

    // Once the dependency can be found, the library opens (it is no lago
    // plugin, so it is skipped quietly): loader failures are not kept in
    // the index.
    let o = Lago::new(lago_bin!())
        .arg("plugins")
        .cwd(home.path())
        .home(home.path())
        .env("LAGO_PLUGIN_PATH", &needs)
        .env("LD_LIBRARY_PATH", &deps)
        .output();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "", "no warning once libdep.so is found");
    Ok(())
}

#[test]
fn two_plugins_of_one_name_are_listed_and_refused_where_needed() -> TestResult {
    let toml = lib("test_plugin_toml");
    let tmp = tempfile::tempdir()?;
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir_all(&a)?;
    std::fs::create_dir_all(&b)?;
    std::fs::copy(&toml, a.join("libfirst.so"))?;
    std::fs::copy(&toml, b.join("libsecond.so"))?;
    let (first, second) = (a.join("libfirst.so"), b.join("libsecond.so"));
    let o = lago(&[&a, &b], &["plugins", "-f", "json"])?;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o)?;
    let toml_entry = &v["out-format"]["toml"];
    assert_eq!(toml_entry["source"], first.display().to_string(), "{v}");
    assert_eq!(toml_entry["origin"], "LAGO_PLUGIN_PATH", "{v}");
    assert_eq!(
        toml_entry["conflicts"],
        serde_json::json!([{"source": second.display().to_string(),
                            "origin": "LAGO_PLUGIN_PATH",
                            "version": lago_plugin_api::INTERFACE_VERSION}]),
        "{v}"
    );
    assert_eq!(v["out-format"]["json"]["source"], "built-in", "{v}");
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "one warning: {err}");
    assert!(
        err.contains("two out-format plugins are named `toml`"),
        "{err}"
    );

    // A verb that needs the plugin refuses, naming both.
    let o = lago(&[&a, &b], &["-f", "toml", "plugins"])?;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("two out-format plugins are named `toml`"),
        "{err}"
    );
    assert!(
        err.contains(&a.join("libfirst.so").display().to_string()),
        "{err}"
    );
    assert!(
        err.contains(&b.join("libsecond.so").display().to_string()),
        "{err}"
    );
    // The same file reached twice is one library.
    let o = lago(&[&a, &a.join("libfirst.so")], &["plugins"])?;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    Ok(())
}

#[test]
fn verbs_that_need_no_plugin_do_not_open_libraries() -> TestResult {
    // A bad library on the path would warn if it were opened.
    let bad = lib("test_plugin_bad_version");
    // (`lago --help` lists the plugins' verbs: it opens the libraries
    // holding CLI plugins and vm-types, see `help_lists_plugin_verbs`.)
    for args in [
        &["status", "--help"][..],
        &["plugins", "--help"],
        &["-f", "json", "generate-config"],
        &["--version"],
    ] {
        let o = lago(&[&bad], args)?;
        assert!(
            !stderr(&o).contains("WARN"),
            "{args:?} opened libraries: {}",
            stderr(&o)
        );
    }
    Ok(())
}

#[test]
fn unknown_verbs_and_formats_are_user_errors() -> TestResult {
    let o = lago(&[], &["frobnicate"])?;
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown verb `frobnicate`"),
        "{}",
        stderr(&o)
    );
    let o = lago(&[], &["-f", "xml", "plugins"])?;
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown out-format `xml` (available: default, dot, flat, json, yaml)")
    );
    Ok(())
}

#[test]
fn every_builtin_verb_has_help() -> TestResult {
    for verb in lago::cli::VERBS {
        let o = lago(&[], &[verb.name, "--help"])?;
        assert_eq!(
            o.status.code(),
            Some(0),
            "{} --help: {}",
            verb.name,
            stderr(&o)
        );
        assert!(
            stdout(&o).contains(&format!("Usage: lago {}", verb.name)),
            "{}",
            stdout(&o)
        );
    }
    Ok(())
}

#[test]
fn lagocli_is_the_same_program() -> TestResult {
    let o = Command::new(env!("CARGO_BIN_EXE_lagocli"))
        .arg("--version")
        .output()?;
    assert_eq!(
        stdout(&o),
        format!("lagocli {}\n", env!("CARGO_PKG_VERSION"))
    );
    let o = Command::new(env!("CARGO_BIN_EXE_lagocli"))
        .arg("--help")
        .output()?;
    assert!(
        stdout(&o).contains("Usage: lagocli [OPTIONS] <VERB>"),
        "{}",
        stdout(&o)
    );
    Ok(())
}

#[test]
fn the_plugin_index_spares_opening_unchanged_libraries() -> TestResult {
    let home = tempfile::tempdir()?;
    let libs = tempfile::tempdir()?;
    let toml = libs.path().join("libmine.so");
    std::fs::copy(lib("test_plugin_toml"), &toml)?;
    let bad = lib("test_plugin_bad_version");
    let path = [libs.path(), bad.as_path()];

    let first = lago_in(
        home.path(),
        &path,
        &["-l", "debug", "plugins", "-f", "json"],
    )?;
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert!(!stderr(&first).contains("known from the plugin index"));
    assert!(home.path().join(".cache/lago/plugin-index.json").is_file());

    let second = lago_in(
        home.path(),
        &path,
        &["-l", "debug", "plugins", "-f", "json"],
    )?;
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    assert_eq!(json(&first)?, json(&second)?, "same listing from the index");
    let err = stderr(&second);
    assert!(
        err.contains(&format!("{}: known from the plugin index", toml.display())),
        "{err}"
    );
    assert!(
        !err.contains("plugin(s), interface"),
        "no library opened: {err}"
    );

    // The refused library still gets its one warning line.
    let o = lago_in(home.path(), &path, &["plugins"])?;
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("99.0.0"));

    // A plugin the command needs is opened for real.
    let o = lago_in(home.path(), &path, &["-f", "toml", "plugins"])?;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("[out-format.toml]"));

    // A changed file is opened again.
    std::fs::remove_file(&toml)?;
    std::fs::copy(lib("test_plugin_hello"), &toml)?;
    let o = lago_in(home.path(), &path, &["plugins", "-f", "json"])?;
    let v = json(&o)?;
    assert!(v["out-format"].get("toml").is_none(), "{v}");
    assert_eq!(
        v["cli"]["hello"]["version"],
        lago_plugin_api::INTERFACE_VERSION
    );
    Ok(())
}

/// An initialized prefix with two networks (one the management one) and two
/// VMs, one with a NIC on each.
fn prefix_with_networks(root: &Path) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let wd = root.join(".lago");
    let path = wd.join("default");
    std::fs::create_dir_all(&path)?;
    let net = |name: &str, gw: &str, management: bool| {
        serde_json::json!({
            "name": name, "type": "nat", "management": management, "gw": gw,
            "libvirt_name": format!("abcd-{name}"), "bridge": format!("abcd-{name}")
        })
    };
    let vm = |name: &str, nics: serde_json::Value| {
        serde_json::json!({
            "name": name, "libvirt_name": format!("abcd1234-{name}"), "memory": 256, "vcpu": 1,
            "nics": nics, "disks": [], "mgmt_net": "lago", "vm-provider": "local-libvirt",
            "vm-type": "default", "distro": "el8"
        })
    };
    let env: lago_plugin_api::spec::EnvSpec = serde_json::from_value(serde_json::json!({
        "prefix": {"name": "default", "path": path, "workdir": wd, "uuid": "abcd1234abcd1234abcd1234abcd1234"},
        "nets": {"lago": net("lago", "192.168.200.1", true), "storage": net("storage", "192.168.201.1", false)},
        "domains": {
            "engine": vm("engine", serde_json::json!([
                {"net": "lago", "ip": "192.168.200.2", "mac": "54:52:c0:a8:c8:02"},
                {"net": "storage", "ip": "192.168.201.2", "mac": "54:52:c0:a8:c9:02"}])),
            "host0": vm("host0", serde_json::json!([
                {"net": "lago", "ip": "192.168.200.3", "mac": "54:52:c0:a8:c8:03"}]))
        }
    }))?;
    let prefix = lago::prefix::Prefix::at(path.clone(), "default".into(), Some(wd.clone()));
    prefix.save_env(&env)?;
    prefix.mark_initialized()?;
    lago::prefix::Workdir::at(&wd).set_current("default")?;
    Ok(wd)
}

#[test]
fn the_shipped_dot_format_draws_the_environment() -> TestResult {
    let shipped = lib("lago_out_dot");
    let o = lago(&[], &["plugins", "-f", "json"])?;
    assert_eq!(
        Path::new(
            json(&o)?["out-format"]["dot"]["source"]
                .as_str()
                .unwrap_or("")
        ),
        shipped
    );

    let tmp = tempfile::tempdir()?;
    let wd = prefix_with_networks(tmp.path())?;
    let wd = wd.to_string_lossy().into_owned();
    let o = lago(
        &[],
        &[
            "-w",
            &wd,
            "--libvirt_url",
            "test:///default",
            "-f",
            "dot",
            "status",
        ],
    )?;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let dot = stdout(&o);
    for line in [
        r#""net:lago" [shape=ellipse, label="lago (management)\ngateway 192.168.200.1\ndown", style=bold, penwidth=2];"#,
        r#""net:storage" [shape=ellipse, label="storage\ngateway 192.168.201.1\ndown"];"#,
        r#""vm:engine" [shape=box, style="rounded,filled", fillcolor=lightgrey, label="engine\ndown\ntype: default\ndistro: el8"];"#,
        r#""vm:engine" -- "net:lago" [label="eth0\n192.168.200.2"];"#,
        r#""vm:engine" -- "net:storage" [label="eth1\n192.168.201.2"];"#,
        r#""vm:host0" -- "net:lago" [label="eth0\n192.168.200.3"];"#,
    ] {
        assert!(
            dot.lines().any(|l| l.trim() == line),
            "{line}\nnot in:\n{dot}"
        );
    }
    assert_eq!(dot.matches(" -- ").count(), 3, "one edge per NIC:\n{dot}");

    // Graphviz reads it: the SVG has a node per VM and network.
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("graphviz `dot` (scripts/install-deps.sh installs it): {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        std::io::Write::write_all(&mut stdin, dot.as_bytes())?;
    }
    let svg = child.wait_with_output()?;
    assert!(svg.status.success(), "dot: {}", stderr(&svg));
    let svg = stdout(&svg);
    for title in [
        "vm:engine",
        "vm:host0",
        "net:lago",
        "net:storage",
        "vm:engine&#45;&#45;net:storage",
    ] {
        assert!(
            svg.contains(&format!("<title>{title}</title>")),
            "{title} not in:\n{svg}"
        );
    }
    Ok(())
}

#[test]
fn a_vm_type_normalizes_the_domain_as_written_before_planning() -> TestResult {
    let ovirt = lib("test_plugin_ovirt");
    let home = tempfile::tempdir()?;
    let init = "x-disks: &disks [{type: empty, size: 1M, dev: vda, name: root}]\n\
                domains:\n\
                \x20 host0: {vm-type: ovirt-host, nics: [{net: mgmt}], disks: *disks}\n\
                \x20 host1: {vm-type: ovirt-host, vcpu: 4, nics: [{net: mgmt}], disks: *disks}\n\
                \x20 plain: {nics: [{net: mgmt}], disks: *disks}\n\
                nets:\n  mgmt: {type: nat, management: true}\n";
    std::fs::write(home.path().join("LagoInitFile"), init)?;
    let leases = home.path().join("leases").display().to_string();
    let common = [
        "--libvirt_url",
        "test:///default",
        "--lease_dir",
        leases.as_str(),
    ];
    let o = lago_in(
        home.path(),
        &[&ovirt],
        &[&common[..], &["init", "--skip-bootstrap"]].concat(),
    )?;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let env = lago::prefix::Prefix::open(&home.path().join(".lago/default"))?.load_env()?;
    // The vm-type's default applies where the init file gives none.
    assert_eq!(env.domains["host0"].vcpu, 3);
    assert_eq!(env.domains["host1"].vcpu, 4);
    assert_eq!(env.domains["plain"].vcpu, 2, "the built-in default");
    assert_eq!(env.domains["host0"].vm_type, "ovirt-host");

    // An unknown vm-type is refused before anything is created.
    std::fs::write(
        home.path().join("Other"),
        init.replace("ovirt-host, vcpu", "no-such-type, vcpu"),
    )?;
    let o = lago_in(
        home.path(),
        &[&ovirt],
        &[&common[..], &["init", "other-wd", "Other"]].concat(),
    )?;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("domains/host1/vm-type: no vm-type plugin is named `no-such-type`"),
        "{}",
        stderr(&o)
    );
    assert!(!home.path().join("other-wd").exists());
    Ok(())
}

#[test]
fn a_provider_without_ssh_is_started_without_waiting_for_ssh() -> TestResult {
    let serial = lib("test_plugin_serial");
    let home = tempfile::tempdir()?;
    let init = "domains:\n\
                \x20 box0:\n\
                \x20   vm-provider: serial\n\
                \x20   nics: [{net: mgmt}]\n\
                \x20   disks: [{type: empty, size: 1M, dev: vda, name: root}]\n\
                nets:\n  mgmt: {type: nat, management: true}\n";
    std::fs::write(home.path().join("LagoInitFile"), init)?;
    let leases = home.path().join("leases").display().to_string();
    let common = [
        "--lease_dir",
        leases.as_str(),
        "--ssh-tries",
        "1",
        "--ssh-timeout",
        "1",
    ];
    let o = lago_in(home.path(), &[&serial], &[&common[..], &["init"]].concat())?;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // In a network namespace of its own (no route anywhere): had lago tried
    // SSH, it would have failed, and no packet could leave.
    let lago = lago_bin!();
    let o = Command::new("unshare")
        .arg("--net")
        .arg(lago)
        .args(common)
        .args(["start"])
        .current_dir(home.path())
        .env("HOME", home.path())
        .env("LAGO_PLUGIN_PATH", &serial)
        .output()?;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = lago_in(home.path(), &[&serial], &["-f", "json", "status"])?;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(json(&o)?["Prefix"]["VMs"]["box0"]["status"], "running");
    Ok(())
}

#[test]
fn status_shows_the_distro_the_vm_type_reports() -> TestResult {
    let ovirt = lib("test_plugin_ovirt");
    let tmp = tempfile::tempdir()?;
    let wd = prefix_with_engine(tmp.path())?;
    let wd = wd.to_string_lossy().into_owned();
    let o = lago(
        &[&ovirt],
        &[
            "-w",
            &wd,
            "--libvirt_url",
            "test:///default",
            "-f",
            "json",
            "status",
        ],
    )?;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o)?;
    // ovirt-engine answers from its metadata; `default` has nothing to go by.
    assert_eq!(v["Prefix"]["VMs"]["engine"]["distro"], "el8", "{v}");
    // No distro anywhere: null, as Lago showed it (issue 11), not `unknown`.
    assert_eq!(
        v["Prefix"]["VMs"]["plain"]["distro"],
        serde_json::Value::Null,
        "{v}"
    );
    Ok(())
}
