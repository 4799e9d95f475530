//! The Dockerfile front end: Docker's syntax (as BuildKit's `frontend/dockerfile/parser` and
//! `instructions` read it) into a [`Plan`]. Words are kept as written — quotes included — because
//! Docker expands them (and removes their quotes) only when the step runs, against the build
//! arguments and environment of that point: every word-taking field must go through
//! [`crate::expand::expand`] even when it has no `$`. The plan does not carry the escape
//! character: the words of a file with `` # escape=` `` are rewritten to expand the same with `\`.

use std::collections::HashSet;

use crate::error::{Error, Result};
use crate::expand;
use crate::plan::{Base, Command, CopySpec, Healthcheck, Loc, Plan, Stage, Step, StepKind};

/// Parses a Dockerfile; `file` names it in error messages (`Dockerfile:7: …`).
pub fn parse(text: &str, file: &str) -> Result<Plan> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
    let escape = directives(&lines, file)?;
    let mut plan = Plan::default();
    let mut reader = Reader {
        lines: &lines,
        next: 0,
        escape,
        file,
    };
    let mut names = HashSet::new();
    while let Some(ins) = reader.instruction()? {
        let syntax = |msg: String| Error::syntax(&ins.loc, msg);
        match ins.cmd.as_str() {
            "FROM" => {
                let stage = from(&ins).map_err(syntax)?;
                if let Some(name) = &stage.name {
                    if !names.insert(name.clone()) {
                        return Err(syntax(format!("duplicate stage name {name:?}")));
                    }
                }
                plan.stages.push(stage);
            }
            // Only ARG may come before the first FROM: those are the arguments FROM lines see.
            "ARG" if plan.stages.is_empty() => {
                no_flags(&ins).map_err(syntax)?;
                plan.global_args.extend(args(&ins, escape).map_err(syntax)?);
            }
            _ => {
                let kind = step(&ins, escape).map_err(syntax)?;
                let Some(stage) = plan.stages.last_mut() else {
                    return Err(syntax(format!(
                        "no FROM before {}: a Dockerfile starts with FROM (after optional ARGs)",
                        ins.cmd
                    )));
                };
                stage.steps.push(Step {
                    loc: ins.loc.clone(),
                    text: ins.text.clone(),
                    kind,
                });
            }
        }
    }
    if plan.stages.is_empty() {
        let loc = Loc {
            file: file.to_string(),
            line: 1,
        };
        return Err(Error::syntax(&loc, "the file has no FROM instruction"));
    }
    if escape != '\\' {
        rewrite_escape(&mut plan, escape);
    }
    Ok(plan)
}

/// The words Docker expands (not commands: the shell has those as written), rewritten from the
/// file's escape character to `\`, the one plans are expanded with.
fn rewrite_escape(plan: &mut Plan, escape: char) {
    let w = |s: &mut String| *s = expand::with_backslash_escape(s, escape);
    let opt = |s: &mut Option<String>| s.iter_mut().for_each(w);
    for (name, default) in &mut plan.global_args {
        w(name);
        opt(default);
    }
    for stage in &mut plan.stages {
        if let Base::Image(image) = &mut stage.base {
            w(image);
        }
        opt(&mut stage.platform);
        for step in &mut stage.steps {
            match &mut step.kind {
                StepKind::Copy(c) => {
                    c.sources.iter_mut().for_each(w);
                    w(&mut c.dest);
                    opt(&mut c.from);
                    opt(&mut c.chown);
                    opt(&mut c.chmod);
                }
                StepKind::Env(pairs) | StepKind::Label(pairs) => pairs.iter_mut().for_each(|(k, v)| {
                    w(k);
                    w(v);
                }),
                StepKind::Arg(args) => args.iter_mut().for_each(|(k, v)| {
                    w(k);
                    opt(v);
                }),
                StepKind::Workdir(s) | StepKind::User(s) | StepKind::StopSignal(s) => w(s),
                StepKind::Expose(words) | StepKind::Volume(words) => words.iter_mut().for_each(w),
                StepKind::Run { .. }
                | StepKind::Cmd(_)
                | StepKind::Entrypoint(_)
                | StepKind::Healthcheck(_)
                | StepKind::Shell(_)
                | StepKind::OnBuild(_) => {}
            }
        }
    }
}

/// The parser directives: `# name=value` lines at the very top, before any other line (even a
/// blank one or an ordinary comment). Returns the escape character; `syntax` and `check` are
/// accepted and ignored (there is one frontend), other names end the directives as comments do.
fn directives(lines: &[&str], file: &str) -> Result<char> {
    let mut escape = '\\';
    let mut seen = HashSet::new();
    for (i, line) in lines.iter().enumerate() {
        let Some((name, value)) = directive(line) else { break };
        let name = name.to_ascii_lowercase();
        if !matches!(name.as_str(), "escape" | "syntax" | "check") {
            break;
        }
        let loc = Loc {
            file: file.to_string(),
            line: i + 1,
        };
        if !seen.insert(name.clone()) {
            return Err(Error::syntax(
                &loc,
                format!("only one {name} parser directive can be used"),
            ));
        }
        if name == "escape" {
            escape = match value {
                "\\" => '\\',
                "`" => '`',
                _ => {
                    return Err(Error::syntax(
                        &loc,
                        format!("invalid escape token {value:?}: it must be ` or \\"),
                    ))
                }
            };
        }
    }
    Ok(escape)
}

/// `# name = value` (BuildKit's `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`).
fn directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.trim_start().strip_prefix('#')?.trim_start();
    let end = rest.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(rest.len());
    let name = &rest[..end];
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let value = rest[end..].trim_start().strip_prefix('=')?.trim();
    (!value.is_empty()).then_some((name, value))
}

/// One instruction: its logical line, split as BuildKit's `splitCommand` does, and the heredoc
/// bodies that followed it.
struct Instruction {
    loc: Loc,
    /// Shown in the build output: the pieces of a continued line joined by one space.
    text: String,
    /// The logical line as Docker joins it (continuation pieces directly, no separator), which is
    /// what a `RUN` command is.
    line: String,
    /// Upper case.
    cmd: String,
    /// Leading `--name[=value]` words, quotes removed.
    flags: Vec<String>,
    /// The rest, trimmed.
    args: String,
    heredocs: Vec<Heredoc>,
}

struct Heredoc {
    name: String,
    /// `<<-`: leading tabs are stripped from the body's lines and the terminator.
    chomp: bool,
    /// The lines up to the terminator, each with its `\n`, tabs not yet stripped.
    content: String,
}

impl Heredoc {
    fn body(&self) -> String {
        if !self.chomp {
            return self.content.clone();
        }
        self.content
            .split_inclusive('\n')
            .map(|l| l.trim_start_matches('\t'))
            .collect()
    }
}

/// A word of the instruction line that opens a heredoc: `[n]<<[-]NAME`.
struct HeredocWord {
    name: String,
    chomp: bool,
    /// `3<<EOF`: a file descriptor other than stdin, which only a shell can use.
    fd: bool,
}

/// `^(\d*)<<(-?)([^<]*)$` with a one-word delimiter (BuildKit's `ParseHeredoc`).
fn heredoc_word(word: &str) -> std::result::Result<Option<HeredocWord>, String> {
    let digits = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let Some(rest) = word[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let fd = word[..digits].chars().any(|c| c != '0');
    Ok(expand::heredoc_name(rest)?.map(|(name, _expand)| HeredocWord { name, chomp, fd }))
}

struct Reader<'a> {
    lines: &'a [&'a str],
    next: usize,
    escape: char,
    file: &'a str,
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

