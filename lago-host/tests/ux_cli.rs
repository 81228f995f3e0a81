//! The operator's view through the `lago` binary: the task tree on stderr
//! (plain without a terminal, coloured under a pseudo-terminal), the prefix
//! log, the configuration keys that shape the output (each from lago.conf,
//! `LAGO_*` and the command line), Lago's option habits, `lago list`,
//! completion and the man page. No hypervisor: libvirt's test driver.

use std::path::PathBuf;
use std::process::Output;

use lago_test_support::{lago_bin, text, Project};

const INIT: &str = r#"
domains:
  vm0:
    memory: 256
    nics: [{net: mgmt}]
    disks: [{type: empty, size: 1G, dev: vda, name: root}]
  vm1:
    nics: [{net: mgmt}]
    disks: [{type: empty, size: 1G, dev: vda, name: root}]
nets:
  mgmt: {type: nat, management: true}
"#;

/// A project holding [`INIT`] on libvirt's test driver; each run with
/// more variables.
struct Ux(Project);

impl std::ops::Deref for Ux {
    type Target = Project;
    fn deref(&self) -> &Project {
        &self.0
    }
}

impl Ux {
    fn new() -> Ux {
        Ux(Project::with_init(lago_bin!(), INIT).test_driver())
    }
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.cmd(args).envs(env.iter().copied()).output()
    }
    fn ok(&self, args: &[&str], env: &[(&str, &str)]) -> (String, String) {
        let out = self.run(args, env);
        assert!(out.status.success(), "lago {args:?}: {}", text(&out.stderr));
        (text(&out.stdout), text(&out.stderr))
    }
    fn log(&self) -> String {
        std::fs::read_to_string(self.proj().join(".lago/default/logs/lago.log")).expect("log")
    }
}

/// The lines that are task headers (open or close).
fn headers(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.trim_start().starts_with(['@', '#', '*', '-', '~']))
        .collect()
}

fn assert_closed_ok(stderr: &str, line_start: &str) {
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with(line_start) && l.contains(": Success (in 0:0")),
        "no `{line_start}: Success (in ...)` in:\n{stderr}"
    );
}

#[test]
fn init_shows_the_task_tree_as_plain_lines_and_logs_everything() {
    let p = Ux::new();
    let (_, err) = p.ok(&["init"], &[]);
    let h = headers(&err);
    assert_eq!(
        h.first(),
        Some(&"@ Initialize and populate prefix: "),
        "{err}"
    );
    assert!(
        h.last()
            .is_some_and(|l| l.starts_with("@ Initialize and populate prefix: Success (in 0:0")),
        "{err}"
    );
    for vm in ["vm0", "vm1"] {
        let open = format!("  # Create disks for VM {vm}: ");
        assert!(err.lines().any(|l| l == open), "{open:?} in {err}");
        assert_closed_ok(&err, &format!("  # Create disks for VM {vm}"));
    }
    assert!(
        !err.contains(['\x1b', '\r']),
        "control characters without a terminal: {err:?}"
    );

    // The prefix log: debug records with timestamps from the first one on
    // (before the prefix existed), the tasks, and the plugin's records.
    let log = p.log();
    let first = log.lines().next().expect("a first line");
    assert!(
        first.starts_with("20") && first.contains("DEBUG"),
        "{first}"
    );
    assert!(
        log.contains("start task Initialize and populate prefix"),
        "{log}"
    );
    assert!(
        log.contains("end task Create disks for VM vm0: Success"),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("plugin") && l.contains("local-libvirt session")),
        "a record of the local-libvirt plugin: {log}"
    );
    // Later verbs append to it.
    p.ok(&["status"], &[]);
    let later = p.log();
    assert!(
        later.len() > log.len() && later.contains("\"status\""),
        "{later}"
    );
}

/// Arguments, environment, lago.conf, and what is expected.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str, bool);

