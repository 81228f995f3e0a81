//! Lago's task tree on stderr, and the live view of long steps.
//!
//! A task ([`task`]) opens with a header (`@ Start Prefix: `), nested tasks
//! and log records show indented under it, and it closes with its result and
//! duration (`@ Start Prefix: Success (in 0:00:07)`, or `ERROR (in ...)`).
//! This follows Lago's `log_utils.TaskHandler`:
//! - the level indicators cycle through `@ # * - ~`; a header of a task at
//!   depth `n` is indented by `n - 1` steps of two spaces, a record inside it
//!   by `n` steps, with the indicator of depth `n` (Lago's `pretty_emit`);
//! - tasks deeper than `--logdepth` (`-1`: no limit) and their records stay
//!   hidden, except errors, which are always shown and mark every open task
//!   as failed (its closing line then shows, with `ERROR`);
//! - headers are info records: at `--loglevel warning` or `error` no tree is
//!   shown, only the records of that level;
//! - tasks of worker threads (one per VM) nest under the task the main
//!   thread has open.
//!
//! On a terminal, lines are coloured as Lago's `ColorFormatter` did and long
//! steps get a live view (indicatif): a line per VM with its stage
//! ([`stage`]) and byte counters for downloads and copies ([`bytes`]). When
//! stderr is not a terminal, lines are plain text without control characters
//! and the live view is off. Every task also goes to the prefix log as
//! `start task NAME` / `end task NAME: RESULT` records.

use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use lago_plugin_api::LogLevel;

/// Lago's `TaskHandler.TASK_INDICATORS`.
const INDICATORS: [char; 5] = ['@', '#', '*', '-', '~'];

/// What the stderr view shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewSettings {
    /// The most verbose level shown on stderr.
    pub level: LogLevel,
    /// How many task levels to show; negative: all (`--logdepth -1`).
    pub depth: i64,
    /// Hide warnings (`--ignore-warnings`); errors still show.
    pub ignore_warnings: bool,
    /// Colours and the live view (stderr is a terminal).
    pub live: bool,
}

impl Default for ViewSettings {
    fn default() -> Self {
        ViewSettings {
            level: LogLevel::Warn,
            depth: 3,
            ignore_warnings: false,
            live: false,
        }
    }
}

struct Task {
    name: String,
    started: Instant,
    failed: bool,
}

struct State {
    settings: ViewSettings,
    main: Option<ThreadId>,
    /// Open tasks per thread (few threads: a list).
    stacks: Vec<(ThreadId, Vec<Task>)>,
    multi: Option<MultiProgress>,
    /// The live stage lines by VM name, for stages a plugin reports
    /// ([`reported_stage`]).
    stages: Vec<(String, Option<ProgressBar>)>,
}

static STATE: Mutex<State> = Mutex::new(State {
    settings: ViewSettings {
        level: LogLevel::Warn,
        depth: 3,
        ignore_warnings: false,
        live: false,
    },
    main: None,
    stacks: Vec::new(),
    multi: None,
    stages: Vec::new(),
});

/// Set once the view is configured, so records before [`configure`] (none
/// normally) are not lost: they print plainly.
static CONFIGURED: AtomicBool = AtomicBool::new(false);

fn state() -> std::sync::MutexGuard<'static, State> {
    // A poisoned lock only means a panic elsewhere mid-print: keep going.
    STATE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Set what the view shows; the calling thread becomes the main one (worker
/// threads' tasks nest under its open task). `live` is forced off when
/// stderr is not a terminal.
pub fn configure(mut settings: ViewSettings) {
    settings.live = settings.live && std::io::stderr().is_terminal();
    let mut st = state();
    st.settings = settings;
    st.main = Some(std::thread::current().id());
    st.multi = settings
        .live
        .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)));
    CONFIGURED.store(true, Ordering::Relaxed);
}

/// The current view settings.
pub fn settings() -> ViewSettings {
    state().settings
}

impl State {
    fn shows_level(&self, level: LogLevel) -> bool {
        level <= self.settings.level && !(self.settings.ignore_warnings && level == LogLevel::Warn)
    }

    fn shows_depth(&self, depth: usize) -> bool {
        self.settings.depth < 0 || self.settings.depth as u64 >= depth as u64
    }

    /// Tasks the main thread has open, when called from another thread.
    fn base_depth(&self, me: ThreadId) -> usize {
        match self.main {
            Some(main) if main != me => self.stack(main).map_or(0, Vec::len),
            _ => 0,
        }
    }

    fn stack(&self, id: ThreadId) -> Option<&Vec<Task>> {
        self.stacks.iter().find(|(t, _)| *t == id).map(|(_, s)| s)
    }

