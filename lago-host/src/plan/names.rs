//! The names lago gives what it plans: libvirt names and bridges (under the
//! prefix's tag, so that environments never clash) and the DNS names of a
//! VM's nics.

/// The libvirt name of VM or net `name` of the prefix tagged `tag`.
pub fn libvirt_name(tag: &str, name: &str) -> String {
    format!("{tag}-{name}")
}

/// The bridge of the `idx`-th net (in name order): `lg<tag>-<idx>`, at most
/// 15 characters as Linux wants.
pub fn bridge_name(tag: &str, idx: usize) -> String {
    format!("lg{tag}-{idx}")
}

/// The DNS names of nic `i` of VM `vm`, the `on_net`-th of the VM on `net`:
/// Lago's names (`Prefix._add_nic_to_mapping`): `<vm>` for the management
/// nic (`first_mgmt`: the VM's first nic on its management net),
/// `<vm>-eth<i>`, `<vm>-<net>` for the first nic on a net and
/// `<vm>-<net>-<n>` for every one.
pub fn nic_hostnames(
    vm: &str,
    i: usize,
    net: &str,
    first_mgmt: bool,
    on_net: usize,
) -> Vec<String> {
    let mut hostnames = Vec::with_capacity(4);
    if first_mgmt {
        hostnames.push(vm.to_string());
    }
    hostnames.push(format!("{vm}-eth{i}"));
    if on_net == 0 {
        hostnames.push(format!("{vm}-{net}"));
    }
    hostnames.push(format!("{vm}-{net}-{on_net}"));
    hostnames
}
