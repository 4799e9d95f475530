//! The five capability sets of the spec, applied with the `caps` crate.

use std::collections::HashSet;
use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

use crate::error::{Error, Result};

/// oci-spec's capability names ("CAP_CHOWN") to the kernel's numbers; capabilities this kernel
/// does not know are dropped silently, as runc does.
fn convert(set: &Option<Capabilities>) -> CapsHashSet {
    let known = supported();
    set.iter()
        .flatten()
        .filter_map(|c| serde_json::to_value(c).ok())
        .filter_map(|v| v.as_str().and_then(|s| Capability::from_str(s).ok()))
        .filter(|c| known.contains(c))
        .collect()
}

fn cerr(what: &str) -> impl FnOnce(caps::errors::CapsError) -> Error + '_ {
    move |e| Error::Init(format!("capabilities: {what}: {e}"))
}

/// The capabilities this kernel knows, probed once (each probe is a prctl per capability).
fn supported() -> &'static CapsHashSet {
    static KNOWN: std::sync::OnceLock<CapsHashSet> = std::sync::OnceLock::new();
    KNOWN.get_or_init(caps::runtime::thread_all_supported)
}

/// Drop the bounding set first (needs CAP_SETPCAP, which we still have).
pub fn apply_bounding(c: &LinuxCapabilities) -> Result<()> {
    let keep = convert(c.bounding());
    // Dropping a capability already out of the set is a no-op: no need to read the set first.
    for &cap in supported() {
        if !keep.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap).map_err(cerr("drop bounding"))?;
        }
    }
    Ok(())
}

/// Effective, permitted, inheritable, then ambient (which must be in permitted and inheritable).
pub fn apply_sets(c: &LinuxCapabilities) -> Result<()> {
    let eff = convert(c.effective());
    let perm = convert(c.permitted());
    let inh = convert(c.inheritable());
    caps::set(
        None,
        CapSet::Effective,
        &eff.intersection(&caps::read(None, CapSet::Effective).unwrap_or_default())
            .copied()
            .collect::<HashSet<_>>(),
    )
    .map_err(cerr("set effective"))?;
    caps::set(None, CapSet::Inheritable, &inh).map_err(cerr("set inheritable"))?;
    caps::set(None, CapSet::Permitted, &perm).map_err(cerr("set permitted"))?;
    caps::set(None, CapSet::Effective, &eff).map_err(cerr("set effective"))?;
    caps::clear(None, CapSet::Ambient).map_err(cerr("clear ambient"))?;
    for cap in convert(c.ambient()) {
        // The kernel refuses ambient caps that are not both permitted and inheritable; runc ignores those.
        let _ = caps::raise(None, CapSet::Ambient, cap);
    }
    Ok(())
}

/// Every capability the kernel knows, as spec names (for `spec` and privileged defaults).
pub fn all_names() -> Vec<String> {
    let mut v: Vec<String> = caps::runtime::thread_all_supported()
        .iter()
        .map(|c| c.to_string())
        .collect();
    v.sort();
    v
}
