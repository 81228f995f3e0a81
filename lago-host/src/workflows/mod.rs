//! What test suites do inside running VMs, built on the SSH layer: copying
//! files and folders in and out ([`copy`]), running deploy scripts
//! ([`deploy`]), collecting artifacts ([`collect`]) and writing an Ansible
//! inventory of the environment ([`ansible`]).
//!
//! The functions here take an [`SshPool`](crate::ssh::SshPool) and an
//! [`SshTarget`](crate::ssh::SshTarget) (or the stored spec) rather than an
//! [`Environment`](crate::environment::Environment), so that they can be
//! used and tested without a hypervisor; the verbs in `cli/` wire them to
//! the environment.

pub mod ansible;
pub mod collect;
pub mod copy;
pub mod deploy;

use lago_plugin_api::spec::VmSpec;

use crate::environment::Environment;
use crate::error::{Error, ErrorClass};
use crate::ssh::SshError;

/// Whether an SSH-layer error means the VM could not be reached at all (as
/// opposed to a refused key, a failed command, a local file problem).
pub fn is_unreachable(e: &SshError) -> bool {
    matches!(
        e,
        SshError::Connect { .. }
            | SshError::Timeout { .. }
            | SshError::NotReachable { .. }
            | SshError::Session { .. }
    )
}

/// For a verb whose SSH work could not reach `vm`: the user error saying
/// the VM is not running, when its provider says so (`None` when it is
/// running or its state cannot be had).
pub fn not_running(env: &Environment, vm: &VmSpec) -> Option<Error> {
    let states = env.states().ok()?;
    let state = states.vms.get(&vm.name)?;
    (state != "running").then(|| Error::user(not_running_message(&vm.name, state)))
}

/// The CLI's words for a VM that is not running, by its provider's `state`
/// (the SDK has its own, see `SdkError::not_running`).
pub fn not_running_message(vm: &str, state: &str) -> String {
    if state == "paused" {
        format!("VM `{vm}` is paused; resume it first (`virsh resume`)")
    } else {
        format!("VM `{vm}` is not running, but `{state}`; start it with `lago start {vm}`")
    }
}

/// One error out of several VMs' errors, each on its own line; a user
/// error only when all of them are. `errors` must not be empty.
pub fn combine_errors(mut errors: Vec<Error>) -> Error {
    if errors.len() == 1 {
        return errors.remove(0);
    }
    let all_user = errors.iter().all(|e| e.class() == ErrorClass::User);
    let message = format!(
        "{} VMs failed:\n{}",
        errors.len(),
        errors
            .iter()
            .map(|e| format!("- {}", e.message()))
            .collect::<Vec<_>>()
            .join("\n")
    );
    if all_user {
        Error::user(message)
    } else {
        Error::internal(message)
    }
}

/// Runs `f` on every item, each on its own thread, and returns the results
/// in the items' order. A worker that panicked gives `Err(message)`.
pub fn in_parallel<T, R, F>(items: &[T], f: F) -> Vec<Result<R, String>>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    std::thread::scope(|scope| {
        let handles: Vec<_> = items.iter().map(|item| scope.spawn(|| f(item))).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().map_err(|panic| {
                    panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "worker panicked".to_string())
                })
            })
            .collect()
    })
}

/// The last `lines` lines of `bytes` (lossy UTF-8, terminal control
/// removed: the bytes come from a guest), each indented by `indent`, joined
/// by newlines; empty when `bytes` holds only whitespace.
pub fn tail_lines(bytes: &[u8], lines: usize, indent: &str) -> String {
    let text = crate::sanitize::terminal_bytes(bytes);
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
    fn in_parallel_keeps_order_and_reports_panics() {
        let items = [1, 2, 3, 4];
        let out = in_parallel(&items, |&n| {
            if n == 3 {
                panic!("three");
            }
            n * 10
        });
        assert_eq!(out, vec![Ok(10), Ok(20), Err("three".to_string()), Ok(40)]);
    }

    #[test]
    fn errors_of_several_vms_combine() {
        let one = combine_errors(vec![Error::user("VM a: x")]);
        assert_eq!(one, Error::user("VM a: x"));
        let two = combine_errors(vec![Error::user("VM a: x"), Error::user("VM b: y")]);
        assert_eq!(two.class(), ErrorClass::User);
        assert_eq!(two.message(), "2 VMs failed:\n- VM a: x\n- VM b: y");
        let mixed = combine_errors(vec![Error::user("a"), Error::internal("b")]);
        assert_eq!(mixed.class(), ErrorClass::Internal);
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let text = b"a\nb\nc\nd\n\n";
        assert_eq!(tail_lines(text, 2, "  "), "  c\n  d");
        assert_eq!(tail_lines(text, 10, ""), "a\nb\nc\nd");
        assert_eq!(tail_lines(b" \n\n", 3, ""), "");
        assert_eq!(tail_lines(b"a\x1b[2J\rb\n\x1b]0;t\x07c", 5, ""), "ab\nc");
    }
}
