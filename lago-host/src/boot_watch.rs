//! Watching a booting VM's serial console while lago waits for its SSH.
//!
//! Lago waited the whole SSH budget for a VM that could never come up (over
//! 15 minutes with its defaults). lago reads the end of the VM's console
//! log (`PREFIX/logs/<vm>.console.log`, which libvirt starts anew at each
//! domain start) every half second while it waits and gives up at once
//! when the console shows that the VM cannot boot:
//! - the kernel could not mount its root file system or panicked
//!   (`VFS: Unable to mount root fs`, `Kernel panic - not syncing`, ...);
//! - an initramfs or init gave up and opened a shell (`Dropping to a shell`,
//!   `You are in emergency mode`, `Give root password for maintenance`,
//!   dracut's `Entering emergency mode`, lago-tiny's `dropping to a shell`);
//! - the boot loader failed (`grub rescue>`, `Entering rescue mode`,
//!   `No bootable device`, and a GRUB `error: ...` line that stays the
//!   console's last line for [`BOOT_LOADER_GRACE`]: GRUB also prints
//!   errors it recovers from).
//!
//! Only what follows the last kernel start (`Linux version`) counts for the
//! kernel and init patterns, so a VM that panicked and rebooted (`panic=N`)
//! is judged by its new boot. A verb waiting for a VM that is already
//! running (`shell`, `copy-to-vm`, ... [`ConsoleFrom::Now`]) judges what
//! the console prints while it waits (the log may hold an earlier boot's
//! panic: a `quiet` kernel shows no new kernel start after the reboot; or
//! anything the guest wrote to its console), or the console as it stands
//! when it prints nothing new for [`STALE_GRACE`] while the VM does not
//! answer SSH (a VM sitting where its boot failed).
//!
//! A console that printed something and then made no progress for the
//! stall limit (`[lago] console_stall_timeout`, 300 s by default, 0: off)
//! fails the wait too, quoting its last line. A console that never printed
//! anything is not judged (some images write only to the screen).
//!
//! The guest writes that file: it is read from its last
//! [`CONSOLE_WINDOW`] bytes, and what is quoted is sanitized
//! ([`crate::sanitize::terminal_text`]) and cut to [`QUOTE_CHARS`]
//! characters.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How much of the end of the console log each look reads.
pub const CONSOLE_WINDOW: u64 = 64 * 1024;

/// The most characters of a console line quoted in a message or shown in
/// the live view.
pub const QUOTE_CHARS: usize = 160;

/// How long a GRUB `error:` line must stay the console's last line to count
/// as a failed boot.
pub const BOOT_LOADER_GRACE: Duration = Duration::from_secs(10);

/// How long a watch for a running VM ([`ConsoleWatch::from_now`]) leaves
/// a console that prints nothing new unjudged: time for a VM that is up to
/// answer SSH.
pub const STALE_GRACE: Duration = Duration::from_secs(10);

/// The default stall limit (`[lago] console_stall_timeout`), in seconds.
pub const DEFAULT_STALL_SECS: u64 = 300;

/// Lines that mean the kernel or init cannot go on (matched anywhere in a
/// line, ignoring case).
const FATAL: &[&str] = &[
    "kernel panic - not syncing",
    "vfs: unable to mount root fs",
    "vfs: cannot open root device",
    "no filesystem could mount root",
    "gave up waiting for root file system device",
    "dropping to a shell",
    "you are in emergency mode",
    "entering emergency mode",
    "you are in rescue mode",
    "give root password for maintenance",
    "cannot open access to console, the root account is locked",
];

/// Boot loader failures (before any kernel runs).
const BOOT_LOADER_FATAL: &[&str] = &[
    "grub rescue>",
    "entering rescue mode",
    "no bootable device",
    "boot failed: not a bootable disk",
    "no operating system found",
];

/// The line that marks a kernel start.
const KERNEL_START: &str = "linux version ";

/// Why waiting for a VM stopped early.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BootFailure {
    /// The console shows a line that means the VM cannot boot.
    #[error("it cannot boot: its console shows {line:?} ({})", console.display())]
    CannotBoot { line: String, console: PathBuf },

    /// The console printed nothing new for the stall limit.
    #[error(
        "its console made no progress for {}s (the limit is [lago] console_stall_timeout); \
         its last line is {line:?} ({})",
        stalled.as_secs(),
        console.display()
    )]
    Stalled {
        line: String,
        stalled: Duration,
        console: PathBuf,
    },
}

/// Which console text a wait judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleFrom {
    /// All of it: the log of a domain that was just started (libvirt
    /// starts it anew at each domain start).
    BootStart,
    /// What is printed from now on: a VM that was already running.
    Now,
}

