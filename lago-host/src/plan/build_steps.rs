//! The `build:` section of a disk, as planned: variables expanded in every
//! option value, and the host paths of the options that read host files made
//! absolute from the init file's folder (virt-customize runs elsewhere).

use std::path::Path;

use serde_json::Value;

use super::vars::PathVars;

/// virt-customize options whose value starts with a host path, and where the
/// path ends: `Whole` value, or before the first `:` (`LOCAL:REMOTE`).
fn host_path_part(option: &str) -> Option<HostPath> {
    match option {
        "copy-in" | "upload" => Some(HostPath::BeforeColon),
        "run" | "firstboot" | "commands-from-file" => Some(HostPath::Whole),
        "ssh-inject" => Some(HostPath::AfterFilePrefix),
        _ => None,
    }
}

enum HostPath {
    Whole,
    BeforeColon,
    /// `USER:file:PATH` (other forms name no file).
    AfterFilePrefix,
}

/// `build` with variables expanded (Lago's `$LAGO_INITFILE_PATH`,
/// `$LAGO_PREFIX_PATH`, `$LAGO_WORKDIR_PATH`, the environment) in every
/// string, and relative host paths taken from `base` (the init file's
/// folder; unchanged when `None`). Errors name the undefined variable.
pub fn plan_build(
    build: &Value,
    vars: &PathVars<'_>,
    base: Option<&Path>,
) -> Result<Value, String> {
    let expanded = expand_strings(build, vars)?;
    Ok(absolute_host_paths(expanded, base))
}

fn expand_strings(v: &Value, vars: &PathVars<'_>) -> Result<Value, String> {
    Ok(match v {
        Value::String(s) => Value::String(vars.expand(s)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| expand_strings(i, vars))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), expand_strings(v, vars)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// Walks `[{builder: {option: value}}]` / `[{builder: [{option: value}]}]`.
fn absolute_host_paths(build: Value, base: Option<&Path>) -> Value {
    let Some(base) = base else { return build };
    map_options(
        build,
        &|option, value| match (host_path_part(option), value) {
            (Some(kind), Value::String(s)) => Value::String(absolute(&kind, &s, base)),
            (Some(kind), Value::Array(items)) => Value::Array(
                items
                    .into_iter()
                    .map(|i| match i {
                        Value::String(s) => Value::String(absolute(&kind, &s, base)),
                        other => other,
                    })
                    .collect(),
            ),
            (_, value) => value,
        },
    )
}

fn map_options(build: Value, f: &dyn Fn(&str, Value) -> Value) -> Value {
    // One `{option: value}` mapping: each value through `f`.
    let mapping = |map: serde_json::Map<String, Value>| {
        Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let v = f(&k, v);
                    (k, v)
                })
                .collect(),
        )
    };
    // A builder's options: one mapping, or a list of one-key mappings.
    let options = |opts: Value| match opts {
        Value::Object(map) => mapping(map),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|i| match i {
                    Value::Object(map) => mapping(map),
                    other => other,
                })
                .collect(),
        ),
        other => other,
    };
    let step = |s: Value| match s {
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(b, o)| (b, options(o))).collect())
        }
        other => other,
    };
    match build {
        Value::Array(steps) => Value::Array(steps.into_iter().map(step).collect()),
        other => step(other),
    }
}

fn absolute(kind: &HostPath, value: &str, base: &Path) -> String {
    let join = |p: &str| {
        if p.is_empty() || p.starts_with('/') {
            p.to_string()
        } else {
            base.join(p).display().to_string()
        }
    };
    match kind {
        HostPath::Whole => join(value),
        HostPath::BeforeColon => match value.split_once(':') {
            Some((local, rest)) => format!("{}:{rest}", join(local)),
            None => value.to_string(),
        },
        HostPath::AfterFilePrefix => match value.split_once(":file:") {
            Some((user, path)) => format!("{user}:file:{}", join(path)),
            None => value.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn variables_and_relative_host_paths() {
        let env = |n: &str| (n == "DATA").then(|| "/data".to_string());
        let vars = PathVars {
            initfile_dir: Some(Path::new("/init")),
            prefix: Path::new("/w/.lago/p"),
            workdir: Some(Path::new("/w/.lago")),
            env: &env,
        };
        let build = json!([{"virt-customize": {
            "copy-in": ["files:/root", "/abs:/root", "$DATA/x:/opt"],
            "upload": "up.txt:/etc/up.txt",
            "run": "setup.sh",
            "ssh-inject": "",
            "touch": "relative/guest/path",
            "write": "/etc/motd:$LAGO_PREFIX_PATH",
            "memsize": 512
        }}]);
        let out = plan_build(&build, &vars, Some(Path::new("/init"))).expect("plans");
        let o = &out[0]["virt-customize"];
        assert_eq!(
            o["copy-in"],
            json!(["/init/files:/root", "/abs:/root", "/data/x:/opt"])
        );
        assert_eq!(o["upload"], "/init/up.txt:/etc/up.txt");
        assert_eq!(o["run"], "/init/setup.sh");
        assert_eq!(o["ssh-inject"], "", "lago's own key: left to the provider");
        assert_eq!(o["touch"], "relative/guest/path", "guest paths untouched");
        assert_eq!(o["write"], "/etc/motd:/w/.lago/p");
        assert_eq!(o["memsize"], 512);
        // Ordered options (a list of one-key dicts) too.
        let ordered = json!([{"virt-customize": [{"run": "a.sh"}, {"touch": "b"}]}]);
        let out = plan_build(&ordered, &vars, Some(Path::new("/init"))).expect("plans");
        assert_eq!(out[0]["virt-customize"][0]["run"], "/init/a.sh");
        let err = plan_build(&json!({"virt-customize": {"run": "$NOPE/x"}}), &vars, None)
            .expect_err("undefined variable");
        assert!(err.contains("NOPE"), "{err}");
    }
}
