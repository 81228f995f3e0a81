//! The `dot` out-format: data trees as Graphviz graphs, shipped as
//! `liblago_out_dot.so` beside `lago` (and an example of an out-format
//! plugin: a plain [`OutFormatPlugin`] and one `export_plugins!` line).
//!
//! `lago -f dot status | dot -Tsvg > env.svg` draws the environment: each
//! network as an ellipse (name, gateway, state; the management network bold
//! and marked), each VM as a box (name, state, vm-type, distro) coloured by
//! state, and each NIC as an edge from its VM to its network labelled with
//! the NIC's name and address.
//!
//! Any other tree (`lago -f dot plugins`, a plugin verb's output) is drawn as
//! a tree: one node per object or array, its scalar members in the label,
//! an edge to each nested object labelled with its key.

use lago_plugin_api::serde_json::{Map, Value};
use lago_plugin_api::{OutFormatPlugin, PluginResult};

/// The `dot` out-format.
pub struct Dot;

impl OutFormatPlugin for Dot {
    fn format(&self, tree: &Value) -> PluginResult<String> {
        Ok(match status_prefix(tree) {
            Some(prefix) => environment(prefix),
            None => generic(tree),
        })
    }
}

/// The `Prefix` object of a `lago status` tree (it has `VMs` or `Networks`).
fn status_prefix(tree: &Value) -> Option<&Map<String, Value>> {
    let prefix = tree.get("Prefix")?.as_object()?;
    (prefix.contains_key("VMs") || prefix.contains_key("Networks")).then_some(prefix)
}

/// A DOT double-quoted string: `"` and `\` escaped, newlines as `\n` (a
/// centred line break in a label).
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A scalar as label text (`null` as empty).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn field(obj: &Map<String, Value>, key: &str) -> String {
    obj.get(key).map(text).unwrap_or_default()
}

/// Fill colour of a VM by its state (Lago's state names).
fn state_colour(state: &str) -> &'static str {
    match state {
        "running" => "palegreen",
        "paused" | "suspended" | "pmsuspended" => "lightgoldenrod1",
        "down" | "shut off" | "shutoff" => "lightgrey",
        "crashed" => "salmon",
        _ => "white",
    }
}

/// The picture of a `lago status` tree.
fn environment(prefix: &Map<String, Value>) -> String {
    // What a missing or malformed part reads as.
    let empty = Map::new();
    let mut out = String::from("graph lago {\n");
    out.push_str("  graph [rankdir=LR, fontname=\"sans-serif\", labelloc=t");
    let base = field(prefix, "Base directory");
    if !base.is_empty() {
        out.push_str(&format!(
            ", label={}",
            quote(&format!("lago prefix {base}"))
        ));
    }
    out.push_str("];\n");
    out.push_str(
        "  node [fontname=\"sans-serif\"];\n  edge [fontname=\"sans-serif\", fontsize=10];\n",
    );
    let nets = prefix
        .get("Networks")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for (name, net) in nets {
        let net = net.as_object().unwrap_or(&empty);
        let management = net.get("management").and_then(Value::as_bool) == Some(true);
        let mut label = name.clone();
        if management {
            label.push_str(" (management)");
        }
        let gw = field(net, "gateway");
        if !gw.is_empty() {
            label.push_str(&format!("\ngateway {gw}"));
        }
        label.push_str(&format!("\n{}", field(net, "status")));
        out.push_str(&format!(
            "  {} [shape=ellipse, label={}{}];\n",
            quote(&format!("net:{name}")),
            quote(&label),
            if management {
                ", style=bold, penwidth=2"
            } else {
                ""
            }
        ));
    }
    let vms = prefix
        .get("VMs")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for (name, vm) in vms {
        let vm = vm.as_object().unwrap_or(&empty);
        let state = field(vm, "status");
        let mut label = format!("{name}\n{state}");
        for (key, what) in [("vm-type", "type"), ("distro", "distro")] {
            let v = field(vm, key);
            if !v.is_empty() && v != "unknown" {
                label.push_str(&format!("\n{what}: {v}"));
            }
        }
        let id = quote(&format!("vm:{name}"));
        out.push_str(&format!(
            "  {id} [shape=box, style=\"rounded,filled\", fillcolor={}, label={}];\n",
            state_colour(&state),
            quote(&label)
        ));
        let nics = vm.get("NICs").and_then(Value::as_object).unwrap_or(&empty);
        for (nic, spec) in nics {
            let spec = spec.as_object().unwrap_or(&empty);
            let net = field(spec, "network");
            let net_id = quote(&format!("net:{net}"));
            if !nets.contains_key(&net) {
                // A NIC on a network the tree does not list: draw it anyway.
                out.push_str(&format!(
                    "  {net_id} [shape=ellipse, style=dashed, label={}];\n",
                    quote(&net)
                ));
            }
            out.push_str(&format!(
                "  {id} -- {net_id} [label={}];\n",
                quote(&format!("{nic}\n{}", field(spec, "ip")))
            ));
        }
    }
    out.push_str("}\n");
    out
}

