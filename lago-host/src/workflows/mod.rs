//! What test suites do inside running VMs, built on the SSH layer: copying
//! files and folders in and out ([`copy`]), running deploy scripts
//! ([`deploy`]), collecting artifacts ([`collect`]) and writing an Ansible
//! inventory of the environment ([`ansible`]).
//!
//! The functions here take an [`SshPool`](crate::ssh::SshPool) and an
//! [`SshTarget`](crate::ssh::SshTarget) (or the stored spec) rather than an
//! [`Env`](crate::environment::Env), so that they can be
//! used and tested without a hypervisor; the verbs in `cli/` wire them to
//! the environment.

pub mod ansible;
pub mod collect;
pub mod copy;
pub mod deploy;

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
}