#[test]
fn logdepth_from_flag_environment_and_file() {
    let top_only = |err: &str| headers(err).iter().all(|l| l.starts_with('@'));
    let cases: [Case; 5] = [
        (&["--logdepth", "1", "init"], &[], "", true),
        (&["--logdepth=-1", "init"], &[], "logdepth = 1\n", false),
        (
            &["--logdepth", "-1", "init"],
            &[("LAGO_LOGDEPTH", "1")],
            "",
            false,
        ),
        (&["init"], &[("LAGO_LOGDEPTH", "1")], "", true),
        (&["init"], &[], "[lago]\nlogdepth = 1\n", true),
    ];
    for (args, env, conf, want_top_only) in cases {
        let p = Ux::new();
        p.conf(conf);
        let (_, err) = p.ok(args, env);
        assert!(!headers(&err).is_empty(), "{args:?} {env:?}: {err}");
        assert_eq!(
            top_only(&err),
            want_top_only,
            "{args:?} {env:?} {conf:?}: {err}"
        );
    }
    let p = Ux::new();
    let out = p.run(&["--logdepth", "-2", "list"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn loglevel_from_flag_environment_and_file() {
    // `-l error`: nothing on success.
    let p = Ux::new();
    let (_, err) = p.ok(&["-l", "error", "init"], &[]);
    assert_eq!(err, "", "-l error shows only errors");
    assert!(
        p.log().contains("start task"),
        "the log still has everything"
    );
    // warning from the environment or the file: no tree; -l wins over both.
    for (args, env, conf, tree) in [
        (
            &["init"][..],
            &[("LAGO_LOGLEVEL", "warning")][..],
            "",
            false,
        ),
        (&["init"], &[], "[lago]\nloglevel = warning\n", false),
        (
            &["-l", "info", "init"],
            &[("LAGO_LOGLEVEL", "error")],
            "",
            true,
        ),
        (
            &["--logl", "info", "init"],
            &[],
            "[lago]\nloglevel = error\n",
            true,
        ),
    ] {
        let p = Ux::new();
        p.conf(conf);
        let (_, err) = p.ok(args, env);
        assert_eq!(
            !headers(&err).is_empty(),
            tree,
            "{args:?} {env:?} {conf:?}: {err}"
        );
    }
    // A failure at `-l error`: the error, nothing else.
    let p = Ux::new();
    std::fs::write(p.proj().join("LagoInitFile"), "domains: [").expect("write");
    let out = p.run(&["-l", "error", "init"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.lines()
            .all(|l| l.contains("error") || l.contains("ERROR")),
        "{err}"
    );
    // A bad value names its source.
    let out = p.run(&["list"], &[("LAGO_LOGLEVEL", "loud")]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("LAGO_LOGLEVEL") && err.contains("loglevel"),
        "{err}"
    );
}

#[test]
fn a_failed_task_closes_with_error() {
    let p = Ux::new();
    p.ok(&["-l", "error", "init"], &[]);
    // A second init of the same prefix fails inside the task.
    let out = p.run(&["init"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.lines()
            .any(|l| l.starts_with("@ Initialize and populate prefix: ERROR (in 0:0")),
        "{err}"
    );
    assert!(err.contains("already exists"), "{err}");
}

#[test]
fn ignore_warnings_from_flag_environment_and_file() {
    let p = Ux::new();
    p.ok(&["-l", "error", "init"], &[]);
    let prefix = p.proj().join(".lago/default");
    let prefix = prefix.to_str().expect("utf-8 path");
    let warning = "--prefix-path is going to be deprecated";
    let (_, err) = p.ok(&["-p", prefix, "status"], &[]);
    assert!(err.contains(warning), "{err}");
    for (args, env, conf) in [
        (&["-p", prefix, "--ignore", "status"][..], &[][..], ""),
        (
            &["-p", prefix, "status"],
            &[("LAGO_IGNORE_WARNINGS", "true")],
            "",
        ),
        (
            &["-p", prefix, "status"],
            &[],
            "[lago]\nignore_warnings = yes\n",
        ),
    ] {
        p.conf(conf);
        let (_, err) = p.ok(args, env);
        assert!(!err.contains(warning), "{args:?} {env:?} {conf:?}: {err}");
    }
    assert!(p.log().contains(warning), "hidden warnings stay in the log");
}

#[test]
fn out_format_from_flag_environment_and_file() {
    let p = Ux::new();
    p.ok(&["-l", "error", "init"], &[]);
    let (out, _) = p.ok(&["list"], &[]);
    assert_eq!(out, "default\n");
    let (out, _) = p.ok(&["list"], &[("LAGO_OUT_FORMAT", "json")]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v, serde_json::json!(["default"]));
    p.conf("[lago]\nout_format = yaml\n");
    let (out, _) = p.ok(&["list"], &[]);
    assert_eq!(out.trim(), "- default");
    let (out, _) = p.ok(&["-f", "default", "list"], &[("LAGO_OUT_FORMAT", "json")]);
    assert_eq!(out, "default\n", "-f wins");
    let out = p.run(&["list"], &[("LAGO_OUT_FORMAT", "nope")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown out-format `nope`"));
}

#[test]
fn list_prints_prefix_names_as_lago() {
    let p = Ux::new();
    p.ok(&["-l", "error", "init"], &[]);
    p.ok(&["-l", "error", "--prefix-n", "p1", "init"], &[]);
    let (out, _) = p.ok(&["list"], &[]);
    assert_eq!(out, "default\np1\n");
    let (out, _) = p.ok(&["--out", "json", "list"], &[]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v, serde_json::json!(["default", "p1"]));
    let (out, _) = p.ok(&["-f", "json", "list", "--details"], &[]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["default"]["current"], true);
    assert_eq!(v["p1"]["initialized"], true);
}

#[test]
fn unique_prefixes_of_long_options_and_negative_numbers() {
    let p = Ux::new();
    p.ok(&["-l", "error", "init"], &[]);
    let wd = p.proj().join(".lago");
    let wd = wd.to_str().expect("utf-8");
    let (out, _) = p.ok(&["--workdir", wd, "--prefix-n", "default", "list"], &[]);
    assert_eq!(out, "default\n");
    let (out, _) = p.ok(&["--logdepth", "-1", "--ignore", "list", "--det"], &[]);
    assert!(out.contains("initialized"), "{out}");
    // Ambiguous: one line naming every candidate, exit 2.
    let out = p.run(&["--libvirt", "x", "list"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    for c in ["--libvirt_url", "--libvirt-user", "--libvirt-password"] {
        assert!(err.contains(c), "{c} in {err}");
    }
    let out = p.run(&["status", "--ssh-t", "3"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--ssh-timeout, --ssh-tries"));
    // A verb's own options too.
    let out = p.run(&["-l", "error", "destroy", "-y", "--all"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!p.proj().join(".lago/default").exists());
}

#[test]
fn completion_and_man_page_include_plugin_verbs() {
    let p = Ux::new();
    let hello = lago_bin!()
        .with_file_name("libtest_plugin_hello.so")
        .display()
        .to_string();
    let with_plugin = [("LAGO_PLUGIN_PATH", hello.as_str())];
    for shell in ["bash", "zsh", "fish"] {
        let (out, _) = p.ok(&["completion", shell], &with_plugin);
        for verb in ["init", "copy-to-vm", "hello", "logdepth"] {
            assert!(out.contains(verb), "{shell}: {verb} missing");
        }
    }
    let out = p.run(&["completion", "tcsh"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let (man, _) = p.ok(&["man"], &with_plugin);
    assert!(man.contains(".TH lago 1"), "{man}");
    assert!(
        man.contains("lago\\-hello") || man.contains("lago hello"),
        "{man}"
    );
    assert!(man.contains("\\-\\-logdepth"), "{man}");
}

#[test]
fn on_a_terminal_the_tree_is_coloured_and_live() {
    let p = Ux::new();
    let (status, seen) = p.cmd(&["init"]).output_on_pty();
    assert!(status.success());
    assert!(
        seen.contains("@ Initialize and populate prefix: "),
        "{seen:?}"
    );
    assert!(
        seen.contains("\x1b[32mSuccess (in 0:0"),
        "green result: {seen:?}"
    );
}

/// `ssh_password` (`--ssh-password`, `LAGO_SSH_PASSWORD`, lago.conf) is the
/// password the verbs use for VMs whose init file entry gives none; a VM's
/// own `ssh-password` stays. Checked on the environment the verbs open
/// (`cli::env::open_env`, i.e. `sdk::Env::open`) and the SSH target it gives: no VM here can
/// take a password login (the embedded template has none).
#[test]
fn ssh_password_from_flag_environment_and_file() {
    use lago::cli::env::open_env;
    use lago::cli::{Context, GlobalArgs};
    use lago::config::{Config, Sources};
    use lago::environment::ssh_target;
    use lago::plugins::SearchPath;
    use lago::ssh::Auth;

    let p = Ux::new();
    std::fs::write(
        p.proj().join("LagoInitFile"),
        INIT.replace(
            "    memory: 256\n",
            "    memory: 256\n    ssh-password: own\n",
        ),
    )
    .expect("write");
    p.ok(&["-l", "error", "init"], &[]);
    let provider = lago_bin!()
        .with_file_name("liblago_provider_local_libvirt.so")
        .into_os_string();
    let conf = p.dir.path().join("lago.conf");
    std::fs::write(&conf, "[lago]\nssh_password = from-file\n").expect("conf");
    let password = |files: Vec<PathBuf>, env: Vec<(String, String)>, flag: Option<&str>| {
        let globals = GlobalArgs {
            workdir_path: Some(p.proj().join(".lago")),
            ssh_password: flag.map(str::to_string),
            ..GlobalArgs::default()
        };
        let mut env = env;
        env.push(("LAGO_LIBVIRT_URL".into(), "test:///default".into()));
        let config = Config::load_from(&Sources { files, env }, &globals.config_overrides())
            .expect("config");
        let mut ctx = Context::new(globals, config, "lago".into());
        ctx.search_path = SearchPath::new(Some(&provider), None, None);
        let env = open_env(&mut ctx).expect("environment");
        let of = |vm: &str| match ssh_target(env.spec(), &env.spec().domains[vm])
            .expect("target")
            .auth
        {
            Auth::KeyOrPassword { password, .. } => password,
            other => panic!("{vm}: {other:?}"),
        };
        (of("vm0"), of("vm1"))
    };
    let env_var = || vec![("LAGO_SSH_PASSWORD".to_string(), "from-env".to_string())];
    assert_eq!(
        password(vec![], vec![], Some("flag")),
        ("own".into(), "flag".into())
    );
    assert_eq!(
        password(vec![], env_var(), None),
        ("own".into(), "from-env".into())
    );
    assert_eq!(
        password(vec![conf.clone()], vec![], None),
        ("own".into(), "from-file".into())
    );
    assert_eq!(
        password(vec![conf.clone()], env_var(), Some("flag")),
        ("own".into(), "flag".into())
    );
    // Unset: the root password (Lago's default, 123456).
    assert_eq!(password(vec![], vec![], None).1, "123456");
}
