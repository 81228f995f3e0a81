//! Find where a key path (`domains/vm0/nics/1/net`) is written in the init
//! file's text, for error messages.
//!
//! The parsers give positions for syntax and only there; for everything found
//! later (a type or a semantic error) this walks the text by indentation, as
//! block-style YAML and pretty-printed JSON are written. When the exact key
//! cannot be found (flow style, a key that comes from a `<<` merge or an
//! alias) it answers the deepest ancestor it found, which is still the right
//! neighbourhood.

use super::Seg;

/// 1-based (line, column) of the deepest part of `path` found in `text`.
pub fn locate(text: &str, path: &[Seg]) -> Option<(usize, usize)> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    // The lines that hold the current node's children, and the indentation of
    // the current node (children are deeper; a YAML list may also sit at its
    // key's own indentation).
    let mut start = 0usize;
    let mut end = lines.len();
    let mut parent_indent: isize = -1;
    let mut found: Option<(usize, usize)> = None;
    for seg in path {
        let Some(child_indent) = first_child_indent(&lines, start, end, parent_indent) else {
            return found;
        };
        let hit = match seg {
            Seg::Key(k) => find_key(&lines, start, end, child_indent, k),
            Seg::Index(i) => find_item(&mut lines, start, end, child_indent, *i),
        };
        let Some(line) = hit else { return found };
        found = Some((line + 1, child_indent + 1));
        let mut e = line + 1;
        while e < end {
            let l = &lines[e];
            if !is_blank(l) {
                let ind = indent_of(l);
                let same_level_list =
                    matches!(seg, Seg::Key(_)) && ind == child_indent && l[ind..].starts_with('-');
                if ind < child_indent || (ind == child_indent && !same_level_list) {
                    break;
                }
            }
            e += 1;
        }
        // A list item's first key is on the item's own line (its dash blanked).
        start = if matches!(seg, Seg::Index(_)) {
            line
        } else {
            line + 1
        };
        end = e;
        parent_indent = child_indent as isize;
        if matches!(seg, Seg::Key(_)) {
            // Allow a list written at the key's own indentation.
            parent_indent -= 1;
        }
    }
    found
}

fn is_blank(l: &str) -> bool {
    let t = l.trim();
    t.is_empty() || t.starts_with('#') || matches!(t, "{" | "}" | "}," | "[" | "]" | "],")
}

fn indent_of(l: &str) -> usize {
    l.len() - l.trim_start_matches(' ').len()
}

fn first_child_indent(
    lines: &[String],
    start: usize,
    end: usize,
    parent_indent: isize,
) -> Option<usize> {
    lines[start..end]
        .iter()
        .filter(|l| !is_blank(l))
        .map(|l| indent_of(l))
        .find(|&i| i as isize > parent_indent)
}

fn key_matches(content: &str, key: &str) -> bool {
    for q in ["", "\"", "'"] {
        let pat = format!("{q}{key}{q}");
        if let Some(rest) = content.strip_prefix(&pat) {
            let rest = rest.trim_start();
            if rest.starts_with(':') {
                return true;
            }
        }
    }
    false
}

fn find_key(lines: &[String], start: usize, end: usize, indent: usize, key: &str) -> Option<usize> {
    (start..end).find(|&n| {
        let l = &lines[n];
        !is_blank(l) && indent_of(l) == indent && key_matches(&l[indent..], key)
    })
}

fn find_item(
    lines: &mut [String],
    start: usize,
    end: usize,
    indent: usize,
    index: usize,
) -> Option<usize> {
    let mut seen = 0usize;
    for (n, l) in lines.iter_mut().enumerate().take(end).skip(start) {
        if is_blank(l) || indent_of(l) != indent {
            continue;
        }
        let content = &l[indent..];
        if content == "-" || content.starts_with("- ") {
            if seen == index {
                // Blank the dash so the item's first key reads as indented.
                l.replace_range(indent..indent + 1, " ");
                return Some(n);
            }
            seen += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<Seg> {
        s.split('/')
            .map(|x| match x.parse::<usize>() {
                Ok(i) => Seg::Index(i),
                Err(_) => Seg::Key(x.to_string()),
            })
            .collect()
    }

    const Y: &str = "\
# comment
domains:
  vm0:
    memory: 512
    nics:
      - net: a
      - net: b
        ip: 1.2.3.4
  vm1:
    nics:
    - {net: a}
nets:
  a: {type: nat}
";

    #[test]
    fn finds_keys_and_items() {
        assert_eq!(locate(Y, &p("domains/vm0/memory")), Some((4, 5)));
        assert_eq!(locate(Y, &p("domains/vm0/nics/1/net")), Some((7, 9)));
        assert_eq!(locate(Y, &p("domains/vm0/nics/1/ip")), Some((8, 9)));
        assert_eq!(locate(Y, &p("domains/vm0/nics/0")), Some((6, 7)));
        // flow style: the deepest ancestor found
        assert_eq!(locate(Y, &p("domains/vm1/nics/0/net")), Some((11, 5)));
        assert_eq!(locate(Y, &p("nets/a/type")), Some((13, 3)));
        assert_eq!(locate(Y, &p("nope")), None);
    }

    #[test]
    fn json() {
        let j = "{\n  \"domains\": {\n    \"vm0\": {\n      \"memory\": \"x\"\n    }\n  }\n}\n";
        assert_eq!(locate(j, &p("domains/vm0/memory")), Some((4, 7)));
    }
}
