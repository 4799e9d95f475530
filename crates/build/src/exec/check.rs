//! What can be checked before anything runs: the COPY and ADD sources written without `$`
//! exist in the context (after the ignore rules) and do not leave it, and each `--from` names a
//! stage or an image. A file with such a mistake fails at its line without having run a step, so
//! it leaves no image, layer or container behind, wherever the mistake is in the file.

use super::copystep::read_ignore;
use super::Builder;
use crate::error::{Error, Result};
use crate::fscopy::SourceRoot;
use crate::plan::StepKind;

impl Builder<'_> {
    pub(super) fn check(&self, order: &[usize]) -> Result<()> {
        let mut context: Option<SourceRoot> = None;
        for &i in order {
            for step in &self.plan.stages[i].steps {
                let StepKind::Copy(c) = &step.kind else { continue };
                let loc = &step.loc;
                if let Some(from) = c.from.as_deref().filter(|f| !f.contains('$')) {
                    if self.stage_ref(from, usize::MAX).is_none() {
                        if let Some(Err(e)) = self.bare_from(from, loc) {
                            return Err(e);
                        }
                    }
                    continue;
                }
                if c.from.is_some() || !c.inline.is_empty() {
                    continue;
                }
                let root = match &mut context {
                    Some(r) => r,
                    None => context.insert(SourceRoot {
                        fd: crate::inroot::open_root(&self.opts.context)?,
                        ignore: read_ignore(&self.opts.context)?,
                        label: "the build context".into(),
                    }),
                };
                for s in c.sources.iter().filter(|s| !s.contains('$')) {
                    if c.add && (s.starts_with("http://") || s.starts_with("https://")) {
                        continue;
                    }
                    // The plan's words are still quoted as written; these have nothing to expand.
                    let word = crate::expand::expand(s, &|_: &str| None, '\\').map_err(|m| Error::syntax(loc, m))?;
                    root.expand(&word).map_err(|e| Error::syntax(loc, e.to_string()))?;
                }
            }
        }
        Ok(())
    }
}
