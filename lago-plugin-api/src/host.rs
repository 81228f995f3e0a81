//! The plugin side of the [`Host`](crate::abi::Host) handle: where a plugin
//! keeps it, how it reaches it, and the `tracing` forwarder.
//!
//! Every plugin library links its own copy of this crate, of `std` and of
//! `tracing`. At load, the host calls the library's `init` with a `Host`
//! object; `init` stores it in this copy's global, installs a `tracing`
//! subscriber (in the library's own `tracing`) that forwards every record to
//! [`Host::log`](crate::abi::Host::log), and a panic hook that sends panic
//! messages to the log instead of stderr (the adapters turn the panic itself
//! into an error value).

use std::fmt::Write as _;
use std::sync::OnceLock;

use abi_stable::std_types::{RResult, RStr, RString, RVec};
use tracing::field::{Field, Visit};
use tracing::span;
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};

use crate::abi::HostBox;
use crate::error::PluginError;
use crate::plugin::PluginResult;
use crate::spec::VmSpec;
use crate::types::{CommandStatus, LogLevel};

static HOST: OnceLock<HostBox> = OnceLock::new();

/// The log target of a VM's stage (see [`HostHandle::report_stage`]); its
/// message is `<VM name>: <stage>`.
pub const STAGE_TARGET: &str = "lago::stage";

/// Give this copy of the API crate its host handle. Returns `false` when one
/// was already set (the first one stays). The `lago` host does this for its
/// built-ins; a plugin's unit tests may do it with a mock [`Host`](crate::abi::Host).
pub fn set_host(host: HostBox) -> bool {
    HOST.set(host).is_ok()
}

/// The host's services, once the library has been initialised.
pub fn host() -> PluginResult<HostHandle> {
    HOST.get().map(|h| HostHandle { inner: h }).ok_or_else(|| {
        PluginError::internal("the lago host handle is not set (the library was not initialised)")
    })
}

/// A plain-Rust view of the [`Host`](crate::abi::Host) object.
#[derive(Clone, Copy)]
pub struct HostHandle {
    inner: &'static HostBox,
}

impl HostHandle {
    /// Log a record through the host (plugins normally use `tracing`'s macros,
    /// which end here).
    pub fn log(&self, level: LogLevel, target: &str, message: &str) {
        self.inner.log(level, target.into(), message.into());
    }

    /// Shows `stage` (a few words: `restoring`, `identity`, ...) as VM
    /// `vm`'s stage in the host's live view while the host waits on this
    /// plugin (in `start`, say), and records it in the prefix log at debug
    /// level. Travels as a log record of target [`STAGE_TARGET`], so it needs
    /// no new ABI method; a host that does not know it just logs it.
    pub fn report_stage(&self, vm: &str, stage: &str) {
        self.inner.log(
            LogLevel::Info,
            STAGE_TARGET.into(),
            format!("{vm}: {stage}").as_str().into(),
        );
    }

    /// The most verbose level the host records.
    pub fn max_level(&self) -> LogLevel {
        self.inner.max_level()
    }

    /// Run `argv` in `vm` over the host's SSH layer.
    pub fn ssh_exec(
        &self,
        vm: &VmSpec,
        argv: &[&str],
        stdin: &[u8],
    ) -> PluginResult<CommandStatus> {
        let vm_json = encode_vm(vm)?;
        let argv: RVec<RString> = argv.iter().map(|a| RString::from(*a)).collect();
        match self.inner.ssh_exec(
            RStr::from(vm_json.as_str()),
            argv,
            RVec::from(stdin.to_vec()),
        ) {
            RResult::ROk(s) => Ok(s),
            RResult::RErr(e) => Err(e),
        }
    }

    /// Copy a local file or folder into `vm` (SFTP, recursive, modes kept).
    pub fn ssh_upload(
        &self,
        vm: &VmSpec,
        local: &std::path::Path,
        remote: &str,
    ) -> PluginResult<()> {
        let vm_json = encode_vm(vm)?;
        let local = local.to_string_lossy();
        match self.inner.ssh_upload(
            RStr::from(vm_json.as_str()),
            RStr::from(local.as_ref()),
            RStr::from(remote),
        ) {
            RResult::ROk(()) => Ok(()),
            RResult::RErr(e) => Err(e),
        }
    }

    /// Copy a file or folder out of `vm` (SFTP, recursive, modes kept).
    pub fn ssh_download(
        &self,
        vm: &VmSpec,
        remote: &str,
        local: &std::path::Path,
    ) -> PluginResult<()> {
        let vm_json = encode_vm(vm)?;
        let local = local.to_string_lossy();
        match self.inner.ssh_download(
            RStr::from(vm_json.as_str()),
            RStr::from(remote),
            RStr::from(local.as_ref()),
        ) {
            RResult::ROk(()) => Ok(()),
            RResult::RErr(e) => Err(e),
        }
    }

    /// `[section] key` of the effective configuration.
    pub fn config(&self, section: &str, key: &str) -> Option<String> {
        self.inner
            .config(section.into(), key.into())
            .into_option()
            .map(|s| s.into_string())
    }
}

fn encode_vm(vm: &VmSpec) -> PluginResult<String> {
    serde_json::to_string(vm)
        .map_err(|e| PluginError::internal(format!("cannot encode the VM spec: {e}")))
}

/// What a library's exported `init` does (called by the code
/// [`crate::export_plugins!`] generates; not for the host's own built-ins).
#[doc(hidden)]
pub fn plugin_init(host: HostBox) -> RResult<(), PluginError> {
    let r = std::panic::catch_unwind(|| {
        if set_host(host) {
            let _ = tracing::subscriber::set_global_default(Forwarder);
            std::panic::set_hook(Box::new(|info| {
                if let Ok(h) = self::host() {
                    h.log(LogLevel::Debug, "lago_plugin::panic", &info.to_string());
                }
            }));
        }
    });
    match r {
        Ok(()) => RResult::ROk(()),
        Err(p) => RResult::RErr(PluginError::new(
            crate::ErrorKind::Panic,
            format!(
                "plugin library initialisation panicked: {}",
                crate::adapter::panic_message(p.as_ref())
            ),
        )),
    }
}

/// A `tracing` subscriber that hands each event to the host. Spans are not
/// forwarded (their fields are not in the message).
struct Forwarder;

impl Subscriber for Forwarder {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        // The host's level may change (a prefix log opens): ask each time.
        Interest::sometimes()
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        match HOST.get() {
            Some(h) => LogLevel::from_tracing(meta.level()) <= h.max_level(),
            None => false,
        }
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let Some(h) = HOST.get() else { return };
        let mut v = MessageVisitor::default();
        event.record(&mut v);
        let meta = event.metadata();
        h.log(
            LogLevel::from_tracing(meta.level()),
            meta.target().into(),
            v.finish().as_str().into(),
        );
    }

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}

/// `message key=value key=value`.
#[derive(Default)]
struct MessageVisitor {
    message: String,
    fields: String,
}

impl MessageVisitor {
    fn finish(self) -> String {
        if self.fields.is_empty() {
            self.message
        } else if self.message.is_empty() {
            self.fields.trim_start().to_string()
        } else {
            format!("{}{}", self.message, self.fields)
        }
    }
}

impl Visit for MessageVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}
