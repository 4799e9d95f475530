//! Where a stage starts: an image, another stage, `scratch` or a rootfs tarball, and the base
//! image's ONBUILD triggers.

use std::path::Path;

use image::manifest::{ImageConfig, Platform, RootFs, RunConfig};
use image::Digest;

use super::copystep::download;
use super::{at, key_of, Builder, Carry, State};
use crate::error::{Error, Result};
use crate::meta;
use crate::plan::{Base, Loc};

impl Builder<'_> {
    /// The base image's ONBUILD triggers run first, as Docker runs them; the image built here
    /// does not keep them.
    pub(super) fn onbuild(&mut self, mut state: State, base: &str, loc: &Loc) -> Result<State> {
        let Some(rc) = state.config.config.as_mut() else {
            return Ok(state);
        };
        let Some(list) = rc.other.remove("OnBuild") else {
            return Ok(state);
        };
        let triggers: Vec<String> = serde_json::from_value(list).map_err(|e| {
            at(
                loc,
                Error::Invalid(format!("the base image {base} has malformed ONBUILD triggers: {e}")),
            )
        })?;
        if triggers.is_empty() {
            return Ok(state);
        }
        let steps = crate::dockerfile::parse_triggers(&triggers, &format!("ONBUILD trigger of {base}"))
            .map_err(|e| at(loc, e))?;
        self.steps_total += steps.len();
        state.key = key_of(&[state.key.as_bytes(), b"ONBUILD"]);
        for step in &steps {
            self.step_no += 1;
            self.say(&format!(
                "STEP {}/{}: ONBUILD {}",
                self.step_no, self.steps_total, step.text
            ));
            state = self.step(state, step)?;
        }
        Ok(state)
    }

    pub(super) fn base(&mut self, i: usize) -> Result<State> {
        let st = &self.plan.stages[i];
        if let Some(p) = &st.platform {
            // Only this machine's platform can be built (no emulation): say so, not build another.
            let p = self.expand_global(p);
            let want = Platform::parse(&p).map_err(|e| Error::Invalid(format!("FROM --platform={p}: {e}")))?;
            let host = Platform::host();
            if !host.matches(&want) && !want.matches(&host) {
                return Err(Error::Invalid(format!(
                    "FROM --platform={p}: only this machine's platform ({host}) can be built"
                )));
            }
        }
        let shell: Vec<String> = meta::DEFAULT_SHELL.iter().map(|s| s.to_string()).collect();
        let id = match &st.base {
            Base::Tarball(src) => self.tarball_base(src)?,
            Base::Image(b) => {
                let name = self.expand_global(b);
                if let Some(j) = self.stage_ref(&name, i) {
                    self.built
                        .get(&j)
                        .cloned()
                        .ok_or_else(|| Error::Invalid(format!("stage {name} was not built")))?
                } else if name.eq_ignore_ascii_case("scratch") {
                    self.scratch()?
                } else {
                    (self.opts.resolve_image)(&name, self.opts.pull)?
                }
            }
        };
        let carry = Carry {
            shell,
            ..Default::default()
        };
        let mut s = self.load(&id, key_of(&[b"FROM", id.to_string().as_bytes()]), carry)?;
        if let Some(sh) = s
            .config
            .config
            .as_ref()
            .and_then(|c| c.other.get("Shell"))
            .and_then(|v| serde_json::from_value::<Vec<String>>(v.clone()).ok())
        {
            s.shell = sh;
        }
        self.say(&format!("--> {}", s.id.short()));
        Ok(s)
    }

    /// The empty image FROM scratch starts from; always the same ID, having no date.
    pub(super) fn scratch(&self) -> Result<Digest> {
        let p = Platform::host();
        let cfg = ImageConfig {
            created: None,
            author: None,
            architecture: p.architecture,
            os: p.os,
            variant: p.variant,
            config: Some(RunConfig {
                env: Some(vec![meta::DEFAULT_PATH.to_string()]),
                ..Default::default()
            }),
            rootfs: RootFs {
                kind: "layers".into(),
                diff_ids: Vec::new(),
            },
            history: Vec::new(),
            other: Default::default(),
        };
        Ok(self.store.write_image(cfg, Vec::new(), &[])?)
    }

    /// BOX_BASE ./rootfs.tar.gz or https://…: imported once per content.
    pub(super) fn tarball_base(&self, src: &str) -> Result<Digest> {
        let tmp = self.store.tmp_path("base-download");
        let path = if src.starts_with("http://") || src.starts_with("https://") {
            download(src, &tmp)?;
            tmp.clone()
        } else {
            let p = Path::new(src);
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                self.opts.context.join(p)
            }
        };
        let r = (|| {
            let mut f = std::fs::File::open(&path).map_err(Error::io(format!("open base tarball {src}")))?;
            let mut h = image::digest::HashWriter::new(std::io::sink());
            std::io::copy(&mut f, &mut h).map_err(Error::io(format!("read base tarball {src}")))?;
            let (_, d, _) = h.finish();
            let key = key_of(&[b"BASE-TARBALL", d.to_string().as_bytes()]);
            if let Some(id) = self.store.cache_get(&key)? {
                return Ok(id);
            }
            let f = std::fs::File::open(&path).map_err(Error::io(format!("open base tarball {src}")))?;
            let id = image::import::import(self.store, f, src, None, &Default::default())?;
            self.store.cache_put(&key, &id)?;
            Ok(id)
        })();
        let _ = std::fs::remove_file(&tmp);
        r
    }
}
