//! Health checks, run by the container's monitor: the configured command is executed inside the
//! container every interval (through the runtime's exec), and its exit codes drive the health
//! status Docker shows: starting, healthy, unhealthy.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::config::HealthConfig;
use crate::db::{self, Container};
use crate::supervise::Ticker;
use crate::Engine;

pub struct Checker<'a> {
    e: &'a Engine,
    id: String,
    cfg: HealthConfig,
    runtime: Option<PathBuf>,
    started: Instant,
    next: Instant,
    failures: u32,
    status: String,
    log: Vec<Value>,
}

impl<'a> Checker<'a> {
    pub fn new(e: &'a Engine, ct: &Container) -> Option<Checker<'a>> {
        let cfg = ct.config.health.clone()?;
        let now = Instant::now();
        let c = Checker {
            e,
            id: ct.id.clone(),
            next: now + Duration::from_millis(cfg.interval_ms),
            cfg,
            runtime: ct.config.runtime.clone(),
            started: now,
            failures: 0,
            status: "starting".into(),
            log: Vec::new(),
        };
        let _ = db::set_health(e.db(), &c.id, &c.status, "[]");
        Some(c)
    }

    fn argv(&self) -> Vec<String> {
        match self.cfg.test.first().map(String::as_str) {
            Some("CMD-SHELL") => vec!["/bin/sh".into(), "-c".into(), self.cfg.test[1..].join(" ")],
            Some("CMD") => self.cfg.test[1..].to_vec(),
            _ => self.cfg.test.clone(),
        }
    }

    /// Run the check once: (exit code, first 4 KiB of output). -1 when it timed out.
    fn check(&self) -> (i32, String) {
        let mut cmd = match &self.runtime {
            Some(rt) => {
                let mut c = Command::new(rt);
                c.arg("--root").arg(self.e.paths.run.join("external"));
                c
            }
            None => {
                let mut c = Command::new("/proc/self/exe");
                c.arg("runtime").arg("--root").arg(self.e.paths.runtime());
                c
            }
        };
        cmd.arg("exec").arg(&self.id).args(self.argv());
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(err) => return (-1, format!("cannot run the health check: {err}")),
        };
        let deadline = Instant::now() + Duration::from_millis(self.cfg.timeout_ms);
        let code = loop {
            match child.try_wait() {
                Ok(Some(st)) => break st.code().unwrap_or(-1),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return (
                        -1,
                        format!("health check exceeded timeout ({} ms)", self.cfg.timeout_ms),
                    );
                }
            }
        };
        let mut out = String::new();
        for s in [
            child.stdout.take().map(|s| Box::new(s) as Box<dyn Read>),
            child.stderr.take().map(|s| Box::new(s) as Box<dyn Read>),
        ]
        .into_iter()
        .flatten()
        {
            let mut buf = Vec::new();
            let _ = s.take(4096).read_to_end(&mut buf);
            out.push_str(&String::from_utf8_lossy(&buf));
        }
        out.truncate(4096);
        (code, out)
    }
}

impl Ticker for Checker<'_> {
    fn next(&self) -> Option<Instant> {
        Some(self.next)
    }

    fn tick(&mut self, _pid: i32) {
        let start = crate::time::now_ns();
        let (code, output) = self.check();
        let end = crate::time::now_ns();
        let in_start_period = self.started.elapsed() < Duration::from_millis(self.cfg.start_period_ms);
        if code == 0 {
            self.failures = 0;
            self.status = "healthy".into();
        } else if !in_start_period || self.status == "healthy" {
            self.failures += 1;
            if self.failures >= self.cfg.retries {
                self.status = "unhealthy".into();
            }
        }
        self.log.push(json!({
            "Start": crate::time::rfc3339(start),
            "End": crate::time::rfc3339(end),
            "ExitCode": code,
            "Output": output,
        }));
        if self.log.len() > 5 {
            self.log.remove(0);
        }
        let log = serde_json::to_string(&json!({"FailingStreak": self.failures, "Log": self.log}))
            .unwrap_or_else(|_| "{}".into());
        let _ = db::set_health(self.e.db(), &self.id, &self.status, &log);
        self.next = Instant::now() + Duration::from_millis(self.cfg.interval_ms);
    }
}
