//! Docker's word expansion for the instructions that get it (FROM, ENV, ARG, LABEL, COPY, ADD,
//! WORKDIR, USER, EXPOSE, VOLUME, STOPSIGNAL …), a port of BuildKit's
//! `frontend/dockerfile/shell/lex.go` (`ProcessWord`, `ProcessWords`): `$VAR` and `${VAR…}` are
//! substituted, quotes are removed (single quotes keep their content literal, double quotes still
//! expand `$`), and the escape character (`\`, or `` ` `` after `# escape=`) escapes the next one.
//! No command substitution, no globbing: this is not a shell, only what Docker does to words.

/// The variables visible to a word: `None` is unset, which is not the same as empty
/// (`${V-x}` vs `${V:-x}`).
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// `ProcessWord`: `word` expanded against `lookup`, quotes removed, escapes resolved. The error is
/// Docker's message (`failed to process "${A": syntax error: missing '}'`).
pub fn expand(word: &str, lookup: Lookup<'_>, escape: char) -> Result<String, String> {
    Lex::new(escape, lookup).process(word).map(|(s, _)| s)
}

/// `ProcessWords`: like [`expand`], then split on whitespace that was neither quoted nor escaped
/// (whitespace coming from a variable's value does split, as in a shell), for instructions taking
/// a list of words (EXPOSE, VOLUME's word form …). An empty quoted word (`""`) yields no word, as
/// in Docker.
pub fn expand_words(word: &str, lookup: Lookup<'_>, escape: char) -> Result<Vec<String>, String> {
    Lex::new(escape, lookup).process(word).map(|(_, w)| w)
}

/// The words of an instruction line as the Dockerfile parser looks for heredocs in it (BuildKit's
/// `heredocsFromLine`): quotes and escapes kept, `$VAR` dropped (an empty environment), split on
/// unquoted whitespace. A line that does not lex (an unclosed quote) has no heredocs, as in Docker.
pub(crate) fn raw_words(line: &str) -> Vec<String> {
    let empty = |_: &str| None;
    let mut lex = Lex::new('\\', &empty);
    lex.raw_quotes = true;
    lex.raw_escapes = true;
    lex.process(line).map(|(_, w)| w).unwrap_or_default()
}

/// A heredoc's delimiter word (what follows `<<` or `<<-`) as BuildKit's `parseHeredoc` reads it:
/// the name with quotes removed, and whether the content is subject to expansion (only when no
/// part of the word was quoted). `None` if it is not exactly one word.
pub(crate) fn heredoc_name(word: &str) -> Result<Option<(String, bool)>, String> {
    let empty = |_: &str| None;
    let mut lex = Lex::new('\\', &empty);
    lex.skip_unset = true;
    let (_, words) = lex.process(word)?;
    let [name] = words.as_slice() else {
        return Ok(None);
    };
    let mut lex = Lex::new('\\', &empty);
    lex.skip_unset = true;
    lex.raw_quotes = true;
    let (_, raw) = lex.process(word)?;
    let [raw] = raw.as_slice() else {
        return Err(format!(
            "internal lexing of heredoc produced inconsistent results: {word}"
        ));
    };
    let quotes = |s: &str| s.chars().filter(|&c| c == '\'' || c == '"').count();
    Ok(Some((name.clone(), quotes(name) == quotes(raw))))
}

/// `word`, written for the escape character `from`, rewritten for `\` so that
/// `expand(result, _, '\\')` gives what `expand(word, _, from)` gives. The Dockerfile parser uses
/// it for a file with `` # escape=` ``, so that plans always expand with `\` (the plan does not
/// carry the escape character): `C:\dir` stays a Windows path, `` `$X `` a literal `$X`.
pub(crate) fn with_backslash_escape(word: &str, from: char) -> String {
    if from == '\\' {
        return word.to_string();
    }
    let mut conv = Convert {
        chars: word.chars().collect(),
        pos: 0,
        from,
        out: String::with_capacity(word.len()),
    };
    conv.unquoted(false);
    conv.out
}

/// The lexer's states, enough to know what each escape character and backslash means.
struct Convert {
    chars: Vec<char>,
    pos: usize,
    from: char,
    out: String,
}

