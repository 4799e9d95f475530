//! `app.lbox`, LockBox's build file: BOX_BASE, BOX_DIR, BOX_COPY, BOX_EXEC, BOX_ENV, BOX_START.
//! Each is a Dockerfile instruction under another name (FROM, WORKDIR, COPY, RUN, ENV, CMD), so
//! the file is read by the Dockerfile parser, line for line, after a check that only these six
//! are used; BOX_BASE also takes a root filesystem tarball, by path or URL.

use crate::error::{Error, Result};
use crate::plan::{Base, Loc, Plan};

const NAMES: [(&str, &str); 6] = [
    ("BOX_BASE", "FROM"),
    ("BOX_DIR", "WORKDIR"),
    ("BOX_COPY", "COPY"),
    ("BOX_EXEC", "RUN"),
    ("BOX_ENV", "ENV"),
    ("BOX_START", "CMD"),
];

fn is_tarball(s: &str) -> bool {
    let archive = [".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.zst", ".tar.bz2"]
        .iter()
        .any(|x| s.ends_with(x));
    s.starts_with("http://") || s.starts_with("https://") || archive
}

/// Tell the user about the app.lbox name of an instruction, not the Dockerfile one.
fn rename(msg: &str) -> String {
    let mut m = msg.to_string();
    for (lbox, docker) in NAMES {
        m = m.replace(&format!("{docker} "), &format!("{lbox} "));
    }
    m
}

pub fn parse(text: &str, file: &str) -> Result<Plan> {
    let mut translated = String::with_capacity(text.len());
    let mut continued = false;
    let mut seen_base = false;
    for (i, line) in text.lines().enumerate() {
        let loc = Loc {
            file: file.to_string(),
            line: i + 1,
        };
        let trimmed = line.trim_start();
        if continued {
            continued = line.trim_end().ends_with('\\');
            translated.push_str(line);
            translated.push('\n');
            continue;
        }
        if trimmed.is_empty() || trimmed.starts_with('#') {
            translated.push_str(line);
            translated.push('\n');
            continue;
        }
        let word = trimmed.split_whitespace().next().unwrap_or("");
        let Some((lbox, docker)) = NAMES.iter().find(|(l, _)| l.eq_ignore_ascii_case(word)) else {
            return Err(Error::syntax(
                &loc,
                format!("unknown instruction {word:?} (app.lbox has BOX_BASE, BOX_DIR, BOX_COPY, BOX_EXEC, BOX_ENV and BOX_START)"),
            ));
        };
        if *lbox == "BOX_BASE" {
            if seen_base {
                return Err(Error::syntax(&loc, "BOX_BASE given twice: an app.lbox has one base"));
            }
            seen_base = true;
        } else if !seen_base {
            return Err(Error::syntax(
                &loc,
                format!("{lbox} before BOX_BASE: the file must start with BOX_BASE"),
            ));
        }
        let rest = &trimmed[word.len()..];
        translated.push_str(docker);
        translated.push_str(rest);
        translated.push('\n');
        continued = line.trim_end().ends_with('\\');
    }
    if !seen_base {
        return Err(Error::syntax(
            &Loc {
                file: file.to_string(),
                line: 1,
            },
            "no BOX_BASE: the file must start with BOX_BASE IMAGE",
        ));
    }
    let mut plan = crate::dockerfile::parse(&translated, file).map_err(|e| match e {
        Error::Syntax { loc, msg } => Error::Syntax { loc, msg: rename(&msg) },
        other => other,
    })?;
    let lines: Vec<&str> = text.lines().collect();
    for st in &mut plan.stages {
        if let Base::Image(b) = &st.base {
            if is_tarball(b) {
                st.base = Base::Tarball(b.clone());
            }
        }
        for step in &mut st.steps {
            // Show the instruction as the user wrote it.
            if let Some(l) = lines.get(step.loc.line - 1) {
                step.text = l.trim().trim_end_matches('\\').trim_end().to_string();
            }
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Command, StepKind};

    #[test]
    fn the_six_instructions() {
        let p = parse(
            "# my app\nBOX_BASE alpine\nBOX_DIR /app\nBOX_COPY . .\nBOX_EXEC apk add python3\nBOX_ENV FLASK_ENV=dev\nBOX_START [\"python\", \"app.py\"]\n",
            "app.lbox",
        )
        .unwrap();
        let st = &p.stages[0];
        assert_eq!(st.base, Base::Image("alpine".into()));
        let kinds: Vec<&StepKind> = st.steps.iter().map(|s| &s.kind).collect();
        assert_eq!(kinds[0], &StepKind::Workdir("/app".into()));
        assert!(matches!(kinds[1], StepKind::Copy(c) if c.sources == ["."] && c.dest == "."));
        assert!(matches!(kinds[2], StepKind::Run { cmd: Command::Shell(s), .. } if s == "apk add python3"));
        assert_eq!(kinds[3], &StepKind::Env(vec![("FLASK_ENV".into(), "dev".into())]));
        assert_eq!(
            kinds[4],
            &StepKind::Cmd(Command::Exec(vec!["python".into(), "app.py".into()]))
        );
        assert_eq!(st.steps[2].text, "BOX_EXEC apk add python3");
        assert_eq!(st.steps[2].loc.line, 5);

        let p = parse(
            "BOX_BASE ./alpine-minirootfs.tar.gz\nBOX_START python app.py\n",
            "app.lbox",
        )
        .unwrap();
        assert_eq!(p.stages[0].base, Base::Tarball("./alpine-minirootfs.tar.gz".into()));
        assert_eq!(
            p.stages[0].steps[0].kind,
            StepKind::Cmd(Command::Shell("python app.py".into()))
        );
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("BOX_BASE alpine\nRUN echo\n", "app.lbox")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("app.lbox:2: unknown instruction \"RUN\""), "{e}");
        let e = parse("BOX_EXEC echo\n", "app.lbox").unwrap_err().to_string();
        assert!(e.starts_with("app.lbox:1: BOX_EXEC before BOX_BASE"), "{e}");
        let e = parse("# nothing\n", "app.lbox").unwrap_err().to_string();
        assert!(e.contains("no BOX_BASE"), "{e}");
        let e = parse("BOX_BASE a\nBOX_BASE b\n", "app.lbox").unwrap_err().to_string();
        assert!(e.starts_with("app.lbox:2:"), "{e}");
    }
}
