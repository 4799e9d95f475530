//! Pull and push progress: a bar per blob on a terminal, one plain line per finished blob otherwise.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use image::registry::Progress;
use image::Digest;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

pub enum Reporter {
    Bars {
        multi: MultiProgress,
        bars: Mutex<HashMap<Digest, ProgressBar>>,
    },
    Lines,
    Silent,
}

impl Reporter {
    pub fn new(quiet: bool) -> Reporter {
        if quiet {
            Reporter::Silent
        } else if std::io::stderr().is_terminal() {
            Reporter::Bars {
                multi: MultiProgress::new(),
                bars: Mutex::new(HashMap::new()),
            }
        } else {
            Reporter::Lines
        }
    }
}

impl Progress for Reporter {
    fn started(&self, blob: &Digest, size: u64) {
        if let Reporter::Bars { multi, bars } = self {
            let style = ProgressStyle::with_template("{prefix}: {msg:12} [{bar:30}] {bytes}/{total_bytes}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            let pb = multi.add(
                ProgressBar::new(size)
                    .with_style(style)
                    .with_prefix(blob.short().to_string()),
            );
            pb.set_message("Downloading");
            bars.lock().unwrap_or_else(|p| p.into_inner()).insert(blob.clone(), pb);
        }
    }

    fn advanced(&self, blob: &Digest, bytes: u64) {
        if let Reporter::Bars { bars, .. } = self {
            if let Some(pb) = bars.lock().unwrap_or_else(|p| p.into_inner()).get(blob) {
                pb.set_position(bytes);
            }
        }
    }

    fn finished(&self, blob: &Digest, status: &str) {
        match self {
            Reporter::Bars { bars, multi } => match bars.lock().unwrap_or_else(|p| p.into_inner()).get(blob) {
                Some(pb) => pb.finish_with_message(status.to_string()),
                None => {
                    let _ = multi.println(format!("{}: {status}", blob.short()));
                }
            },
            Reporter::Lines => eprintln!("{}: {status}", blob.short()),
            Reporter::Silent => {}
        }
    }

    fn message(&self, msg: &str) {
        match self {
            Reporter::Bars { multi, .. } => {
                let _ = multi.println(msg);
            }
            Reporter::Lines => eprintln!("{msg}"),
            Reporter::Silent => {}
        }
    }
}
