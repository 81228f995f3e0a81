//! Lago's `YAMLOutFormatPlugin`: `yaml.dump(info)` with PyYAML's defaults
//! (block style, sorted keys, indent 2, lines folded at 80 columns, YAML 1.1
//! implicit types quoted, non-ASCII escaped).
//!
//! A small emitter for JSON-shaped trees that follows PyYAML's `Emitter`
//! (scalar analysis, style choice, folding) so that the text is the one
//! Lago printed, and that PyYAML reads back the same values (`'yes'`,
//! `'007'` and `''` stay strings).

use lago_plugin_api::{OutFormatPlugin, PluginResult};
use serde_json::{Map, Value};

/// The `yaml` out-format.
pub struct YamlFormat;

impl OutFormatPlugin for YamlFormat {
    fn format(&self, tree: &Value) -> PluginResult<String> {
        let mut e = Emitter::new();
        e.node(tree, Ctx::Root);
        let mut out = e.finish();
        while out.ends_with('\n') {
            out.pop();
        }
        Ok(out)
    }
}

const BEST_INDENT: usize = 2;
const BEST_WIDTH: usize = 80;

/// Where a node sits (PyYAML's root/sequence/mapping/simple-key contexts).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Root,
    SequenceItem,
    MappingValue,
    SimpleKey,
}

struct Emitter {
    out: String,
    column: usize,
    indent: Option<usize>,
    indents: Vec<Option<usize>>,
    whitespace: bool,
    indention: bool,
    open_ended: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Single,
    Double,
}

impl Emitter {
    fn new() -> Emitter {
        Emitter {
            out: String::new(),
            column: 0,
            indent: None,
            indents: Vec::new(),
            whitespace: true,
            indention: true,
            open_ended: false,
        }
    }

    fn finish(mut self) -> String {
        self.write_indent();
        if self.open_ended {
            self.write_indicator("...", true, false, false);
            self.write_indent();
        }
        self.out
    }

    fn write(&mut self, s: &str) {
        self.column += s.chars().count();
        self.out.push_str(s);
    }

    fn increase_indent(&mut self, flow: bool, indentless: bool) {
        self.indents.push(self.indent);
        self.indent = match self.indent {
            None => Some(if flow { BEST_INDENT } else { 0 }),
            Some(i) if !indentless => Some(i + BEST_INDENT),
            Some(i) => Some(i),
        };
    }

    fn pop_indent(&mut self) {
        self.indent = self.indents.pop().flatten();
    }

    fn write_indicator(&mut self, ind: &str, need_ws: bool, whitespace: bool, indention: bool) {
        let data = if self.whitespace || !need_ws {
            ind.to_string()
        } else {
            format!(" {ind}")
        };
        self.whitespace = whitespace;
        self.indention = self.indention && indention;
        self.open_ended = false;
        self.write(&data);
    }

    fn write_line_break(&mut self) {
        self.whitespace = true;
        self.indention = true;
        self.column = 0;
        self.out.push('\n');
    }