impl<'a> Reader<'a> {
    /// The escape character and trailing blanks removed, and whether the line continues.
    fn continuation<'l>(&self, line: &'l str) -> (&'l str, bool) {
        let trimmed = line.trim_end_matches([' ', '\t']);
        match trimmed.strip_suffix(self.escape) {
            Some(rest) => (rest, true),
            None => (line, false),
        }
    }

    fn take_line(&mut self) -> Option<(usize, &'a str)> {
        let line = *self.lines.get(self.next)?;
        self.next += 1;
        Some((self.next, line))
    }

    /// The next instruction, `None` at the end of the file.
    fn instruction(&mut self) -> Result<Option<Instruction>> {
        loop {
            let Some((number, first)) = self.take_line() else {
                return Ok(None);
            };
            let first = first.trim_start();
            if first.is_empty() || is_comment(first) {
                continue;
            }
            let loc = Loc {
                file: self.file.to_string(),
                line: number,
            };
            let (piece, mut continued) = self.continuation(first);
            let mut line = piece.to_string();
            let mut pieces = vec![piece.trim()];
            // Comment and blank lines inside a continued instruction are skipped, as in Docker.
            while continued {
                let Some((_, next)) = self.take_line() else { break };
                if is_comment(next) || next.trim().is_empty() {
                    continue;
                }
                let (piece, more) = self.continuation(next);
                line.push_str(piece);
                pieces.push(piece.trim());
                continued = more;
            }
            let line = line.trim().to_string();
            if line.is_empty() {
                continue;
            }
            let text = pieces
                .into_iter()
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            let (cmd, flags, args) = split_command(&line);
            let mut ins = Instruction {
                loc,
                text,
                cmd: cmd.to_ascii_uppercase(),
                flags,
                args,
                line,
                heredocs: Vec::new(),
            };
            if may_have_heredocs(&ins) {
                self.heredocs(&mut ins)?;
            }
            return Ok(Some(ins));
        }
    }

    /// Reads the bodies of the heredocs the instruction's line opens, in order.
    fn heredocs(&mut self, ins: &mut Instruction) -> Result<()> {
        for word in expand::raw_words(&ins.line) {
            let Some(h) = heredoc_word(&word).map_err(|e| Error::syntax(&ins.loc, e))? else {
                continue;
            };
            let mut content = String::new();
            loop {
                let Some((_, line)) = self.take_line() else {
                    let msg = format!("unterminated heredoc {:?} (no line {:?} after it)", h.name, h.name);
                    return Err(Error::syntax(&ins.loc, msg));
                };
                let candidate = if h.chomp { line.trim_start_matches('\t') } else { line };
                if candidate == h.name {
                    break;
                }
                content.push_str(line);
                content.push('\n');
            }
            ins.heredocs.push(Heredoc {
                name: h.name,
                chomp: h.chomp,
                content,
            });
        }
        Ok(())
    }
}

/// Only RUN, COPY and ADD (also as ONBUILD triggers) in their non-JSON form take heredocs.
fn may_have_heredocs(ins: &Instruction) -> bool {
    if !ins.line.contains("<<") {
        return false;
    }
    let (cmd, args) = if ins.cmd == "ONBUILD" {
        let (cmd, _, args) = split_command(&ins.args);
        (cmd.to_ascii_uppercase(), args)
    } else {
        (ins.cmd.clone(), ins.args.clone())
    };
    matches!(cmd.as_str(), "RUN" | "COPY" | "ADD") && !matches!(json_form(&args), Ok(Some(_)))
}

/// The instruction name, its leading `--flags` and the rest (BuildKit's `splitCommand`).
fn split_command(line: &str) -> (String, Vec<String>, String) {
    let line = line.trim();
    match line.split_once(char::is_whitespace) {
        Some((cmd, rest)) => {
            let (args, flags) = extract_flags(rest);
            (cmd.to_string(), flags, args.trim().to_string())
        }
        None => (line.to_string(), Vec::new(), String::new()),
    }
}

/// The leading words starting with `--` (quotes removed, `\` escaping, as BuildKit's
/// `extractBuilderFlags`); a bare `--` ends them. Returns the rest of the line and the flags.
fn extract_flags(line: &str) -> (&str, Vec<String>) {
    let mut flags = Vec::new();
    let mut rest = line;
    loop {
        rest = rest.trim_start();
        if !rest.starts_with("--") {
            return (rest, flags);
        }
        let mut word = String::new();
        let mut quote = None;
        let mut chars = rest.char_indices();
        let mut end = rest.len();
        while let Some((i, c)) = chars.next() {
            match quote {
                None if c.is_whitespace() => {
                    end = i;
                    break;
                }
                None if c == '\'' || c == '"' => quote = Some(c),
                Some(q) if c == q => quote = None,
                _ if c == '\\' => {
                    if let Some((_, n)) = chars.next() {
                        word.push(n);
                    }
                }
                _ => word.push(c),
            }
        }
        rest = &rest[end..];
        if word == "--" {
            return (rest.trim_start(), flags);
        }
        flags.push(word);
    }
}

/// `[ "a", "b" ]`: `Ok(Some(words))`; anything else is the shell form (`Ok(None)`), even text
/// starting with `[` that is not JSON, so `RUN [ -f x ] && y` is a shell command. Two cases are
/// errors: a JSON array of something else than strings (as in Docker), and text starting with
/// `["` that is not JSON — no shell command starts so, it is a JSON array gone wrong (Docker
/// would run it as a shell command that fails when the container starts).
fn json_form(args: &str) -> std::result::Result<Option<Vec<String>>, String> {
    if !args.starts_with('[') {
        return Ok(None);
    }
    match serde_json::from_str::<serde_json::Value>(args) {
        Ok(serde_json::Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => Ok(s),
                _ => Err("when using JSON array syntax, arrays must be comprised of strings only".to_string()),
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map(Some),
        Err(e) if args.starts_with("[\"") => Err(format!(
            "malformed JSON array: {e}; write [\"program\", \"argument\"] or use the shell form"
        )),
        _ => Ok(None),
    }
}

/// The flags an instruction was given, checked against those it takes.
struct Flags {
    values: Vec<(String, String)>,
}

impl Flags {
    fn parse(ins: &Instruction, allowed: &[&str]) -> std::result::Result<Flags, String> {
        let mut values: Vec<(String, String)> = Vec::new();
        for flag in &ins.flags {
            let body = flag.strip_prefix("--").unwrap_or(flag);
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            if !allowed.contains(&name) {
                return Err(if allowed.is_empty() {
                    format!("{} takes no flags (got --{name})", ins.cmd)
                } else {
                    let takes: Vec<String> = allowed.iter().map(|a| format!("--{a}")).collect();
                    format!(
                        "{} --{name} is not supported ({} takes {})",
                        ins.cmd,
                        ins.cmd,
                        takes.join(", ")
                    )
                });
            }
            let Some(value) = value else {
                return Err(format!("{} --{name} needs a value (--{name}=…)", ins.cmd));
            };
            if values.iter().any(|(n, _)| n == name) {
                return Err(format!("{}: --{name} is given twice", ins.cmd));
            }
            values.push((name.to_string(), value.to_string()));
        }
        Ok(Flags { values })
    }

    /// The flag's value; an empty one (`--from=`) counts as not given, as in Docker.
    fn get(&self, name: &str) -> Option<String> {
        self.values
            .iter()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.clone())
    }
}

fn no_flags(ins: &Instruction) -> std::result::Result<(), String> {
    Flags::parse(ins, &[]).map(|_| ())
}

