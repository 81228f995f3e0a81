//! A linear pre-scan of an init file's text that refuses nesting deeper than
//! [`MAX_DEPTH`] before the parser sees it: the YAML parser spends time
//! quadratic in the depth of flow collections (`[[[[...]]]]`) before its own
//! recursion limit stops it (40 000 levels: 11 s), so the depth is measured
//! first, in one pass.
//!
//! The depth of a point is its block depth (the number of enclosing
//! indentation levels, plus compact `- - x` items) plus its flow depth (open
//! `[` and `{`). Quoted scalars, comments and block scalars (`|`, `>`) are
//! skipped; a `[` or `{` in block context counts only where a value starts,
//! as YAML reads it. Real init files nest 6 to 10 levels.

/// The deepest nesting an init file may have.
pub const MAX_DEPTH: usize = 64;

/// `Err((line, column))` (1-based) of the first point nested deeper than
/// [`MAX_DEPTH`].
pub fn check(text: &str) -> Result<(), (usize, usize)> {
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
                Err((n + 1, col + 1))
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
                '-' | '?' if value_start && flow == 0 => {
                    if chars.peek().is_none_or(|&(_, d)| d == ' ') {
                        block += 1;
                        too_deep(col, block, flow)?;
                    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_and_block_depth() {
        let deep = |n: usize| format!("a: {}1{}\n", "[".repeat(n), "]".repeat(n));
        assert!(check(&deep(MAX_DEPTH - 1)).is_ok());
        assert_eq!(check(&deep(MAX_DEPTH)), Err((1, 4 + MAX_DEPTH - 1)));
        assert_eq!(check(&deep(40_000)), Err((1, 4 + MAX_DEPTH - 1)));
        let dashes = format!("{}x\n", "- ".repeat(MAX_DEPTH + 1));
        // A list item counts its sequence and its content.
        assert_eq!(check(&dashes), Err((1, 2 * MAX_DEPTH - 1)));
        let mut block = String::new();
        for i in 0..=MAX_DEPTH {
            block.push_str(&format!("{}k{i}:\n", " ".repeat(i)));
        }
        assert_eq!(check(&block), Err((MAX_DEPTH + 1, MAX_DEPTH + 1)));
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
