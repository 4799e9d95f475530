//! Layer and tarball compression: detected from the stream's first bytes (media types lie more
//! often than magic numbers do), so gzip, zstd, xz and plain tar are all accepted everywhere.

use std::io::{self, BufRead, BufReader, Read};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    Xz,
}

impl Compression {
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Compression::Xz
        } else {
            Compression::None
        }
    }
}

/// Wrap `r` in the decompressor its first bytes call for.
pub fn decompress<'a, R: Read + 'a>(r: R) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let mut br = BufReader::with_capacity(256 * 1024, r);
    let kind = Compression::sniff(br.fill_buf()?);
    let out: Box<dyn Read + 'a> = match kind {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(br)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(br)?),
        Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(br)),
        Compression::None => Box::new(br),
    };
    Ok((kind, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn round_trips_every_kind() {
        let data = b"hello layer".repeat(100);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let zs = zstd::encode_all(&data[..], 1).unwrap();
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(&data).unwrap();
        let xz = xz.finish().unwrap();
        for (bytes, kind) in [
            (gz, Compression::Gzip),
            (zs, Compression::Zstd),
            (xz, Compression::Xz),
            (data.clone(), Compression::None),
        ] {
            let (k, mut r) = decompress(&bytes[..]).unwrap();
            assert_eq!(k, kind);
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, data);
        }
    }
}
