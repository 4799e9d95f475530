//! Running a plan: the stages the target needs, in dependency order; in each, the steps one by
//! one. Every step's result is an image, found again by the step's cache key (its instruction
//! after expansion, its inputs, and its parent's key), so an unchanged step is never run twice.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use engine::Engine;
use image::manifest::{History, ImageConfig, RunConfig};
use image::store::ImageLayer;
use image::{Digest, Store};
use serde_json::json;

use crate::error::{Error, Result};
use crate::meta;
use crate::mounted::Mounted;
use crate::plan::{Base, CopySpec, Loc, Plan, Step, StepKind};

mod base;
mod check;
mod copystep;

/// Finds (or pulls) an image for FROM and COPY --from: (reference, always pull) → image ID.
pub type ResolveImage<'a> = dyn Fn(&str, bool) -> Result<Digest> + 'a;

pub struct Options<'a> {
    pub context: PathBuf,
    pub tags: Vec<String>,
    pub build_args: BTreeMap<String, String>,
    pub labels: Vec<(String, String)>,
    pub no_cache: bool,
    pub pull: bool,
    pub target: Option<String>,
    /// `--network` for RUN steps: bridge (default), none, host or a network name.
    pub network: String,
    pub quiet: bool,
    pub resolve_image: &'a ResolveImage<'a>,
}

/// A stage as it goes: the image made by its last step, and what the next steps need.
struct State {
    id: Digest,
    config: ImageConfig,
    layers: Vec<ImageLayer>,
    key: String,
    /// ARGs declared in the stage, with their values.
    args: Vec<(String, String)>,
    shell: Vec<String>,
    /// Whether a CMD of this stage was seen (a later ENTRYPOINT keeps it then).
    cmd_set: bool,
}

/// What a stage carries from step to step besides the image.
#[derive(Clone, Default)]
struct Carry {
    args: Vec<(String, String)>,
    shell: Vec<String>,
    cmd_set: bool,
}

impl State {
    fn carry(&self) -> Carry {
        Carry {
            args: self.args.clone(),
            shell: self.shell.clone(),
            cmd_set: self.cmd_set,
        }
    }
}

pub struct Builder<'a> {
    e: &'a Engine,
    store: &'a Store,
    opts: &'a Options<'a>,
    plan: &'a Plan,
    out: &'a mut dyn Write,
    global_args: Vec<(String, String)>,
    /// The final image of each stage built so far.
    built: BTreeMap<usize, Digest>,
    step_no: usize,
    steps_total: usize,
}

fn key_of(parts: &[&[u8]]) -> String {
    let mut all = Vec::new();
    for p in parts {
        all.extend_from_slice(&(p.len() as u64).to_le_bytes());
        all.extend_from_slice(p);
    }
    Digest::of(&all).hex().to_string()
}

fn now() -> String {
    image::import::now_rfc3339()
}

fn secs(t: Instant) -> String {
    format!("{:.2}s", t.elapsed().as_secs_f64())
}

