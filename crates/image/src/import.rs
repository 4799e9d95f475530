//! `lbox import`: a root filesystem tarball (gzip, xz, zstd or plain) becomes a one-layer image.
//! The tarball is read once: unpacked and, at the same time, recompressed as the layer blob.

use std::io::{self, Read, Write};

use crate::compress;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{self, History, ImageConfig, RootFs, RunConfig};
use crate::reference::Reference;
use crate::store::{BlobWriter, ImageLayer, Store};

#[derive(Debug, Default, Clone)]
pub struct ImportOptions {
    pub message: Option<String>,
    /// Dockerfile-style changes: `CMD ["sh"]`, `ENV K=V`, `WORKDIR /x`, `ENTRYPOINT …`, `USER u`.
    pub changes: Vec<String>,
}

/// Feeds the uncompressed tar to the gzip encoder as the unpacker reads it, so a layer is
/// unpacked and recompressed as its blob in one pass (import and load).
pub(crate) struct GzTee<R> {
    pub inner: R,
    pub out: flate2::write::GzEncoder<BlobWriter>,
}

impl<R: Read> GzTee<R> {
    pub fn new(inner: R, store: &Store) -> Result<GzTee<R>> {
        Ok(GzTee {
            inner,
            out: flate2::write::GzEncoder::new(BlobWriter::new(store)?, flate2::Compression::fast()),
        })
    }
}

impl<R: Read> Read for GzTee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        Ok(n)
    }
}

pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339(secs as i64)
}

/// UTC date from seconds since the epoch (civil-from-days, Howard Hinnant's algorithm).
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn json_or_words(v: &str) -> Vec<String> {
    serde_json::from_str::<Vec<String>>(v).unwrap_or_else(|_| vec!["/bin/sh".into(), "-c".into(), v.to_string()])
}

/// Dockerfile ENV: `K=V K2="two words"` (quotes and backslash escapes), or the legacy `K value`.
fn env_pairs(v: &str) -> Vec<(String, String)> {
    let first = v.split_whitespace().next().unwrap_or("");
    if !first.contains('=') {
        let (k, rest) = v.split_once(char::is_whitespace).unwrap_or((v, ""));
        return vec![(k.to_string(), rest.trim().to_string())];
    }
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut chars = v.chars();
    let flush = |w: &mut String, out: &mut Vec<(String, String)>| {
        if let Some((k, val)) = w.split_once('=') {
            out.push((k.to_string(), val.to_string()));
        }
        w.clear();
    };
    while let Some(c) = chars.next() {
        match (c, quote) {
            ('\\', q) if q != Some('\'') => {
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            ('"', None) | ('\'', None) => quote = Some(c),
            (c, Some(q)) if c == q => quote = None,
            (c, None) if c.is_whitespace() => flush(&mut word, &mut out),
            (c, _) => word.push(c),
        }
    }
    flush(&mut word, &mut out);
    out
}

fn apply_changes(cfg: &mut RunConfig, changes: &[String]) -> Result<()> {
    for c in changes {
        let (k, v) = c.trim().split_once(char::is_whitespace).unwrap_or((c.trim(), ""));
        let v = v.trim();
        match k.to_ascii_uppercase().as_str() {
            "CMD" => cfg.cmd = Some(json_or_words(v)),
            "ENTRYPOINT" => cfg.entrypoint = Some(json_or_words(v)),
            "ENV" => {
                let env = cfg.env.get_or_insert_with(Vec::new);
                for (key, val) in env_pairs(v) {
                    env.retain(|e| e.split('=').next() != Some(key.as_str()));
                    env.push(format!("{key}={val}"));
                }
            }
            "WORKDIR" => cfg.working_dir = Some(v.to_string()),
            "USER" => cfg.user = Some(v.to_string()),
            "EXPOSE" => {
                let port = if v.contains('/') { v.to_string() } else { format!("{v}/tcp") };
                cfg.exposed_ports.get_or_insert_with(Default::default).insert(port, serde_json::json!({}));
            }
            "LABEL" => {
                let (lk, lv) = v.split_once('=').ok_or_else(|| Error::Invalid(format!("--change {c:?}: expected LABEL key=value")))?;
                cfg.labels.get_or_insert_with(Default::default).insert(lk.to_string(), lv.trim_matches('"').to_string());
            }
            "STOPSIGNAL" => cfg.stop_signal = Some(v.to_string()),
            _ => {
                return Err(Error::Invalid(format!(
                    "--change {c:?}: unsupported instruction (use CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL or STOPSIGNAL)"
                )))
            }
        }
    }
    Ok(())
}

/// Import `src` (described as `source` in the history) as a new image, tagged `tag` if given.
pub fn import(
    store: &Store,
    src: impl Read,
    source: &str,
    tag: Option<&Reference>,
    opts: &ImportOptions,
) -> Result<Digest> {
    let mut run = RunConfig::default();
    apply_changes(&mut run, &opts.changes)?;
    let (_, tar) = compress::decompress(src).map_err(Error::io(format!("read {source}")))?;
    let mut tee = GzTee::new(tar, store)?;
    let unpacked = store.unpack_to_tmp(&mut tee, &[], source)?;
    io::copy(&mut tee, &mut io::sink()).map_err(Error::io(format!("read {source}")))?;
    let blob = tee.out.finish().map_err(Error::io("compress layer"))?;
    let (blob_digest, blob_size) = blob.commit("imported layer", None)?;
    let diff_id = unpacked.diff_id.clone();
    let (bytes, tar_size) = (unpacked.bytes, unpacked.tar_size);
    store.place_layer(unpacked, &diff_id)?;

    let created = now_rfc3339();
    let platform = manifest::Platform::host();
    let config = ImageConfig {
        created: Some(created.clone()),
        author: None,
        architecture: platform.architecture,
        os: platform.os,
        variant: platform.variant,
        config: Some(run),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: vec![diff_id.clone()],
        },
        history: vec![History {
            created: Some(created.clone()),
            created_by: Some(format!("lbox import {source}")),
            comment: opts.message.clone().or_else(|| Some(format!("Imported from {source}"))),
            ..Default::default()
        }],
        other: Default::default(),
    };
    let layer = ImageLayer {
        chain_id: diff_id.clone(),
        diff_id,
        blob: blob_digest,
        media_type: manifest::OCI_LAYER_GZIP.into(),
        blob_size,
        size: bytes,
        tar_size,
    };
    let tags: Vec<String> = tag.and_then(|r| r.tagged()).into_iter().collect();
    store.write_image(config, vec![layer], &tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn changes() {
        let mut c = RunConfig::default();
        apply_changes(
            &mut c,
            &[
                "CMD [\"sh\"]".into(),
                "ENV A=1".into(),
                "ENV B=\"two words\" C=3".into(),
                "ENV D legacy form".into(),
                "WORKDIR /w".into(),
                "EXPOSE 80".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.cmd, Some(vec!["sh".to_string()]));
        let env: Vec<String> = ["A=1", "B=two words", "C=3", "D=legacy form"]
            .map(String::from)
            .to_vec();
        assert_eq!(c.env, Some(env));
        assert_eq!(c.working_dir.as_deref(), Some("/w"));
        assert!(c.exposed_ports.unwrap().contains_key("80/tcp"));
        assert!(apply_changes(&mut RunConfig::default(), &["RUN x".into()]).is_err());
    }
}
