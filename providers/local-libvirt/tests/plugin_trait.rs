//! The session through lago's plugin traits, configured from the
//! environment as `lago` would map `[lago] libvirt_url`/`domain_type`.

mod common;

use lago_plugin_api::{ErrorKind, ProviderSessionPlugin, VmProviderPlugin};
use lago_provider_local_libvirt::plugin::LocalLibvirt;

#[test]
fn open_and_drive_through_the_traits() {
    // This test binary is the only reader of these variables.
    std::env::set_var("LAGO_LIBVIRT_URL", common::TEST_URI);
    std::env::set_var("LAGO_DOMAIN_TYPE", "qemu");
    let dir = tempfile::tempdir().expect("tempdir");
    let env = common::sample_env(dir.path());
    let session: Box<dyn ProviderSessionPlugin> = LocalLibvirt.open(&env).expect("opens");

    let nets: Vec<_> = env.nets.values().collect();
    session.start_networks(&nets).expect("nets");
    for n in &nets {
        assert_eq!(session.network_state(n).expect("state"), "up");
    }
    let vm0 = &env.domains["vm0"];
    assert_eq!(session.state(vm0).expect("state"), "down");
    session.start(vm0).expect("start");
    assert_eq!(session.state(vm0).expect("state"), "running");
    assert!(session.defined(vm0).expect("defined"));

    let err = session.create_snapshot(vm0, "../s1").expect_err("bad name");
    assert_eq!(err.kind, ErrorKind::User);

    let mut ghost = vm0.clone();
    ghost.name = "ghost".into();
    let err = session.start(&ghost).expect_err("unknown VM");
    assert_eq!(err.kind, ErrorKind::NotFound);

    // vm0 keeps its nets up; stop it and they go.
    session.stop_networks(&nets).expect("kept");
    assert_eq!(session.network_state(nets[0]).expect("state"), "up");
    session.stop(vm0).expect("stop");
    session.stop_networks(&nets).expect("stopped");
    for n in &nets {
        assert_eq!(session.network_state(n).expect("state"), "down");
    }
    session.cleanup().expect("cleanup");

    // Bad settings are user errors. (One test: the environment is global.)
    std::env::set_var("LAGO__LOCAL_LIBVIRT__SEED_BUS", "floppy");
    let err = LocalLibvirt.open(&env).err().expect("refused");
    std::env::remove_var("LAGO__LOCAL_LIBVIRT__SEED_BUS");
    assert_eq!(err.kind, ErrorKind::User);
    assert!(err.message().contains("floppy"), "{}", err.message());
}