impl<'a> Builder<'a> {
    pub fn new(e: &'a Engine, plan: &'a Plan, opts: &'a Options<'a>, out: &'a mut dyn Write) -> Result<Builder<'a>> {
        let store = e.images()?;
        let mut global_args: Vec<(String, String)> = plan
            .global_args
            .iter()
            .filter_map(|(k, d)| opts.build_args.get(k).cloned().or(d.clone()).map(|v| (k.clone(), v)))
            .collect();
        // BuildKit's automatic platform arguments: FROM lines see them, a stage's `ARG TARGETARCH`
        // takes its value from them. Build and target platform are both this machine's.
        let host = image::manifest::Platform::host();
        let platform = host.to_string();
        let variant = host.variant.clone().unwrap_or_default();
        for (k, v) in [
            ("BUILDPLATFORM", platform.as_str()),
            ("BUILDOS", host.os.as_str()),
            ("BUILDARCH", host.architecture.as_str()),
            ("BUILDVARIANT", variant.as_str()),
            ("TARGETPLATFORM", platform.as_str()),
            ("TARGETOS", host.os.as_str()),
            ("TARGETARCH", host.architecture.as_str()),
            ("TARGETVARIANT", variant.as_str()),
        ] {
            if !global_args.iter().any(|(n, _)| n == k) {
                global_args.push((
                    k.to_string(),
                    opts.build_args.get(k).cloned().unwrap_or_else(|| v.to_string()),
                ));
            }
        }
        Ok(Builder {
            e,
            store,
            opts,
            plan,
            out,
            global_args,
            built: BTreeMap::new(),
            step_no: 0,
            steps_total: 0,
        })
    }

    fn say(&mut self, msg: &str) {
        if !self.opts.quiet {
            let _ = writeln!(self.out, "{msg}");
            let _ = self.out.flush();
        }
    }

    fn expand_global(&self, s: &str) -> String {
        let lookup = |k: &str| self.global_args.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        crate::expand::expand(s, &lookup, '\\').unwrap_or_else(|_| s.to_string())
    }

    /// The stage a FROM or --from names, if it names one (not itself).
    fn stage_ref(&self, name: &str, me: usize) -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        let by_name = self
            .plan
            .stages
            .iter()
            .position(|s| s.name.as_deref() == Some(lower.as_str()));
        by_name
            .or_else(|| name.parse::<usize>().ok().filter(|&i| i < self.plan.stages.len()))
            .filter(|&i| i != me)
    }

    fn deps(&self, i: usize) -> Vec<(usize, Loc)> {
        let st = &self.plan.stages[i];
        let mut out = Vec::new();
        if let Base::Image(b) = &st.base {
            if let Some(j) = self.stage_ref(&self.expand_global(b), i) {
                out.push((j, st.loc.clone()));
            }
        }
        for s in &st.steps {
            if let StepKind::Copy(c) = &s.kind {
                if let Some(f) = &c.from {
                    if let Some(j) = self.stage_ref(&self.expand_global(f), usize::MAX) {
                        out.push((j, s.loc.clone()));
                    }
                }
            }
        }
        out
    }

    /// Stages to build for the target, dependencies first; a cycle is an error at its line.
    fn order(&self, target: usize) -> Result<Vec<usize>> {
        fn visit(b: &Builder, i: usize, path: &mut Vec<usize>, done: &mut Vec<usize>, loc: Option<&Loc>) -> Result<()> {
            if done.contains(&i) {
                return Ok(());
            }
            if path.contains(&i) {
                let names: Vec<String> = path
                    .iter()
                    .chain(std::iter::once(&i))
                    .map(|&j| b.plan.stages[j].name.clone().unwrap_or_else(|| j.to_string()))
                    .collect();
                let loc = loc.cloned().unwrap_or_else(|| b.plan.stages[i].loc.clone());
                return Err(Error::syntax(
                    &loc,
                    format!("circular dependency between stages: {}", names.join(" -> ")),
                ));
            }
            path.push(i);
            for (j, l) in b.deps(i) {
                visit(b, j, path, done, Some(&l))?;
            }
            path.pop();
            done.push(i);
            Ok(())
        }
        let mut done = Vec::new();
        visit(self, target, &mut Vec::new(), &mut done, None)?;
        Ok(done)
    }

    pub fn target_index(&self) -> Result<usize> {
        match &self.opts.target {
            None => Ok(self.plan.stages.len() - 1),
            Some(t) => self
                .plan
                .stages
                .iter()
                .position(|s| s.name.as_deref() == Some(t.to_ascii_lowercase().as_str()))
                .ok_or_else(|| Error::Invalid(format!("--target {t}: no stage of that name in the build file"))),
        }
    }

    /// Build the target stage (and what it needs); returns the final image, tagged.
    pub fn build(&mut self) -> Result<Digest> {
        if self.plan.stages.is_empty() {
            return Err(Error::Invalid("the build file has no stage".into()));
        }
        let target = self.target_index()?;
        let order = self.order(target)?;
        self.check(&order)?;
        self.steps_total = order.iter().map(|&i| 1 + self.plan.stages[i].steps.len()).sum();
        let mut last = None;
        for i in order {
            let id = self.stage(i)?;
            self.built.insert(i, id.clone());
            last = Some(id);
        }
        let mut id = last.ok_or_else(|| Error::Invalid("nothing to build".into()))?;
        if !self.opts.labels.is_empty() {
            id = self.cli_labels(id)?;
        }
        for t in &self.opts.tags {
            self.store.set_tag(t, &id)?;
        }
        Ok(id)
    }