/// The watch over one VM's console log (see the module documentation).
#[derive(Debug)]
pub struct ConsoleWatch {
    path: PathBuf,
    stall: Option<Duration>,
    /// Where the text this watch judges begins (bytes into the log).
    from: u64,
    /// For a watch from now: the log's length when it began, and when.
    mark: Option<(u64, Instant)>,
    last_len: Option<u64>,
    last_change: Instant,
    last_line: Option<String>,
}

impl ConsoleWatch {
    /// A watch over the console log at `path`; `stall` is the stall limit
    /// (`None`: no limit).
    pub fn new(path: PathBuf, stall: Option<Duration>) -> Self {
        ConsoleWatch {
            path,
            stall,
            from: 0,
            mark: None,
            last_len: None,
            last_change: Instant::now(),
            last_line: None,
        }
    }

    /// A watch for a VM that is already running (a verb waiting for its
    /// SSH), whose log may hold an earlier boot's panic (a VM that panicked
    /// and rebooted with a `quiet` kernel shows no new kernel start) or
    /// text the guest wrote to its console. Once the console prints
    /// something new, only the new text is judged; a console that stays as
    /// it was for [`STALE_GRACE`] (a VM sitting where its boot failed, not
    /// answering SSH, or the wait would have ended) is judged as it is. A
    /// log that shrank (the domain started anew) is judged whole.
    pub fn from_now(path: PathBuf, stall: Option<Duration>) -> Self {
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        ConsoleWatch {
            mark: Some((len, Instant::now())),
            ..ConsoleWatch::new(path, stall)
        }
    }

    /// Resolves a watch from now (see [`Self::from_now`]): `false` while
    /// the console is as it was and the grace is not over (nothing to
    /// judge yet).
    fn settle_mark(&mut self) -> bool {
        let Some((mark, since)) = self.mark else {
            return true;
        };
        let len = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        if len == mark && since.elapsed() < STALE_GRACE {
            return false;
        }
        self.from = if len > mark { mark } else { 0 };
        self.mark = None;
        true
    }

    /// The console's last non-empty line as of the last [`Self::check`],
    /// sanitized and cut to [`QUOTE_CHARS`].
    pub fn last_line(&self) -> Option<&str> {
        self.last_line.as_deref()
    }

    /// Looks at the console log once. A log that cannot be read (not
    /// created yet) is no news.
    pub fn check(&mut self) -> Result<(), BootFailure> {
        if !self.settle_mark() {
            return Ok(());
        }
        let now = Instant::now();
        let len = std::fs::metadata(&self.path).map(|m| m.len()).ok();
        if len.is_some() && len != self.last_len {
            self.last_len = len;
            self.last_change = now;
            let len = len.unwrap_or(0);
            if len < self.from {
                self.from = 0;
            }
            let start = self.from.max(len.saturating_sub(CONSOLE_WINDOW));
            let text = read_from(&self.path, start, CONSOLE_WINDOW)
                .map(|b| crate::sanitize::terminal_bytes(&b))
                .unwrap_or_default();
            self.last_line = last_line(&text);
            if let Some(line) = fatal_line(&text) {
                return Err(BootFailure::CannotBoot {
                    line,
                    console: self.path.clone(),
                });
            }
            return Ok(());
        }
        let Some(line) = &self.last_line else {
            return Ok(());
        };
        let quiet = now.duration_since(self.last_change);
        if quiet >= BOOT_LOADER_GRACE && is_boot_loader_error(line) {
            return Err(BootFailure::CannotBoot {
                line: line.clone(),
                console: self.path.clone(),
            });
        }
        match self.stall {
            Some(limit) if quiet >= limit => Err(BootFailure::Stalled {
                line: line.clone(),
                stalled: quiet,
                console: self.path.clone(),
            }),
            _ => Ok(()),
        }
    }
}

/// How long `lago shutdown -r` waits for a rebooting VM's old boot to end
/// at most.
pub const REBOOT_SEEN_LIMIT: Duration = Duration::from_secs(300);

/// Console lines that mean a boot has ended or begun: the kernel's last
/// line (`reboot: Restarting system`, `reboot: Power down`, printed at
/// emergency level, so even a `quiet` kernel shows it) and a kernel start.
const BOOT_BOUNDARIES: &[&str] = &["reboot: ", KERNEL_START];

/// Where a VM's console log stands before a reboot is asked for: its
/// length in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsoleMark {
    len: u64,
}

impl ConsoleMark {
    /// The console log at `path` as it is now; `None` when it cannot be
    /// read or is empty (an image that shows nothing on its serial console
    /// will not show its reboot either).
    pub fn take(path: &Path) -> Option<ConsoleMark> {
        let len = std::fs::metadata(path).ok()?.len();
        (len > 0).then_some(ConsoleMark { len })
    }
}

