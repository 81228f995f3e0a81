//! What tests check on a finished process.

use std::process::Output;

/// Bytes (a process's output) as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A process's stdout as text.
pub fn stdout(o: &Output) -> String {
    text(&o.stdout)
}

/// A process's stderr as text.
pub fn stderr(o: &Output) -> String {
    text(&o.stderr)
}

/// Prints a finished run on the test's stderr (shown when the test fails):
/// `$ COMMAND_LINE`, its exit code, stdout and stderr.
pub fn echo(command_line: &str, out: &Output) {
    eprintln!(
        "$ {command_line}\n-> {:?}\n{}{}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
}

/// Asserts that the run `what` succeeded, showing its stderr when not;
/// returns its stdout.
pub fn ok(out: &Output, what: &str) -> String {
    assert!(out.status.success(), "{what}: {}", stderr(out));
    stdout(out)
}

/// Exit 2 with one line on stderr holding `msg`.
pub fn refused(out: &Output, msg: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(msg), "expected {msg:?} in {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
}

/// As [`refused`] for `init`, whose task tree (`@ ...` lines) comes first.
pub fn refused_init(out: &Output, msg: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| !l.starts_with("@ ")).collect();
    assert_eq!(errors.len(), 1, "one error line: {err}");
    assert!(errors[0].contains(msg), "expected {msg:?} in {err}");
}
