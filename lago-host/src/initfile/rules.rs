//! The rules single values of an init file follow, and the key lists the
//! reader checks mappings against: keys it reads, keys lago plans itself
//! (refused: what the user wrote and what lago planned never share a key),
//! and the likely key behind a misspelt one.
//!
//! Each rule answers `Err(why)`; the reader turns that into an error at the
//! value's file:line:col.

/// Keys of a domain the reader takes.
pub const VM_KEYS: &[&str] = &[
    "memory",
    "vcpu",
    "cpu_model",
    "cpu_custom",
    "nics",
    "disks",
    "artifacts",
    "groups",
    "bootstrap",
    "ssh-user",
    "ssh-password",
    "root-password",
    "service_provider",
    "vm-provider",
    "vm-type",
    "metadata",
    "boot_time_sec",
    "distro",
    "host",
];
/// Keys of a host (`hosts: NAME:`) the reader takes.
pub const HOST_KEYS: &[&str] = &["libvirt_url", "ssh", "address"];
/// Keys of a nic the reader takes.
pub const NIC_KEYS: &[&str] = &["net", "ip"];
/// Keys of a disk the reader takes, and those the local-libvirt provider
/// reads from the disk's free-form keys (listed for misspelling hints only).
pub const DISK_KEYS: &[&str] = &[
    "type",
    "template_name",
    "template_type",
    "template_version",
    "path",
    "url",
    "size",
    "format",
    "dev",
    "device",
    "name",
    "build",
    "metadata",
    "make_a_copy",
    "source_path",
    "original_path",
];
/// Keys of a network the reader takes.
pub const NET_KEYS: &[&str] = &[
    "type",
    "dhcp",
    "management",
    "dns_domain_name",
    "dns_records",
    "gw",
    "mtu",
];
/// Top-level keys the reader takes.
pub const TOP_KEYS: &[&str] = &["domains", "nets", "hosts"];

/// Keys of the stored state that lago fills in itself (the planned spec's
/// fields that the init file cannot set, and keys lago writes later such as
/// `snapshots`). A user key of the same name would land beside the planned
/// one in the stored JSON and could replace it when read back, so it is
/// refused. The `planned_keys_cover_the_spec` test keeps these lists in step
/// with `lago_plugin_api::spec`.
pub const VM_PLANNED: &[&str] = &[
    "name",
    "libvirt_name",
    "mgmt_net",
    "ssh_host_key",
    "snapshots",
];
pub const NIC_PLANNED: &[&str] = &["mac", "lago_written"];
pub const DISK_PLANNED: &[&str] = &["base", "base_format"];
pub const NET_PLANNED: &[&str] = &[
    "name",
    "libvirt_name",
    "bridge",
    "prefix_len",
    "mappings",
    "subnet",
    "hosts",
    "lago_written",
];
pub const TOP_PLANNED: &[&str] = &["prefix", "lago_version"];

/// The known key a misspelt `key` most likely meant: one edit away (two for
/// keys of more than 4 characters; a swap of neighbours counts as one),
/// ignoring case and `-`/`_`.
pub fn likely_key<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    let norm = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    let k = norm(key);
    let limit = if k.chars().count() > 4 { 2 } else { 1 };
    known
        .iter()
        .map(|c| (edit_distance(&k, &norm(c)), *c))
        .filter(|(d, c)| *d <= limit && *c != key)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Optimal string alignment distance (Levenshtein plus swaps of neighbours).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// A character that can change what a terminal or a line-based file shows:
/// a control character (C0 such as newline and escape, DEL, C1) or a Unicode
/// bidirectional control (U+200E/U+200F, U+202A-U+202E, U+2066-U+2069),
/// which can make text display in an order other than the one it has.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with each [`is_unsafe_char`] written as a Rust escape (`\n`,
/// `\u{1b}`, `\u{202e}`), for text shown one entry per line: a value can
/// then never forge a line or drive the terminal. Other text is unchanged.
pub fn escape_unsafe(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(is_unsafe_char) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe_char(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// No control characters (newline, NUL, escape, DEL, C1) and no bidi
/// controls ([`is_unsafe_char`]): every string lago reads may end in a
/// generated file (ssh_config, known_hosts, inventories, the bootstrap seed),
/// a hypervisor or DNS name, one entry per line, or on a terminal.
pub fn no_control(s: &str) -> Result<(), String> {
    match s.chars().find(|c| is_unsafe_char(*c)) {
        Some(c) => Err(format!(
            "{s:?} contains the {} U+{:04X}",
            if c.is_control() {
                "control character"
            } else {
                "bidirectional control"
            },
            u32::from(c)
        )),
        None => Ok(()),
    }
}

/// A login name (`ssh-user`): letters, digits, `.`, `_`, `-`, not starting
/// with `-` (it is a word of ssh_config and an ssh argument).
pub fn login_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && !s.starts_with('-')
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!("the user name {s:?} is not allowed"))
    }
}
pub const LOGIN_RULE: &str =
    "a user name of letters, digits, '.', '_' and '-', not starting with '-'";