/// Any tree: one node per object/array, scalars in its label.
fn generic(tree: &Value) -> String {
    let mut out = String::from(
        "digraph lago {\n  graph [rankdir=LR];\n  node [shape=record, fontname=\"sans-serif\"];\n",
    );
    let mut next = 0usize;
    node(tree, "lago", &mut next, &mut out);
    out.push_str("}\n");
    out
}

/// Write `v` as node `n<id>` (and its nested containers); return its id.
fn node(v: &Value, title: &str, next: &mut usize, out: &mut String) -> usize {
    let id = *next;
    *next += 1;
    let members: Vec<(String, &Value)> = match v {
        Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        scalar => vec![(String::new(), scalar)],
    };
    let mut label = title.to_string();
    let mut children = Vec::new();
    for (key, value) in members {
        match value {
            Value::Object(_) | Value::Array(_) => children.push((key, value)),
            scalar if key.is_empty() => label.push_str(&format!("\n{}", text(scalar))),
            scalar => label.push_str(&format!("\n{key}: {}", text(scalar))),
        }
    }
    // A record label treats {}|<> as structure: keep it a plain box label.
    out.push_str(&format!("  n{id} [shape=box, label={}];\n", quote(&label)));
    for (key, value) in children {
        let child = node(value, &key, next, out);
        out.push_str(&format!("  n{id} -> n{child};\n"));
    }
    id
}

lago_plugin_api::export_plugins! {
    out_formats: ["dot" => Dot],
}

#[cfg(test)]
mod tests {
    use super::*;
    use lago_plugin_api::serde_json::json;

    #[test]
    fn quoting_escapes_what_dot_reads_specially() {
        assert_eq!(quote("a\"b\\c\nd"), r#""a\"b\\c\nd""#);
    }

    #[test]
    fn status_tree_becomes_vms_nets_and_nic_edges() -> PluginResult<()> {
        let tree = json!({"Prefix": {
            "Base directory": "/w/.lago/default",
            "Networks": {"lago": {"gateway": "192.168.200.1", "status": "up", "management": true}},
            "VMs": {"vm0": {"status": "running", "distro": "el8", "vm-type": "default",
                "NICs": {"eth0": {"network": "lago", "ip": "192.168.200.2"}}}}
        }});
        let dot = Dot.format(&tree)?;
        assert!(dot.contains(
            "\"net:lago\" [shape=ellipse, label=\"lago (management)\\ngateway 192.168.200.1\\nup\", style=bold, penwidth=2];"
        ), "{dot}");
        assert!(dot.contains("\"vm:vm0\" [shape=box, style=\"rounded,filled\", fillcolor=palegreen, label=\"vm0\\nrunning\\ntype: default\\ndistro: el8\"];"), "{dot}");
        assert!(
            dot.contains("\"vm:vm0\" -- \"net:lago\" [label=\"eth0\\n192.168.200.2\"];"),
            "{dot}"
        );
        Ok(())
    }

    #[test]
    fn other_trees_are_drawn_as_trees() -> PluginResult<()> {
        let dot = Dot.format(&json!({"cli": {"hello": {"source": "/x.so"}}, "n": 1}))?;
        assert!(dot.starts_with("digraph lago {"), "{dot}");
        assert!(
            dot.contains("n0 [shape=box, label=\"lago\\nn: 1\"];"),
            "{dot}"
        );
        assert!(
            dot.contains("n2 [shape=box, label=\"hello\\nsource: /x.so\"];"),
            "{dot}"
        );
        assert!(
            dot.contains("n0 -> n1;") && dot.contains("n1 -> n2;"),
            "{dot}"
        );
        Ok(())
    }
}
