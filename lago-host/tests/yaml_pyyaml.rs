//! Differential test of lago's YAML reader against PyYAML, which Lago read
//! init files with: every file of tests/fixtures/yaml-merges (merge-key
//! shapes: nested merges, two `<<` keys, `<<: [*a, *b]`, merges into nets and
//! disks) must give the same data from `yaml.safe_load` and from
//! `lago::initfile::yaml::parse`.
//!
//! The reference is PyYAML up to 6.0.3 (the merge semantics of every
//! release Lago ran on; scripts/python-env.sh pins it): 6.0.4 de-duplicates
//! merged keys by the identity of the key's Python string, so there a
//! one-letter key of `<<: [*a, *b]` comes from `*a` and a longer one from
//! `*b`; lago keeps the documented rule (the first listed wins).
//!
//! PyYAML is found through `$LAGO_TEST_PYTHON` (set by scripts/test.sh to the
//! venv of scripts/python-env.sh), else `python3`. Without it the test fails
//! under `CI=true` and says it was skipped otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;

use lago::initfile::{self, yaml, Format};
use serde_json::Value;

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/yaml-merges");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read the corpus folder")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// A python that can `import yaml`, or why none was found.
fn python_with_pyyaml() -> Result<String, String> {
    let python = std::env::var("LAGO_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string());
    match Command::new(&python).args(["-c", "import yaml"]).output() {
        Ok(out) if out.status.success() => Ok(python),
        Ok(out) => Err(format!(
            "{python} cannot import yaml: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("cannot run {python}: {e}")),
    }
}

/// PyYAML's version and each file as its `safe_load` reads it, as JSON.
fn pyyaml_reads(python: &str, files: &[PathBuf]) -> (String, Vec<Value>) {
    let script = "import json, sys, yaml\n\
                  print(json.dumps([yaml.__version__] + [yaml.safe_load(open(p, encoding='utf-8')) for p in sys.argv[1:]]))";
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(files)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "PyYAML failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all: Value = serde_json::from_slice(&out.stdout).expect("PyYAML's JSON");
    match all {
        Value::Array(mut items) if !items.is_empty() => {
            let version = items.remove(0).as_str().unwrap_or("?").to_string();
            (version, items)
        }
        other => panic!("PyYAML gave {other}"),
    }
}

#[test]
fn merge_keys_read_as_pyyaml_reads_them() {
    let python = match python_with_pyyaml() {
        Ok(p) => p,
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("PyYAML is needed for this test under CI: {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED: no PyYAML to compare with ({why}); set LAGO_TEST_PYTHON");
            return;
        }
    };
    let files = corpus();
    assert!(files.len() >= 6, "corpus too small: {files:?}");
    let (version, expected) = pyyaml_reads(&python, &files);
    assert_eq!(expected.len(), files.len());
    for (file, want) in files.iter().zip(expected) {
        let text = std::fs::read_to_string(file).expect("read");
        let got = yaml::parse(&text)
            .unwrap_or_else(|e| panic!("{}: lago refused it: {e:?}", file.display()));
        assert_eq!(
            got,
            want,
            "{}: lago and PyYAML {version} ({python}) differ (the reference is PyYAML <= 6.0.3)",
            file.display()
        );
    }
}

/// The merged keys reach the model: the nested-merge VM has its disk, memory,
/// service provider and artifacts (they were dropped before issue 18).
#[test]
fn nested_merge_reaches_the_model() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/yaml-merges/nested-3-deep.yaml");
    let text = std::fs::read_to_string(&file).expect("read");
    let init = initfile::parse_str(&text, Some(file), Format::Yaml).expect("valid");
    let engine = &init.domains["engine"];
    assert_eq!(engine.memory, Some(4096));
    assert_eq!(engine.vcpu, Some(2));
    assert_eq!(engine.disks.len(), 1);
    assert_eq!(engine.nics.len(), 1);
    let host = &init.domains["host-0"];
    assert_eq!(host.memory, Some(1024));
    assert_eq!(host.service_provider.as_deref(), Some("systemd"));
    assert_eq!(host.artifacts, vec!["/var/log".to_string()]);
}

/// A merge key whose value is not a mapping is refused, as PyYAML refuses it;
/// a repeated ordinary key stays refused with its line.
#[test]
fn bad_merges_refused() {
    let e = yaml::parse("a: 1\nb:\n  <<: 3\n").expect_err("scalar merge");
    assert!(e.message.contains("merge key"), "{e:?}");
    let e = yaml::parse("a: &a {x: 1}\nb:\n  <<: [*a, 2]\n").expect_err("list of non-maps");
    assert!(e.message.contains("merge key"), "{e:?}");
    let e = yaml::parse("a: 1\nb:\n  x: 1\n  x: 2\n").expect_err("duplicate");
    assert!(e.message.contains("duplicate key \"x\""), "{e:?}");
    assert!(e.line.is_some(), "{e:?}");
}