    fn stack_mut(&mut self, id: ThreadId) -> &mut Vec<Task> {
        let at = match self.stacks.iter().position(|(t, _)| *t == id) {
            Some(at) => at,
            None => {
                self.stacks.push((id, Vec::new()));
                self.stacks.len() - 1
            }
        };
        &mut self.stacks[at].1
    }

    fn depth(&self, me: ThreadId) -> usize {
        self.base_depth(me) + self.stack(me).map_or(0, Vec::len)
    }

    fn paint(&self, colour: &str, text: &str) -> String {
        if self.settings.live && !colour.is_empty() {
            format!("\x1b[{colour}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn print(&self, line: &str) {
        let write = || {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{line}");
        };
        match &self.multi {
            Some(m) => m.suspend(write),
            None => write(),
        }
    }

    /// Every open task (of every thread) failed: an error was logged.
    fn fail_all(&mut self) {
        for (_, stack) in &mut self.stacks {
            for t in stack {
                t.failed = true;
            }
        }
    }
}

/// A header line of a task at `depth` (1 = top level).
fn header(depth: usize, name: &str, msg: &str) -> String {
    let d = depth.max(1);
    format!(
        "{}{} {name}: {msg}",
        "  ".repeat(d - 1),
        INDICATORS[(d - 1) % INDICATORS.len()]
    )
}

/// Lago's elapsed time: `H:MM:SS`, without fractions.
pub fn elapsed(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn open(name: &str) {
    let me = std::thread::current().id();
    tracing::info!(target: "lago::task", "start task {name}");
    let mut st = state();
    st.stack_mut(me).push(Task {
        name: name.to_string(),
        started: Instant::now(),
        failed: false,
    });
    let depth = st.depth(me);
    if st.shows_level(LogLevel::Info) && st.shows_depth(depth) {
        st.print(&header(depth, name, ""));
    }
}

fn close(ok: bool) {
    let me = std::thread::current().id();
    let mut st = state();
    let depth = st.depth(me);
    let Some(task) = st.stack_mut(me).pop() else {
        return;
    };
    let failed = task.failed || !ok;
    let result = if failed { "ERROR" } else { "Success" };
    let took = elapsed(task.started.elapsed());
    if failed {
        // Lago: a failed task fails its parents too.
        for t in st.stack_mut(me) {
            t.failed = true;
        }
    }
    let show = (st.shows_level(LogLevel::Info) && st.shows_depth(depth))
        || (failed && st.shows_level(LogLevel::Error));
    if show {
        let msg = st.paint(
            if failed { "31" } else { "32" },
            &format!("{result} (in {took})"),
        );
        st.print(&header(depth, &task.name, &msg));
    }
    drop(st);
    tracing::info!(target: "lago::task", "end task {}: {result} (in {took})", task.name);
}

/// Runs `f` as a task named `name`: its header before, its result and
/// duration after (an `Err` closes it with `ERROR`). The error is returned
/// unchanged.
pub fn task<T, E>(name: impl Display, f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    let name = name.to_string();
    open(&name);
    // Close the task even when `f` panics, so the tree stays balanced.
    struct Guard(bool);
    impl Drop for Guard {
        fn drop(&mut self) {
            if !self.0 {
                close(false);
            }
        }
    }
    let mut guard = Guard(false);
    let out = f();
    guard.0 = true;
    close(out.is_ok());
    out
}

/// Shows one log record (called by the stderr logging layer): indented
/// under the current task, hidden when its task is deeper than the depth
/// limit (errors always show and fail the open tasks).
pub fn record(level: LogLevel, message: &str) {
    if !CONFIGURED.load(Ordering::Relaxed) {
        if level <= LogLevel::Warn {
            eprintln!("{} {message}", level_word(level));
        }
        return;
    }
    let me = std::thread::current().id();
    let mut st = state();
    if level == LogLevel::Error {
        st.fail_all();
    }
    if !st.shows_level(level) {
        return;
    }
    let depth = st.depth(me);
    if level != LogLevel::Error && !st.shows_depth(depth) {
        return;
    }
    let text = match level {
        LogLevel::Info => message.to_string(),
        l => format!("{} {message}", level_word(l)),
    };
    let colour = match level {
        LogLevel::Error => "31",
        LogLevel::Warn => "33",
        LogLevel::Info => "36",
        _ => "",
    };
    let text = st.paint(colour, &text);
    let line = if depth == 0 {
        text
    } else {
        format!(
            "{}  {} {text}",
            "  ".repeat(depth - 1),
            INDICATORS[depth % INDICATORS.len()]
        )
    };
    st.print(&line);
}

fn level_word(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Error => "ERROR",
        LogLevel::Warn => "WARN",
        LogLevel::Info => "INFO",
        LogLevel::Debug => "DEBUG",
        LogLevel::Trace => "TRACE",
    }
}

fn add_bar(bar: ProgressBar) -> Option<ProgressBar> {
    let st = state();
    st.multi.as_ref().map(|m| m.add(bar))
}

/// A live line of one VM's stage (`defined`, `booting`, `SSH`, ...). On a
/// terminal it shows until dropped; elsewhere each stage is a debug record
/// (in the prefix log).
pub struct Stage {
    what: String,
    bar: Option<ProgressBar>,
    /// Whether dropping it takes the line off the view (not for a
    /// [`Stage::share`]).
    owner: bool,
}

/// A live stage line for `what` (a VM name), starting at `first`.
pub fn stage(what: impl Display, first: &str) -> Stage {
    let what = what.to_string();
    let bar = add_bar(ProgressBar::new_spinner()).inspect(|b| {
        b.set_style(
            ProgressStyle::with_template("  {spinner} {prefix}: {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        b.set_prefix(what.clone());
        b.enable_steady_tick(Duration::from_millis(200));
    });
    state().stages.push((what.clone(), bar.clone()));
    let s = Stage {
        what,
        bar,
        owner: true,
    };
    s.set(first);
    s
}

/// A stage a plugin reported (`<VM name>: <stage>`, see
/// `lago_plugin_api::HostHandle::report_stage`): shown on that VM's live
/// line, if it has one, and recorded as a stage.
pub fn reported_stage(message: &str) {
    let Some((vm, stage)) = message.split_once(": ") else {
        tracing::debug!(target: "lago::stage", "{message}");
        return;
    };
    // a plugin's words: printable, one line, cut short
    let stage = crate::sanitize::quote(
        &crate::sanitize::terminal_text(stage).replace(['\n', '\t'], " "),
        crate::boot_watch::QUOTE_CHARS,
    );
    tracing::debug!(target: "lago::stage", "{vm}: {stage}");
    let st = state();
    if let Some((_, Some(bar))) = st.stages.iter().rev().find(|(name, _)| name == vm) {
        bar.set_message(stage);
    }
}

impl Stage {
    /// A second handle on the same line (for a watcher on another thread);
    /// dropping it leaves the line to this one.
    pub fn share(&self) -> Stage {
        Stage {
            what: self.what.clone(),
            bar: self.bar.clone(),
            owner: false,
        }
    }

    /// Moves to the next stage.
    pub fn set(&self, stage: &str) {
        tracing::debug!(target: "lago::stage", "{}: {stage}", self.what);
        if let Some(b) = &self.bar {
            b.set_message(stage.to_string());
        }
    }
}

/// Takes a finished live line off the view.
fn clear_bar(bar: Option<ProgressBar>) {
    if let Some(b) = bar {
        b.finish_and_clear();
        if let Some(m) = &state().multi {
            m.remove(&b);
        }
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        if !self.owner {
            return;
        }
        {
            let mut st = state();
            if let Some(i) = st.stages.iter().rposition(|(name, _)| *name == self.what) {
                st.stages.remove(i);
            }
        }
        clear_bar(self.bar.take());
    }
}

/// A live byte counter of a download or copy; nothing when not on a
/// terminal.
pub struct Bytes {
    bar: Option<ProgressBar>,
}

/// A byte counter labelled `what`, of `total` bytes when known.
pub fn bytes(what: impl Display, total: Option<u64>) -> Bytes {
    let what = what.to_string();
    let bar = match total {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template(
                "  {prefix}: {bytes}/{total_bytes} [{bar:30}] {bytes_per_sec}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("  {spinner} {prefix}: {bytes} {bytes_per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    let bar = add_bar(bar).inspect(|b| b.set_prefix(what));
    Bytes { bar }
}

impl Bytes {
    /// `n` more bytes done.
    pub fn add(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }
}

impl Drop for Bytes {
    fn drop(&mut self) {
        clear_bar(self.bar.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lago_shapes() {
        assert_eq!(header(1, "Start Prefix", ""), "@ Start Prefix: ");
        assert_eq!(
            header(2, "Start nets", "Success (in 0:00:01)"),
            "  # Start nets: Success (in 0:00:01)"
        );
        assert_eq!(elapsed(Duration::from_millis(3_723_900)), "1:02:03");
        assert_eq!(elapsed(Duration::from_millis(999)), "0:00:00");
    }
}