/// A group name (`groups`): one word of an Ansible inventory section header:
/// printable, no whitespace, no `[`, `]`, `=`, `#`.
pub fn group_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && !matches!(c, '[' | ']' | '=' | '#'));
    if ok {
        Ok(())
    } else {
        Err(format!("the group name {s:?} is not allowed"))
    }
}
pub const GROUP_RULE: &str = "a group name without spaces, '[', ']', '=' or '#'";

/// A DNS domain (`dns_domain_name`): dot-separated labels of letters,
/// digits and `-` (not at a label's ends), 1 to 63 characters each, at most
/// 253 in all.
pub fn dns_domain(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("the DNS domain is empty".into());
    }
    if s.len() > 253 {
        return Err(format!("the DNS domain is {} characters long", s.len()));
    }
    for label in s.split('.') {
        let ok = (1..=63).contains(&label.len())
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok {
            return Err(format!("{s:?} is not a DNS domain (label {label:?})"));
        }
    }
    Ok(())
}
pub const DNS_RULE: &str = "a DNS domain such as lago.local: labels of letters, digits and '-', 1 to 63 characters each, at most 253 in all";

/// A DNS host name (`dns_records` keys): the same shape as a DNS domain.
pub fn dns_name(s: &str) -> Result<(), String> {
    dns_domain(s).map_err(|_| format!("{s:?} is not a DNS host name"))
}

/// A CPU model name as libvirt's CPU map spells them (`Haswell-noTSX`,
/// `Opteron_G5`, `qemu64`).
pub fn cpu_model(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+'));
    if ok {
        Ok(())
    } else {
        Err(format!("the CPU model {s:?} is not allowed"))
    }
}
pub const CPU_MODEL_RULE: &str =
    "a CPU model name of letters, digits, '-', '_', '.' and '+', e.g. Haswell-noTSX";

/// The most memory libvirt accepts for a domain, in MiB: it keeps sizes in
/// bytes as a signed 64-bit number (`virMemoryMaxValue`).
pub const MAX_MEMORY_MIB: u64 = (i64::MAX as u64) >> 20;

/// The largest disk size lago accepts: 1 PiB (qcow2 with its default
/// 64 KiB clusters stops at 2 PiB; beyond that qemu-img fails late).
pub const MAX_SIZE_BYTES: u64 = 1 << 50;
pub const SIZE_RULE: &str = "a size such as 10G, 512M or 1T, at most 1P (a bare number is GiB)";

/// A size such as `10G` in the one spelling lago passes on: digits and an
/// upper-case unit (`" 1 m "` → `1M`), with its bytes. Units are K, M, G, T,
/// P (powers of 1024) or B (bytes); no unit means GiB, as an integer `size`
/// does (so `"1"` and `1` agree). `Err(why)` tells a malformed size from one
/// over [`MAX_SIZE_BYTES`].
pub fn normalise_size(s: &str) -> Result<(String, u64), String> {
    let malformed = || format!("malformed size {s:?}");
    let t = s.trim();
    let (num, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            (t[..i].trim_end(), Some(c.to_ascii_uppercase()))
        }
        _ => (t, None),
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed());
    }
    let unit = unit.unwrap_or('G');
    let mult: u64 = match unit {
        'B' => 1,
        'K' => 1 << 10,
        'M' => 1 << 20,
        'G' => 1 << 30,
        'T' => 1 << 40,
        'P' => 1 << 50,
        _ => return Err(malformed()),
    };
    let too_big = || format!("size {s:?} is more than the 1P lago accepts");
    // Digits only: a parse failure is an overflow.
    let n: u64 = num.parse().map_err(|_| too_big())?;
    if n == 0 {
        return Err(format!("size {s:?} is zero"));
    }
    let bytes = n.checked_mul(mult).ok_or_else(too_big)?;
    if bytes > MAX_SIZE_BYTES {
        return Err(too_big());
    }
    // Always with its unit, so the stored text reads back the same.
    Ok((format!("{n}{unit}"), bytes))
}

