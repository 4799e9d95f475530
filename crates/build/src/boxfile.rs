//! `boxfile.toml`, PyBox's build file: `[box]` (base, name, version, meta), `[python]` (a virtual
//! environment with packages), `[[steps]]` (run, copy, workdir, env), `[run]` (cmd, entrypoint,
//! expose, env, user, workdir), `[limits]` and `[healthcheck]`. Limits have no field in an OCI
//! image, so they are recorded as labels (`io.lbox.limits.memory` …).

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::error::{Error, Result};
use crate::plan::{Base, Command, CopySpec, Healthcheck, Loc, Plan, Stage, Step, StepKind};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(rename = "box")]
    box_: Spanned<BoxSection>,
    python: Option<Spanned<Python>>,
    #[serde(default)]
    steps: Vec<Spanned<StepDef>>,
    run: Option<Spanned<RunSection>>,
    limits: Option<Spanned<BTreeMap<String, toml::Value>>>,
    healthcheck: Option<Spanned<Health>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BoxSection {
    base: String,
    name: Option<String>,
    version: Option<String>,
    meta: Option<Meta>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Meta {
    author: Option<String>,
    description: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Python {
    version: Option<String>,
    #[serde(default)]
    packages: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepDef {
    name: Option<String>,
    run: Option<String>,
    copy: Option<CopyDef>,
    workdir: Option<String>,
    env: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CopyDef {
    src: String,
    dst: String,
    chown: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum CmdDef {
    Exec(Vec<String>),
    Shell(String),
}

impl CmdDef {
    fn command(&self) -> Command {
        match self {
            CmdDef::Exec(v) => Command::Exec(v.clone()),
            CmdDef::Shell(s) => Command::Shell(s.clone()),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Port {
    Number(u16),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunSection {
    cmd: Option<CmdDef>,
    entrypoint: Option<CmdDef>,
    #[serde(default)]
    expose: Vec<Port>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    user: Option<String>,
    workdir: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Health {
    cmd: CmdDef,
    interval: Option<String>,
    timeout: Option<String>,
    start_period: Option<String>,
    retries: Option<u32>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|&b| b == b'\n').count() + 1
}

/// A shell word in single quotes, for the pip command line.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

pub fn parse(text: &str, file: &str) -> Result<Plan> {
    let f: File = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
        Error::syntax(
            &Loc {
                file: file.to_string(),
                line,
            },
            e.message().to_string(),
        )
    })?;
    let loc = |offset: usize| Loc {
        file: file.to_string(),
        line: line_of(text, offset),
    };
    let step = |offset: usize, text: String, kind: StepKind| Step {
        loc: loc(offset),
        text,
        kind,
    };
    let b = f.box_.get_ref();
    let mut steps = Vec::new();
    if let Some(py) = &f.python {
        let at = py.span().start;
        let py = py.get_ref();
        let python = match &py.version {
            Some(v) => format!("python{v}"),
            None => "python3".into(),
        };
        let mut cmd = format!("{python} -m venv /opt/venv");
        if !py.packages.is_empty() {
            let pkgs: Vec<String> = py.packages.iter().map(|p| quote(p)).collect();
            cmd.push_str(&format!(
                " && /opt/venv/bin/pip install --no-cache-dir {}",
                pkgs.join(" ")
            ));
        }
        steps.push(step(
            at,
            format!("[python] {python} venv: {}", py.packages.join(" ")),
            StepKind::Run {
                cmd: Command::Shell(cmd),
                network: None,
            },
        ));
        steps.push(step(
            at,
            "[python] ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH".into(),
            StepKind::Env(vec![
                ("VIRTUAL_ENV".into(), "/opt/venv".into()),
                ("PATH".into(), "/opt/venv/bin:$PATH".into()),
            ]),
        ));
    }
    for s in &f.steps {
        let at = s.span().start;
        let d = s.get_ref();
        let label = d.name.clone().map(|n| format!("[{n}] ")).unwrap_or_default();
        let mut kinds: Vec<(String, StepKind)> = Vec::new();
        if let Some(r) = &d.run {
            kinds.push((
                format!("RUN {r}"),
                StepKind::Run {
                    cmd: Command::Shell(r.clone()),
                    network: None,
                },
            ));
        }
        if let Some(c) = &d.copy {
            kinds.push((
                format!("COPY {} {}", c.src, c.dst),
                StepKind::Copy(CopySpec {
                    sources: vec![lit(&c.src)],
                    dest: lit(&c.dst),
                    from: None,
                    chown: c.chown.as_deref().map(lit),
                    chmod: None,
                    add: false,
                    inline: Vec::new(),
                }),
            ));
        }
        if let Some(w) = &d.workdir {
            kinds.push((format!("WORKDIR {w}"), StepKind::Workdir(lit(w))));
        }
        if let Some(env) = &d.env {
            let shown: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let pairs = env.iter().map(|(k, v)| (lit(k), env_value(v))).collect();
            kinds.push((format!("ENV {}", shown.join(" ")), StepKind::Env(pairs)));
        }
        match kinds.len() {
            1 => {
                let (t, k) = kinds.remove(0);
                steps.push(step(at, format!("{label}{t}"), k));
            }
            0 => return Err(Error::syntax(&loc(at), "a step needs one of run, copy, workdir or env")),
            _ => {
                return Err(Error::syntax(
                    &loc(at),
                    "a step has one of run, copy, workdir or env; make one [[steps]] entry for each",
                ))
            }
        }
    }
    let mut labels: Vec<(String, String)> = Vec::new();
    if let Some(name) = &b.name {
        labels.push(("org.opencontainers.image.title".into(), name.clone()));
    }
    if let Some(v) = &b.version {
        labels.push(("org.opencontainers.image.version".into(), v.clone()));
    }
    if let Some(m) = &b.meta {
        if let Some(a) = &m.author {
            labels.push(("org.opencontainers.image.authors".into(), a.clone()));
        }
        if let Some(d) = &m.description {
            labels.push(("org.opencontainers.image.description".into(), d.clone()));
        }
        labels.extend(m.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    if let Some(l) = &f.limits {
        let at = l.span().start;
        for (k, v) in l.get_ref() {
            if !matches!(k.as_str(), "memory" | "cpu" | "cpus" | "pids") {
                return Err(Error::syntax(
                    &loc(at),
                    format!("[limits] {k}: unknown limit (memory, cpu, pids)"),
                ));
            }
            let v = match v {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            labels.push((format!("io.lbox.limits.{k}"), v));
        }
    }
    let box_at = f.box_.span().start;
    if !labels.is_empty() {
        let shown: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        let labels = labels.iter().map(|(k, v)| (lit(k), lit(v))).collect();
        steps.push(step(
            box_at,
            format!("LABEL {}", shown.join(" ")),
            StepKind::Label(labels),
        ));
    }
    if let Some(r) = &f.run {
        let at = r.span().start;
        let r = r.get_ref();
        if !r.env.is_empty() {
            let shown: Vec<String> = r.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let pairs = r.env.iter().map(|(k, v)| (lit(k), env_value(v))).collect();
            steps.push(step(at, format!("ENV {}", shown.join(" ")), StepKind::Env(pairs)));
        }
        if !r.expose.is_empty() {
            let ports: Vec<String> = r
                .expose
                .iter()
                .map(|p| match p {
                    Port::Number(n) => n.to_string(),
                    Port::Text(s) => s.clone(),
                })
                .collect();
            steps.push(step(at, format!("EXPOSE {}", ports.join(" ")), StepKind::Expose(ports)));
        }
        if let Some(w) = &r.workdir {
            steps.push(step(at, format!("WORKDIR {w}"), StepKind::Workdir(lit(w))));
        }
        if let Some(u) = &r.user {
            steps.push(step(at, format!("USER {u}"), StepKind::User(lit(u))));
        }
        if let Some(e) = &r.entrypoint {
            steps.push(step(at, "ENTRYPOINT".into(), StepKind::Entrypoint(e.command())));
        }
        if let Some(c) = &r.cmd {
            steps.push(step(at, "CMD".into(), StepKind::Cmd(c.command())));
        }
    }
    if let Some(h) = &f.healthcheck {
        let at = h.span().start;
        let h = h.get_ref();
        let test = match h.cmd.command() {
            Command::Exec(v) => std::iter::once("CMD".to_string()).chain(v).collect(),
            Command::Shell(s) => vec!["CMD-SHELL".to_string(), s],
        };
        steps.push(step(
            at,
            "HEALTHCHECK".into(),
            StepKind::Healthcheck(Healthcheck {
                test,
                interval: h.interval.clone(),
                timeout: h.timeout.clone(),
                start_period: h.start_period.clone(),
                retries: h.retries,
            }),
        ));
    }
    Ok(Plan {
        global_args: Vec::new(),
        stages: vec![Stage {
            name: None,
            base: Base::Image(b.base.clone()),
            platform: None,
            loc: loc(box_at),
            steps,
        }],
    })
}

/// A TOML string as a plan word that expands to exactly itself (plan words are expanded like a
/// Dockerfile's: quotes, backslashes and `$` would otherwise be read).
fn lit(s: &str) -> String {
    crate::dockerfile::quote_literal(s, '\\')
}

/// An environment value: `$NAME` and `${NAME}` still expand (`PATH = "/app/bin:$PATH"`), quotes
/// and backslashes are kept as written.
fn env_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '"' | '\'') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = r#"
[box]
name    = "my-app"
version = "1.0.0"
base    = "ubuntu:24.04"

[box.meta]
author      = "Your Name"
description = "A PyBox image example"
labels      = { env = "production", team = "backend" }

[python]
version  = "3.12"
packages = ["fastapi==0.111.0", "httpx>=0.27"]

[[steps]]
name = "install system dependencies"
run  = "apt-get update && apt-get install -y curl"

[[steps]]
name = "copy source code"
copy = { src = "./src", dst = "/app" }

[[steps]]
workdir = "/app"

[[steps]]
env = { BUILD_ENV = "production" }

[run]
cmd    = ["uvicorn", "main:app", "--host", "0.0.0.0", "--port", "8000"]
expose = [8000]
env    = { PYTHONUNBUFFERED = "1", LOG_LEVEL = "info" }
user   = "appuser"

[limits]
memory = "256m"
cpu    = 0.5
pids   = 100

[healthcheck]
cmd      = ["curl", "-f", "http://localhost:8000/health"]
interval = "30s"
timeout  = "5s"
retries  = 3
"#;

    #[test]
    fn the_seed_example() {
        let p = parse(SEED, "boxfile.toml").unwrap();
        let st = &p.stages[0];
        assert_eq!(st.base, Base::Image("ubuntu:24.04".into()));
        assert!(matches!(&st.steps[0].kind, StepKind::Run { cmd: Command::Shell(s), .. }
            if s.starts_with("python3.12 -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir 'fastapi==0.111.0' 'httpx>=0.27'")));
        assert!(matches!(&st.steps[2].kind, StepKind::Run { cmd: Command::Shell(s), .. } if s.starts_with("apt-get")));
        assert_eq!(st.steps[2].loc.line, 16);
        assert!(matches!(&st.steps[3].kind, StepKind::Copy(c) if c.sources == ["'./src'"] && c.dest == "'/app'"));
        let labels = st
            .steps
            .iter()
            .find_map(|s| match &s.kind {
                StepKind::Label(l) => Some(l.clone()),
                _ => None,
            })
            .unwrap();
        // Plan words, quoted so that they expand to exactly what the TOML says.
        assert!(labels.contains(&("'io.lbox.limits.memory'".into(), "'256m'".into())));
        assert!(labels.contains(&("'io.lbox.limits.cpu'".into(), "'0.5'".into())));
        assert!(labels.contains(&("'team'".into(), "'backend'".into())));
        assert!(st.steps.iter().any(|s| s.kind == StepKind::User("'appuser'".into())));
        assert!(st
            .steps
            .iter()
            .any(|s| matches!(&s.kind, StepKind::Healthcheck(h) if h.test[0] == "CMD" && h.retries == Some(3))));
        assert!(st.steps.iter().any(|s| s.kind == StepKind::Expose(vec!["8000".into()])));
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse(
            "[box]\nbase = \"a\"\n\n[[steps]]\nrun = \"x\"\ncopy = { src = \"a\", dst = \"b\" }\n",
            "boxfile.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("boxfile.toml:4:"), "{e}");
        let e = parse("[box]\nbase = \"a\"\n[[steps]]\nrum = \"x\"\n", "boxfile.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("boxfile.toml:4:") && e.contains("rum"), "{e}");
        let e = parse("[run]\ncmd = \"x\"\n", "boxfile.toml").unwrap_err().to_string();
        assert!(e.contains("box"), "{e}");
    }

    #[test]
    fn toml_strings_stay_as_written_but_env_values_expand_variables() {
        let none = |_: &str| None::<String>;
        let path = |k: &str| (k == "PATH").then(|| "/bin".to_string());
        for s in ["Jo O'Brien", "a \"quoted\" \\ back", "$HOME ${X:-y}", ""] {
            assert_eq!(crate::expand::expand(&lit(s), &none, '\\').unwrap(), s);
        }
        let v = env_value("/app/bin:$PATH \"it's\"");
        assert_eq!(
            crate::expand::expand(&v, &path, '\\').unwrap(),
            "/app/bin:/bin \"it's\""
        );
    }
}