    fn load(&self, id: &Digest, key: String, c: Carry) -> Result<State> {
        let config = ImageConfig::parse(&self.store.read_blob(id)?, &format!("image {}", id.short()))?;
        let layers = self.store.image_layers(id)?;
        Ok(State {
            id: id.clone(),
            config,
            layers,
            key,
            args: c.args,
            shell: c.shell,
            cmd_set: c.cmd_set,
        })
    }

    fn stage(&mut self, i: usize) -> Result<Digest> {
        let st = &self.plan.stages[i];
        self.step_no += 1;
        let (n, total) = (self.step_no, self.steps_total);
        let base_text = match &st.base {
            Base::Image(b) => b.clone(),
            Base::Tarball(t) => t.clone(),
        };
        let from_line = match &st.name {
            Some(name) => format!("FROM {base_text} AS {name}"),
            None => format!("FROM {base_text}"),
        };
        self.say(&format!("STEP {n}/{total}: {from_line}"));
        let mut state = self.base(i).map_err(|e| at(&st.loc, e))?;
        state = self.onbuild(state, &base_text, &st.loc)?;
        for step in &st.steps {
            self.step_no += 1;
            self.say(&format!("STEP {}/{}: {}", self.step_no, self.steps_total, step.text));
            state = self.step(state, step)?;
        }
        Ok(state.id)
    }

