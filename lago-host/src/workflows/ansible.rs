//! `lago ansible_hosts`: an Ansible inventory of the environment, as Lago's
//! `LagoAnsible` makes it.
//!
//! Every VM is one host line, `NAME ansible_host=IP
//! ansible_ssh_private_key_file=KEY`. Groups come from the values of the
//! given keys in the VM's stored spec (JSON paths such as
//! `disks/0/metadata/arch`): a value `V` of key `K` puts the VM in group
//! `K=V` (one group per item when the value is a list; no group when the
//! key is absent or null). Besides, every name in the VM's `groups` is a
//! group of its own (`[web]` as well as `[groups=web]`), as in Lago.
//! Groups are listed in the order they are first met (VMs by name, keys in
//! the order given); hosts within a group are sorted.

use std::collections::BTreeMap;
use std::path::Path;

use lago_plugin_api::spec::{EnvSpec, DEFAULT_HOST};
use serde_json::Value;

/// The keys used when none are given.
pub const DEFAULT_KEYS: [&str; 3] = ["vm-type", "groups", "vm-provider"];

/// An inventory: groups in order, each with its host lines (sorted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    pub groups: Vec<(String, Vec<String>)>,
}

impl Inventory {
    fn add(&mut self, group: String, entry: &str) {
        match self.groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, hosts)) => hosts.push(entry.to_string()),
            None => self.groups.push((group, vec![entry.to_string()])),
        }
    }

    /// The INI text Ansible reads: `[group]` then its hosts, no blank lines
    /// (Lago's `get_inventory_str`).
    pub fn to_ini(&self) -> String {
        let mut lines = Vec::new();
        for (group, hosts) in &self.groups {
            lines.push(format!("[{group}]"));
            lines.extend(hosts.iter().cloned());
        }
        lines.join("\n")
    }

    /// `{group: [host line, ...]}`, for the structured out-formats.
    pub fn to_value(&self) -> Value {
        Value::Object(
            self.groups
                .iter()
                .map(|(g, hosts)| {
                    (
                        g.clone(),
                        Value::Array(hosts.iter().cloned().map(Value::String).collect()),
                    )
                })
                .collect(),
        )
    }
}

/// The value at `key` in `data`: a `/`-separated path of object keys and
/// list indexes (`disks/0/metadata/arch`; a leading `/` is ignored, `/`
/// alone is the whole document). `None` when the path does not lead
/// anywhere.
pub fn get_key<'a>(key: &str, data: &'a Value) -> Option<&'a Value> {
    if key == "/" {
        return Some(data);
    }
    let path = key.strip_prefix('/').unwrap_or(key);
    let mut cur = data;
    for part in path.split('/') {
        cur = match cur {
            Value::Object(map) => map.get(part)?,
            Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// A value as it appears in a group name: strings bare, booleans as
/// `True`/`False` (as Lago's Python prints them), other scalars as
/// themselves, lists and maps as compact JSON.
fn group_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".to_string(),
        Value::Bool(false) => "False".to_string(),
        other => other.to_string(),
    }
}

/// One host line. The key's path is quoted when it needs it: Ansible
/// splits an INI host line as `shlex` does (a space, a quote or a `#`
/// would cut it).
pub fn host_entry(name: &str, ip: Option<&str>, key: &Path) -> String {
    let key = shlex_quote(&key.display().to_string());
    match ip {
        Some(ip) => format!("{name} ansible_host={ip} ansible_ssh_private_key_file={key}"),
        None => format!("{name} ansible_ssh_private_key_file={key}"),
    }
}

/// `text` as one `shlex` token: as it is when it holds only safe
/// characters, else in single quotes (a `'` as `'"'"'`), as Python's
/// `shlex.quote`.
fn shlex_quote(text: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c);
    if !text.is_empty() && text.chars().all(safe) {
        return text.to_string();
    }
    format!("'{}'", text.replace('\'', "'\"'\"'"))
}