impl Convert {
    fn next(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied();
        self.pos += usize::from(c.is_some());
        c
    }

    /// After `$`: a `${…}` is lexed as unquoted text up to its `}`, even inside double quotes.
    fn dollar(&mut self) {
        self.out.push('$');
        if self.chars.get(self.pos) == Some(&'{') {
            self.pos += 1;
            self.out.push('{');
            self.unquoted(true);
        }
    }

    /// Outside quotes (or inside `${…}` when `in_brace`): the escape character escapes anything.
    fn unquoted(&mut self, in_brace: bool) {
        while let Some(c) = self.next() {
            match c {
                '}' if in_brace => {
                    self.out.push('}');
                    return;
                }
                '\'' => {
                    self.out.push('\'');
                    while let Some(q) = self.next() {
                        self.out.push(q);
                        if q == '\'' {
                            break;
                        }
                    }
                }
                '"' => {
                    self.out.push('"');
                    self.double_quoted();
                }
                '$' => self.dollar(),
                c if c == self.from => {
                    // At the very end it is dropped, as it would be.
                    if let Some(n) = self.next() {
                        self.out.push('\\');
                        self.out.push(n);
                    }
                }
                '\\' => self.out.push_str("\\\\"),
                c => self.out.push(c),
            }
        }
    }

    /// Inside `"…"`: the escape character only escapes `"`, `$` and itself, else it stays.
    fn double_quoted(&mut self) {
        while let Some(c) = self.next() {
            match c {
                '"' => {
                    self.out.push('"');
                    return;
                }
                '$' => self.dollar(),
                c if c == self.from => match self.chars.get(self.pos).copied() {
                    Some(n) if n == '"' || n == '$' => {
                        self.pos += 1;
                        self.out.push('\\');
                        self.out.push(n);
                    }
                    // An escaped escape character: literal, and not special with `\\`.
                    Some(n) if n == self.from => {
                        self.pos += 1;
                        self.out.push(n);
                    }
                    Some(_) => self.out.push(c),
                    // The quote is unterminated: an error either way.
                    None => {}
                },
                '\\' => self.out.push_str("\\\\"),
                c => self.out.push(c),
            }
        }
    }
}

/// The words being built by `ProcessWords`, as lex.go's `wordsStruct`: `in_word` is set by any
/// character (even an empty quoted string), but only a non-empty word is kept.
#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    /// A character that splits on whitespace (unquoted text, a variable's value).
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }

    fn add_raw_char(&mut self, ch: char) {
        self.word.push(ch);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }

    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

struct Lex<'a> {
    escape: char,
    lookup: Lookup<'a>,
    /// Keep the quote characters in the result (heredoc detection).
    raw_quotes: bool,
    /// Keep the escape characters in the result (heredoc detection, `${V#pattern}` patterns).
    raw_escapes: bool,
    /// Leave `$UNSET` as written instead of making it empty (heredoc names).
    skip_unset: bool,
    chars: Vec<char>,
    pos: usize,
}

