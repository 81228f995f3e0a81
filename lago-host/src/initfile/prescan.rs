//! A linear pre-scan of an init file's text, before the parser sees it. It
//! refuses:
//!
//! * nesting deeper than [`MAX_DEPTH`]: the YAML parser spends time
//!   quadratic in the depth of flow collections (`[[[[...]]]]`) before its own
//!   recursion limit stops it (40 000 levels: 11 s), so the depth is measured
//!   first, in one pass;
//! * integers written with a leading zero (`memory: 010`): PyYAML (YAML 1.1,
//!   Lago) read them as octal (8), the YAML 1.2 parser here as decimal (10);
//!   the parsed value no longer shows which was written, so the text is
//!   checked. `0o10` and `0x10` mean the same in both and are accepted.
//!
//! The depth of a point is its block depth (the number of enclosing
//! indentation levels, plus compact `- - x` items) plus its flow depth (open
//! `[` and `{`). Quoted scalars, comments and block scalars (`|`, `>`) are
//! skipped; a `[` or `{` in block context counts only where a value starts,
//! as YAML reads it. Real init files nest 6 to 10 levels.

/// The deepest nesting an init file may have.
pub const MAX_DEPTH: usize = 64;

/// What the scan refused, at 1-based (line, column).
#[derive(Debug, PartialEq, Eq)]
pub enum Finding {
    TooDeep(usize, usize),
    LeadingZero(usize, usize, String),
}

/// The first point nested deeper than [`MAX_DEPTH`] or the first integer
/// with a leading zero.
pub fn check(text: &str) -> Result<(), Finding> {
    let mut indents: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    // An open quoted scalar (its quote character) carries over lines.
    let mut quote: Option<char> = None;
    // The indentation of a line that opened a block scalar.
    let mut block_scalar: Option<usize> = None;
    for (n, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let content = line.trim();
        if let Some(at) = block_scalar {
            if content.is_empty() || indent > at {
                continue;
            }
            block_scalar = None;
        }
        let mut block = indents.len();
        if flow == 0 && quote.is_none() && !content.is_empty() && !content.starts_with('#') {
            while indents.last().is_some_and(|&i| i >= indent) {
                indents.pop();
            }
            indents.push(indent);
            block = indents.len();
        }
        let too_deep = |col: usize, block: usize, flow: usize| {
            if block + flow > MAX_DEPTH {
                Err(Finding::TooDeep(n + 1, col + 1))
            } else {
                Ok(())
            }
        };
        too_deep(indent, block, flow)?;
        // Where a value may start: the line's content, after `- `, `: `, `? `.
        let mut value_start = true;
        let mut prev = ' ';
        let mut chars = line.char_indices().skip(indent).peekable();
        while let Some((col, c)) = chars.next() {
            if let Some(q) = quote {
                if q == '"' && c == '\\' {
                    chars.next();
                } else if c == q {
                    if q == '\'' && chars.peek().is_some_and(|&(_, d)| d == '\'') {
                        chars.next();
                    } else {
                        quote = None;
                    }
                }
                prev = c;
                continue;
            }
            let after_space = prev == ' ' || prev == '\t';
            match c {
                '#' if after_space => break,
                '0'..='9' | '-' | '+'
                    if value_start && leading_zero(scalar_at(line, col, flow)) =>
                {
                    let token = scalar_at(line, col, flow).to_string();
                    return Err(Finding::LeadingZero(n + 1, col + 1, token));
                }
                '"' | '\'' if value_start || flow > 0 && matches!(prev, '[' | '{' | ',' | ' ') => {
                    quote = Some(c);
                }
                '[' | '{' if value_start || flow > 0 => {
                    flow += 1;
                    too_deep(col, block, flow)?;
                    value_start = true;
                    prev = c;
                    continue;
                }
                ']' | '}' if flow > 0 => flow -= 1,
                '-' | '?'
                    if value_start && flow == 0 && chars.peek().is_none_or(|&(_, d)| d == ' ') =>
                {
                    block += 1;
                    too_deep(col, block, flow)?;
                }
                '|' | '>' if value_start && flow == 0 => {
                    block_scalar = Some(indent);
                    break;
                }
                ' ' | '\t' => {
                    prev = c;
                    continue;
                }
                _ => {}
            }
            value_start = match c {
                ',' => flow > 0,
                ':' => true,
                '-' | '?' => value_start,
                _ => false,
            } && (c != ':' || chars.peek().is_none_or(|&(_, d)| d == ' '));
            prev = c;
        }
    }
    Ok(())
}

/// The plain scalar starting at `col`: to the end of the line or a comment,
/// and in flow context also to a `,`, `]` or `}`.
fn scalar_at(line: &str, col: usize, flow: usize) -> &str {
    let rest = &line[col..];
    let end = rest
        .find([',', ']', '}', '#'])
        .filter(|_| flow > 0)
        .or_else(|| rest.find(" #"))
        .unwrap_or(rest.len());
    rest[..end].trim_end()
}

/// `010`, `-007`, `0_10`: what YAML 1.1 read as octal.
fn leading_zero(token: &str) -> bool {
    let digits = token.strip_prefix(['-', '+']).unwrap_or(token);
    digits.len() > 1
        && digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_and_block_depth() {
        let deep = |n: usize| format!("a: {}1{}\n", "[".repeat(n), "]".repeat(n));
        assert!(check(&deep(MAX_DEPTH - 1)).is_ok());
        assert_eq!(
            check(&deep(MAX_DEPTH)),
            Err(Finding::TooDeep(1, 4 + MAX_DEPTH - 1))
        );
        assert_eq!(
            check(&deep(40_000)),
            Err(Finding::TooDeep(1, 4 + MAX_DEPTH - 1))
        );
        let dashes = format!("{}x\n", "- ".repeat(MAX_DEPTH + 1));
        // A list item counts its sequence and its content.
        assert_eq!(check(&dashes), Err(Finding::TooDeep(1, 2 * MAX_DEPTH - 1)));
        let mut block = String::new();
        for i in 0..=MAX_DEPTH {
            block.push_str(&format!("{}k{i}:\n", " ".repeat(i)));
        }
        assert_eq!(
            check(&block),
            Err(Finding::TooDeep(MAX_DEPTH + 1, MAX_DEPTH + 1))
        );
    }

    #[test]
    fn leading_zero_integers() {
        let lz = |l, c, t: &str| Err(Finding::LeadingZero(l, c, t.to_string()));
        assert_eq!(check("a:\n  memory: 010\n"), lz(2, 11, "010"));
        assert_eq!(check("a: {x: 1, y: -007}\n"), lz(1, 14, "-007"));
        assert_eq!(check("a: [1, 2]\nb:\n  - 0_10 # c\n"), lz(3, 5, "0_10"));
        assert_eq!(check("b: -010\n"), lz(1, 4, "-010"));
        let fine = "a: 0\nb: 10\nc: 0o10\nd: 0x10\ne: \"010\"\nf: 0.5\ng: 1.0\nh: v010\ni: [0, 100]\nj: 010a\n";
        assert_eq!(check(fine), Ok(()));
    }

    #[test]
    fn brackets_in_text_do_not_count() {
        let many = "[".repeat(200);
        let text = format!(
            "a: \"{many}\"\nb: '{many}'\nc: x{many}\nd: |\n  {many}\n# {many}\ne: [ok, \"{many}\"]\nf: 1\n"
        );
        assert_eq!(check(&text), Ok(()));
        let json = format!("{{\"a\": [\"{many}\", {{\"b\": \"\\\"{many}\"}}]}}\n");
        assert_eq!(check(&json), Ok(()));
    }
}
