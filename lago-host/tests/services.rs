//! `Env::service`: the VM's `service_provider` picks the vm-service
//! plugin, else detection (first supported, in name order) picks one and
//! stores it in the prefix. Mock plugins, no VM (the real plugins against a
//! real guest are in tests/e2e/tests/e2e_ssh.rs).

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::lib_init;
use lago::config::{Config, Sources};
use lago::environment::Env;
use lago::plugins::{Registry, Source};
use lago::prefix::Prefix;
use lago_plugin_api::abi::{Named, PluginSet};
use lago_plugin_api::adapter::{vm_provider, vm_service};
use lago_plugin_api::spec::{EnvSpec, VmSpec};
use lago_plugin_api::{
    PluginError, PluginResult, ProviderSessionPlugin, ServiceState, VmProviderPlugin,
    VmServicePlugin,
};

const INIT: &str = r#"
domains:
  plain:
    vm-provider: mock
    nics: [{net: mgmt}]
    disks: [{type: empty, size: 1G, dev: vda, name: root}]
  chosen:
    vm-provider: mock
    service_provider: zzz-none
    nics: [{net: mgmt}]
    disks: [{type: empty, size: 1G, dev: vda, name: root}]
nets:
  mgmt: {type: nat, management: true}
"#;

struct MockProvider;
struct MockSession;
impl ProviderSessionPlugin for MockSession {}
impl VmProviderPlugin for MockProvider {
    fn open(&self, _env: &EnvSpec) -> PluginResult<Box<dyn ProviderSessionPlugin>> {
        Ok(Box::new(MockSession))
    }
}

/// A service manager that `supported` says exists, with services in `states`.
#[derive(Clone, Default)]
struct MockService {
    supported: bool,
    asked: Arc<AtomicUsize>,
    states: Arc<Mutex<BTreeMap<String, ServiceState>>>,
}

impl VmServicePlugin for MockService {
    fn is_supported(&self, _vm: &VmSpec) -> PluginResult<bool> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        Ok(self.supported)
    }
    fn state(&self, _vm: &VmSpec, service: &str) -> PluginResult<ServiceState> {
        let states = self
            .states
            .lock()
            .map_err(|_| PluginError::internal("poisoned"))?;
        Ok(states
            .get(service)
            .copied()
            .unwrap_or(ServiceState::Missing))
    }
    fn start(&self, _vm: &VmSpec, service: &str) -> PluginResult<()> {
        self.set(service, ServiceState::Active)
    }
    fn stop(&self, _vm: &VmSpec, service: &str) -> PluginResult<()> {
        self.set(service, ServiceState::Inactive)
    }
}

impl MockService {
    fn set(&self, service: &str, to: ServiceState) -> PluginResult<()> {
        let mut states = self
            .states
            .lock()
            .map_err(|_| PluginError::internal("poisoned"))?;
        match states.get_mut(service) {
            Some(s) => {
                *s = to;
                Ok(())
            }
            None => Err(PluginError::user(format!("no service {service}"))),
        }
    }
}

fn registry(services: &[(&str, &MockService)]) -> Registry {
    let mut set = PluginSet::default();
    set.providers.push(Named {
        name: "mock".into(),
        plugin: vm_provider("mock", MockProvider),
    });
    for (name, svc) in services {
        set.services.push(Named {
            name: (*name).into(),
            plugin: vm_service(name, (*svc).clone()),
        });
    }
    let mut reg = Registry::default();
    reg.add_set(set, Source::BuiltIn, "0").expect("register");
    reg
}

fn init(dir: &std::path::Path) -> (Prefix, EnvSpec) {
    std::fs::write(dir.join("LagoInitFile"), INIT).expect("write");
    lib_init(
        &dir.join("LagoInitFile"),
        &dir.join(".lago"),
        &dir.join("leases"),
        "default",
    )
}

/// The configuration the environments are opened with: defaults, and an
/// SSH budget of 1 tries of 1 s.
fn settings() -> Config {
    let set = |k: &str, v: &str| ("lago".to_string(), k.to_string(), v.to_string());
    Config::load_from(
        &Sources::default(),
        &[set("ssh_tries", "1"), set("ssh_timeout", "1")],
    )
    .expect("config")
}

#[test]
fn detection_picks_the_first_supported_and_stores_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (prefix, env) = init(tmp.path());
    let absent = MockService::default();
    let present = MockService {
        supported: true,
        ..MockService::default()
    };
    present
        .states
        .lock()
        .expect("lock")
        .insert("sshd".into(), ServiceState::Inactive);
    let also = MockService {
        supported: true,
        ..MockService::default()
    };
    let reg = registry(&[("aaa", &absent), ("bbb", &present), ("ccc", &also)]);
    let environment = Env::from_spec(env, settings(), &reg).expect("open");

    assert_eq!(
        environment
            .detect_service_provider("plain")
            .expect("detect")
            .as_deref(),
        Some("bbb")
    );
    assert_eq!(also.asked.load(Ordering::SeqCst), 0, "stops at the first");
    let sshd = environment.service("plain", "sshd").expect("service");
    assert_eq!(sshd.provider(), "bbb");
    assert_eq!(
        prefix.load_env().expect("load").domains["plain"]
            .service_provider
            .as_deref(),
        Some("bbb"),
        "the detected provider is stored in the prefix"
    );
    assert_eq!(sshd.state().expect("state"), ServiceState::Inactive);
    sshd.start().expect("start");
    assert_eq!(sshd.state().expect("state"), ServiceState::Active);
    sshd.stop().expect("stop");
    assert_eq!(sshd.state().expect("state"), ServiceState::Inactive);
    let missing = environment.service("plain", "nope").expect("service");
    assert_eq!(missing.state().expect("state"), ServiceState::Missing);
    let err = missing.start().expect_err("start of a missing service");
    assert!(err.to_string().contains("no service nope"), "{err}");

    // Reopened from the prefix: the stored provider, no detection.
    let asked = present.asked.load(Ordering::SeqCst);
    let environment =
        Env::from_spec(prefix.load_env().expect("load"), settings(), &reg).expect("open");
    assert_eq!(
        environment.service_provider("plain").expect("provider"),
        "bbb"
    );
    assert_eq!(present.asked.load(Ordering::SeqCst), asked);
}

#[test]
fn service_provider_of_the_spec_wins_and_errors_name_the_choices() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_prefix, env) = init(tmp.path());
    let absent = MockService::default();
    let reg = registry(&[("aaa", &absent)]);
    let environment = Env::from_spec(env, settings(), &reg).expect("open");

    // `chosen` names a plugin that is not installed: no detection, an error.
    let err = environment
        .service("chosen", "sshd")
        .err()
        .expect("unknown service_provider");
    let msg = err.to_string();
    assert!(msg.contains("zzz-none") && msg.contains("aaa"), "{msg}");
    assert_eq!(absent.asked.load(Ordering::SeqCst), 0);

    // `plain` has none and no plugin supports it.
    let err = environment
        .service("plain", "sshd")
        .err()
        .expect("nothing supported");
    let msg = err.to_string();
    assert!(
        msg.contains("no service manager") && msg.contains("aaa"),
        "{msg}"
    );
    assert_eq!(absent.asked.load(Ordering::SeqCst), 1);
}