/// The inventory of `vms`: `(name, spec as JSON, host line)` each, in the
/// order given. Empty `keys` means [`DEFAULT_KEYS`].
pub fn inventory_of(vms: &[(String, Value, String)], keys: &[String]) -> Inventory {
    let keys: Vec<String> = if keys.is_empty() {
        DEFAULT_KEYS.iter().map(|k| k.to_string()).collect()
    } else {
        keys.to_vec()
    };
    let mut inv = Inventory::default();
    for (_, spec, entry) in vms {
        for key in &keys {
            match get_key(key, spec) {
                None | Some(Value::Null) => {}
                Some(Value::Array(items)) => {
                    for item in items {
                        inv.add(format!("{key}={}", group_value(item)), entry);
                    }
                }
                Some(v) => inv.add(format!("{key}={}", group_value(v)), entry),
            }
        }
        // Lago's special case: a VM is also in each of its groups by name.
        if let Some(Value::Array(groups)) = spec.get("groups") {
            for g in groups {
                inv.add(group_value(g), entry);
            }
        }
    }
    for (_, hosts) in &mut inv.groups {
        hosts.sort();
    }
    inv
}

/// The inventory of a stored environment: each VM at its management
/// address, with the prefix's private key; a VM on another host jumps
/// through it. Empty `keys`: [`DEFAULT_KEYS`], and `host` when `env` has
/// `hosts:` (VMs without one are in `host=default`).
pub fn inventory(env: &EnvSpec, keys: &[String]) -> Result<Inventory, serde_json::Error> {
    let key = env.prefix.ssh_key_path();
    let mut vms = Vec::with_capacity(env.domains.len());
    for vm in env.domains.values() {
        let ip = vm.mgmt_ip().map(|ip| ip.to_string());
        if ip.is_none() {
            tracing::warn!(
                "VM {} has no address on its management network; its inventory line has no ansible_host",
                vm.name
            );
        }
        let mut spec = serde_json::to_value(vm)?;
        let mut entry = host_entry(&vm.name, ip.as_deref(), &key);
        if !env.hosts.is_empty() {
            // Every VM of a multi-host environment names its host (`host`
            // groups), and one on another host is reached through it.
            if let Value::Object(m) = &mut spec {
                m.entry("host")
                    .or_insert_with(|| Value::String(DEFAULT_HOST.to_string()));
            }
            if let Some(jump) = env.host_of(vm).and_then(|(_, h)| h.ssh_dest()) {
                entry.push_str(&format!(" ansible_ssh_common_args='-J {jump}'"));
            }
        }
        vms.push((vm.name.clone(), spec, entry));
    }
    let mut keys = keys.to_vec();
    if keys.is_empty() {
        keys = DEFAULT_KEYS.iter().map(|k| k.to_string()).collect();
        if !env.hosts.is_empty() {
            keys.push("host".to_string());
        }
    }
    Ok(inventory_of(&vms, &keys))
}

