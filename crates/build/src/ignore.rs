//! `.dockerignore`, with Docker's semantics (moby/patternmatcher and its `ignorefile` reader):
//! patterns are matched against the whole path relative to the context root (`node_modules`
//! excludes only the top-level one), `*` and `?` never cross a `/`, `**` spans any number of
//! directories, a pattern matching a directory excludes everything below it, and `!pattern`
//! re-includes. The last pattern that matches a path (or one of its parent directories) decides.

use globset::{GlobBuilder, GlobMatcher};

#[derive(Clone, Debug, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

#[derive(Clone, Debug)]
struct Pattern {
    /// `!pattern`: a match re-includes.
    exception: bool,
    matcher: GlobMatcher,
    /// One matcher per `/`-separated component, to tell whether the pattern could match
    /// something below a given directory.
    parts: Vec<Part>,
}

#[derive(Clone, Debug)]
enum Part {
    /// `**` (or a component containing it): any number of directories.
    AnyDirs,
    One(GlobMatcher),
}

impl Ignore {
    /// Reads a `.dockerignore`: `#` starts a comment only at the very start of a line; blank lines
    /// are skipped; the rest is trimmed, cleaned like Go's `filepath.Clean` (`a/./b/` is `a/b`) and
    /// a leading `/` dropped (patterns are relative to the context). A bad pattern (an unclosed
    /// `[`, a lone `!`) is an error naming it.
    pub fn parse(text: &str) -> Result<Ignore, String> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for line in text.lines() {
            if line.starts_with('#') {
                continue;
            }
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (exception, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            if pattern.is_empty() {
                return Err(format!("illegal exclusion pattern: {line:?}"));
            }
            let cleaned = clean(pattern);
            let cleaned = match cleaned.strip_prefix('/') {
                Some(rest) if !rest.is_empty() => rest.to_string(),
                _ => cleaned,
            };
            let matcher = glob(&cleaned).map_err(|e| format!("bad pattern {line:?}: {e}"))?;
            let parts = cleaned
                .split('/')
                .map(|c| {
                    if c.contains("**") {
                        Ok(Part::AnyDirs)
                    } else {
                        glob(c).map(Part::One)
                    }
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("bad pattern {line:?}: {e}"))?;
            patterns.push(Pattern {
                exception,
                matcher,
                parts,
            });
        }
        Ok(Ignore { patterns })
    }

    /// No patterns: nothing is excluded.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `rel_path` (relative to the context root, `/`-separated) is left out of the
    /// context: the last pattern matching it or one of its parent directories is not an
    /// exception (patternmatcher's `MatchesOrParentMatches`).
    pub fn is_excluded(&self, rel_path: &str) -> bool {
        let path = clean(rel_path.trim_start_matches('/'));
        if path == "." {
            return false;
        }
        let parents: Vec<&str> = path.match_indices('/').map(|(i, _)| &path[..i]).collect();
        let mut excluded = false;
        for p in &self.patterns {
            // Only a pattern that could change the answer needs matching.
            if p.exception != excluded {
                continue;
            }
            let matched = p.matcher.is_match(&path) || parents.iter().any(|d| p.matcher.is_match(d));
            if matched {
                excluded = !p.exception;
            }
        }
        excluded
    }

    /// For a walker at an excluded directory `dir_rel`: whether an exception pattern might
    /// re-include something below it, so that it must still walk the directory rather than skip
    /// it whole. Conservative: a `**` or any wildcard that fits counts as "might".
    pub fn may_contain_exceptions(&self, dir_rel: &str) -> bool {
        let dir = clean(dir_rel.trim_start_matches('/'));
        let comps: Vec<&str> = if dir == "." {
            Vec::new()
        } else {
            dir.split('/').collect()
        };
        self.patterns
            .iter()
            .any(|p| p.exception && could_match_below(&p.parts, &comps))
    }
}

/// Whether a pattern made of `parts` can match a path strictly below the directory `dir`. A
/// pattern that ends at `dir` or above it cannot: if it re-included `dir` and `dir` is still
/// excluded, a later pattern excluded it, and that one covers everything below as well.
fn could_match_below(parts: &[Part], dir: &[&str]) -> bool {
    match (parts.split_first(), dir.split_first()) {
        (None, _) => false,
        (Some((Part::AnyDirs, _)), _) => true,
        (Some(_), None) => true,
        (Some((Part::One(m), rest)), Some((comp, below))) => m.is_match(comp) && could_match_below(rest, below),
    }
}

/// A pattern as a glob with patternmatcher's rules: `*` and `?` stop at `/`, `\` escapes, and
/// braces are literal (in globset they would be alternatives).
fn glob(pattern: &str) -> Result<GlobMatcher, globset::Error> {
    let mut escaped = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                escaped.push(c);
                match chars.next() {
                    Some(n) => escaped.push(n),
                    // A trailing `\` is itself, as in patternmatcher.
                    None => escaped.push('\\'),
                }
            }
            '{' | '}' => {
                escaped.push('\\');
                escaped.push(c);
            }
            _ => escaped.push(c),
        }
    }
    Ok(GlobBuilder::new(&escaped)
        .literal_separator(true)
        .backslash_escape(true)
        .build()?
        .compile_matcher())
}

