//! Text that came from a guest (console logs, command output shown in
//! messages) made safe to print on the user's terminal.
//!
//! A guest controls every byte of its serial console and of its commands'
//! output; printed as they are, escape sequences could move the cursor,
//! rewrite earlier lines, set the window title or hide text. [`terminal_text`]
//! keeps printable text, newlines and tabs and drops the rest.

/// `text` without terminal control: ANSI escape sequences (CSI `ESC [ ...`,
/// OSC `ESC ] ... BEL|ST`, DCS/SOS/PM/APC strings, two-byte `ESC x`), the C0
/// controls except `\n` and `\t` (so `\r`, backspace and BEL go), DEL, the
/// C1 controls (U+0080..U+009F, of which U+009B is a one-character CSI) and
/// the Unicode bidirectional overrides and isolates (which reorder what the
/// terminal shows). Everything else is kept as it is.
pub fn terminal_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters and intermediates, up to a final byte.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&c) {
                            break;
                        }
                    }
                }
                // Strings ended by ST (`ESC \`) or, for OSC, also by BEL.
                Some(']' | 'P' | 'X' | '^' | '_') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' || c == '\u{9c}' {
                            break;
                        }
                        if c == '\u{1b}' {
                            if chars.peek() == Some(&'\\') {
                                chars.next();
                            }
                            break;
                        }
                    }
                }
                // `ESC x` (charset selection and the like take one more).
                Some('(' | ')' | '*' | '+' | '#' | '%' | ' ') => {
                    chars.next();
                }
                Some(_) | None => {}
            },
            // C1 CSI: like `ESC [`.
            '\u{9b}' => {
                for c in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&c) {
                        break;
                    }
                }
            }
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {}
            c => out.push(c),
        }
    }
    out
}

/// `line` cut to `max` characters (with `...` when cut), spaces at both
/// ends trimmed: a guest's or a plugin's words quoted in one of lago's.
pub fn quote(line: &str, max: usize) -> String {
    let line = line.trim();
    match line.char_indices().nth(max) {
        Some((at, _)) => format!("{}...", &line[..at]),
        None => line.to_string(),
    }
}

/// [`terminal_text`] of bytes read from a guest (invalid UTF-8 replaced).
pub fn terminal_bytes(bytes: &[u8]) -> String {
    terminal_text(&String::from_utf8_lossy(bytes))
}

/// The last `max` bytes of an open file (all of it when shorter): a file a
/// guest writes (its console log) can be of any size, so only its end is
/// read.
pub fn read_end(f: &mut std::fs::File, max: u64) -> std::io::Result<Vec<u8>> {
    let len = f.metadata()?.len();
    read_range(f, len.saturating_sub(max), max)
}

/// Up to `max` bytes of `f` from byte offset `pos` (fewer at its end).
pub fn read_range(f: &mut std::fs::File, pos: u64, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    f.seek(SeekFrom::Start(pos))?;
    let mut out = Vec::new();
    f.take(max).read_to_end(&mut out)?;
    Ok(out)
}

/// The last `lines` lines of `bytes` (lossy UTF-8, terminal control
/// removed: the bytes come from a guest), each indented by `indent`, joined
/// by newlines; empty when `bytes` holds only whitespace.
pub fn tail_lines(bytes: &[u8], lines: usize, indent: &str) -> String {
    let text = terminal_bytes(bytes);
    let all: Vec<&str> = text.trim_end().lines().collect();
    if all.iter().all(|l| l.trim().is_empty()) {
        return String::new();
    }
    all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|l| format!("{indent}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        let text = b"a\nb\nc\nd\n\n";
        assert_eq!(tail_lines(text, 2, "  "), "  c\n  d");
        assert_eq!(tail_lines(text, 10, ""), "a\nb\nc\nd");
        assert_eq!(tail_lines(b" \n\n", 3, ""), "");
        assert_eq!(tail_lines(b"a\x1b[2J\rb\n\x1b]0;t\x07c", 5, ""), "ab\nc");
    }

    #[test]
    fn plain_text_is_kept() {
        let s = "Booting Linux 6.1 …\n\tok: ünïcödé [  1.234] x=1;y=2";
        assert_eq!(terminal_text(s), s);
    }

    #[test]
    fn csi_sequences_go() {
        assert_eq!(terminal_text("\x1b[31mred\x1b[0m"), "red");
        assert_eq!(terminal_text("a\x1b[2J\x1b[1;1Hb"), "ab");
        assert_eq!(terminal_text("a\x1b[?25lb"), "ab");
        assert_eq!(terminal_text("a\u{9b}2Jb"), "ab");
        // Cut off at the end: nothing of it stays.
        assert_eq!(terminal_text("a\x1b[12"), "a");
    }

    #[test]
    fn osc_and_string_sequences_go() {
        assert_eq!(terminal_text("a\x1b]0;owned title\x07b"), "ab");
        assert_eq!(
            terminal_text("a\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\b"),
            "alinkb"
        );
        assert_eq!(terminal_text("a\x1bPq#0;data\x1b\\b"), "ab");
        assert_eq!(terminal_text("a\x1b_apc\x1b\\b"), "ab");
        assert_eq!(terminal_text("a\x1b]never ended"), "a");
    }

    #[test]
    fn short_escapes_and_controls_go() {
        assert_eq!(terminal_text("a\x1bcb"), "ab");
        assert_eq!(terminal_text("a\x1b(0b"), "ab");
        assert_eq!(terminal_text("secret\rshown"), "secretshown");
        assert_eq!(terminal_text("a\x08\x07\x00\x7fb"), "ab");
        assert_eq!(terminal_text("a\u{85}\u{9c}b"), "ab");
        assert_eq!(terminal_text("line1\nline2\tcol"), "line1\nline2\tcol");
    }

    #[test]
    fn bidi_overrides_go() {
        assert_eq!(terminal_text("a\u{202e}cba\u{202c}d"), "acbad");
        assert_eq!(terminal_text("x\u{2066}y\u{2069}"), "xy");
    }

    #[test]
    fn bytes_are_decoded_lossily() {
        assert_eq!(terminal_bytes(b"ok\xff\x1b[1m!"), "ok\u{fffd}!");
    }
}
