//! The store below the CLI: layers unpacked with whiteouts, opaque directories, links, owners,
//! modes and extended attributes, then stacked by an overlay mount. Needs root.

use std::io::Cursor;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use image::digest::Digest;
use image::manifest::chain_ids;
use image::store::{ImageLayer, NewImage, Store};

fn tar_of(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    build(&mut b);
    b.into_inner().expect("tar")
}

fn file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8], mode: u32, uid: u64) {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(mode);
    h.set_uid(uid);
    h.set_gid(uid);
    h.set_mtime(1_600_000_000);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, path, data).expect("append");
}

fn dir(b: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32) {
    let mut h = tar::Header::new_gnu();
    h.set_size(0);
    h.set_mode(mode);
    h.set_mtime(1_500_000_000);
    h.set_entry_type(tar::EntryType::Directory);
    b.append_data(&mut h, path, &[][..]).expect("append");
}

fn link(b: &mut tar::Builder<Vec<u8>>, kind: tar::EntryType, path: &str, target: &str) {
    let mut h = tar::Header::new_gnu();
    h.set_size(0);
    h.set_mode(0o777);
    h.set_entry_type(kind);
    b.append_link(&mut h, path, target).expect("append");
}

fn put_layer(store: &Store, data: Vec<u8>, parents: &[Digest]) -> (Digest, u64) {
    let u = store.unpack_to_tmp(Cursor::new(data), parents, "test").expect("unpack");
    let diff = u.diff_id.clone();
    let bytes = u.bytes;
    // The chain ID of a layer over at most one parent (this test stacks two).
    let chain = if parents.is_empty() {
        diff.clone()
    } else {
        Digest::of(format!("{} {diff}", parents[parents.len() - 1]).as_bytes())
    };
    store.place_layer(u, &chain).expect("place");
    (diff, bytes)
}

#[test]
fn layers_unpack_faithfully_and_stack_in_an_overlay() {
    let t = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&t.path().join("store")).expect("open");
    let lower = tar_of(|b| {
        dir(b, "etc", 0o755);
        file(b, "etc/hostname", b"lower\n", 0o644, 0);
        file(b, "etc/gone", b"to be whited out\n", 0o644, 0);
        dir(b, "opaque", 0o755);
        file(b, "opaque/old", b"hidden by the opaque marker\n", 0o644, 0);
        file(b, "suid", b"#!/bin/sh\n", 0o4755, 1000);
        link(b, tar::EntryType::Symlink, "rel", "etc/hostname");
        link(b, tar::EntryType::Link, "hard", "etc/hostname");
        dir(b, "ro", 0o555);
        file(b, "ro/inside", b"x", 0o600, 33);
        let mut h = tar::Header::new_ustar();
        h.set_size(3);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_pax_extensions([
            ("SCHILY.xattr.user.lbox", &b"yes"[..]),
            ("SCHILY.xattr.trusted.overlay.redirect", &b"/etc"[..]),
        ])
        .expect("pax");
        b.append_data(&mut h, "xattr", &b"abc"[..]).expect("append");
    });
    let upper = tar_of(|b| {
        file(b, "etc/hostname", b"upper\n", 0o644, 0);
        file(b, "etc/.wh.gone", b"", 0o644, 0);
        dir(b, "opaque", 0o755);
        file(b, "opaque/.wh..wh..opq", b"", 0o644, 0);
        file(b, "opaque/new", b"new\n", 0o644, 0);
    });
    let (d1, s1) = put_layer(&store, lower, &[]);
    let (d2, s2) = put_layer(&store, upper, std::slice::from_ref(&d1));
    let chains = chain_ids(&[d1.clone(), d2.clone()]);
    let l1 = store.layer_path(&chains[0]);

    // The lower layer as unpacked.
    assert_eq!(
        std::fs::read_to_string(l1.join("etc/hostname")).expect("read"),
        "lower\n"
    );
    let suid = std::fs::metadata(l1.join("suid")).expect("suid");
    assert_eq!((suid.mode() & 0o7777, suid.uid(), suid.gid()), (0o4755, 1000, 1000));
    assert_eq!(
        std::fs::read_link(l1.join("rel")).expect("readlink").to_str(),
        Some("etc/hostname")
    );
    assert_eq!(
        std::fs::metadata(l1.join("hard")).expect("hard").ino(),
        std::fs::metadata(l1.join("etc/hostname")).expect("h").ino()
    );
    assert_eq!(
        std::fs::metadata(l1.join("ro")).expect("ro").permissions().mode() & 0o777,
        0o555
    );
    assert_eq!(std::fs::metadata(l1.join("ro/inside")).expect("inside").uid(), 33);
    assert_eq!(
        std::fs::metadata(l1.join("etc/hostname")).expect("m").mtime(),
        1_600_000_000
    );
    let xattr = rustix::fs::getxattr(l1.join("xattr"), "user.lbox", &mut [0u8; 16]).expect("user xattr");
    assert_eq!(xattr, 3);
    assert!(
        rustix::fs::getxattr(l1.join("xattr"), "trusted.overlay.redirect", &mut [0u8; 16]).is_err(),
        "overlay attributes are never copied from a layer"
    );

    // Record an image and mount it: the upper layer wins, whiteouts and the opaque dir hide.
    let blob = Digest::of(b"unused");
    let layers = vec![
        ImageLayer {
            chain_id: chains[0].clone(),
            diff_id: d1.clone(),
            blob: blob.clone(),
            media_type: "x".into(),
            blob_size: 0,
            size: s1,
            tar_size: 1,
        },
        ImageLayer {
            chain_id: chains[1].clone(),
            diff_id: d2.clone(),
            blob,
            media_type: "x".into(),
            blob_size: 0,
            size: s2,
            tar_size: 1,
        },
    ];
    let config = store.put_blob(b"{}", "config", None).expect("config");
    let manifest = store.put_blob(b"{\"m\":1}", "manifest", None).expect("manifest");
    store
        .commit_image(&NewImage {
            id: config.clone(),
            manifest_digest: manifest,
            manifest_media_type: "x".into(),
            created: None,
            layers,
            tag: Some("localhost/test:1".into()),
            repo_digest: None,
        })
        .expect("commit");
    let target = t.path().join("merged");
    let (up, work) = (t.path().join("upper"), t.path().join("work"));
    for d in [&target, &up, &work] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    store
        .mount(
            &config,
            &target,
            Some(image::overlay::Upper {
                dir: &up,
                work: &work,
                volatile: false,
            }),
        )
        .expect("mount");
    let seen = |p: &str| std::fs::read_to_string(target.join(p)).ok();
    let result = (
        seen("etc/hostname"),
        target.join("etc/gone").exists(),
        seen("opaque/old"),
        seen("opaque/new"),
        seen("hard"),
    );
    rustix::mount::unmount(&target, rustix::mount::UnmountFlags::DETACH).expect("unmount");
    assert_eq!(
        result,
        (
            Some("upper\n".into()),
            false,
            None,
            Some("new\n".into()),
            Some("lower\n".into())
        )
    );
    assert!(
        Path::new(&store.layer_path(&chains[1])).join("etc/gone").exists(),
        "the whiteout is a node in the layer"
    );

    // rmi frees both layers.
    store.remove_image("localhost/test:1", false).expect("rmi");
    assert!(!store.has_layer(&chains[0]) && !store.has_layer(&chains[1]));
}
