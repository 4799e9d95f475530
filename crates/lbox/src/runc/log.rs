//! `--log FILE --log-format json|text`: errors go to the log (one JSON object a line, which podman
//! and containerd read back) and to stderr (which conmon forwards).

use std::io::Write;

pub struct Logger {
    file: Option<std::fs::File>,
    json: bool,
}

impl Logger {
    pub fn new(path: Option<&str>, format: Option<&str>) -> Self {
        let file = path.and_then(|p| std::fs::OpenOptions::new().create(true).append(true).open(p).ok());
        Logger {
            file,
            json: format == Some("json"),
        }
    }

    pub fn error(&self, msg: &str) {
        eprintln!("lbox-runc: {msg}");
        if let Some(mut f) = self.file.as_ref() {
            let time = runtime::state::rfc3339_now();
            let line = if self.json {
                serde_json::json!({"level": "error", "msg": msg, "time": time}).to_string()
            } else {
                format!("time=\"{time}\" level=error msg={msg:?}")
            };
            let _ = writeln!(f, "{line}");
        }
    }
}
