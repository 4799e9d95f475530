//! Block I/O limits (`--blkio-weight`, `--device-read-bps`, `--device-write-bps`,
//! `--device-read-iops`, `--device-write-iops`): checked and resolved to device numbers when the
//! container is created, as Docker does, so a typo fails `create` rather than `start`.

use std::os::unix::fs::FileTypeExt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One throttle: the device as given and as numbers, and its limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throttle {
    pub path: String,
    pub major: i64,
    pub minor: i64,
    pub rate: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockIo {
    pub weight: Option<u16>,
    pub read_bps: Vec<Throttle>,
    pub write_bps: Vec<Throttle>,
    pub read_iops: Vec<Throttle>,
    pub write_iops: Vec<Throttle>,
}

impl BlockIo {
    pub fn is_empty(&self) -> bool {
        *self == BlockIo::default()
    }
}

/// `--blkio-weight`: 10 to 1000, or 0 for none.
pub fn weight(w: Option<u16>) -> Result<Option<u16>> {
    match w {
        None | Some(0) => Ok(None),
        Some(w @ 10..=1000) => Ok(Some(w)),
        Some(w) => Err(Error::Invalid(format!(
            "invalid --blkio-weight {w}: use a value from 10 to 1000 (0 for none)"
        ))),
    }
}

/// `DEVICE:RATE` → a throttle; `bytes` rates take a unit (`1mb`), iops rates are counts.
pub fn throttle(flag: &str, arg: &str, bytes: bool) -> Result<Throttle> {
    let (path, rate) = arg.rsplit_once(':').ok_or_else(|| {
        Error::Invalid(format!(
            "invalid {flag} {arg:?}: use DEVICE:RATE, for example /dev/sda:1mb"
        ))
    })?;
    let rate = if bytes {
        crate::parse::size(flag, rate)? as u64
    } else {
        rate.parse::<u64>().ok().filter(|&r| r > 0).ok_or_else(|| {
            Error::Invalid(format!(
                "invalid {flag} {arg:?}: the rate must be a positive number of operations"
            ))
        })?
    };
    let md = std::fs::metadata(path).map_err(|e| Error::Invalid(format!("invalid {flag} {arg:?}: {path}: {e}")))?;
    if !md.file_type().is_block_device() {
        return Err(Error::Invalid(format!(
            "invalid {flag} {arg:?}: {path} is not a block device"
        )));
    }
    use std::os::unix::fs::MetadataExt;
    let dev = md.rdev();
    Ok(Throttle {
        path: path.to_string(),
        major: i64::from(rustix::fs::major(dev)),
        minor: i64::from(rustix::fs::minor(dev)),
        rate,
    })
}

/// The OCI `linux.resources.blockIO` object.
pub fn spec(b: &BlockIo) -> serde_json::Value {
    let list = |v: &[Throttle]| -> Vec<serde_json::Value> {
        v.iter()
            .map(|t| serde_json::json!({"major": t.major, "minor": t.minor, "rate": t.rate}))
            .collect()
    };
    let mut o = serde_json::json!({
        "throttleReadBpsDevice": list(&b.read_bps),
        "throttleWriteBpsDevice": list(&b.write_bps),
        "throttleReadIOPSDevice": list(&b.read_iops),
        "throttleWriteIOPSDevice": list(&b.write_iops),
    });
    if let Some(w) = b.weight {
        o["weight"] = serde_json::json!(w);
    }
    o
}

/// Docker's inspect shape: `[{"Path": "/dev/sda", "Rate": 1048576}]`.
pub fn inspect(v: &[Throttle]) -> serde_json::Value {
    serde_json::Value::Array(
        v.iter()
            .map(|t| serde_json::json!({"Path": t.path, "Rate": t.rate}))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_checked() {
        assert_eq!(weight(Some(0)).unwrap(), None);
        assert_eq!(weight(Some(500)).unwrap(), Some(500));
        assert!(weight(Some(5)).unwrap_err().to_string().contains("10 to 1000"));
        assert!(throttle("--device-read-bps", "nocolon", true)
            .unwrap_err()
            .to_string()
            .contains("DEVICE:RATE"));
        assert!(throttle("--device-read-bps", "/dev/null:1mb", true)
            .unwrap_err()
            .to_string()
            .contains("not a block device"));
        assert!(throttle("--device-read-bps", "/nonexistent:1mb", true).is_err());
        assert!(throttle("--device-read-iops", "/dev/null:0", false)
            .unwrap_err()
            .to_string()
            .contains("positive"));
        assert!(throttle("--device-write-bps", "/dev/null:12q", true)
            .unwrap_err()
            .to_string()
            .contains("--device-write-bps"));
    }
}
