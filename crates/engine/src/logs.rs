//! Container logs in Docker's json-file format: one JSON object per line with the text, the
//! stream and an RFC 3339 timestamp; rotated to container.log.1 when it reaches its maximum size.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Context, Result};

pub const DEFAULT_MAX_SIZE: u64 = 20 << 20;
/// A line longer than this is written in pieces (as Docker's 16 KiB chunks).
const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    /// Partial lines, per stream, waiting for their newline.
    pending: [Vec<u8>; 2],
}

impl LogWriter {
    pub fn open(path: &Path, max_size: Option<u64>) -> Result<LogWriter> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ctx(|| format!("open log {}", path.display()))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(LogWriter {
            path: path.to_path_buf(),
            file,
            size,
            max_size: max_size.unwrap_or(DEFAULT_MAX_SIZE),
            pending: [Vec::new(), Vec::new()],
        })
    }

    /// Add output of a stream; complete lines are written at once.
    pub fn write(&mut self, stream: Stream, data: &[u8]) {
        let i = stream as usize;
        let mut buf = std::mem::take(&mut self.pending[i]);
        buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + nl + 1;
            self.entry(stream, &buf[start..end]);
            start = end;
        }
        while buf.len() - start >= MAX_LINE {
            self.entry(stream, &buf[start..start + MAX_LINE]);
            start += MAX_LINE;
        }
        buf.drain(..start);
        self.pending[i] = buf;
    }

    /// Write out what is left of unfinished lines (at exit).
    pub fn flush(&mut self) {
        for s in [Stream::Stdout, Stream::Stderr] {
            let rest = std::mem::take(&mut self.pending[s as usize]);
            if !rest.is_empty() {
                self.entry(s, &rest);
            }
        }
    }

    fn entry(&mut self, stream: Stream, text: &[u8]) {
        let e = Entry {
            log: String::from_utf8_lossy(text).into_owned(),
            stream: stream.name().into(),
            time: crate::time::rfc3339(crate::time::now_ns()),
        };
        let Ok(mut line) = serde_json::to_vec(&e) else { return };
        line.push(b'\n');
        if self.size + line.len() as u64 > self.max_size && self.size > 0 {
            self.rotate();
        }
        // A full disk must not stop the container: the line is lost, the container runs on.
        if self.file.write_all(&line).is_ok() {
            self.size += line.len() as u64;
        }
    }

    fn rotate(&mut self) {
        let old = rotated(&self.path);
        if std::fs::rename(&self.path, &old).is_ok() {
            if let Ok(f) = OpenOptions::new().create(true).append(true).open(&self.path) {
                self.file = f;
                self.size = 0;
            }
        }
    }
}

fn rotated(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".1");
    PathBuf::from(p)
}

/// Read every entry, oldest first (the rotated file, then the current one).
pub fn read_all(path: &Path) -> Vec<Entry> {
    read_all_open(path).0
}

/// As [`read_all`], and the current file still open with how far it was read: `logs -f` goes on
/// from there, so nothing appended between reading and following is lost.
pub fn read_all_open(path: &Path) -> (Vec<Entry>, Option<(File, u64)>) {
    let mut out = Vec::new();
    if let Ok(f) = File::open(rotated(path)) {
        read_from(BufReader::new(f), &mut out);
    }
    let current = File::open(path).ok().map(|mut f| {
        let read = read_from(BufReader::new(&mut f), &mut out);
        (f, read)
    });
    (out, current)
}

/// Parse complete lines; a torn last line (a writer mid-write) is left for the next read.
pub fn read_from(mut r: impl BufRead, out: &mut Vec<Entry>) -> u64 {
    let mut consumed = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        match r.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if line.last() != Some(&b'\n') {
                    break;
                }
                consumed += n as u64;
                if let Ok(e) = serde_json::from_slice::<Entry>(&line) {
                    out.push(e);
                }
            }
        }
    }
    consumed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_streams_and_rotation() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("c.log");
        let mut w = LogWriter::open(&p, Some(200)).expect("open");
        w.write(Stream::Stdout, b"hel");
        w.write(Stream::Stderr, b"oops\n");
        w.write(Stream::Stdout, b"lo\nworld");
        w.flush();
        let all = read_all(&p);
        let text: Vec<(&str, &str)> = all.iter().map(|e| (e.stream.as_str(), e.log.as_str())).collect();
        assert_eq!(
            text,
            vec![("stderr", "oops\n"), ("stdout", "hello\n"), ("stdout", "world")]
        );
        for i in 0..20 {
            w.write(Stream::Stdout, format!("line {i}\n").as_bytes());
        }
        assert!(rotated(&p).exists());
        let all = read_all(&p);
        assert_eq!(all.last().map(|e| e.log.as_str()), Some("line 19\n"));
        assert!(std::fs::metadata(&p).expect("log").len() <= 200);
    }

    #[test]
    fn a_follower_goes_on_where_the_first_read_stopped() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("c.log");
        let mut w = LogWriter::open(&p, None).expect("open");
        w.write(Stream::Stdout, b"one\n");
        w.flush();
        let (all, current) = read_all_open(&p);
        assert_eq!(all.len(), 1);
        // Written after the first read, before the follower reads on: must not be lost.
        w.write(Stream::Stdout, b"two\n");
        w.flush();
        let (mut f, read) = current.expect("current file");
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(read)).expect("seek");
        let mut more = Vec::new();
        read_from(BufReader::new(&mut f), &mut more);
        assert_eq!(more.iter().map(|e| e.log.as_str()).collect::<Vec<_>>(), vec!["two\n"]);
    }
}
