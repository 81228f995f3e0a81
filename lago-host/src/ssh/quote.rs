//! POSIX shell quoting: SSH sends one command string that the remote user's
//! shell parses, so each argv element is quoted to reach the remote program
//! unchanged.

use std::borrow::Cow;

fn is_safe(b: u8) -> bool {
    // Deliberately excludes `=` (an assignment when first), `~` (tilde
    // expansion), `#` (comment) and every glob or expansion character.
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'_' | b'-' | b'.' | b'/' | b',' | b':' | b'@' | b'%' | b'+'
        )
}

/// Quotes one word for a POSIX shell: unchanged when it only holds safe
/// characters, otherwise in single quotes with each `'` written as `'\''`.
/// The empty string becomes `''`.
pub fn shell_quote(arg: &str) -> Cow<'_, str> {
    if !arg.is_empty() && arg.bytes().all(is_safe) {
        return Cow::Borrowed(arg);
    }
    let mut s = String::with_capacity(arg.len() + 2);
    s.push('\'');
    for c in arg.chars() {
        if c == '\'' {
            s.push_str("'\\''");
        } else {
            s.push(c);
        }
    }
    s.push('\'');
    Cow::Owned(s)
}

/// Joins argv into one command line in which the remote shell sees exactly
/// these words.
pub fn join_argv<S: AsRef<str>>(argv: &[S]) -> String {
    argv.iter()
        .map(|a| shell_quote(a.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_words_unchanged() {
        assert_eq!(shell_quote("ls"), "ls");
        assert_eq!(shell_quote("-la"), "-la");
        assert_eq!(shell_quote("--opt=x"), "'--opt=x'");
        assert_eq!(shell_quote("/usr/bin/x.y"), "/usr/bin/x.y");
    }

    #[test]
    fn specials_quoted() {
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("$HOME"), "'$HOME'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("a\nb"), "'a\nb'");
        assert_eq!(shell_quote("~"), "'~'");
        assert_eq!(shell_quote("*"), "'*'");
        assert_eq!(shell_quote("#x"), "'#x'");
        assert_eq!(shell_quote("`x`"), "'`x`'");
        assert_eq!(shell_quote("a\\b"), "'a\\b'");
    }

    #[test]
    fn join() {
        let argv = ["sh", "-c", "echo \"$1\" 'x'", "--", ""];
        assert_eq!(join_argv(&argv), "sh -c 'echo \"$1\" '\\''x'\\''' -- ''");
    }

    /// The quoted line, parsed by a real `sh`, gives back the same argv.
    #[test]
    fn round_trip_through_sh() {
        let argv: Vec<String> = [
            "printf",
            "%s\\0",
            "",
            " lead",
            "trail ",
            "two  spaces",
            "'",
            "''",
            "\"",
            "$HOME",
            "${x:-y}",
            "$(id)",
            "`id`",
            "a\nb",
            "\t",
            "-c",
            "--",
            "-",
            "~",
            "~root",
            "*",
            "?",
            "[a]",
            "a=b",
            "!",
            "#c",
            "\\",
            "é ü 日本",
            ";",
            "&&",
            "|",
            ">x",
            "<x",
            "(",
            "{a,b}",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let line = join_argv(&argv);
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&line)
            .current_dir(std::env::temp_dir())
            .output()
            .expect("run sh");
        assert!(out.status.success(), "{line}");
        let got: Vec<&[u8]> = out.stdout.split(|b| *b == 0).collect();
        let want: Vec<&[u8]> = argv[2..].iter().map(|s| s.as_bytes()).collect();
        assert_eq!(&got[..got.len() - 1], &want[..], "{line}");
    }

    #[test]
    fn first_word_assignment_is_not_an_assignment() {
        // `a=b` as a command must run a program named `a=b`, not set a variable.
        assert_eq!(join_argv(&["a=b", "x"]), "'a=b' x");
    }
}