fn from(ins: &Instruction) -> std::result::Result<Stage, String> {
    let flags = Flags::parse(ins, &["platform"])?;
    let words: Vec<&str> = ins.args.split_whitespace().collect();
    let (image, name) = match words.as_slice() {
        [image] => (image, None),
        [image, as_, name] if as_.eq_ignore_ascii_case("as") => {
            let lower = name.to_ascii_lowercase();
            let valid = lower.starts_with(|c: char| c.is_ascii_lowercase())
                && lower
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
            if !valid {
                return Err(format!(
                    "invalid name for build stage: {name:?}, name can't start with a number or contain symbols"
                ));
            }
            (image, Some(lower))
        }
        _ => return Err("FROM requires either one or three arguments (FROM image [AS name])".into()),
    };
    Ok(Stage {
        name,
        base: Base::Image(image.to_string()),
        platform: flags.get("platform"),
        loc: ins.loc.clone(),
        steps: Vec::new(),
    })
}

/// The step an instruction (other than FROM, and ARG before the first FROM) makes.
fn step(ins: &Instruction, escape: char) -> std::result::Result<StepKind, String> {
    let cmd = ins.cmd.as_str();
    let required = |what: &str| format!("{cmd} requires {what}");
    // The instructions taking their whole argument as one string.
    let one = || {
        if ins.args.is_empty() {
            Err(required("exactly one argument"))
        } else {
            Ok(ins.args.clone())
        }
    };
    Ok(match cmd {
        "RUN" => {
            let flags = Flags::parse(ins, &["network"])?;
            let network = flags.get("network");
            if let Some(n) = &network {
                if !matches!(n.as_str(), "default" | "none" | "host") {
                    return Err(format!("RUN --network={n}: the network must be default, none or host"));
                }
            }
            StepKind::Run {
                cmd: run_command(ins)?,
                network,
            }
        }
        "CMD" | "ENTRYPOINT" => {
            no_flags(ins)?;
            let command = match json_form(&ins.args)? {
                Some(words) => Command::Exec(words),
                None if ins.args.is_empty() => return Err(required("at least one argument")),
                None => Command::Shell(ins.args.clone()),
            };
            if cmd == "CMD" {
                StepKind::Cmd(command)
            } else {
                StepKind::Entrypoint(command)
            }
        }
        "COPY" | "ADD" => StepKind::Copy(copy(ins)?),
        "ENV" | "LABEL" => {
            no_flags(ins)?;
            let pairs = name_values(cmd, &ins.args, escape)?;
            if cmd == "ENV" {
                StepKind::Env(pairs)
            } else {
                StepKind::Label(pairs)
            }
        }
        "ARG" => {
            no_flags(ins)?;
            StepKind::Arg(args(ins, escape)?)
        }
        "WORKDIR" => {
            no_flags(ins)?;
            StepKind::Workdir(one()?)
        }
        "USER" => {
            no_flags(ins)?;
            StepKind::User(one()?)
        }
        "STOPSIGNAL" => {
            no_flags(ins)?;
            StepKind::StopSignal(one()?)
        }
        "EXPOSE" => {
            no_flags(ins)?;
            let ports: Vec<String> = ins.args.split_whitespace().map(str::to_string).collect();
            if ports.is_empty() {
                return Err(required("at least one argument"));
            }
            StepKind::Expose(ports)
        }
        "VOLUME" => {
            no_flags(ins)?;
            let paths = match json_form(&ins.args)? {
                Some(words) => words,
                None => ins.args.split_whitespace().map(str::to_string).collect(),
            };
            if paths.is_empty() {
                return Err(required("at least one argument"));
            }
            if paths.iter().any(|p| p.trim().is_empty()) {
                return Err("VOLUME specified can not be an empty string".into());
            }
            StepKind::Volume(paths)
        }
        "HEALTHCHECK" => StepKind::Healthcheck(healthcheck(ins)?),
        "SHELL" => {
            no_flags(ins)?;
            match json_form(&ins.args)? {
                Some(words) if words.is_empty() => return Err(required("at least one argument")),
                Some(words) => StepKind::Shell(words),
                None => {
                    return Err(r#"SHELL requires the arguments to be in JSON form: SHELL ["/bin/sh", "-c"]"#.into())
                }
            }
        }
        "ONBUILD" => {
            no_flags(ins)?;
            StepKind::OnBuild(onbuild(ins, escape)?)
        }
        // Deprecated: Docker turns it into the `maintainer` label, taken literally.
        "MAINTAINER" => {
            no_flags(ins)?;
            StepKind::Label(vec![("maintainer".into(), quote_literal(&one()?, escape))])
        }
        _ => {
            let written = ins.line.split_whitespace().next().unwrap_or_default();
            return Err(format!("unknown instruction {written:?}"));
        }
    })
}

/// RUN's command: the exec form, the shell form, or a shell script made of its heredocs.
fn run_command(ins: &Instruction) -> std::result::Result<Command, String> {
    if let Some(words) = json_form(&ins.args)? {
        if words.is_empty() {
            return Err("RUN requires at least one argument".into());
        }
        return Ok(Command::Exec(words));
    }
    if ins.args.is_empty() {
        return Err("RUN requires at least one argument".into());
    }
    let Some(first) = ins.heredocs.first() else {
        return Ok(Command::Shell(ins.args.clone()));
    };
    // `RUN <<EOF` alone: the body is the script. Otherwise (`RUN python3 <<EOF`, several
    // heredocs…) the shell gets the line and the bodies, and does the heredocs itself.
    if heredoc_word(&ins.args)?.is_some() {
        return Ok(Command::Shell(script(&first.body())));
    }
    let mut full = ins.args.clone();
    for h in &ins.heredocs {
        full.push('\n');
        full.push_str(&h.content);
        full.push_str(&h.name);
    }
    Ok(Command::Shell(full))
}

/// A `RUN <<EOF` body as a shell command. A body starting with `#!` is a script for that
/// interpreter: Docker runs it as a file; here the interpreter reads it on its standard input
/// (`python3 <<'X'`), which works for the usual interpreters (sh, bash, python, perl, node) and
/// needs no file in the image.
fn script(body: &str) -> String {
    let interpreter = body
        .strip_prefix("#!")
        .and_then(|rest| rest.lines().next())
        .map(str::trim)
        .filter(|i| !i.is_empty());
    let Some(interpreter) = interpreter else {
        return body.to_string();
    };
    let mut delimiter = "LBOX_SCRIPT".to_string();
    while body.lines().any(|l| l == delimiter) {
        delimiter.push('_');
    }
    let newline = if body.ends_with('\n') { "" } else { "\n" };
    format!("{interpreter} <<'{delimiter}'\n{body}{newline}{delimiter}")
}

fn copy(ins: &Instruction) -> std::result::Result<CopySpec, String> {
    let add = ins.cmd == "ADD";
    let flags = Flags::parse(
        ins,
        if add {
            &["chown", "chmod"]
        } else {
            &["from", "chown", "chmod"]
        },
    )?;
    let words = match json_form(&ins.args)? {
        Some(words) => words,
        None => ins.args.split_whitespace().map(str::to_string).collect(),
    };
    let Some((dest, sources)) = words.split_last().filter(|(_, s)| !s.is_empty()) else {
        return Err(format!(
            "{} requires at least two arguments: one or more sources and the destination",
            ins.cmd
        ));
    };
    // Heredoc words only exist in the shell form (`ins.heredocs` is empty for the JSON form).
    let heredoc = |w: &str| {
        if ins.heredocs.is_empty() {
            Ok(None)
        } else {
            heredoc_word(w)
        }
    };
    if heredoc(dest)?.is_some() {
        return Err(format!("{} cannot take a heredoc as its destination", ins.cmd));
    }
    let mut spec = CopySpec {
        sources: Vec::new(),
        dest: dest.clone(),
        from: flags.get("from"),
        chown: flags.get("chown"),
        chmod: flags.get("chmod"),
        add,
        inline: Vec::new(),
    };
    for source in sources {
        match heredoc(source)? {
            Some(word) => {
                if word.fd {
                    return Err(format!("{} heredocs cannot use a file descriptor ({source})", ins.cmd));
                }
                let body = ins
                    .heredocs
                    .iter()
                    .find(|h| h.name == word.name)
                    .map(Heredoc::body)
                    .unwrap_or_default();
                spec.inline.push((word.name, body));
            }
            None => spec.sources.push(source.clone()),
        }
    }
    Ok(spec)
}

fn healthcheck(ins: &Instruction) -> std::result::Result<Healthcheck, String> {
    let (kind, rest) = match ins.args.split_once(char::is_whitespace) {
        Some((k, r)) => (k, r.trim()),
        None => (ins.args.as_str(), ""),
    };
    if kind.is_empty() {
        return Err("HEALTHCHECK requires at least one argument (NONE, or CMD and a command)".into());
    }
    if kind.eq_ignore_ascii_case("NONE") {
        if !rest.is_empty() || !ins.flags.is_empty() {
            return Err("HEALTHCHECK NONE takes no arguments".into());
        }
        return Ok(Healthcheck {
            test: vec!["NONE".into()],
            interval: None,
            timeout: None,
            start_period: None,
            retries: None,
        });
    }
    if !kind.eq_ignore_ascii_case("CMD") {
        return Err(format!("unknown type {kind:?} in HEALTHCHECK (try CMD)"));
    }
    let flags = Flags::parse(ins, &["interval", "timeout", "start-period", "retries"])?;
    let test = match json_form(rest)? {
        Some(words) if !words.is_empty() => [vec!["CMD".to_string()], words].concat(),
        None if !rest.is_empty() => vec!["CMD-SHELL".to_string(), rest.to_string()],
        _ => return Err("missing command after HEALTHCHECK CMD".into()),
    };
    let duration = |name: &str| -> std::result::Result<Option<String>, String> {
        let Some(value) = flags.get(name) else { return Ok(None) };
        match go_duration_secs(&value) {
            Some(s) if s == 0.0 || s >= 0.001 => Ok(Some(value)),
            Some(_) => Err(format!("HEALTHCHECK --{name}={value}: it cannot be less than 1ms")),
            None => Err(format!(
                "HEALTHCHECK --{name}={value}: not a duration (like 30s, 1m30s, 500ms)"
            )),
        }
    };
    let retries = match flags.get("retries") {
        None => None,
        Some(r) => Some(
            r.parse::<u32>()
                .map_err(|_| format!("HEALTHCHECK --retries={r}: not a number of retries (a non-negative integer)"))?,
        ),
    };
    Ok(Healthcheck {
        test,
        interval: duration("interval")?,
        timeout: duration("timeout")?,
        start_period: duration("start-period")?,
        retries,
    })
}

/// A Go `time.ParseDuration` string (`1h30m`, `1.5s`, `300ms`, `0`) in seconds; negative ones too.
pub(crate) fn go_duration_secs(s: &str) -> Option<f64> {
    let (sign, mut rest) = match s.strip_prefix('-') {
        Some(r) => (-1.0, r),
        None => (1.0, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(0.0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let number = &rest[..n];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * unit;
        rest = &rest[u..];
    }
    Some(sign * total)
}

/// The ONBUILD triggers of a base image, as the steps that run right after FROM in an image built
/// on it. `origin` names the base in error messages.
pub fn parse_triggers(triggers: &[String], origin: &str) -> Result<Vec<Step>> {
    let mut steps = Vec::new();
    for t in triggers {
        let plan = parse(&format!("FROM scratch\n{t}\n"), origin)?;
        steps.extend(plan.stages.into_iter().flat_map(|s| s.steps));
    }
    Ok(steps)
}

/// ONBUILD's trigger, validated and stored as written (heredoc bodies included) for the images
/// built FROM this one to parse.
fn onbuild(ins: &Instruction, escape: char) -> std::result::Result<String, String> {
    let (cmd, flags, args) = split_command(&ins.args);
    let upper = cmd.to_ascii_uppercase();
    match upper.as_str() {
        "" => return Err("ONBUILD requires at least one argument".into()),
        "ONBUILD" => return Err("chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into()),
        "FROM" | "MAINTAINER" => return Err(format!("{upper} isn't allowed as an ONBUILD trigger")),
        _ => {}
    }
    // The trigger is checked now, so a bad one fails this build rather than a later one.
    let trigger = Instruction {
        loc: ins.loc.clone(),
        text: ins.args.clone(),
        line: ins.args.clone(),
        cmd: upper,
        flags,
        args,
        heredocs: ins
            .heredocs
            .iter()
            .map(|h| Heredoc {
                name: h.name.clone(),
                chomp: h.chomp,
                content: h.content.clone(),
            })
            .collect(),
    };
    step(&trigger, escape)?;
    let mut text = trigger.line;
    for h in &ins.heredocs {
        text.push('\n');
        text.push_str(&h.content);
        text.push_str(&h.name);
    }
    Ok(text)
}

/// ARG's `name[=default]` words (several per line).
fn args(ins: &Instruction, escape: char) -> std::result::Result<Vec<(String, Option<String>)>, String> {
    let words = parse_words(&ins.args, escape);
    if words.is_empty() {
        return Err("ARG requires at least one argument".into());
    }
    Ok(words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((name, value)) => (name.to_string(), Some(value.to_string())),
            None => (w, None),
        })
        .collect())
}

/// ENV's and LABEL's `name=value …` (values keep their quotes, removed when expanded), or the
/// legacy `name the value` form, told apart by whether the first word has a `=`.
fn name_values(cmd: &str, args: &str, escape: char) -> std::result::Result<Vec<(String, String)>, String> {
    let words = parse_words(args, escape);
    let Some(first) = words.first() else {
        return Err(format!("{cmd} requires at least one argument"));
    };
    if !first.contains('=') {
        return match args.split_once(char::is_whitespace) {
            Some((name, value)) => Ok(vec![(name.to_string(), value.trim_start().to_string())]),
            None => Err(format!(
                "{cmd} must have two arguments ({cmd} name=value, or {cmd} name value)"
            )),
        };
    }
    words
        .iter()
        .map(|w| match w.split_once('=') {
            Some((name, value)) => Ok((name.to_string(), value.to_string())),
            None => Err(format!(
                "syntax error - can't find = in {w:?}. Must be of the form: name=value"
            )),
        })
        .collect()
}

/// Splits on whitespace outside quotes, keeping the quotes and escapes in the words (BuildKit's
/// `parseWords`): the escape character keeps the next one in the same word; nothing escapes
/// inside single quotes.
fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    // A quoted empty string (`""`) is still a word.
    let mut blank_ok = false;
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = rest.chars().peekable();
    while let Some(ch) = chars.next() {
        if let Some(q) = quote {
            if ch == q {
                quote = None;
            }
            if ch == escape && q != '\'' {
                match chars.next() {
                    Some(n) => {
                        word.push(ch);
                        word.push(n);
                    }
                    None => quote = None,
                }
                continue;
            }
            word.push(ch);
            continue;
        }
        if !in_word {
            if ch.is_whitespace() {
                continue;
            }
            in_word = true;
        }
        if ch.is_whitespace() {
            if blank_ok || !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            in_word = false;
            blank_ok = false;
            continue;
        }
        if ch == '\'' || ch == '"' {
            quote = Some(ch);
            blank_ok = true;
        }
        if ch == escape {
            // An escape at the very end is dropped.
            if let Some(n) = chars.next() {
                word.push(ch);
                word.push(n);
            }
            continue;
        }
        word.push(ch);
    }
    if in_word && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// `s` as a word that expands to exactly `s`: single quotes, with `'` itself escaped outside.
pub(crate) fn quote_literal(s: &str, escape: char) -> String {
    format!("'{}'", s.replace('\'', &format!("'{escape}''")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Plan {
        match parse(text, "Dockerfile") {
            Ok(p) => p,
            Err(e) => panic!("{text:?}: {e}"),
        }
    }

    fn err(text: &str) -> String {
        match parse(text, "Dockerfile") {
            Ok(p) => panic!("{text:?} parsed: {p:?}"),
            Err(e) => e.to_string(),
        }
    }

    /// The steps of the only stage.
    fn steps(text: &str) -> Vec<Step> {
        let plan = ok(text);
        assert_eq!(plan.stages.len(), 1);
        plan.stages.into_iter().next().map(|s| s.steps).unwrap_or_default()
    }

    fn kinds(text: &str) -> Vec<StepKind> {
        steps(text).into_iter().map(|s| s.kind).collect()
    }

    /// The one step after `FROM scratch`.
    fn kind(instruction: &str) -> StepKind {
        let k = kinds(&format!("FROM scratch\n{instruction}\n"));
        assert_eq!(k.len(), 1, "{instruction}");
        k.into_iter().next().expect("one step")
    }

    fn kind_err(instruction: &str) -> String {
        err(&format!("FROM scratch\n{instruction}\n"))
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    fn shell(c: &str) -> StepKind {
        StepKind::Run {
            cmd: Command::Shell(c.into()),
            network: None,
        }
    }

    fn copy_of(instruction: &str) -> CopySpec {
        match kind(instruction) {
            StepKind::Copy(c) => c,
            k => panic!("{k:?}"),
        }
    }

    #[test]
    fn stages_and_global_args() {
        let plan = ok(
            "ARG VERSION=3.20\nARG OTHER\nFROM --platform=linux/arm64 alpine:${VERSION} AS Build\nRUN make\n\
                       from build as final\nCOPY --from=build /out /out\n",
        );
        assert_eq!(
            plan.global_args,
            vec![
                ("VERSION".to_string(), Some("3.20".to_string())),
                ("OTHER".to_string(), None)
            ]
        );
        assert_eq!(plan.stages.len(), 2);
        let build = &plan.stages[0];
        assert_eq!(build.name.as_deref(), Some("build"));
        assert_eq!(build.base, Base::Image("alpine:${VERSION}".into()));
        assert_eq!(build.platform.as_deref(), Some("linux/arm64"));
        assert_eq!(build.loc.line, 3);
        assert_eq!(build.steps.len(), 1);
        let last = &plan.stages[1];
        assert_eq!(last.name.as_deref(), Some("final"));
        assert_eq!(last.base, Base::Image("build".into()));
        assert_eq!(last.platform, None);
        assert_eq!(plan.stage_index("BUILD", 1), Some(0));
    }

    #[test]
    fn from_errors() {
        assert!(err("FROM").contains("FROM requires either one or three arguments"));
        assert!(err("FROM a b").contains("one or three"));
        assert!(err("FROM a AS 1x").contains("invalid name for build stage"));
        assert!(err("FROM a AS x!").contains("invalid name"));
        assert!(err("FROM a AS x\nFROM b AS X").contains("duplicate stage name \"x\""));
        assert!(err("FROM --foo=bar a").contains("FROM --foo is not supported"));
    }

    #[test]
    fn missing_from() {
        assert_eq!(err(""), "Dockerfile:1: the file has no FROM instruction");
        assert_eq!(
            err("# just a comment\n\nARG X\n"),
            "Dockerfile:1: the file has no FROM instruction"
        );
        let e = err("ARG X\n\nRUN echo\nFROM a\n");
        assert!(e.starts_with("Dockerfile:3: no FROM before RUN"), "{e}");
    }

    #[test]
    fn unknown_instruction() {
        assert_eq!(kind_err("  foo bar"), "Dockerfile:2: unknown instruction \"foo\"");
        assert_eq!(kind_err("FOO"), "Dockerfile:2: unknown instruction \"FOO\"");
    }

    #[test]
    fn comments_blank_lines_continuations_and_locations() {
        let text = "# a comment\n\nFROM scratch\n\n  # indented comment\nRUN apt-get update && \\\n    # a comment inside\n\n    apt-get install -y \\\n      curl\nrun echo one\\\ntwo\nEnV A=1\n";
        let st = steps(text);
        assert_eq!(st.len(), 3);
        assert_eq!(st[0].loc.line, 6);
        assert_eq!(st[0].text, "RUN apt-get update && apt-get install -y curl");
        // Docker joins the pieces as they are: the blanks before the `\` stay, those starting the
        // next line too.
        assert_eq!(st[0].kind, shell("apt-get update &&     apt-get install -y       curl"));
        assert_eq!(st[1].loc.line, 11);
        assert_eq!(st[1].text, "run echo one two");
        assert_eq!(st[1].kind, shell("echo onetwo"));
        assert_eq!(st[2].loc.line, 13);
        assert_eq!(st[2].kind, StepKind::Env(pairs(&[("A", "1")])));
        assert_eq!(st[0].loc.to_string(), "Dockerfile:6");
    }

    #[test]
    fn continuation_with_trailing_blanks_and_at_end_of_file() {
        assert_eq!(kinds("FROM scratch\nRUN a \\  \n b"), vec![shell("a  b")]);
        assert_eq!(kinds("FROM scratch\nRUN a \\"), vec![shell("a")]);
    }

    #[test]
    fn crlf_and_bom() {
        let st = steps("\u{feff}FROM scratch\r\nRUN a \\\r\n b\r\nUSER x\r\n");
        assert_eq!(st[0].kind, shell("a  b"));
        assert_eq!(st[1].kind, StepKind::User("x".into()));
    }

    /// Whether the directives at the top of `head` make `` ` `` the escape character.
    fn backtick_escape(head: &str) -> bool {
        parse(&format!("{head}FROM scratch\nRUN a `\nb\n"), "Dockerfile").is_ok()
    }

    #[test]
    fn directives() {
        let plan = ok("# syntax=docker/dockerfile:1\n# escape=`\nFROM scratch\nRUN dir C:\\ `\n  && echo\n");
        assert_eq!(plan.stages[0].steps[0].kind, shell("dir C:\\   && echo"));
        assert!(!backtick_escape(""));
        assert!(backtick_escape("# escape=`\n"));
        assert!(backtick_escape("#   ESCAPE = ` \n"));
        assert!(backtick_escape("# syntax=x\n#check=skip=all\n# escape=`\n"));
        assert!(!backtick_escape("# escape=\\\n"));
        // Directives only count at the very top: after a comment or a blank line they are comments.
        assert!(!backtick_escape("# hello\n# escape=`\n"));
        assert!(!backtick_escape("\n# escape=`\n"));
        assert!(!backtick_escape("# unknown=1\n# escape=`\n"));
        assert!(err("# escape=x\nFROM scratch\n").starts_with("Dockerfile:1: invalid escape token"));
        assert!(err("# escape=`\n# escape=`\nFROM scratch\n").contains("only one escape parser directive"));
    }

    #[test]
    fn run_forms_and_flags() {
        assert_eq!(kind("RUN echo hi"), shell("echo hi"));
        assert_eq!(
            kind(r#"RUN ["sh", "-c", "echo hi"]"#),
            StepKind::Run {
                cmd: Command::Exec(s(&["sh", "-c", "echo hi"])),
                network: None
            }
        );
        // Not JSON: the shell form, as in Docker.
        assert_eq!(
            kind("RUN [ -f /etc/passwd ] && echo yes"),
            shell("[ -f /etc/passwd ] && echo yes")
        );
        assert!(kind_err(r#"RUN ["unterminated""#).contains("malformed JSON array"));
        assert_eq!(kind(r#"RUN [ "$X" = y ] && echo"#), shell(r#"[ "$X" = y ] && echo"#));
        assert_eq!(
            kind("RUN --network=none make"),
            StepKind::Run {
                cmd: Command::Shell("make".into()),
                network: Some("none".into())
            }
        );
        assert_eq!(
            kind("RUN --network=\"host\" -- make"),
            StepKind::Run {
                cmd: Command::Shell("make".into()),
                network: Some("host".into())
            }
        );
        assert_eq!(
            kind("RUN --network=host -- --make"),
            StepKind::Run {
                cmd: Command::Shell("--make".into()),
                network: Some("host".into())
            }
        );
        let e = kind_err("RUN --mount=type=cache,target=/root/.cache pip install x");
        assert_eq!(e, "Dockerfile:2: RUN --mount is not supported (RUN takes --network)");
        assert!(kind_err("RUN --network=bridge make").contains("default, none or host"));
        assert!(kind_err("RUN --network make").contains("RUN --network needs a value"));
        assert!(kind_err("RUN --network=none --network=host make").contains("given twice"));
        assert!(kind_err("RUN").contains("RUN requires at least one argument"));
        assert!(kind_err("RUN []").contains("RUN requires at least one argument"));
        assert!(kind_err(r#"RUN ["a", 1]"#).contains("arrays must be comprised of strings only"));
    }

    #[test]
    fn cmd_and_entrypoint() {
        assert_eq!(
            kind(r#"CMD ["nginx", "-g", "daemon off;"]"#),
            StepKind::Cmd(Command::Exec(s(&["nginx", "-g", "daemon off;"])))
        );
        assert_eq!(
            kind("cmd nginx -g 'daemon off;'"),
            StepKind::Cmd(Command::Shell("nginx -g 'daemon off;'".into()))
        );
        assert_eq!(kind("ENTRYPOINT []"), StepKind::Entrypoint(Command::Exec(vec![])));
        assert_eq!(
            kind("ENTRYPOINT [\"/bin/app\"]"),
            StepKind::Entrypoint(Command::Exec(s(&["/bin/app"])))
        );
        assert_eq!(
            kind("ENTRYPOINT [/bin/app]"),
            StepKind::Entrypoint(Command::Shell("[/bin/app]".into()))
        );
        assert!(kind_err("CMD").contains("CMD requires at least one argument"));
        assert!(kind_err("CMD --verbose").contains("CMD takes no flags (got --verbose)"));
    }

    #[test]
    fn copy_and_add() {
        assert_eq!(
            copy_of("COPY --from=build --chown=1000:1000 --chmod=0755 a b /dst/"),
            CopySpec {
                sources: s(&["a", "b"]),
                dest: "/dst/".into(),
                from: Some("build".into()),
                chown: Some("1000:1000".into()),
                chmod: Some("0755".into()),
                add: false,
                inline: vec![],
            }
        );
        let c = copy_of(r#"COPY ["a b", "c", "/d e/"]"#);
        assert_eq!((c.sources, c.dest), (s(&["a b", "c"]), "/d e/".to_string()));
        let c = copy_of("ADD https://example.com/x.tgz /opt/");
        assert!(c.add);
        assert_eq!(c.sources, s(&["https://example.com/x.tgz"]));
        assert_eq!(copy_of("COPY --from= a b").from, None);
        assert!(kind_err("COPY onlyone").contains("COPY requires at least two arguments"));
        assert!(kind_err("COPY").contains("COPY requires at least two arguments"));
        assert!(kind_err(r#"COPY ["a"]"#).contains("at least two"));
        assert_eq!(
            kind_err("COPY --link a /b"),
            "Dockerfile:2: COPY --link is not supported (COPY takes --from, --chown, --chmod)"
        );
        assert!(kind_err("COPY --parents a /b").contains("COPY --parents is not supported"));
        assert!(kind_err("COPY --exclude=*.md . /b").contains("COPY --exclude is not supported"));
        assert!(kind_err("ADD --from=x a /b").contains("ADD --from is not supported"));
        assert!(kind_err("ADD --checksum=sha256:00 a /b").contains("ADD --checksum"));
    }

    #[test]
    fn env_and_label() {
        assert_eq!(
            kind(r#"ENV A=1 B="a b" C=x\ y D= E='$HOME'"#),
            StepKind::Env(pairs(&[
                ("A", "1"),
                ("B", "\"a b\""),
                ("C", "x\\ y"),
                ("D", ""),
                ("E", "'$HOME'")
            ]))
        );
        assert_eq!(
            kind("ENV PATH /usr/local/bin:$PATH"),
            StepKind::Env(pairs(&[("PATH", "/usr/local/bin:$PATH")]))
        );
        assert_eq!(
            kind("ENV MSG   hello   world "),
            StepKind::Env(pairs(&[("MSG", "hello   world")]))
        );
        assert_eq!(
            kind("ENV A=1 \\\n    B=2"),
            StepKind::Env(pairs(&[("A", "1"), ("B", "2")]))
        );
        assert!(kind_err("ENV A").contains("ENV must have two arguments"));
        assert!(kind_err("ENV").contains("ENV requires at least one argument"));
        assert!(kind_err("ENV A=1 B").contains("can't find = in \"B\""));
        assert_eq!(
            kind(r#"LABEL org.opencontainers.image.title="My app" version=1.0 "quoted key"=v"#),
            StepKind::Label(pairs(&[
                ("org.opencontainers.image.title", "\"My app\""),
                ("version", "1.0"),
                ("\"quoted key\"", "v")
            ]))
        );
        assert_eq!(
            kind("LABEL description some text"),
            StepKind::Label(pairs(&[("description", "some text")]))
        );
    }

    #[test]
    fn env_values_expand_to_docker_values() {
        let StepKind::Env(p) = kind(r#"ENV B="a b" C=x\ y E='$HOME' F="$HOME/x""#) else {
            panic!()
        };
        let lookup = |k: &str| (k == "HOME").then(|| "/root".to_string());
        let got: Vec<String> = p
            .iter()
            .map(|(_, v)| expand::expand(v, &lookup, '\\').expect("expands"))
            .collect();
        assert_eq!(got, s(&["a b", "x y", "$HOME", "/root/x"]));
    }

    #[test]
    fn arg() {
        assert_eq!(
            kind("ARG A B=2 C=\"x y\""),
            StepKind::Arg(vec![
                ("A".into(), None),
                ("B".into(), Some("2".into())),
                ("C".into(), Some("\"x y\"".into()))
            ])
        );
        assert_eq!(kind("ARG E="), StepKind::Arg(vec![("E".into(), Some(String::new()))]));
        assert!(kind_err("ARG").contains("ARG requires at least one argument"));
    }

    #[test]
    fn simple_instructions() {
        assert_eq!(kind("WORKDIR /app dir"), StepKind::Workdir("/app dir".into()));
        assert_eq!(kind("USER app:app"), StepKind::User("app:app".into()));
        assert_eq!(kind("STOPSIGNAL SIGTERM"), StepKind::StopSignal("SIGTERM".into()));
        assert_eq!(
            kind("EXPOSE 80 443/tcp  53/udp"),
            StepKind::Expose(s(&["80", "443/tcp", "53/udp"]))
        );
        assert_eq!(
            kind(r#"VOLUME ["/data", "/var/log"]"#),
            StepKind::Volume(s(&["/data", "/var/log"]))
        );
        assert_eq!(kind("VOLUME /data /cache"), StepKind::Volume(s(&["/data", "/cache"])));
        assert!(kind_err("WORKDIR").contains("WORKDIR requires exactly one argument"));
        assert!(kind_err("USER").contains("USER requires exactly one argument"));
        assert!(kind_err("EXPOSE").contains("EXPOSE requires at least one argument"));
        assert!(kind_err("VOLUME").contains("VOLUME requires at least one argument"));
        assert!(kind_err(r#"VOLUME ["/a", " "]"#).contains("can not be an empty string"));
        assert!(kind_err("WORKDIR --x=1 /a").contains("WORKDIR takes no flags (got --x)"));
    }

    #[test]
    fn healthcheck() {
        let none = Healthcheck {
            test: s(&["NONE"]),
            interval: None,
            timeout: None,
            start_period: None,
            retries: None,
        };
        assert_eq!(kind("HEALTHCHECK none"), StepKind::Healthcheck(none));
        assert_eq!(
            kind("HEALTHCHECK --interval=30s --timeout=1m30s --start-period=500ms --retries=3 CMD curl -f http://localhost/ || exit 1"),
            StepKind::Healthcheck(Healthcheck {
                test: s(&["CMD-SHELL", "curl -f http://localhost/ || exit 1"]),
                interval: Some("30s".into()),
                timeout: Some("1m30s".into()),
                start_period: Some("500ms".into()),
                retries: Some(3),
            })
        );
        let StepKind::Healthcheck(h) = kind(r#"HEALTHCHECK cmd ["/bin/check", "--fast"]"#) else {
            panic!()
        };
        assert_eq!(h.test, s(&["CMD", "/bin/check", "--fast"]));
        assert!(kind_err("HEALTHCHECK NONE extra").contains("NONE takes no arguments"));
        assert!(kind_err("HEALTHCHECK --interval=5s NONE").contains("NONE takes no arguments"));
        assert!(kind_err("HEALTHCHECK CMD").contains("missing command after HEALTHCHECK CMD"));
        assert!(kind_err("HEALTHCHECK CMD []").contains("missing command"));
        assert!(kind_err("HEALTHCHECK RUN x").contains("unknown type \"RUN\" in HEALTHCHECK"));
        assert!(kind_err("HEALTHCHECK").contains("HEALTHCHECK requires at least one argument"));
        assert!(kind_err("HEALTHCHECK --interval=5 CMD x").contains("not a duration"));
        assert!(kind_err("HEALTHCHECK --interval=1us CMD x").contains("less than 1ms"));
        assert!(kind_err("HEALTHCHECK --retries=-1 CMD x").contains("--retries=-1"));
        assert!(kind_err("HEALTHCHECK --start-interval=1s CMD x").contains("--start-interval is not supported"));
        assert!(kind_err(r#"HEALTHCHECK CMD ["a", {}]"#).contains("strings only"));
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration_secs("0"), Some(0.0));
        assert_eq!(go_duration_secs("1h30m"), Some(5400.0));
        assert_eq!(go_duration_secs("1.5s"), Some(1.5));
        assert_eq!(go_duration_secs("-2s"), Some(-2.0));
        assert_eq!(go_duration_secs("250µs"), Some(0.00025));
        for bad in ["", "5", "s", "1.2.3s", "1x", "-", "1s2"] {
            assert_eq!(go_duration_secs(bad), None, "{bad}");
        }
    }

    #[test]
    fn shell_instruction() {
        assert_eq!(
            kind(r#"SHELL ["/bin/bash", "-o", "pipefail", "-c"]"#),
            StepKind::Shell(s(&["/bin/bash", "-o", "pipefail", "-c"]))
        );
        assert!(kind_err("SHELL /bin/bash -c").contains("SHELL requires the arguments to be in JSON form"));
        assert!(kind_err(r#"SHELL ["/bin/bash", "-c""#).contains("malformed JSON array"));
        assert!(kind_err("SHELL []").contains("at least one argument"));
    }

    #[test]
    fn onbuild() {
        assert_eq!(
            kind("ONBUILD RUN make install"),
            StepKind::OnBuild("RUN make install".into())
        );
        assert_eq!(
            kind("onbuild  copy --chown=1 . /src"),
            StepKind::OnBuild("copy --chown=1 . /src".into())
        );
        assert!(kind_err("ONBUILD ONBUILD RUN x").contains("ONBUILD ONBUILD"));
        assert!(kind_err("ONBUILD FROM x").contains("FROM isn't allowed as an ONBUILD trigger"));
        assert!(kind_err("ONBUILD maintainer x").contains("MAINTAINER isn't allowed"));
        assert!(kind_err("ONBUILD").contains("ONBUILD requires at least one argument"));
        assert!(kind_err("ONBUILD BOGUS x").contains("unknown instruction \"BOGUS\""));
        assert!(kind_err("ONBUILD RUN --mount=x y").contains("RUN --mount is not supported"));
        let st = steps("FROM scratch\nONBUILD RUN <<EOF\necho hi\nEOF\nUSER x\n");
        assert_eq!(st.len(), 2);
        assert_eq!(st[0].kind, StepKind::OnBuild("RUN <<EOF\necho hi\nEOF".into()));
        assert_eq!(st[1].kind, StepKind::User("x".into()));
        let copy = steps("FROM scratch\nONBUILD COPY <<a /x\nhi\na\n");
        assert_eq!(copy[0].kind, StepKind::OnBuild("COPY <<a /x\nhi\na".into()));
        // The stored trigger parses back to the same step.
        let StepKind::OnBuild(trigger) = &st[0].kind else {
            panic!()
        };
        assert_eq!(kinds(&format!("FROM scratch\n{trigger}\n")), vec![shell("echo hi\n")]);
    }

    #[test]
    fn maintainer_becomes_a_literal_label() {
        let StepKind::Label(p) = kind("MAINTAINER Jo O'Brien <jo@example.com> $5") else {
            panic!()
        };
        assert_eq!(p[0].0, "maintainer");
        let none = |_: &str| None;
        assert_eq!(
            expand::expand(&p[0].1, &none, '\\'),
            Ok("Jo O'Brien <jo@example.com> $5".to_string())
        );
        let plan = ok("# escape=`\nFROM scratch\nMAINTAINER it's me\n");
        let StepKind::Label(p) = &plan.stages[0].steps[0].kind else {
            panic!()
        };
        assert_eq!(expand::expand(&p[0].1, &none, '\\'), Ok("it's me".to_string()));
        assert!(kind_err("MAINTAINER").contains("exactly one argument"));
    }

    #[test]
    fn run_heredocs() {
        let st = steps("FROM scratch\nRUN <<EOF\napt-get update\napt-get install -y curl\nEOF\nUSER x\n");
        assert_eq!(st.len(), 2);
        assert_eq!(st[0].text, "RUN <<EOF");
        assert_eq!(st[0].loc.line, 2);
        assert_eq!(st[0].kind, shell("apt-get update\napt-get install -y curl\n"));
        assert_eq!(st[1].loc.line, 6);
        // `<<-`: leading tabs stripped from the body and the terminator.
        assert_eq!(
            kinds("FROM scratch\nRUN <<-EOT\n\techo a\n\t\techo b\n\tEOT\n"),
            vec![shell("echo a\necho b\n")]
        );
        // Without `-`, an indented terminator is body.
        assert_eq!(kinds("FROM scratch\nRUN <<EOT\n\tEOT\nEOT\n"), vec![shell("\tEOT\n")]);
        // A quoted delimiter.
        assert_eq!(
            kinds("FROM scratch\nRUN <<\"EOF\"\necho $HOME\nEOF\n"),
            vec![shell("echo $HOME\n")]
        );
        assert_eq!(
            kinds("FROM scratch\nRUN --network=none <<'EOF'\nx\nEOF\n"),
            vec![StepKind::Run {
                cmd: Command::Shell("x\n".into()),
                network: Some("none".into())
            }]
        );
        // Heredocs inside a command: the shell does them.
        assert_eq!(
            kinds("FROM scratch\nRUN python3 <<EOF > /out\nprint(1)\nEOF\n"),
            vec![shell("python3 <<EOF > /out\nprint(1)\nEOF")]
        );
        assert_eq!(
            kinds("FROM scratch\nRUN cat <<A - <<-B\n1\nA\n\t2\n\tB\n"),
            vec![shell("cat <<A - <<-B\n1\nA\n\t2\nB")]
        );
        // `<<` in quotes or the exec form is not a heredoc.
        assert_eq!(kinds("FROM scratch\nRUN echo '<<EOF'\nUSER x\n").len(), 2);
        assert_eq!(kinds("FROM scratch\nRUN [\"echo\", \"<<EOF\"]\nUSER x\n").len(), 2);
        let e = err("FROM scratch\nRUN <<EOF\necho\n");
        assert!(e.starts_with("Dockerfile:2: unterminated heredoc \"EOF\""), "{e}");
    }

    #[test]
    fn run_heredoc_with_shebang() {
        let k = kinds("FROM scratch\nRUN <<EOF\n#!/usr/bin/env python3\nprint('hi')\nEOF\n");
        assert_eq!(
            k,
            vec![shell(
                "/usr/bin/env python3 <<'LBOX_SCRIPT'\n#!/usr/bin/env python3\nprint('hi')\nLBOX_SCRIPT"
            )]
        );
        let k = kinds("FROM scratch\nRUN <<EOF\n#!/bin/sh\nLBOX_SCRIPT\nEOF\n");
        assert_eq!(
            k,
            vec![shell("/bin/sh <<'LBOX_SCRIPT_'\n#!/bin/sh\nLBOX_SCRIPT\nLBOX_SCRIPT_")]
        );
    }

    #[test]
    fn copy_heredocs() {
        let st = steps("FROM scratch\nCOPY <<EOF /etc/motd\nwelcome\n  to the box\nEOF\nUSER x\n");
        assert_eq!(st.len(), 2);
        let StepKind::Copy(c) = &st[0].kind else { panic!() };
        assert_eq!(c.sources, Vec::<String>::new());
        assert_eq!(c.dest, "/etc/motd");
        assert_eq!(
            c.inline,
            vec![("EOF".to_string(), "welcome\n  to the box\n".to_string())]
        );
        assert_eq!(st[0].text, "COPY <<EOF /etc/motd");

        let c = match kinds(
            "FROM scratch\nCOPY --chmod=0644 <<a.txt local.txt <<-\"b.txt\" /dir/\nA\na.txt\n\tB\n\tb.txt\n",
        )
        .remove(0)
        {
            StepKind::Copy(c) => c,
            k => panic!("{k:?}"),
        };
        assert_eq!(c.sources, s(&["local.txt"]));
        assert_eq!(c.dest, "/dir/");
        assert_eq!(c.chmod.as_deref(), Some("0644"));
        assert_eq!(
            c.inline,
            vec![("a.txt".into(), "A\n".into()), ("b.txt".into(), "B\n".into())]
        );

        let c = match kinds("FROM scratch\nADD <<EOF /x\nhi\nEOF\n").remove(0) {
            StepKind::Copy(c) => c,
            k => panic!("{k:?}"),
        };
        assert!(c.add);
        assert_eq!(c.inline.len(), 1);
        assert!(err("FROM scratch\nCOPY a <<EOF\nx\nEOF\n").contains("cannot take a heredoc as its destination"));
        assert!(err("FROM scratch\nCOPY 3<<EOF /x\nx\nEOF\n").contains("file descriptor"));
    }

    #[test]
    fn parse_words_like_buildkit() {
        assert_eq!(parse_words("  a  b ", '\\'), s(&["a", "b"]));
        assert_eq!(parse_words(r#"a="x y" b='p q'"#, '\\'), s(&["a=\"x y\"", "b='p q'"]));
        assert_eq!(parse_words(r"a\ b c", '\\'), s(&[r"a\ b", "c"]));
        assert_eq!(parse_words(r#"a="x\" y" z"#, '\\'), s(&[r#"a="x\" y""#, "z"]));
        assert_eq!(parse_words(r"a='x\' y", '\\'), s(&[r"a='x\'", "y"]));
        assert_eq!(parse_words(r#""" x"#, '\\'), s(&["\"\"", "x"]));
        assert_eq!(parse_words("a` b", '`'), s(&["a` b"]));
        assert_eq!(parse_words(r"a\", '\\'), s(&["a"]));
    }

    #[test]
    fn extract_flags_like_buildkit() {
        assert_eq!(
            extract_flags("--a=1 --b=\"x y\" rest  of it"),
            ("rest  of it", s(&["--a=1", "--b=x y"]))
        );
        assert_eq!(extract_flags("-x"), ("-x", vec![]));
        assert_eq!(extract_flags("--a -- --b"), ("--b", s(&["--a"])));
        assert_eq!(extract_flags("--a=\\\"q"), ("", s(&["--a=\"q"])));
    }

    #[test]
    fn backtick_escape_in_words() {
        // Words are rewritten so that expanding them with `\` gives what Docker gives with `` ` ``.
        let plan = ok(
            "# escape=`\nARG D=C:\\d\nFROM img:`$D\nENV A=\"x`\" y\" B=c`$D P=C:\\x\n\
                       COPY --chown=a`:b C:\\src c:\\dst\nWORKDIR C:\\app\nEXPOSE 80` 81\nRUN echo C:\\ `$D\n",
        );
        let env = |k: &str| (k == "D").then(|| "dd".to_string());
        let x = |w: &str| expand::expand(w, &env, '\\').expect("expands");
        assert_eq!(x(plan.global_args[0].1.as_deref().unwrap_or_default()), "C:\\d");
        let Base::Image(image) = &plan.stages[0].base else {
            panic!()
        };
        assert_eq!(x(image), "img:$D");
        let st = &plan.stages[0].steps;
        let StepKind::Env(p) = &st[0].kind else { panic!() };
        let values: Vec<String> = p.iter().map(|(_, v)| x(v)).collect();
        assert_eq!(values, s(&["x\" y", "c$D", "C:\\x"]));
        let StepKind::Copy(c) = &st[1].kind else { panic!() };
        assert_eq!(
            (x(&c.sources[0]), x(&c.dest)),
            ("C:\\src".to_string(), "c:\\dst".to_string())
        );
        assert_eq!(x(c.chown.as_deref().unwrap_or_default()), "a:b");
        assert_eq!(st[2].kind, StepKind::Workdir("C:\\\\app".into()));
        // EXPOSE splits on blanks first, as Docker does: the escape ends the first word.
        let StepKind::Expose(ports) = &st[3].kind else { panic!() };
        let words: Vec<String> = ports.iter().map(|p| x(p)).collect();
        assert_eq!(words, s(&["80", "81"]));
        // Commands are not rewritten: the shell gets them as written.
        assert_eq!(st[4].kind, shell("echo C:\\ `$D"));
    }
}
