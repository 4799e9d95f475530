//! `--user` / the image's User: a name or number, optionally with a group, resolved against the
//! container's own /etc/passwd and /etc/group, with the user's supplementary groups (as Docker).

use std::os::fd::OwnedFd;
use std::path::Path;

use crate::error::{Error, Result};
use crate::inroot;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

pub fn resolve(root: &OwnedFd, spec: &str) -> Result<User> {
    let passwd = inroot::read(root, Path::new("/etc/passwd"))?.unwrap_or_default();
    let group = inroot::read(root, Path::new("/etc/group"))?.unwrap_or_default();
    resolve_in(&passwd, &group, spec)
}

fn fields(line: &str) -> Vec<&str> {
    line.split(':').collect()
}

pub fn resolve_in(passwd: &str, group: &str, spec: &str) -> Result<User> {
    let spec = if spec.is_empty() { "0" } else { spec };
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let entry = passwd
        .lines()
        .map(fields)
        .find(|f| f.len() >= 7 && (f[0] == u || f[2] == u));
    let (uid, mut gid, name, home) = match (entry, u.parse::<u32>()) {
        (Some(f), _) => {
            let uid = f[2].parse().map_err(|_| bad_entry("passwd", f[0]))?;
            let gid = f[3].parse().map_err(|_| bad_entry("passwd", f[0]))?;
            (uid, gid, f[0].to_string(), f[5].to_string())
        }
        // A bare uid with no passwd entry runs with gid 0, as Docker does.
        (None, Ok(n)) => (n, 0, String::new(), "/".to_string()),
        (None, Err(_)) => {
            return Err(Error::Invalid(format!(
                "unable to find user {u}: no matching entries in the container's /etc/passwd"
            )))
        }
    };
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group
                .lines()
                .map(fields)
                .find(|f| f.len() >= 3 && f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "unable to find group {g}: no matching entries in the container's /etc/group"
                    ))
                })?,
        };
    }
    let mut additional_gids = Vec::new();
    if !name.is_empty() && g.is_none() {
        for f in group.lines().map(fields) {
            if f.len() >= 4 && f[3].split(',').any(|m| m == name) {
                if let Ok(n) = f[2].parse::<u32>() {
                    if n != gid && !additional_gids.contains(&n) {
                        additional_gids.push(n);
                    }
                }
            }
        }
    }
    Ok(User {
        uid,
        gid,
        additional_gids,
        home,
    })
}

fn bad_entry(file: &str, name: &str) -> Error {
    Error::Invalid(format!("malformed entry for {name:?} in the container's /etc/{file}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/false\n";
    const GROUP: &str = "root:x:0:\nwww:x:33:\nlog:x:4:www\nstaff:x:50:www,root\n";

    #[test]
    fn users_and_groups() {
        assert_eq!(resolve_in(PASSWD, GROUP, "").expect("root").uid, 0);
        let w = resolve_in(PASSWD, GROUP, "www").expect("www");
        assert_eq!((w.uid, w.gid, w.home.as_str()), (33, 33, "/var/www"));
        assert_eq!(w.additional_gids, vec![4, 50]);
        assert_eq!(resolve_in(PASSWD, GROUP, "1000").expect("uid").gid, 0);
        assert_eq!(resolve_in(PASSWD, GROUP, "1000:7").expect("uid:gid").gid, 7);
        assert_eq!(resolve_in(PASSWD, GROUP, "www:staff").expect("name:group").gid, 50);
        assert!(resolve_in(PASSWD, GROUP, "nobody").is_err());
        assert!(resolve_in(PASSWD, GROUP, "www:nogroup").is_err());
    }
}