    fn write_indent(&mut self) {
        let indent = self.indent.unwrap_or(0);
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.write_line_break();
        }
        if self.column < indent {
            self.whitespace = true;
            let pad = " ".repeat(indent - self.column);
            self.write(&pad);
        }
    }

    fn node(&mut self, v: &Value, ctx: Ctx) {
        match v {
            Value::Object(m) if !m.is_empty() => self.block_mapping(m),
            Value::Array(items) if !items.is_empty() => self.block_sequence(items, ctx),
            Value::Object(_) => self.flow_empty("{", "}"),
            Value::Array(_) => self.flow_empty("[", "]"),
            scalar => {
                let (text, implicit) = represent(scalar);
                self.increase_indent(true, false);
                self.scalar(&text, implicit, ctx);
                self.pop_indent();
            }
        }
    }

    fn flow_empty(&mut self, open: &str, close: &str) {
        self.write_indicator(open, true, true, false);
        self.increase_indent(true, false);
        self.pop_indent();
        self.write_indicator(close, false, false, false);
    }

    fn block_mapping(&mut self, m: &Map<String, Value>) {
        self.increase_indent(false, false);
        let mut keys: Vec<&String> = m.keys().collect();
        keys.sort();
        for k in keys {
            self.write_indent();
            let key = Value::String(k.clone());
            let a = analyze(k);
            if !a.empty && !a.multiline && k.chars().count() < 128 {
                self.node(&key, Ctx::SimpleKey);
                self.write_indicator(":", false, false, false);
            } else {
                // PyYAML's complex key: `? key` then `: value`.
                self.write_indicator("?", true, false, true);
                self.node(&key, Ctx::MappingValue);
                self.write_indent();
                self.write_indicator(":", true, false, true);
            }
            self.node(&m[k], Ctx::MappingValue);
        }
        self.pop_indent();
    }

    fn block_sequence(&mut self, items: &[Value], ctx: Ctx) {
        let indentless = ctx == Ctx::MappingValue && !self.indention;
        self.increase_indent(false, indentless);
        for item in items {
            self.write_indent();
            self.write_indicator("-", true, false, true);
            self.node(item, Ctx::SequenceItem);
        }
        self.pop_indent();
    }

    fn scalar(&mut self, text: &str, implicit_plain: bool, ctx: Ctx) {
        let a = analyze(text);
        let simple_key = ctx == Ctx::SimpleKey;
        let style =
            if implicit_plain && !(simple_key && (a.empty || a.multiline)) && a.allow_block_plain {
                Style::Plain
            } else if a.allow_single_quoted && !(simple_key && a.multiline) {
                Style::Single
            } else {
                Style::Double
            };
        let split = !simple_key;
        match style {
            Style::Plain => {
                if ctx == Ctx::Root {
                    self.open_ended = true;
                }
                self.write_plain(text, split);
            }
            Style::Single => self.write_single_quoted(text, split),
            Style::Double => self.write_double_quoted(text, split),
        }
    }

    fn write_plain(&mut self, text: &str, split: bool) {
        if text.is_empty() {
            return;
        }
        if !self.whitespace {
            self.write(" ");
        }
        self.whitespace = false;
        self.indention = false;
        let chars: Vec<char> = text.chars().collect();
        let (mut spaces, mut start, mut end) = (false, 0usize, 0usize);
        while end <= chars.len() {
            let ch = chars.get(end).copied();
            if spaces {
                if ch != Some(' ') {
                    if start + 1 == end && self.column > BEST_WIDTH && split {
                        self.write_indent();
                        self.whitespace = false;
                        self.indention = false;
                    } else {
                        let s: String = chars[start..end].iter().collect();
                        self.write(&s);
                    }
                    start = end;
                }
            } else if ch.is_none() || ch.is_some_and(|c| c == ' ' || is_break(c)) {
                let s: String = chars[start..end].iter().collect();
                self.write(&s);
                start = end;
            }
            if let Some(c) = ch {
                spaces = c == ' ';
            }
            end += 1;
        }
    }

    fn write_single_quoted(&mut self, text: &str, split: bool) {
        self.write_indicator("'", true, false, false);
        let chars: Vec<char> = text.chars().collect();
        let (mut spaces, mut breaks) = (false, false);
        let (mut start, mut end) = (0usize, 0usize);
        while end <= chars.len() {
            let ch = chars.get(end).copied();
            if spaces {
                if ch != Some(' ') {
                    if start + 1 == end
                        && self.column > BEST_WIDTH
                        && split
                        && start != 0
                        && end != chars.len()
                    {
                        self.write_indent();
                    } else {
                        let s: String = chars[start..end].iter().collect();
                        self.write(&s);
                    }
                    start = end;
                }
            } else if breaks {
                if !ch.is_some_and(is_break) {
                    if chars[start] == '\n' {
                        self.write_line_break();
                    }
                    for &br in &chars[start..end] {
                        if br == '\n' {
                            self.write_line_break();
                        } else {
                            self.whitespace = true;
                            self.indention = true;
                            self.column = 0;
                            self.out.push(br);
                        }
                    }
                    self.write_indent();
                    start = end;
                }
            } else if (ch.is_none() || ch.is_some_and(|c| c == ' ' || is_break(c) || c == '\''))
                && start < end
            {
                let s: String = chars[start..end].iter().collect();
                self.write(&s);
                start = end;
            }
            if ch == Some('\'') {
                self.write("''");
                start = end + 1;
            }
            if let Some(c) = ch {
                spaces = c == ' ';
                breaks = is_break(c);
            }
            end += 1;
        }
        self.write_indicator("'", false, false, false);
    }

    fn write_double_quoted(&mut self, text: &str, split: bool) {
        self.write_indicator("\"", true, false, false);
        let chars: Vec<char> = text.chars().collect();
        let (mut start, mut end) = (0usize, 0usize);
        while end <= chars.len() {
            let ch = chars.get(end).copied();
            let needs_escape = match ch {
                None => true,
                Some(c) => {
                    "\"\\\u{85}\u{2028}\u{2029}\u{feff}".contains(c) || !(' '..='~').contains(&c)
                }
            };
            if needs_escape {
                if start < end {
                    let s: String = chars[start..end].iter().collect();
                    self.write(&s);
                    start = end;
                }
                if let Some(c) = ch {
                    let data = match escape_of(c) {
                        Some(e) => format!("\\{e}"),
                        None if (c as u32) <= 0xFF => format!("\\x{:02X}", c as u32),
                        None if (c as u32) <= 0xFFFF => format!("\\u{:04X}", c as u32),
                        None => format!("\\U{:08X}", c as u32),
                    };
                    self.write(&data);
                    start = end + 1;
                }
            }
            if end > 0
                && end + 1 < chars.len()
                && (ch == Some(' ') || start >= end)
                && self.column as isize + end as isize - start as isize > BEST_WIDTH as isize
                && split
            {
                // Python slices an empty string when start > end.
                let s: String = chars.get(start..end).unwrap_or(&[]).iter().collect();
                let data = format!("{s}\\");
                if start < end {
                    start = end;
                }
                self.write(&data);
                self.write_indent();
                self.whitespace = false;
                self.indention = false;
                if chars[start] == ' ' {
                    self.write("\\");
                }
            }
            end += 1;
        }
        self.write_indicator("\"", false, false, false);
    }
}