/// The inventory grouped by `keys`, as a map (for callers that want the
/// structure rather than the text).
pub fn groups_map(inv: &Inventory) -> BTreeMap<String, Vec<String>> {
    inv.groups.iter().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vm(name: &str, ip: &str, spec: Value) -> (String, Value, String) {
        (
            name.to_string(),
            spec,
            host_entry(name, Some(ip), Path::new("/p/id_ed25519")),
        )
    }

    fn three() -> Vec<(String, Value, String)> {
        vec![
            vm(
                "vm0-server",
                "1.2.3.4",
                json!({"vm-type": "default", "vm-provider": "local-libvirt", "groups": ["servers"],
                       "disks": [{"metadata": {"arch": "x86_64"}}]}),
            ),
            vm(
                "vm1-slave",
                "1.2.3.5",
                json!({"vm-type": "default", "vm-provider": "local-libvirt", "groups": ["slaves"],
                       "disks": [{"metadata": {"arch": "ppc64le"}}]}),
            ),
            vm(
                "vm2-slave",
                "1.2.3.6",
                json!({"vm-type": "ovirt-host", "vm-provider": "local-libvirt", "groups": ["slaves", "hosts"],
                       "disks": [{"metadata": {}}]}),
            ),
        ]
    }

    #[test]
    fn default_keys_and_the_groups_special_case() {
        let inv = inventory_of(&three(), &[]);
        let names: Vec<&str> = inv.groups.iter().map(|(g, _)| g.as_str()).collect();
        assert_eq!(
            names,
            [
                "vm-type=default",
                "groups=servers",
                "vm-provider=local-libvirt",
                "servers",
                "groups=slaves",
                "slaves",
                "vm-type=ovirt-host",
                "groups=hosts",
                "hosts",
            ]
        );
        let map = groups_map(&inv);
        assert_eq!(map["groups=slaves"], map["slaves"]);
        assert_eq!(
            map["slaves"],
            [
                "vm1-slave ansible_host=1.2.3.5 ansible_ssh_private_key_file=/p/id_ed25519",
                "vm2-slave ansible_host=1.2.3.6 ansible_ssh_private_key_file=/p/id_ed25519",
            ]
        );
        assert_eq!(map["vm-provider=local-libvirt"].len(), 3);
        assert_eq!(map["hosts"].len(), 1);
    }

    #[test]
    fn nested_keys_and_missing_values() {
        let keys = vec!["disks/0/metadata/arch".to_string(), "nope/1".to_string()];
        let inv = inventory_of(&three(), &keys);
        let map = groups_map(&inv);
        assert_eq!(map["disks/0/metadata/arch=x86_64"].len(), 1);
        assert_eq!(map["disks/0/metadata/arch=ppc64le"].len(), 1);
        assert!(!map.keys().any(|k| k.starts_with("nope")));
        // The groups special case holds whatever the keys.
        assert_eq!(map["slaves"].len(), 2);
        assert!(!map.contains_key("vm-type=default"));
    }

    #[test]
    fn get_key_paths() {
        let doc = json!({"a": {"b": [10, {"c": true}]}, "n": null});
        assert_eq!(get_key("a/b/0", &doc), Some(&json!(10)));
        assert_eq!(get_key("/a/b/1/c", &doc), Some(&json!(true)));
        assert_eq!(get_key("/", &doc), Some(&doc));
        assert_eq!(get_key("a/b/2", &doc), None);
        assert_eq!(get_key("a/b/x", &doc), None);
        assert_eq!(get_key("a/b/0/deeper", &doc), None);
        assert_eq!(get_key("n", &doc), Some(&Value::Null));
    }

    #[test]
    fn scalar_values_render_as_lago_prints_them() {
        let vms = vec![vm(
            "v",
            "10.0.0.2",
            json!({"flag": false, "count": 2, "on": true}),
        )];
        let keys: Vec<String> = ["flag", "count", "on"].map(String::from).to_vec();
        let inv = inventory_of(&vms, &keys);
        let names: Vec<&str> = inv.groups.iter().map(|(g, _)| g.as_str()).collect();
        assert_eq!(names, ["flag=False", "count=2", "on=True"]);
    }

    #[test]
    fn ini_rendering() {
        let vms = three();
        let inv = inventory_of(&vms[..2], &["vm-type".to_string()]);
        assert_eq!(
            inv.to_ini(),
            "[vm-type=default]\n\
             vm0-server ansible_host=1.2.3.4 ansible_ssh_private_key_file=/p/id_ed25519\n\
             vm1-slave ansible_host=1.2.3.5 ansible_ssh_private_key_file=/p/id_ed25519\n\
             [servers]\n\
             vm0-server ansible_host=1.2.3.4 ansible_ssh_private_key_file=/p/id_ed25519\n\
             [slaves]\n\
             vm1-slave ansible_host=1.2.3.5 ansible_ssh_private_key_file=/p/id_ed25519"
        );
        assert_eq!(Inventory::default().to_ini(), "");
        let v = inv.to_value();
        assert_eq!(v["servers"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn host_without_address() {
        assert_eq!(
            host_entry("v", None, Path::new("/k")),
            "v ansible_ssh_private_key_file=/k"
        );
    }

    #[test]
    fn a_key_path_with_spaces_or_quotes_is_one_shlex_token() {
        let line = host_entry("v", None, Path::new("/w d/it's #1/id"));
        assert_eq!(
            line,
            "v ansible_ssh_private_key_file='/w d/it'\"'\"'s #1/id'"
        );
        assert_eq!(
            host_entry("v", Some("1.2.3.4"), Path::new("/p/id_ed25519")),
            "v ansible_host=1.2.3.4 ansible_ssh_private_key_file=/p/id_ed25519"
        );
    }
}