/// Waits until the console log at `path` shows, after `mark`, that the
/// VM's boot ended or a new one began ([`BOOT_BOUNDARIES`]), for up to
/// `limit`; looks every [`REBOOT_POLL`]. Returns whether it was seen. Only
/// the text after the mark is read, [`CONSOLE_WINDOW`] bytes at a time
/// (the guest writes the file: a guest that prints a boundary early only
/// ends the wait early).
pub fn wait_for_boot_boundary(path: &Path, mark: ConsoleMark, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut pos = mark.len;
    // The end of the previous read, so a line cut between reads is found.
    let mut carry: Vec<u8> = Vec::new();
    let longest = BOOT_BOUNDARIES.iter().map(|b| b.len()).max().unwrap_or(0);
    loop {
        if let Ok(chunk) = read_from(path, pos, CONSOLE_WINDOW) {
            pos += chunk.len() as u64;
            carry.extend_from_slice(&chunk);
            if BOOT_BOUNDARIES
                .iter()
                .any(|b| contains_ignoring_case(&carry, b))
            {
                return true;
            }
            let keep = carry.len().saturating_sub(longest);
            carry.drain(..keep);
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(REBOOT_POLL);
    }
}

/// How often [`wait_for_boot_boundary`] looks at the console.
const REBOOT_POLL: Duration = Duration::from_millis(200);

/// Up to `max` bytes of the file at `path` from offset `pos`.
fn read_from(path: &Path, pos: u64, max: u64) -> std::io::Result<Vec<u8>> {
    crate::sanitize::read_range(&mut std::fs::File::open(path)?, pos, max)
}

/// Whether `bytes` hold `needle` (ASCII, any case).
fn contains_ignoring_case(bytes: &[u8], needle: &str) -> bool {
    bytes
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// `line` cut to [`QUOTE_CHARS`] characters ([`crate::sanitize::quote`]).
fn quote(line: &str) -> String {
    crate::sanitize::quote(line, QUOTE_CHARS)
}

/// The last line with something printable on it.
fn last_line(text: &str) -> Option<String> {
    text.lines().rev().find(|l| !l.trim().is_empty()).map(quote)
}

/// The first line of `text` showing that the VM cannot boot: a boot loader
/// failure anywhere, a kernel or init failure after the last kernel start.
fn fatal_line(text: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let lower: Vec<String> = lines.iter().map(|l| l.to_lowercase()).collect();
    let boot = lower
        .iter()
        .rposition(|l| l.contains(KERNEL_START))
        .unwrap_or(0);
    if let Some(i) = lower
        .iter()
        .position(|l| BOOT_LOADER_FATAL.iter().any(|p| l.contains(p)))
    {
        // A boot loader failure after a kernel start is an earlier boot's.
        if !lower[i..].iter().any(|l| l.contains(KERNEL_START)) {
            return Some(quote(lines[i]));
        }
    }
    lower[boot..]
        .iter()
        .position(|l| FATAL.iter().any(|p| l.contains(p)))
        .map(|i| quote(lines[boot + i]))
}

/// A GRUB error line (`error: file '/vmlinuz' not found.`).
fn is_boot_loader_error(line: &str) -> bool {
    line.trim_start().to_lowercase().starts_with("error: ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_and_init_failures_are_found() {
        let t = "[    0.000000] Linux version 6.1.0\n[  3.1] VFS: Cannot open root device \"sda1\"\n\
                 [  3.2] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\n";
        assert_eq!(
            fatal_line(t).as_deref(),
            Some("[  3.1] VFS: Cannot open root device \"sda1\"")
        );
        let t = "Linux version 6.1\nlago-tiny: ERROR: root file system LABEL=x not found\n\
                 lago-tiny: dropping to a shell on the console\n/ # ";
        assert_eq!(
            fatal_line(t).as_deref(),
            Some("lago-tiny: dropping to a shell on the console")
        );
        assert!(
            fatal_line("Linux version 6.1\nYou are in emergency mode. After logging in").is_some()
        );
        assert!(fatal_line("Gave up waiting for root file system device.").is_some());
    }

    #[test]
    fn a_new_boot_after_a_panic_is_judged_by_itself() {
        let t = "Linux version 6.1\nKernel panic - not syncing: x\nRebooting in 10 seconds..\n\
                 Linux version 6.1\n[ 1.0] ok\n";
        assert_eq!(fatal_line(t), None);
    }

    #[test]
    fn boot_loader_failures() {
        assert!(fatal_line("SeaBIOS\nBooting from Hard Disk...\nNo bootable device.\n").is_some());
        assert!(
            fatal_line("error: unknown filesystem.\nEntering rescue mode...\ngrub rescue> ")
                .is_some()
        );
        assert_eq!(
            fatal_line("No bootable device.\nLinux version 6.1\n[ 1.0] fine\n"),
            None
        );
        assert!(is_boot_loader_error(
            "error: file `/boot/vmlinuz' not found."
        ));
        assert!(!is_boot_loader_error("[ 2.0] ata1: error: nothing"));
    }

    #[test]
    fn ordinary_boots_pass() {
        let t = "Linux version 6.1\n[ 1.0] EXT4-fs (vda1): mounted filesystem\nWelcome to Debian\n\
                 [  OK  ] Reached target emergency.target? no: Reached target Multi-User System.\nlogin: ";
        // `emergency.target` alone is not a failure line.
        assert_eq!(fatal_line(t), None);
    }

    #[test]
    fn quotes_are_bounded() {
        let long = "x".repeat(1000);
        let q = quote(&long);
        assert_eq!(q.chars().count(), QUOTE_CHARS + 3);
        assert_eq!(last_line("a\n  b  \n\n \n").as_deref(), Some("b"));
    }

    #[test]
    fn the_watch_reads_the_log_and_stalls() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let log = dir.path().join("vm0.console.log");
        let mut w = ConsoleWatch::new(log.clone(), Some(Duration::ZERO));
        // No log yet, nothing printed: not judged.
        assert_eq!(w.check(), Ok(()));
        std::fs::write(&log, "Linux version 6.1\n\x1b[31mstarting\x1b[0m sshd\n")?;
        assert_eq!(w.check(), Ok(()));
        assert_eq!(w.last_line(), Some("starting sshd"));
        // Unchanged since, with a zero stall limit: stalled.
        match w.check() {
            Err(BootFailure::Stalled { line, .. }) => assert_eq!(line, "starting sshd"),
            other => return Err(format!("expected a stall, got {other:?}").into()),
        }
        std::fs::write(&log, "Linux version 6.1\nKernel panic - not syncing: x\n")?;
        let mut w = ConsoleWatch::new(log, None);
        let e = w.check().err().ok_or("a panic")?;
        assert!(
            e.to_string().contains("Kernel panic - not syncing: x"),
            "{e}"
        );
        Ok(())
    }

    #[test]
    fn a_reboot_is_seen_by_the_boot_boundary_after_the_mark(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let log = dir.path().join("vm0.console.log");
        // An image that shows nothing on its console: no mark, no wait.
        std::fs::write(&log, "")?;
        assert_eq!(ConsoleMark::take(&log), None);
        assert_eq!(ConsoleMark::take(&dir.path().join("missing")), None);
        // The old boot's kernel start does not count.
        std::fs::write(&log, "Linux version 6.1\nvm0 login: ")?;
        let mark = ConsoleMark::take(&log).ok_or("a mark")?;
        assert!(!wait_for_boot_boundary(
            &log,
            mark,
            Duration::from_millis(300)
        ));
        // The kernel's last line, written after the mark and cut between
        // two reads.
        let writer = {
            let log = log.clone();
            std::thread::spawn(move || -> std::io::Result<()> {
                use std::io::Write;
                let mut f = std::fs::OpenOptions::new().append(true).open(&log)?;
                f.write_all(b"Sent SIGKILL to all processes\r\n[   36.8] REBO")?;
                f.flush()?;
                std::thread::sleep(Duration::from_millis(500));
                f.write_all(b"OT: Power down\n")
            })
        };
        assert!(wait_for_boot_boundary(&log, mark, Duration::from_secs(60)));
        writer.join().map_err(|_| "writer panicked")??;
        Ok(())
    }

    #[test]
    fn a_watch_from_now_ignores_what_the_console_showed_before(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let log = dir.path().join("vm0.console.log");
        std::fs::write(
            &log,
            "Linux version 6.1\n[  767.4] Kernel panic - not syncing: sysrq triggered crash\nvm0 login: ",
        )?;
        assert!(ConsoleWatch::new(log.clone(), None).check().is_err());
        use std::io::Write;
        // Within the grace, an unchanged console is not judged.
        let mut w = ConsoleWatch::from_now(log.clone(), None);
        w.check()?;
        // The VM rebooted: what it prints now is judged, the old panic not.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&log)?
            .write_all(b"\nlago-tiny: DHCP started on eth0\n")?;
        w.check()?;
        // A panic printed after the watch began counts.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&log)?
            .write_all(b"\nKernel panic - not syncing: again\n")?;
        let e = w.check().err().ok_or("the new panic")?;
        assert!(e.to_string().contains("again"), "{e}");
        // A console that stays as it was past the grace is judged as it is
        // (a VM sitting where its boot failed).
        let mut w = ConsoleWatch::from_now(log.clone(), None);
        w.mark = w.mark.map(|(len, _)| (len, Instant::now() - STALE_GRACE));
        assert!(w.check().is_err());
        // A log started anew (shorter than the mark) is read whole.
        let mut w = ConsoleWatch::from_now(log.clone(), None);
        std::fs::write(&log, "VFS: Unable to mount root fs\n")?;
        assert!(w.check().is_err());
        Ok(())
    }
}