    fn lookup_env<'s>(state: &'s State) -> impl Fn(&str) -> Option<String> + 's {
        move |k: &str| {
            let env = state
                .config
                .config
                .as_ref()
                .and_then(|c| c.env.as_deref())
                .unwrap_or(&[]);
            meta::env_get(env, k)
                .map(str::to_string)
                .or_else(|| state.args.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
        }
    }

    fn x(state: &State, loc: &Loc, s: &str) -> Result<String> {
        crate::expand::expand(s, &Self::lookup_env(state), '\\').map_err(|m| Error::syntax(loc, m))
    }

    fn xs(state: &State, loc: &Loc, v: &[String]) -> Result<Vec<String>> {
        v.iter().map(|s| Self::x(state, loc, s)).collect()
    }

    /// Expand the words Docker expands (not RUN, CMD, ENTRYPOINT, SHELL: the shell does those).
    fn expanded(state: &State, step: &Step) -> Result<StepKind> {
        let l = &step.loc;
        Ok(match &step.kind {
            StepKind::Env(p) => StepKind::Env(
                p.iter()
                    .map(|(k, v)| Ok((Self::x(state, l, k)?, Self::x(state, l, v)?)))
                    .collect::<Result<_>>()?,
            ),
            StepKind::Label(p) => StepKind::Label(
                p.iter()
                    .map(|(k, v)| Ok((Self::x(state, l, k)?, Self::x(state, l, v)?)))
                    .collect::<Result<_>>()?,
            ),
            StepKind::Workdir(d) => StepKind::Workdir(Self::x(state, l, d)?),
            StepKind::User(u) => StepKind::User(Self::x(state, l, u)?),
            StepKind::Expose(p) => StepKind::Expose(Self::xs(state, l, p)?),
            StepKind::Volume(p) => StepKind::Volume(Self::xs(state, l, p)?),
            StepKind::StopSignal(s) => StepKind::StopSignal(Self::x(state, l, s)?),
            StepKind::Copy(c) => StepKind::Copy(CopySpec {
                sources: Self::xs(state, l, &c.sources)?,
                dest: Self::x(state, l, &c.dest)?,
                from: c.from.as_deref().map(|f| Self::x(state, l, f)).transpose()?,
                chown: c.chown.as_deref().map(|f| Self::x(state, l, f)).transpose()?,
                chmod: c.chmod.as_deref().map(|f| Self::x(state, l, f)).transpose()?,
                add: c.add,
                inline: c.inline.clone(),
            }),
            other => other.clone(),
        })
    }

    fn step(&mut self, mut state: State, step: &Step) -> Result<State> {
        let kind = Self::expanded(&state, step)?;
        // ARG and SHELL change how later steps are read, not the image.
        match &kind {
            StepKind::Arg(decls) => {
                for (name, default) in decls {
                    let global = self.global_args.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
                    let default = default.as_deref().map(|d| Self::x(&state, &step.loc, d)).transpose()?;
                    if let Some(v) = self.opts.build_args.get(name).cloned().or(default).or(global) {
                        state.args.retain(|(k, _)| k != name);
                        state.args.push((name.clone(), v));
                    }
                }
                state.key = key_of(&[
                    state.key.as_bytes(),
                    b"ARG",
                    serde_json::to_string(decls).unwrap_or_default().as_bytes(),
                ]);
                return Ok(state);
            }
            StepKind::Shell(sh) => {
                state.shell = sh.clone();
            }
            _ => {}
        }
        let started = Instant::now();
        let kind_json = serde_json::to_string(&kind).map_err(|e| Error::Invalid(e.to_string()))?;
        let mut inputs: Vec<u8> = Vec::new();
        let copy_src = match &kind {
            StepKind::Copy(c) => Some(self.copy_inputs(&state, c, &step.loc, &mut inputs)?),
            StepKind::Run { .. } => {
                // Build arguments reach RUN as environment variables: part of its key.
                inputs = serde_json::to_vec(&state.args).unwrap_or_default();
                inputs.extend_from_slice(serde_json::to_string(&state.shell).unwrap_or_default().as_bytes());
                None
            }
            _ => None,
        };
        let key = key_of(&[state.key.as_bytes(), kind_json.as_bytes(), &inputs]);
        if !self.opts.no_cache {
            if let Some(id) = self.store.cache_get(&key)? {
                let mut c = state.carry();
                c.cmd_set |= matches!(kind, StepKind::Cmd(_));
                let s = self.load(&id, key, c)?;
                self.say(&format!("--> CACHED {}", id.short()));
                return Ok(s);
            }
        }
        let mut config = state.config.clone();
        let rc = config.config.get_or_insert_with(RunConfig::default);
        let mut layer: Option<Option<ImageLayer>> = None;
        match &kind {
            StepKind::Env(pairs) => {
                let env = rc.env.get_or_insert_with(Vec::new);
                for (k, v) in pairs {
                    meta::env_set(env, k, v);
                }
            }
            StepKind::Label(pairs) => meta::labels(rc, pairs),
            StepKind::User(u) => rc.user = Some(u.clone()),
            StepKind::Cmd(c) => rc.cmd = Some(meta::argv(c, &state.shell)),
            StepKind::Entrypoint(c) => {
                rc.entrypoint = Some(meta::argv(c, &state.shell));
                // Docker: a new ENTRYPOINT drops the CMD inherited from the base image.
                if !state.cmd_set {
                    if let Some(rc) = config.config.as_mut() {
                        rc.cmd = None;
                    }
                }
            }
            StepKind::Expose(p) => {
                let ports = meta::exposed(p, &step.loc)?;
                let m = rc.exposed_ports.get_or_insert_with(BTreeMap::new);
                for p in ports {
                    m.insert(p, json!({}));
                }
            }
            StepKind::Volume(v) => {
                let m = rc.volumes.get_or_insert_with(BTreeMap::new);
                for p in v {
                    m.insert(p.clone(), json!({}));
                }
            }
            StepKind::StopSignal(s) => rc.stop_signal = Some(s.clone()),
            StepKind::Healthcheck(h) => {
                rc.other.insert("Healthcheck".into(), meta::healthcheck(h, &step.loc)?);
            }
            StepKind::Shell(sh) => {
                rc.other.insert("Shell".into(), json!(sh));
            }
            StepKind::OnBuild(t) => {
                let list = rc.other.entry("OnBuild".to_string()).or_insert_with(|| json!([]));
                if let Some(a) = list.as_array_mut() {
                    a.push(json!(t));
                }
            }
            StepKind::Workdir(d) => {
                let dir = meta::workdir(rc.working_dir.as_deref(), d);
                rc.working_dir = Some(dir.clone());
                layer = Some(self.workdir_layer(&state, &dir)?);
            }
            StepKind::Run { cmd, network } => {
                let argv = meta::argv(cmd, &state.shell);
                let net = network
                    .clone()
                    .map(|n| if n == "default" { "bridge".to_string() } else { n });
                layer = Some(self.run_layer(&state, argv, net.unwrap_or_else(|| self.opts.network.clone()), step)?);
            }
            StepKind::Copy(c) => {
                let src = copy_src.ok_or_else(|| Error::Invalid("COPY without sources".into()))?;
                layer = Some(self.copy_layer(&state, c, src, &step.loc)?);
            }
            StepKind::Arg(_) => {}
        }
        let empty = !matches!(layer, Some(Some(_)));
        let mut layers = state.layers.clone();
        if let Some(Some(l)) = layer {
            layers.push(l);
        }
        let created = now();
        config.created = Some(created.clone());
        config.history.push(History {
            created: Some(created),
            created_by: Some(step.text.clone()),
            comment: Some("lbox build".into()),
            empty_layer: empty,
            other: Default::default(),
        });
        let id = self.store.write_image(config, layers, &[])?;
        self.store.cache_put(&key, &id)?;
        self.say(&format!("--> {} ({})", id.short(), secs(started)));
        let mut c = state.carry();
        c.cmd_set |= matches!(kind, StepKind::Cmd(_));
        self.load(&id, key, c)
    }

    fn parent_chain(state: &State) -> Option<Digest> {
        state.layers.last().map(|l| l.chain_id.clone())
    }

    fn run_layer(
        &mut self,
        state: &State,
        argv: Vec<String>,
        network: String,
        step: &Step,
    ) -> Result<Option<ImageLayer>> {
        let upper = self.store.tmp_path("build-run");
        let id = state.id.to_string();
        let s = crate::runstep::RunStep {
            image_id: &id,
            config: &state.config,
            argv,
            args: state.args.clone(),
            network,
            quiet: self.opts.quiet,
        };
        let code = crate::runstep::run(self.e, &s, &upper).inspect_err(|_| {
            // The upper directory may have been moved out before the step failed.
            let _ = std::fs::remove_dir_all(&upper);
        })?;
        if code != 0 {
            return Err(Error::StepFailed {
                loc: step.loc.clone(),
                text: step.text.clone(),
                code,
            });
        }
        let r = self.store.layer_from_dir(&upper, Self::parent_chain(state).as_ref());
        let _ = std::fs::remove_dir_all(&upper);
        Ok(r?)
    }

    fn workdir_layer(&mut self, state: &State, dir: &str) -> Result<Option<ImageLayer>> {
        let m = Mounted::new(self.store, &state.id, true)?;
        let root = crate::inroot::open_root(&m.merged)?;
        let mut made = Vec::new();
        crate::inroot::mkdir_all(&root, Path::new(dir), &mut made)?;
        drop(root);
        self.finish_mount(m, state)
    }

    fn finish_mount(&mut self, m: Mounted, state: &State) -> Result<Option<ImageLayer>> {
        let upper = self.store.tmp_path("build-upper");
        m.into_upper(&upper)?;
        let r = self.store.layer_from_dir(&upper, Self::parent_chain(state).as_ref());
        let _ = std::fs::remove_dir_all(&upper);
        Ok(r?)
    }

    /// `--label` of the command line: one more step, cached like the others.
    fn cli_labels(&mut self, id: Digest) -> Result<Digest> {
        let state = self.load(&id, String::new(), Carry::default())?;
        let key = key_of(&[
            id.to_string().as_bytes(),
            b"CLI-LABELS",
            serde_json::to_string(&self.opts.labels).unwrap_or_default().as_bytes(),
        ]);
        if let Some(c) = self.store.cache_get(&key)? {
            return Ok(c);
        }
        let mut config = state.config;
        meta::labels(config.config.get_or_insert_with(RunConfig::default), &self.opts.labels);
        let id = self.store.write_image(config, state.layers, &[])?;
        self.store.cache_put(&key, &id)?;
        Ok(id)
    }
}

/// Prefix an error with the step's file:line unless it already has one.
fn at(loc: &Loc, e: Error) -> Error {
    match e {
        Error::Syntax { .. } | Error::StepFailed { .. } => e,
        other => Error::syntax(loc, other.to_string()),
    }
}
