//! `system prune` and friends: remove stopped containers, and anything a crash or a killed
//! command left behind that no container row accounts for (directories, mounts, runtime state,
//! owner locks, the trash).

use std::collections::HashSet;

use crate::error::Result;
use crate::{remove, rootfs, Engine};

/// Remove every container that is not running; their names.
pub fn containers(e: &Engine) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for c in e.containers()? {
        // One its owner holds is being started or finished with: not one to prune.
        if !c.state.is_active() && remove::purge_unowned(e, &c, false)? {
            removed.push(c.name);
        }
    }
    Ok(removed)
}

/// Image IDs some container uses (they must not be pruned or removed).
pub fn images_in_use(e: &Engine) -> Result<Vec<String>> {
    let mut ids: Vec<String> = crate::db::all(e.db())?.into_iter().map(|c| c.config.image_id).collect();
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// Clean what belongs to no container row; how many things were cleaned.
pub fn orphans(e: &Engine) -> Result<usize> {
    let rows = crate::db::all(e.db())?;
    let known: HashSet<&str> = rows.iter().map(|c| c.id.as_str()).collect();
    let active: HashSet<&str> = rows
        .iter()
        .filter(|c| c.state.is_active())
        .map(|c| c.id.as_str())
        .collect();
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(e.paths.root.join("containers")) {
        for d in rd.flatten() {
            let id = d.file_name().to_string_lossy().into_owned();
            if !known.contains(id.as_str()) {
                rootfs::unmount(e, &id)?;
                let _ = std::fs::remove_dir_all(d.path());
                n += 1;
            }
        }
    }
    // Runtime state, including directories a killed command claimed but never filled in.
    let store = e.runtime_store();
    if let Ok(rd) = std::fs::read_dir(e.paths.runtime()) {
        for d in rd.flatten() {
            let id = d.file_name().to_string_lossy().into_owned();
            if id.contains('@') || active.contains(id.as_str()) || crate::owner::is_owned(&e.paths.owner_lock(&id)) {
                continue;
            }
            match store.load(&id) {
                Ok(rec) => {
                    let _ = runtime::container::destroy(&store, &rec);
                }
                Err(_) => {
                    // Killed between claiming the state and saving it: the cgroup, if made,
                    // is where create puts it (spec::build's cgroupsPath).
                    let parent = std::env::var("LBOX_CGROUP_PARENT").unwrap_or_else(|_| "lbox".into());
                    let rel = std::path::PathBuf::from(format!("{}/{id}", parent.trim_end_matches('/')));
                    if let Ok(cg) = runtime::cgroups::CgroupPaths::resolve(Some(&rel), &id) {
                        for pid in cg.pids() {
                            let _ = nix::sys::signal::kill(
                                nix::unistd::Pid::from_raw(pid),
                                nix::sys::signal::Signal::SIGKILL,
                            );
                        }
                        let _ = cg.destroy();
                    }
                    let _ = std::fs::remove_dir_all(d.path());
                }
            }
            n += 1;
        }
    }
    if let Ok(rd) = std::fs::read_dir(e.paths.run.join("owners")) {
        for d in rd.flatten() {
            let name = d.file_name().to_string_lossy().into_owned();
            let id = name.trim_end_matches(".lock");
            if !known.contains(id) {
                let _ = std::fs::remove_file(d.path());
            }
        }
    }
    crate::trash::empty(&e.paths.root.join("trash"));
    crate::netpool::prune(&e.paths);
    Ok(n)
}