impl<'a> Lex<'a> {
    fn new(escape: char, lookup: Lookup<'a>) -> Lex<'a> {
        Lex {
            escape,
            lookup,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset: false,
            chars: Vec::new(),
            pos: 0,
        }
    }

    fn process(&mut self, word: &str) -> Result<(String, Vec<String>), String> {
        self.chars = word.chars().collect();
        self.pos = 0;
        let raw = self.raw_escapes;
        self.process_stop_on(None, raw)
            .map_err(|e| format!("failed to process {word:?}: {e}"))
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Reads up to `stop` (consumed) or the end of the word; the string result and the words.
    fn process_stop_on(&mut self, stop: Option<char>, raw_escapes: bool) -> Result<(String, Vec<String>), String> {
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let r = self.stop_on(stop);
        self.raw_escapes = saved;
        r
    }

    fn stop_on(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), String> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.pos += 1;
                return Ok((result, words.finish()));
            }
            match ch {
                '$' => {
                    let value = self.process_dollar()?;
                    result.push_str(&value);
                    words.add_string(&value);
                }
                '\'' | '"' => {
                    let value = if ch == '\'' {
                        self.process_single_quote()?
                    } else {
                        self.process_double_quote()?
                    };
                    result.push_str(&value);
                    words.add_raw_string(&value);
                }
                _ => {
                    self.pos += 1;
                    if ch == self.escape {
                        if self.raw_escapes {
                            words.add_raw_char(ch);
                            result.push(ch);
                        }
                        // An escape at the very end is dropped.
                        let Some(escaped) = self.next() else { break };
                        words.add_raw_char(escaped);
                        result.push(escaped);
                    } else {
                        words.add_char(ch);
                        result.push(ch);
                    }
                }
            }
        }
        match stop {
            Some(c) => Err(format!("unexpected end of statement while looking for matching {c}")),
            None => Ok((result, words.finish())),
        }
    }

    /// `'…'`: everything literal up to the next `'`; nothing can be escaped.
    fn process_single_quote(&mut self) -> Result<String, String> {
        let mut result = String::new();
        self.pos += 1;
        if self.raw_quotes {
            result.push('\'');
        }
        loop {
            match self.next() {
                None => return Err("unexpected end of statement while looking for matching single-quote".into()),
                Some('\'') => {
                    if self.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    /// `"…"`: literal except `$`, and the escape character only escapes `"`, `$` and itself
    /// (otherwise it stays, as the backslash in a shell's double quotes).
    fn process_double_quote(&mut self) -> Result<String, String> {
        let mut result = String::new();
        self.pos += 1;
        if self.raw_quotes {
            result.push('"');
        }
        loop {
            match self.peek() {
                None => return Err("unexpected end of statement while looking for matching double-quote".into()),
                Some('"') => {
                    self.pos += 1;
                    if self.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let value = self.process_dollar()?;
                    result.push_str(&value);
                }
                Some(mut ch) => {
                    self.pos += 1;
                    if ch == self.escape {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            // The unterminated quote is reported on the next turn.
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.escape => {
                                ch = c;
                                self.pos += 1;
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    fn get_env(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
    }

    /// At a `$`: `$NAME`, `${NAME}` or `${NAME<modifier>word}`.
    fn process_dollar(&mut self) -> Result<String, String> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.pos += 1;
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            Some(_) => {}
        }
        let name = self.process_name();
        let Some(first) = self.next() else {
            return Err("syntax error: missing '}'".into());
        };
        let mut modifier = first.to_string();
        let mut op = first;
        let mut null_is_unset = false;
        match first {
            '}' => {
                return Ok(match self.get_env(&name) {
                    Some(v) => v,
                    None if self.skip_unset => format!("${{{name}}}"),
                    None => String::new(),
                });
            }
            ':' => {
                null_is_unset = true;
                let Some(second) = self.next() else {
                    return Err("syntax error: missing '}'".into());
                };
                modifier.push(second);
                op = second;
            }
            '+' | '-' | '?' | '#' | '%' => {}
            '/' => return self.process_replace(&name),
            _ => {
                if self.skip_unset {
                    return Ok(format!("${{{name}}}"));
                }
                return Err(format!("unsupported modifier ({modifier}) in substitution"));
            }
        }
        // Patterns keep their escapes: they are interpreted by the pattern matcher.
        let pattern_op = op == '#' || op == '%';
        if null_is_unset && pattern_op {
            return Err(format!("unsupported modifier ({modifier}) in substitution"));
        }
        let word = match self.process_stop_on(Some('}'), pattern_op) {
            Ok((w, _)) => w,
            Err(_) if self.peek().is_none() => return Err("syntax error: missing '}'".into()),
            Err(e) => return Err(e),
        };
        let value = self.get_env(&name);
        if self.skip_unset && value.is_none() {
            return Ok(format!("${{{name}{modifier}{word}}}"));
        }
        // With `:`, an empty value counts as unset.
        let unset = match &value {
            None => true,
            Some(v) => null_is_unset && v.is_empty(),
        };
        match op {
            '-' => Ok(if unset { word } else { value.unwrap_or_default() }),
            '+' => Ok(if unset { String::new() } else { word }),
            '?' => match value {
                None => Err(format!("{name}: {}", or_default(word, "is not allowed to be unset"))),
                Some(v) if null_is_unset && v.is_empty() => {
                    Err(format!("{name}: {}", or_default(word, "is not allowed to be empty")))
                }
                Some(v) => Ok(v),
            },
            '#' | '%' => {
                // `#`/`%` remove the shortest match, `##`/`%%` the longest.
                let (greedy, pattern) = match word.strip_prefix(op) {
                    Some(rest) => (true, rest),
                    None => (false, word.as_str()),
                };
                let pattern = Pattern::parse(pattern, self.escape)?;
                let value: Vec<char> = value.unwrap_or_default().chars().collect();
                Ok(if op == '#' {
                    pattern.trim_prefix(&value, greedy)
                } else {
                    pattern.trim_suffix(&value, greedy)
                })
            }
            _ => Err(format!("unsupported modifier ({modifier}) in substitution")),
        }
    }

    /// `${NAME/pattern/replacement}` (first match) and `${NAME//pattern/replacement}` (all).
    fn process_replace(&mut self, name: &str) -> Result<String, String> {
        let all = self.peek() == Some('/');
        if all {
            self.pos += 1;
        }
        let pattern = match self.process_stop_on(Some('/'), true) {
            Ok((p, _)) => p,
            Err(_) if self.peek().is_none() => return Err("syntax error: missing '/' in ${}".into()),
            Err(e) => return Err(e),
        };
        let replacement = match self.process_stop_on(Some('}'), true) {
            Ok((r, _)) => r,
            Err(_) if self.peek().is_none() => return Err("syntax error: missing '}'".into()),
            Err(e) => return Err(e),
        };
        let Some(value) = self.get_env(name) else {
            if self.skip_unset {
                return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
            }
            return Ok(String::new());
        };
        let pattern = Pattern::parse(&pattern, self.escape)?;
        Ok(pattern.replace(&value.chars().collect::<Vec<_>>(), &replacement, all))
    }

    /// A variable name: letters, digits and `_`; or a run of digits (`$1`); or one special
    /// parameter (`$@`, `$*`, `$#`, `$?`, `$-`, `$$`, `$!`, `$0`), which are simply looked up.
    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(d) = self.peek().filter(|c| c.is_ascii_digit()) {
                    name.push(d);
                    self.pos += 1;
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.pos += 1;
                return ch.to_string();
            }
            if !ch.is_alphanumeric() && ch != '_' {
                break;
            }
            name.push(ch);
            self.pos += 1;
        }
        name
    }
}

fn or_default(word: String, default: &str) -> String {
    if word.is_empty() {
        default.to_string()
    } else {
        word
    }
}

/// A shell pattern as `${V#…}`, `${V%…}` and `${V/…/…}` take it: `*`, `?`, `[…]` (`!` or `^`
/// negates), and the escape character making the next one literal. Small values, so a
/// backtracking matcher is plenty.
#[derive(Debug)]
enum Tok {
    Star,
    Any,
    Lit(char),
    Class { negated: bool, ranges: Vec<(char, char)> },
}

struct Pattern(Vec<Tok>);

impl Pattern {
    fn parse(pattern: &str, escape: char) -> Result<Pattern, String> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut toks = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            match c {
                '*' => toks.push(Tok::Star),
                '?' => toks.push(Tok::Any),
                c if c == escape || c == '\\' => match chars.get(i) {
                    Some(&n) => {
                        toks.push(Tok::Lit(n));
                        i += 1;
                    }
                    None => toks.push(Tok::Lit(c)),
                },
                '[' => match parse_class(&chars[i..]) {
                    Some((tok, used)) => {
                        toks.push(tok);
                        i += used;
                    }
                    None => return Err(format!("invalid pattern ({pattern}) in substitution: unterminated [")),
                },
                c => toks.push(Tok::Lit(c)),
            }
        }
        Ok(Pattern(toks))
    }

    fn matches(&self, s: &[char]) -> bool {
        match_toks(&self.0, s)
    }

    fn trim_prefix(&self, v: &[char], longest: bool) -> String {
        let ends: Vec<usize> = (0..=v.len()).filter(|&i| self.matches(&v[..i])).collect();
        let end = if longest { ends.last() } else { ends.first() };
        end.map_or_else(|| v.iter().collect(), |&i| v[i..].iter().collect())
    }

    fn trim_suffix(&self, v: &[char], longest: bool) -> String {
        let starts: Vec<usize> = (0..=v.len()).filter(|&i| self.matches(&v[i..])).collect();
        // The longest suffix starts first; the shortest starts last.
        let start = if longest { starts.first() } else { starts.last() };
        start.map_or_else(|| v.iter().collect(), |&i| v[..i].iter().collect())
    }

    /// The leftmost, then longest, match replaced (every non-overlapping one with `all`).
    fn replace(&self, v: &[char], replacement: &str, all: bool) -> String {
        let mut out = String::new();
        let mut i = 0;
        let mut replaced = false;
        while i <= v.len() {
            let found = if replaced && !all {
                None
            } else {
                (i..=v.len()).rev().find(|&j| self.matches(&v[i..j]))
            };
            match found {
                Some(j) => {
                    out.push_str(replacement);
                    replaced = true;
                    if j > i {
                        i = j;
                        continue;
                    }
                    // An empty match: keep the character and move on.
                    if let Some(&c) = v.get(i) {
                        out.push(c);
                    }
                    i += 1;
                }
                None => {
                    if let Some(&c) = v.get(i) {
                        out.push(c);
                    }
                    i += 1;
                }
            }
        }
        out
    }
}

/// After a `[`: the class and how many characters it used, or `None` if it is not closed.
fn parse_class(chars: &[char]) -> Option<(Tok, usize)> {
    let mut i = 0;
    let negated = matches!(chars.first(), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let c = *chars.get(i)?;
        i += 1;
        // A `]` right after `[` (or `[!`) is a member, as in shells.
        if c == ']' && !first {
            return Some((Tok::Class { negated, ranges }, i));
        }
        first = false;
        match (chars.get(i), chars.get(i + 1)) {
            (Some('-'), Some(&hi)) if hi != ']' => {
                ranges.push((c, hi));
                i += 2;
            }
            _ => ranges.push((c, c)),
        }
    }
}

fn match_toks(toks: &[Tok], s: &[char]) -> bool {
    match toks.split_first() {
        None => s.is_empty(),
        Some((Tok::Star, rest)) => (0..=s.len()).any(|i| match_toks(rest, &s[i..])),
        Some((tok, rest)) => match s.split_first() {
            None => false,
            Some((&c, tail)) => {
                let ok = match tok {
                    Tok::Any => true,
                    Tok::Lit(l) => *l == c,
                    Tok::Class { negated, ranges } => ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated,
                    Tok::Star => false,
                };
                ok && match_toks(rest, tail)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// The environment of BuildKit's `envVarTest`.
    fn lex_env() -> HashMap<String, String> {
        env(&[("PWD", "/home"), ("SHELL", "bash"), ("NULL", "")])
    }

    fn word(w: &str, vars: &HashMap<String, String>) -> Result<String, String> {
        expand(w, &|k| vars.get(k).cloned(), '\\')
    }

    fn words(w: &str, vars: &HashMap<String, String>) -> Result<Vec<String>, String> {
        expand_words(w, &|k| vars.get(k).cloned(), '\\')
    }

    /// BuildKit's `shell/envVarTest` (the platform-independent lines), `None` meaning an error.
    #[test]
    fn env_var_test() {
        let cases: &[(&str, Option<&str>)] = &[
            ("hello", Some("hello")),
            ("he'll'o", Some("hello")),
            ("he'llo", None),
            (r"he\'llo", Some("he'llo")),
            (r"he\\'llo", None),
            (r"abc\tdef", Some("abctdef")),
            (r#""abc\tdef""#, Some(r"abc\tdef")),
            (r#""abc\\tdef""#, Some(r"abc\tdef")),
            (r"'abc\tdef'", Some(r"abc\tdef")),
            (r"hello\", Some("hello")),
            (r"hello\\", Some(r"hello\")),
            (r#""hello"#, None),
            (r#""hello\""#, None),
            (r#""hel'lo""#, Some("hel'lo")),
            ("'hello", None),
            (r"'hello\'", Some(r"hello\")),
            (r"'hello\there'", Some(r"hello\there")),
            (r"'hello\\there'", Some(r"hello\\there")),
            (r#""''""#, Some("''")),
            ("$.", Some("$.")),
            ("he$1x", Some("hex")),
            ("he$.x", Some("he$.x")),
            ("he$pwd.", Some("he.")),
            ("he$PWD", Some("he/home")),
            (r"he\$PWD", Some("he$PWD")),
            (r"he\\$PWD", Some(r"he\/home")),
            (r#""he\$PWD""#, Some("he$PWD")),
            (r#""he\\$PWD""#, Some(r"he\/home")),
            (r"\${}", Some("${}")),
            (r"\${}aaa", Some("${}aaa")),
            (r"he\${}", Some("he${}")),
            (r"he\${}xx", Some("he${}xx")),
            ("${}", None),
            ("${}aaa", None),
            ("he${}", None),
            ("he${}xx", None),
            ("he${hi}", Some("he")),
            ("he${hi}xx", Some("hexx")),
            ("he${PWD}", Some("he/home")),
            ("he${.}", None),
            ("he${XXX:-000}xx", Some("he000xx")),
            ("he${PWD:-000}xx", Some("he/homexx")),
            ("he${XXX:-$PWD}xx", Some("he/homexx")),
            ("he${XXX:-${PWD:-yyy}}xx", Some("he/homexx")),
            ("he${XXX:-${YYY:-yyy}}xx", Some("heyyyxx")),
            ("he${XXX:YYY}", None),
            ("he${XXX?}", None),
            ("he${XXX:?}", None),
            ("he${PWD?}", Some("he/home")),
            ("he${PWD:?}", Some("he/home")),
            ("he${NULL?}", Some("he")),
            ("he${NULL:?}", None),
            ("he${XXX:+${PWD}}xx", Some("hexx")),
            ("he${PWD:+${XXX}}xx", Some("hexx")),
            ("he${PWD:+${SHELL}}xx", Some("hebashxx")),
            ("he${XXX:+000}xx", Some("hexx")),
            ("he${PWD:+000}xx", Some("he000xx")),
            ("'he${XX}'", Some("he${XX}")),
            (r#""he${PWD}""#, Some("he/home")),
            (r#""he'$PWD'""#, Some("he'/home'")),
            (r#""$PWD""#, Some("/home")),
            ("'$PWD'", Some("$PWD")),
            (r"'\$PWD'", Some(r"\$PWD")),
            (r#"'"hello"'"#, Some(r#""hello""#)),
            (r"'he\$PWD'", Some(r"he\$PWD")),
            ("he${PWD", None),
            ("he${PWD:=000}xx", None),
            ("he${PWD:+${PWD}:}xx", Some("he/home:xx")),
            (r"he${XXX:-\$PWD:}xx", Some("he$PWD:xx")),
            (r"he${XXX:-\${PWD}z}xx", Some("he${PWDz}xx")),
            ("안녕하세요", Some("안녕하세요")),
            ("안'녕'하세요", Some("안녕하세요")),
            ("안'녕하세요", None),
            (r"안녕\'하세요", Some("안녕'하세요")),
            (r"안\\'녕하세요", None),
            (r"안녕\t하세요", Some("안녕t하세요")),
            (r#""안녕\t하세요""#, Some(r"안녕\t하세요")),
            (r"'안녕\t하세요", None),
            (r"안녕하세요\", Some("안녕하세요")),
            (r"안녕하세요\\", Some(r"안녕하세요\")),
            (r#""안녕하세요"#, None),
            (r#""안녕하세요\""#, None),
            (r#""안녕'하세요""#, Some("안녕'하세요")),
            ("'안녕하세요'", Some("안녕하세요")),
            (r"'안녕하세요\'", Some(r"안녕하세요\")),
            ("${NULL:-x}", Some("x")),
            ("${NULL-x}", Some("")),
            ("${NULL:+x}", Some("")),
            ("${NULL+x}", Some("x")),
            ("${XXX+x}", Some("")),
            ("${XXX-x}", Some("x")),
        ];
        let vars = lex_env();
        for (input, want) in cases {
            let got = word(input, &vars);
            match want {
                Some(w) => assert_eq!(got.as_deref(), Ok(*w), "input {input:?}"),
                None => assert!(got.is_err(), "input {input:?} gave {got:?}"),
            }
        }
    }

    /// BuildKit's `shell/wordsTest`.
    #[test]
    fn words_test() {
        let vars = env(&[
            ("hi", "hi"),
            ("space", "abc  def"),
            ("leading", "  ab c"),
            ("trailing", "ab c   "),
        ]);
        let cases: &[(&str, Option<&[&str]>)] = &[
            ("hello", Some(&["hello"])),
            ("hello${hi}bye", Some(&["hellohibye"])),
            ("hello${space}bye", Some(&["helloabc", "defbye"])),
            (r#"hello"${space}"bye"#, Some(&["helloabc  defbye"])),
            (r#"hello "${space}"bye"#, Some(&["hello", "abc  defbye"])),
            ("hello${leading}def", Some(&["hello", "ab", "cdef"])),
            (r#"hello"${leading}" def"#, Some(&["hello  ab c", "def"])),
            (r#"hello"${leading}""#, Some(&["hello  ab c"])),
            ("hello${leading}", Some(&["hello", "ab", "c"])),
            ("hello${trailing}", Some(&["helloab", "c"])),
            ("hello${trailing}d", Some(&["helloab", "c", "d"])),
            (r#"hello"${trailing}"d"#, Some(&["helloab c   d"])),
            (r#"hel"lo${trailing}""#, Some(&["helloab c   "])),
            (r#"hello" there  ""#, Some(&["hello there  "])),
            ("hello there     ", Some(&["hello", "there"])),
            (r"hello\ there", Some(&["hello there"])),
            (r#"hello" there"#, None),
            (r#"hello\" there"#, Some(&["hello\"", "there"])),
            (r#"hello"\\there""#, Some(&[r"hello\there"])),
            (r#"hello"\\\\there""#, Some(&[r"hello\\there"])),
            (r#"8080 "" 443"#, Some(&["8080", "443"])),
            ("   ", Some(&[])),
        ];
        for (input, want) in cases {
            let got = words(input, &vars);
            match want {
                Some(w) => {
                    let w: Vec<String> = w.iter().map(|s| s.to_string()).collect();
                    assert_eq!(got, Ok(w), "input {input:?}");
                }
                None => assert!(got.is_err(), "input {input:?} gave {got:?}"),
            }
        }
    }

    #[test]
    fn error_messages() {
        let vars = lex_env();
        assert_eq!(
            word("${XXX:?must be set}", &vars),
            Err(r#"failed to process "${XXX:?must be set}": XXX: must be set"#.to_string())
        );
        assert_eq!(
            word("${NULL:?}", &vars),
            Err(r#"failed to process "${NULL:?}": NULL: is not allowed to be empty"#.to_string())
        );
        assert_eq!(
            word("${XXX?}", &vars),
            Err(r#"failed to process "${XXX?}": XXX: is not allowed to be unset"#.to_string())
        );
        assert!(word("${PWD", &vars).unwrap_err().contains("missing '}'"));
        assert!(word("${PWD:-abc", &vars).unwrap_err().contains("missing '}'"));
        assert!(word("${:}", &vars).unwrap_err().contains("bad substitution"));
        assert!(word("${PWD:x}", &vars)
            .unwrap_err()
            .contains("unsupported modifier (:x)"));
    }

    #[test]
    fn backtick_escape() {
        let vars = lex_env();
        let e = |w: &str| expand(w, &|k| vars.get(k).cloned(), '`');
        // With `` # escape=` ``, a backslash is an ordinary character (Windows paths).
        assert_eq!(e(r"C:\path\to"), Ok(r"C:\path\to".into()));
        assert_eq!(e("`$PWD"), Ok("$PWD".into()));
        assert_eq!(e("a` b"), Ok("a b".into()));
        assert_eq!(e(r#""C:\x `"q`" `$PWD""#), Ok(r#"C:\x "q" $PWD"#.into()));
        assert_eq!(e(r"\$PWD"), Ok(r"\/home".into()));
        assert_eq!(
            expand_words("a` b c", &|k| vars.get(k).cloned(), '`'),
            Ok(vec!["a b".to_string(), "c".to_string()])
        );
    }

    #[test]
    fn backtick_words_rewritten_for_backslash() {
        let vars = lex_env();
        let lookup = |k: &str| vars.get(k).cloned();
        let cases = [
            r"C:\path\to",
            "`$PWD",
            "a` b",
            r#""C:\x `"q`" `$PWD `` `x""#,
            r"\$PWD",
            "'a\\b `x'",
            "${XXX:-C:\\a` b}",
            r#""${XXX:-"in` \q"}""#,
            "${PWD#/`h}",
            "x`",
            "plain",
            "$PWD`",
            r#""unterminated"#,
            "${PWD",
            "``",
            r#""``""#,
            "a` b c",
            "x `\\ y",
        ];
        for w in cases {
            let converted = with_backslash_escape(w, '`');
            let want = expand(w, &lookup, '`');
            let got = expand(&converted, &lookup, '\\');
            match want {
                Ok(want) => assert_eq!(got, Ok(want), "{w:?} became {converted:?}"),
                Err(_) => assert!(got.is_err(), "{w:?} became {converted:?}, giving {got:?}"),
            }
            let want = expand_words(w, &lookup, '`');
            let got = expand_words(&converted, &lookup, '\\');
            assert_eq!(got.is_ok(), want.is_ok(), "{w:?}");
            if let Ok(want) = want {
                assert_eq!(got, Ok(want), "{w:?} became {converted:?}");
            }
        }
        assert_eq!(with_backslash_escape(r"a\b", '\\'), r"a\b");
    }

    #[test]
    fn pattern_modifiers() {
        let vars = env(&[("F", "dir/sub/file.tar.gz"), ("V", "aXbXc"), ("E", "")]);
        let cases: &[(&str, &str)] = &[
            ("${F#*/}", "sub/file.tar.gz"),
            ("${F##*/}", "file.tar.gz"),
            ("${F%.*}", "dir/sub/file.tar"),
            ("${F%%.*}", "dir/sub/file"),
            ("${F#nomatch}", "dir/sub/file.tar.gz"),
            ("${F%/*}", "dir/sub"),
            ("${F#d?r}", "/sub/file.tar.gz"),
            ("${F#[a-d]*/}", "sub/file.tar.gz"),
            ("${V/X/-}", "a-bXc"),
            ("${V//X/-}", "a-b-c"),
            ("${V//[!X]/.}", ".X.X."),
            ("${V/X*/}", "a"),
            (r"${V/\X/Y}", "aYbXc"),
            ("${E#x}", ""),
            ("${U#x}", ""),
            ("${U/x/y}", ""),
            ("${V/nope/y}", "aXbXc"),
        ];
        for (input, want) in cases {
            assert_eq!(word(input, &vars).as_deref(), Ok(*want), "input {input:?}");
        }
        assert!(word("${F:#x}", &vars).is_err());
        assert!(word("${V/X", &vars).is_err());
    }

    #[test]
    fn special_parameters_and_names() {
        let vars = env(&[("_a1", "x"), ("10", "ten")]);
        assert_eq!(word("$_a1-$10-$@-$", &vars), Ok("x-ten--$".into()));
        assert_eq!(word("${_a1}b", &vars), Ok("xb".into()));
        assert_eq!(word("$$", &vars), Ok("".into()));
    }

    #[test]
    fn heredoc_helpers() {
        assert_eq!(
            raw_words(r#"RUN cat <<EOF > "a b" 'x'"#),
            vec!["RUN", "cat", "<<EOF", ">", "\"a b\"", "'x'"]
        );
        assert_eq!(raw_words("RUN echo 'unclosed"), Vec::<String>::new());
        assert_eq!(heredoc_name("EOF"), Ok(Some(("EOF".into(), true))));
        assert_eq!(heredoc_name("\"EOF\""), Ok(Some(("EOF".into(), false))));
        assert_eq!(heredoc_name("'E'OF"), Ok(Some(("EOF".into(), false))));
        assert_eq!(heredoc_name("$X"), Ok(Some(("$X".into(), true))));
        assert_eq!(heredoc_name("a b"), Ok(None));
    }
}
