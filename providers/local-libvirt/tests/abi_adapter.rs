//! The provider through lago-plugin-api's FFI adapter (what `lago` calls
//! after loading the library): specs cross as JSON, errors as PluginError.

mod common;

use abi_stable::std_types::{RResult, RString, RVec};
use lago_plugin_api::{ErrorKind, PluginSet};
use lago_provider_local_libvirt::plugin::LocalLibvirt;

fn ok<T>(r: RResult<T, lago_plugin_api::PluginError>) -> T {
    match r {
        RResult::ROk(v) => v,
        RResult::RErr(e) => panic!("{e}"),
    }
}

#[test]
fn session_through_the_abi() {
    std::env::set_var("LAGO_LIBVIRT_URL", common::TEST_URI);
    std::env::set_var("LAGO_DOMAIN_TYPE", "qemu");
    let dir = tempfile::tempdir().expect("tempdir");
    let env = common::sample_env(dir.path());
    let env_json = serde_json::to_string(&env).expect("json");

    let set = PluginSet::new().provider("local-libvirt", LocalLibvirt);
    let provider = &set.providers[0].plugin;
    let session = ok(provider.open(env_json.as_str().into()));

    let nets: RVec<RString> = env.nets.keys().map(|n| RString::from(n.as_str())).collect();
    ok(session.start_networks(nets.clone()));
    assert_eq!(ok(session.network_state("lago".into())).as_str(), "up");

    // Session calls name the VM; the adapter finds its spec in the env.
    let vm1 = "vm1".to_string();
    ok(session.start(vm1.as_str().into()));
    assert_eq!(ok(session.state(vm1.as_str().into())).as_str(), "running");
    ok(session.shutdown(vm1.as_str().into()));
    assert_eq!(ok(session.state(vm1.as_str().into())).as_str(), "down");

    // A snapshot name that cannot be a file name is refused as bad input.
    match session.create_snapshot(vm1.as_str().into(), "a/b".into()) {
        RResult::RErr(e) => assert_eq!(e.kind, ErrorKind::User),
        RResult::ROk(info) => panic!("snapshot `a/b` was accepted: {info}"),
    }

    ok(session.stop_networks(nets));
    assert_eq!(ok(session.network_state("lago".into())).as_str(), "down");
    ok(session.cleanup());
}