fn is_break(c: char) -> bool {
    matches!(c, '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn escape_of(c: char) -> Option<char> {
    Some(match c {
        '\0' => '0',
        '\u{07}' => 'a',
        '\u{08}' => 'b',
        '\t' => 't',
        '\n' => 'n',
        '\u{0b}' => 'v',
        '\u{0c}' => 'f',
        '\r' => 'r',
        '\u{1b}' => 'e',
        '"' => '"',
        '\\' => '\\',
        '\u{85}' => 'N',
        '\u{a0}' => '_',
        '\u{2028}' => 'L',
        '\u{2029}' => 'P',
        _ => return None,
    })
}

/// The text of a scalar and whether its plain form reads back as that type.
fn represent(v: &Value) -> (String, bool) {
    match v {
        Value::Null => ("null".to_string(), true),
        Value::Bool(b) => (b.to_string(), true),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => (i.to_string(), true),
            (None, Some(u), _) => (u.to_string(), true),
            (None, None, Some(f)) => (yaml_float(f), true),
            _ => (n.to_string(), true),
        },
        Value::String(s) => (s.clone(), resolves_to_str(s)),
        // Containers are handled by the emitter.
        other => (other.to_string(), false),
    }
}

/// PyYAML's `represent_float`.
fn yaml_float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.to_string();
    }
    let mut s = super::py_float(f).to_lowercase();
    if !s.contains('.') && s.contains('e') {
        s = s.replacen('e', ".0e", 1);
    }
    s
}

