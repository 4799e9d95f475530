//! The one build plan every front end (Dockerfile, app.lbox, boxfile.toml) is parsed into: stages
//! of steps, each step remembering the file line it came from and its text (for history, error
//! messages and the cache key). Words are kept unexpanded: `$VAR` is resolved when the step runs,
//! against the build arguments and the environment of the stage at that point, as Docker does.

use serde::Serialize;

/// Where a step came from, for error messages (`app.lbox:7`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Loc {
    pub file: String,
    pub line: usize,
}

impl std::fmt::Display for Loc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// `ARG`s declared before the first `FROM`: usable in `FROM` lines only (unless redeclared).
    pub global_args: Vec<(String, Option<String>)>,
    pub stages: Vec<Stage>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stage {
    /// `FROM … AS name`.
    pub name: Option<String>,
    /// The base, unexpanded: `scratch`, an image reference, or the name or index of an earlier stage.
    pub base: Base,
    pub platform: Option<String>,
    pub loc: Loc,
    pub steps: Vec<Step>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Base {
    /// An image reference, `scratch`, or an earlier stage's name: which one is decided when the
    /// plan runs, after `$ARG`s in it are expanded.
    Image(String),
    /// A root filesystem tarball (path or http(s) URL), as `BOX_BASE` accepts.
    Tarball(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    pub loc: Loc,
    /// The instruction as written (continuations joined), shown in the build output and history.
    pub text: String,
    pub kind: StepKind,
}

/// A command as the shell form (run through the stage's SHELL) or the exec (JSON array) form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Command {
    Shell(String),
    Exec(Vec<String>),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CopySpec {
    pub sources: Vec<String>,
    pub dest: String,
    /// `--from=stage|image`.
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    /// ADD: local archives are extracted and URLs downloaded.
    pub add: bool,
    /// Heredoc sources (`COPY <<EOF /dst`): (name, content).
    pub inline: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Healthcheck {
    /// `["NONE"]` disables the base image's check; else `["CMD", …]` or `["CMD-SHELL", "…"]`.
    pub test: Vec<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub start_period: Option<String>,
    pub retries: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum StepKind {
    Run {
        cmd: Command,
        /// `RUN --network=none|host|default`.
        network: Option<String>,
    },
    Copy(CopySpec),
    Env(Vec<(String, String)>),
    Arg(Vec<(String, Option<String>)>),
    Workdir(String),
    User(String),
    Cmd(Command),
    Entrypoint(Command),
    Expose(Vec<String>),
    Label(Vec<(String, String)>),
    Volume(Vec<String>),
    StopSignal(String),
    Healthcheck(Healthcheck),
    Shell(Vec<String>),
    /// Stored in the image for images built FROM it.
    OnBuild(String),
}

impl Plan {
    /// The index of the stage `name` (a stage name, or its number) among the first `before` stages.
    pub fn stage_index(&self, name: &str, before: usize) -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        if let Some(i) = self.stages[..before]
            .iter()
            .rposition(|s| s.name.as_deref().map(|n| n.to_ascii_lowercase()) == Some(lower.clone()))
        {
            return Some(i);
        }
        name.parse::<usize>().ok().filter(|&i| i < before)
    }
}
