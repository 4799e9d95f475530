//! `rm`: a stopped container's directory, row and owner lock go; with -v its anonymous volumes
//! too. A running one is refused unless forced, which kills it first.

use std::time::Duration;

use crate::config::MountKind;
use crate::db::{self, Container};
use crate::error::{Context, Error, Result};
use crate::{launch, lifecycle, rootfs, trash, volumes, Engine};

pub fn remove(e: &Engine, ct: &Container, force: bool, with_volumes: bool) -> Result<()> {
    let mut ct = ct.clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if !ct.state.is_active() {
            // Removed under its owner's lock. Not running but locked means a monitor or a
            // foreground `run` is starting it or finishing with it: deleting it under them would
            // leave a container running without a row or a root filesystem. Wait until it runs
            // (refused or killed below) or its owner lets go.
            if purge_unowned(e, &ct, with_volumes)? {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(Error::BadState {
                    name: ct.name.clone(),
                    state: ct.state.as_str().into(),
                    what: "its owner (a monitor or a foreground run) has held it for 30 s; try again".into(),
                });
            }
            std::thread::sleep(Duration::from_millis(5));
            // Gone: its owner removed it (--rm).
            let Some(now) = db::get(e.db(), &ct.id)? else {
                return Ok(());
            };
            ct = now;
            continue;
        }
        if !force {
            return Err(Error::BadState {
                name: ct.name.clone(),
                state: ct.state.as_str().into(),
                what: format!(
                    "cannot remove a running container; stop it first, or use: lbox rm -f {}",
                    ct.name
                ),
            });
        }
        db::set_manual_stop(e.db(), &ct.id, true)?;
        if ct.pid > 0 && runtime::state::pid_alive(ct.pid, ct.pid_start) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(ct.pid), nix::sys::signal::Signal::SIGKILL);
        }
        if ct.state == crate::State::Paused {
            let _ = lifecycle::set_paused(e, &ct, false);
        }
        match lifecycle::wait_inactive(e, &ct.id, Some(Duration::from_secs(30)))? {
            None => return Ok(()),
            Some(c) if c.state.is_active() => {
                return Err(Error::BadState {
                    name: c.name.clone(),
                    state: c.state.as_str().into(),
                    what: "it did not stop after SIGKILL".into(),
                })
            }
            Some(c) => ct = c,
        }
    }
}

/// [`purge`] under the container's owner lock; false, and nothing done, while an owner holds it
/// (a monitor or a foreground `run` starting the container or finishing with it).
pub fn purge_unowned(e: &Engine, ct: &Container, with_volumes: bool) -> Result<bool> {
    let Some(_lock) = crate::owner::try_acquire(&e.paths.owner_lock(&ct.id))? else {
        return Ok(false);
    };
    purge(e, ct, with_volumes)?;
    Ok(true)
}

/// Remove everything of a container that is not running.
pub fn purge(e: &Engine, ct: &Container, with_volumes: bool) -> Result<()> {
    let _ = launch::release(e, ct);
    discard(e, ct, with_volumes)
}

/// Delete the directory, row, owner lock (and anonymous volumes) of a container whose runtime
/// state is already gone. Its root filesystem may still be mounted: the unmount goes to the
/// background with the files (see `trash`).
pub fn discard(e: &Engine, ct: &Container, with_volumes: bool) -> Result<()> {
    discard_leaving(e, ct, with_volumes, None, Vec::new())
}

/// As [`discard`]; what `launch::release_later` left is removed in the background too, and the
/// container's namespaces `launch` held are let go there.
pub fn discard_leaving(
    e: &Engine,
    ct: &Container,
    with_volumes: bool,
    left: Option<&runtime::container::Leftovers>,
    namespaces: Vec<std::os::fd::OwnedFd>,
) -> Result<()> {
    let (cgroups, state) = match left {
        Some(l) => (l.cgroups.as_slice(), Some(l.state.as_path())),
        None => (&[][..], None),
    };
    let dir = e.paths.container(&ct.id);
    // Moved aside in one rename (allowed with the rootfs mounted inside), deleted in the
    // background: file deletion is the slowest part of removing a container, and nothing waits
    // for the disk space.
    let trash = e.paths.root.join("trash");
    let _ = std::fs::create_dir_all(&trash);
    match std::fs::rename(&dir, trash.join(&ct.id)) {
        Ok(()) => {
            // With its files: the pooled network namespace it kept (see `netpool`), and a new one.
            let pool = crate::netpool::wanted(&ct.config).then(|| crate::netpool::dir(&e.paths));
            trash::tidy_in_background(trash::Tidy {
                cgroups,
                runtime_state: state,
                namespaces: &namespaces,
                trash: Some(&trash),
                netns_owner: pool.as_deref().map(|p| (p, ct.id.as_str())),
                netns_refill: pool.as_deref(),
            })
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => trash::tidy_in_background(trash::Tidy {
            cgroups,
            runtime_state: state,
            namespaces: &namespaces,
            ..Default::default()
        }),
        Err(_) => {
            trash::tidy_in_background(trash::Tidy {
                cgroups,
                runtime_state: state,
                namespaces: &namespaces,
                ..Default::default()
            });
            rootfs::unmount(e, &ct.id)?;
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(err).ctx(|| format!("remove {}", dir.display())),
            }
        }
    }
    // Our copies: the clone's are the last ones (see `trash::Tidy::namespaces`).
    drop(namespaces);
    db::delete(e.db(), &ct.id)?;
    crate::owner::remove(&e.paths.owner_lock(&ct.id));
    if with_volumes {
        for m in ct
            .config
            .mounts
            .iter()
            .filter(|m| m.kind == MountKind::Volume && m.anonymous)
        {
            match volumes::remove(e, &m.source, false) {
                Ok(()) | Err(Error::NoSuchVolume(_)) | Err(Error::VolumeInUse { .. }) => {}
                Err(err) => return Err(err),
            }
        }
    }
    Ok(())
}