/// Go's `filepath.Clean` for `/`-separated paths: no empty or `.` components, `..` resolved
/// where it can be, `.` for an empty result.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for comp in path.split('/') {
        match comp {
            "" | "." => {}
            ".." => match out.last() {
                Some(&last) if last != ".." => {
                    out.pop();
                }
                // `..` above the root is the root.
                _ if rooted => {}
                _ => out.push(".."),
            },
            c => out.push(c),
        }
    }
    let joined = out.join("/");
    if rooted {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".to_string()
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(text: &str) -> Ignore {
        match Ignore::parse(text) {
            Ok(i) => i,
            Err(e) => panic!("{text:?}: {e}"),
        }
    }

    fn check(text: &str, excluded: &[&str], kept: &[&str]) {
        let i = ignore(text);
        for p in excluded {
            assert!(i.is_excluded(p), "{text:?} should exclude {p}");
        }
        for p in kept {
            assert!(!i.is_excluded(p), "{text:?} should keep {p}");
        }
    }

    #[test]
    fn markdown_except_readme() {
        check(
            "*.md\n!README.md\n",
            &["CHANGES.md", "a.md"],
            &["README.md", "docs/a.md", "main.go", "docs/README.md"],
        );
    }

    #[test]
    fn double_star() {
        check(
            "**/*.go",
            &["main.go", "cmd/x/main.go", "a/b/c/d.go"],
            &["main.rs", "go", "a/main.go.txt"],
        );
        check("a/**/b", &["a/b", "a/x/b", "a/x/y/b", "a/b/c"], &["b", "x/a/b", "a/bb"]);
        check("dir/**", &["dir/a", "dir/a/b"], &["dir", "dirx/a"]);
        check("**", &["a", "a/b"], &[]);
        check(
            "**/node_modules",
            &["node_modules/x", "a/b/node_modules", "a/node_modules/c"],
            &["node_modulesx"],
        );
    }

    #[test]
    fn directories_exclude_everything_below() {
        check(
            "node_modules",
            &["node_modules", "node_modules/a/b.js"],
            &["src/node_modules", "src/node_modules/x", "node_modules_x"],
        );
        check("dir/", &["dir", "dir/a", "dir/a/b"], &["dir2", "a/dir"]);
        check("/abs", &["abs", "abs/x"], &["x/abs"]);
        check("./a/../b/./c/", &["b/c", "b/c/d"], &["a/b/c"]);
    }

    #[test]
    fn wildcards() {
        check("*", &["a", "a/b", ".git"], &[]);
        check("*/temp*", &["x/temp", "x/temporary", "x/temp/y"], &["temp", "x/y/temp"]);
        check("a?c", &["abc", "a.c"], &["a/c", "ac", "abbc"]);
        check("file[a-c].txt", &["filea.txt", "filec.txt"], &["filed.txt", "file.txt"]);
        check("file[!a-c].txt", &["filed.txt"], &["filea.txt"]);
        check("file[^a].txt", &["fileb.txt"], &["filea.txt"]);
        check(r"\*.txt", &["*.txt"], &["a.txt"]);
        check("{a,b}", &["{a,b}"], &["a", "b"]);
    }

    #[test]
    fn comments_blanks_and_whitespace() {
        check("# comment\n\n   \n  a  \r\n#b\n", &["a"], &["b", "# comment"]);
        // `#` only starts a comment at the very start of a line.
        check(" #x", &["#x"], &[]);
        check("\u{feff}a", &["a"], &[]);
    }

    #[test]
    fn last_match_wins() {
        check("a\n!a/keep\n", &["a", "a/x"], &["a/keep", "a/keep/y"]);
        check("!a/keep\na\n", &["a", "a/x", "a/keep"], &[]);
        check(
            "*\n!src\nsrc/*.tmp\n",
            &["x", "src/a.tmp"],
            &["src", "src/a.rs", "src/sub/a.tmp"],
        );
        check("docs\n! docs/keep.md\n", &["docs/a"], &["docs/keep.md"]);
    }

    #[test]
    fn paths_are_cleaned() {
        let i = ignore("a/b");
        assert!(i.is_excluded("./a/b/"));
        assert!(i.is_excluded("/a//b/c"));
        assert!(!i.is_excluded("."));
        assert!(!i.is_excluded(""));
    }

    #[test]
    fn errors() {
        assert!(Ignore::parse("!").is_err());
        assert!(Ignore::parse("! ").is_err());
        assert!(Ignore::parse("[abc").unwrap_err().contains("[abc"));
        assert!(Ignore::parse("").is_ok_and(|i| i.is_empty()));
        assert!(!Ignore::parse("a").is_ok_and(|i| i.is_empty()));
    }

    #[test]
    fn may_contain_exceptions() {
        let i = ignore("*\n!src/main.rs\n!docs/**/*.md\n");
        assert!(i.may_contain_exceptions("src"));
        assert!(!i.may_contain_exceptions("target"));
        assert!(!i.may_contain_exceptions("src/main.rs"));
        assert!(i.may_contain_exceptions("docs"));
        assert!(i.may_contain_exceptions("docs/a/b"));
        assert!(i.may_contain_exceptions("."));

        let i = ignore("node_modules\n!**/keep\n");
        assert!(i.may_contain_exceptions("node_modules"));

        let i = ignore("build\n!*.md\n");
        assert!(!i.may_contain_exceptions("build"));

        let i = ignore("a\n!a*/x\n");
        assert!(i.may_contain_exceptions("a"));
        assert!(i.may_contain_exceptions("ab"));
        assert!(!i.may_contain_exceptions("b"));

        assert!(!ignore("a\n").may_contain_exceptions("a"));
    }

    #[test]
    fn clean_like_go() {
        for (input, want) in [
            ("", "."),
            ("a/", "a"),
            ("./a/./b", "a/b"),
            ("a/../../b", "../b"),
            ("/../a", "/a"),
            ("/", "/"),
            ("a//b", "a/b"),
            ("..", ".."),
        ] {
            assert_eq!(clean(input), want, "{input:?}");
        }
    }
}