/// A boolean as PyYAML (YAML 1.1) reads one, for files written for Lago:
/// `yes`/`no`/`on`/`off`/`true`/`false` in lower, Title or UPPER case.
pub fn yaml11_bool(s: &str) -> Option<bool> {
    match s {
        "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "true" | "True" | "TRUE" => Some(true),
        "no" | "No" | "NO" | "off" | "Off" | "OFF" | "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// What a host's `libvirt_url` must look like.
pub const REMOTE_URL_RULE: &str =
    "a remote libvirt URL: qemu+ssh://[user@]host[:port]/system, qemu+tcp://host/system or qemu+tls://host/system";

/// A host's `libvirt_url`: a QEMU driver URL that names a host, through one
/// of libvirt's remote transports.
pub fn remote_libvirt_url(url: &str) -> Result<(), String> {
    let Some((scheme, _)) = url.split_once("://") else {
        return Err(format!("{url:?} is not a URL"));
    };
    const SCHEMES: &[&str] = &[
        "qemu+ssh",
        "qemu+libssh",
        "qemu+libssh2",
        "qemu+tcp",
        "qemu+tls",
        "qemu",
    ];
    if !SCHEMES.contains(&scheme) {
        return Err(format!(
            "scheme `{scheme}` is not one of libvirt's QEMU transports"
        ));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the URL holds blanks or control characters".into());
    }
    // libvirt's URL parameters choose programs it runs (`command`,
    // `netcat`), keys, sockets and whether host keys are checked: an init
    // file does not get to set them.
    if url.contains(['?', '#', '%']) {
        return Err(format!(
            "{url:?} has parameters (`?...`) or escapes; put transport settings in your ~/.ssh/config"
        ));
    }
    if lago_plugin_api::spec::url_host(url).is_none() {
        return Err(format!(
            "{url:?} names no host (the local libvirt is the default host: leave `host:` out)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn likely_keys() {
        assert_eq!(likely_key("memroy", VM_KEYS), Some("memory"));
        assert_eq!(likely_key("vcpus", VM_KEYS), Some("vcpu"));
        assert_eq!(likely_key("ssh_user", VM_KEYS), Some("ssh-user"));
        assert_eq!(likely_key("my-plugin-key", VM_KEYS), None);
        assert_eq!(likely_key("ovirt-capabilities", VM_KEYS), None);
    }

    #[test]
    fn sizes() {
        assert_eq!(normalise_size(" 1 m "), Ok(("1M".into(), 1 << 20)));
        assert_eq!(normalise_size("10G"), Ok(("10G".into(), 10 << 30)));
        assert_eq!(normalise_size("4096b"), Ok(("4096B".into(), 4096)));
        assert_eq!(normalise_size("1"), Ok(("1G".into(), 1 << 30)));
        assert_eq!(normalise_size("1P"), Ok(("1P".into(), 1 << 50)));
        for bad in ["", "G", "1 0G", "-1G", "1X"] {
            let e = normalise_size(bad).expect_err(bad);
            assert!(e.starts_with("malformed"), "{bad:?}: {e}");
        }
        assert!(normalise_size("0G").expect_err("0").contains("zero"));
        for big in [
            "99999999T",
            "18446744073709551615",
            "99999999999999999999",
            "1025T",
        ] {
            let e = normalise_size(big).expect_err(big);
            assert!(e.contains("more than the 1P"), "{big:?}: {e}");
        }
    }

    #[test]
    fn domains_and_names() {
        assert!(dns_domain("lago.local").is_ok());
        for bad in ["", "a<b", "a\0b", "a\nb", "-a.b", "a..b", &"a".repeat(254)] {
            assert!(dns_domain(bad).is_err(), "{bad:?}");
        }
        assert!(cpu_model("Haswell-noTSX").is_ok());
        assert!(cpu_model("a/b").is_err());
        assert!(cpu_model("a\0").is_err());
        assert!(login_name("root").is_ok());
        assert!(login_name("root\nProxyCommand=x").is_err());
        assert!(group_name("web").is_ok());
        assert!(group_name("web]\n[all:vars").is_err());
        assert!(no_control("a\u{1b}[2J").is_err());
        assert!(no_control("x\u{202e}evil").is_err());
        assert!(no_control("a\u{85}b").is_err());
        assert!(no_control("caf\u{e9} \u{4e2d}").is_ok());
        assert_eq!(
            escape_unsafe("a\nb\u{1b}[2J\u{202e}\u{e9}\\"),
            "a\\nb\\u{1b}[2J\\u{202e}\u{e9}\\"
        );
    }
}
