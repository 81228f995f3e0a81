//! Golden tests of the built-in out-formats: each `golden/<input>.json`
//! rendered with `default`, `json`, `yaml` and `flat` must equal
//! `golden/<input>.<format>` byte for byte (the CLI adds one newline).
//!
//! The expected files follow Lago's own rendering (Python's `str()`,
//! `json.dumps(sort_keys=True, indent=4)`, PyYAML's block style). Regenerate
//! after an intended change with `UPDATE_GOLDEN=1 cargo test --test output_golden`
//! and review the diff.

use std::path::PathBuf;

use lago::plugins::Registry;

const INPUTS: &[&str] = &["status", "misc", "list", "strings"];
const FORMATS: &[&str] = &["default", "json", "yaml", "flat"];

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

#[test]
fn builtin_formats_match_golden_files() -> Result<(), Box<dyn std::error::Error>> {
    let reg = Registry::builtins()?;
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for input in INPUTS {
        let text = std::fs::read_to_string(golden_dir().join(format!("{input}.json")))?;
        let tree: serde_json::Value = serde_json::from_str(&text)?;
        for fmt in FORMATS {
            let got = reg.format(fmt, &tree)?;
            let path = golden_dir().join(format!("{input}.{fmt}"));
            if update {
                std::fs::write(&path, format!("{got}\n"))?;
                continue;
            }
            let want = std::fs::read_to_string(&path)?;
            if want.strip_suffix('\n') != Some(got.as_str()) {
                failures.push(format!(
                    "{}: differs\n--- want\n{want}\n--- got\n{got}\n",
                    path.display()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

#[test]
fn all_four_builtin_formats_are_registered() -> Result<(), Box<dyn std::error::Error>> {
    let reg = Registry::builtins()?;
    let names: Vec<&str> = reg.out_formats.keys().map(String::as_str).collect();
    assert_eq!(names, vec!["default", "flat", "json", "yaml"]);
    for e in reg.out_formats.values() {
        assert_eq!(e.source.to_string(), "built-in");
        assert_eq!(e.version, lago_plugin_api::INTERFACE_VERSION);
    }
    Ok(())
}