/// Whether PyYAML's YAML 1.1 implicit resolvers read `s`, written plain, as
/// a string (and not a bool, int, float, null, timestamp, merge, ...).
pub fn resolves_to_str(s: &str) -> bool {
    !(is_null(s)
        || is_bool(s)
        || is_int(s)
        || is_float(s)
        || is_timestamp(s)
        || s == "<<"
        || s == "="
        || matches!(s, "!" | "&" | "*"))
}

fn is_null(s: &str) -> bool {
    matches!(s, "" | "~" | "null" | "Null" | "NULL")
}

fn is_bool(s: &str) -> bool {
    matches!(
        s,
        "yes"
            | "Yes"
            | "YES"
            | "no"
            | "No"
            | "NO"
            | "true"
            | "True"
            | "TRUE"
            | "false"
            | "False"
            | "FALSE"
            | "on"
            | "On"
            | "ON"
            | "off"
            | "Off"
            | "OFF"
    )
}

/// A tiny cursor for the resolvers' patterns.
struct Cur<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cur<'a> {
    fn new(s: &'a str) -> Cur<'a> {
        Cur {
            b: s.as_bytes(),
            i: 0,
        }
    }
    fn done(&self) -> bool {
        self.i == self.b.len()
    }
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn eat_any(&mut self, set: &[u8]) -> bool {
        match self.peek() {
            Some(c) if set.contains(&c) => {
                self.i += 1;
                true
            }
            _ => false,
        }
    }
    fn sign(&mut self) {
        self.eat_any(b"+-");
    }
    /// Zero or more bytes matching `f`; returns how many.
    fn many(&mut self, f: impl Fn(u8) -> bool) -> usize {
        let start = self.i;
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
        self.i - start
    }
    fn str(&mut self, s: &str) -> bool {
        if self.b[self.i..].starts_with(s.as_bytes()) {
            self.i += s.len();
            true
        } else {
            false
        }
    }
}

fn digit_(c: u8) -> bool {
    c.is_ascii_digit() || c == b'_'
}

/// `(?::[0-5]?[0-9])+`, at least once.
fn sexagesimal_tail(c: &mut Cur<'_>) -> bool {
    let mut n = 0;
    while c.eat(b':') {
        let save = c.i;
        let d = c.many(|x| x.is_ascii_digit());
        // [0-5]?[0-9]: one digit, or two with the first in 0..=5.
        let ok = match d {
            1 => true,
            2 => (b'0'..=b'5').contains(&c.b[save]),
            _ => false,
        };
        if !ok {
            return false;
        }
        n += 1;
    }
    n > 0
}

fn is_int(s: &str) -> bool {
    let alts: [fn(&mut Cur<'_>) -> bool; 5] = [
        |c| {
            c.sign();
            c.str("0b") && c.many(|x| matches!(x, b'0' | b'1' | b'_')) > 0
        },
        |c| {
            c.sign();
            c.eat(b'0') && c.many(|x| matches!(x, b'0'..=b'7' | b'_')) > 0
        },
        |c| {
            c.sign();
            c.eat(b'0')
                || (c.eat_any(b"123456789") && {
                    c.many(digit_);
                    true
                })
        },
        |c| {
            c.sign();
            c.str("0x") && c.many(|x| x.is_ascii_hexdigit() || x == b'_') > 0
        },
        |c| {
            c.sign();
            c.eat_any(b"123456789") && {
                c.many(digit_);
                sexagesimal_tail(c)
            }
        },
    ];
    alts.iter().any(|f| {
        let mut c = Cur::new(s);
        f(&mut c) && c.done()
    })
}

fn exponent(c: &mut Cur<'_>) -> bool {
    // (?:[eE][-+][0-9]+)? — optional; when present it must be whole.
    if c.eat_any(b"eE") {
        c.eat_any(b"+-") && c.many(|x| x.is_ascii_digit()) > 0
    } else {
        true
    }
}

fn is_float(s: &str) -> bool {
    let alts: [fn(&mut Cur<'_>) -> bool; 5] = [
        |c| {
            c.sign();
            c.eat_any(b"0123456789") && {
                c.many(digit_);
                c.eat(b'.') && {
                    c.many(digit_);
                    exponent(c)
                }
            }
        },
        |c| c.eat(b'.') && c.many(digit_) > 0 && exponent(c),
        |c| {
            c.sign();
            c.eat_any(b"0123456789") && {
                c.many(digit_);
                sexagesimal_tail(c) && c.eat(b'.') && {
                    c.many(digit_);
                    true
                }
            }
        },
        |c| {
            c.sign();
            c.eat(b'.') && (c.str("inf") || c.str("Inf") || c.str("INF"))
        },
        |c| c.eat(b'.') && (c.str("nan") || c.str("NaN") || c.str("NAN")),
    ];
    alts.iter().any(|f| {
        let mut c = Cur::new(s);
        f(&mut c) && c.done()
    })
}

fn is_timestamp(s: &str) -> bool {
    let mut c = Cur::new(s);
    let n = |c: &mut Cur<'_>, min: usize, max: usize| {
        let k = c.many(|x| x.is_ascii_digit());
        (min..=max).contains(&k)
    };
    // [0-9]{4}-[0-9]{1,2}-[0-9]{1,2}
    if !(n(&mut c, 4, 4) && c.eat(b'-')) {
        return false;
    }
    let save = c.i;
    let month = c.many(|x| x.is_ascii_digit());
    let short_date = month == 2 && c.eat(b'-') && c.many(|x| x.is_ascii_digit()) == 2 && c.done();
    if short_date {
        return true;
    }
    c.i = save;
    if !(n(&mut c, 1, 2) && c.eat(b'-') && n(&mut c, 1, 2)) {
        return false;
    }
    // (?:[Tt]|[ \t]+)
    if !(c.eat_any(b"Tt") || c.many(|x| x == b' ' || x == b'\t') > 0) {
        return false;
    }
    if !(n(&mut c, 1, 2) && c.eat(b':') && n(&mut c, 2, 2) && c.eat(b':') && n(&mut c, 2, 2)) {
        return false;
    }
    if c.eat(b'.') {
        c.many(|x| x.is_ascii_digit());
    }
    c.many(|x| x == b' ' || x == b'\t');
    if c.eat(b'Z') {
        return c.done();
    }
    if c.eat_any(b"+-") {
        if !n(&mut c, 1, 2) {
            return false;
        }
        if c.eat(b':') && !n(&mut c, 2, 2) {
            return false;
        }
    }
    c.done()
}

/// PyYAML's `analyze_scalar`, the flags the style choice needs.
struct Analysis {
    empty: bool,
    multiline: bool,
    allow_block_plain: bool,
    allow_single_quoted: bool,
}

fn analyze(s: &str) -> Analysis {
    if s.is_empty() {
        return Analysis {
            empty: true,
            multiline: false,
            allow_block_plain: true,
            allow_single_quoted: true,
        };
    }
    let chars: Vec<char> = s.chars().collect();
    let (mut block_ind, mut flow_ind) = (false, false);
    if s.starts_with("---") || s.starts_with("...") {
        block_ind = true;
        flow_ind = true;
    }
    let mut preceded_by_ws = true;
    let mut followed_by_ws = chars.len() == 1 || is_ws_or_end(chars.get(1).copied());
    let (mut line_breaks, mut special) = (false, false);
    let (mut leading_space, mut leading_break) = (false, false);
    let (mut trailing_space, mut trailing_break) = (false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut previous_space, mut previous_break) = (false, false);
    for (index, &ch) in chars.iter().enumerate() {
        if index == 0 {
            if "#,[]{}&*!|>'\"%@`".contains(ch) {
                flow_ind = true;
                block_ind = true;
            }
            if ch == '?' || ch == ':' {
                flow_ind = true;
                if followed_by_ws {
                    block_ind = true;
                }
            }
            if ch == '-' && followed_by_ws {
                flow_ind = true;
                block_ind = true;
            }
        } else {
            if ",?[]{}".contains(ch) {
                flow_ind = true;
            }
            if ch == ':' {
                flow_ind = true;
                if followed_by_ws {
                    block_ind = true;
                }
            }
            if ch == '#' && preceded_by_ws {
                flow_ind = true;
                block_ind = true;
            }
        }
        if is_break(ch) {
            line_breaks = true;
        }
        if !(ch == '\n' || (' '..='~').contains(&ch)) {
            special = true;
        }
        if ch == ' ' {
            if index == 0 {
                leading_space = true;
            }
            if index == chars.len() - 1 {
                trailing_space = true;
            }
            if previous_break {
                break_space = true;
            }
            previous_space = true;
            previous_break = false;
        } else if is_break(ch) {
            if index == 0 {
                leading_break = true;
            }
            if index == chars.len() - 1 {
                trailing_break = true;
            }
            if previous_space {
                space_break = true;
            }
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_ws = is_ws_or_end(Some(ch));
        followed_by_ws = index + 2 >= chars.len() || is_ws_or_end(chars.get(index + 2).copied());
    }
    let mut allow_block_plain = true;
    let mut allow_single_quoted = true;
    if leading_space || leading_break || trailing_space || trailing_break {
        allow_block_plain = false;
    }
    if break_space {
        allow_block_plain = false;
        allow_single_quoted = false;
    }
    if space_break || special {
        allow_block_plain = false;
        allow_single_quoted = false;
    }
    if line_breaks {
        allow_block_plain = false;
    }
    if block_ind {
        allow_block_plain = false;
    }
    let _ = flow_ind;
    Analysis {
        empty: false,
        multiline: line_breaks,
        allow_block_plain,
        allow_single_quoted,
    }
}

fn is_ws_or_end(c: Option<char>) -> bool {
    match c {
        None => true,
        Some(c) => c == '\0' || c == ' ' || c == '\t' || c == '\r' || is_break(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn y(v: Value) -> String {
        YamlFormat.format(&v).unwrap_or_default()
    }

    #[test]
    fn block_style_sorted() {
        assert_eq!(
            y(json!({"b": [1, "x"], "a": {"d": true, "c": null}})),
            "a:\n  c: null\n  d: true\nb:\n- 1\n- x"
        );
    }

    #[test]
    fn implicit_types_are_quoted() {
        assert_eq!(
            y(json!({"k": ["yes", "007", "", "1.5", "2024-01-02", "0x1F", "1:30", "text"]})),
            "k:\n- 'yes'\n- '007'\n- ''\n- '1.5'\n- '2024-01-02'\n- '0x1F'\n- '1:30'\n- text"
        );
    }

    #[test]
    fn resolvers() {
        assert!(is_int("-12_3") && !is_int("0o7") && is_int("0777") && is_int("190:20:30"));
        assert!(is_float("1.0e+20") && is_float(".5") && !is_float("1e20") && is_float("-.inf"));
        assert!(is_timestamp("2001-12-14t21:59:43.10-05:00") && !is_timestamp("2001-1-1"));
        assert!(resolves_to_str("1e20") && resolves_to_str("hello") && !resolves_to_str("~"));
    }

    #[test]
    fn lists_of_maps_and_nested_lists() {
        assert_eq!(
            y(json!([{"b": 1, "a": 2}, [1, 2]])),
            "- a: 2\n  b: 1\n- - 1\n  - 2"
        );
    }

    #[test]
    fn top_level_scalar_is_open_ended() {
        assert_eq!(y(json!("text")), "text\n...");
        assert_eq!(y(json!("yes")), "'yes'");
    }
}
