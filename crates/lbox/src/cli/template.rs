//! The small part of Go's text/template that Docker users pass to --format: `{{.Field}}`,
//! `{{.A.B}}`, `{{json .X}}`, `{{index .Map "key"}}` (keys with dots, list positions, nested and
//! parenthesised as in `{{(index .M "k" 0).Field}}`), `{{.}}`,
//! and `table` for a header row. Fields are looked up in the object's JSON form.

use anyhow::{bail, Result};
use serde_json::Value;

#[derive(Debug)]
enum Part {
    Text(String),
    Field { path: Vec<String>, json: bool },
}

#[derive(Debug)]
pub struct Template {
    parts: Vec<Part>,
    pub table: bool,
}

impl Template {
    pub fn parse(src: &str) -> Result<Template> {
        let (table, src) = match src.strip_prefix("table") {
            Some(rest) => (true, rest.trim_start()),
            None => (false, src),
        };
        let src = src.replace("\\t", "\t").replace("\\n", "\n");
        let mut parts = Vec::new();
        let mut rest = src.as_str();
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let Some(close) = rest[open..].find("}}") else {
                bail!("invalid --format {src:?}: unclosed {{{{");
            };
            let inner = rest[open + 2..open + close].trim();
            let (json, expr) = match inner.strip_prefix("json") {
                Some(e) => (true, e.trim()),
                None => (false, inner),
            };
            let path = expr_path(&src, expr)?;
            parts.push(Part::Field { path, json });
            rest = &rest[open + close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template { parts, table })
    }

    pub fn render(&self, v: &Value) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Field { path, json } => {
                    let mut cur = v;
                    for k in path {
                        cur = match (cur, k.parse::<usize>()) {
                            (Value::Array(a), Ok(i)) => a.get(i),
                            _ => cur.get(k),
                        }
                        .unwrap_or(&Value::Null);
                    }
                    if *json {
                        out.push_str(&cur.to_string());
                    } else {
                        out.push_str(&plain(cur));
                    }
                }
            }
        }
        out
    }

    /// The header row of a `table` template: each field's name in upper case.
    pub fn header(&self) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Field { path, .. } => out.push_str(&header_name(path.last().map(String::as_str).unwrap_or(""))),
            }
        }
        out
    }
}

/// The lookup path of an expression: `.A.B`, `index X "key" 2 …`, or `(EXPR).A.B` (as in
/// Docker's `{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}`).
fn expr_path(src: &str, expr: &str) -> Result<Vec<String>> {
    let expr = expr.trim();
    if let Some(args) = expr.strip_prefix("index ") {
        let (first, rest) = split_operand(src, args.trim())?;
        let mut path = expr_path(src, first)?;
        path.extend(index_keys(src, rest)?);
        return Ok(path);
    }
    if expr.starts_with('(') {
        let (group, rest) = split_operand(src, expr)?;
        let mut path = expr_path(src, group)?;
        if !rest.trim().is_empty() {
            path.extend(field_path(src, rest.trim())?);
        }
        return Ok(path);
    }
    field_path(src, expr)
}

fn field_path(src: &str, expr: &str) -> Result<Vec<String>> {
    if !expr.starts_with('.') || expr.contains(char::is_whitespace) {
        bail!("invalid --format {src:?}: {expr:?} is not a field (write {{{{.Name}}}})");
    }
    Ok(expr[1..]
        .split('.')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect())
}

/// The first operand of `s` (a parenthesised group, without its parentheses, or a field) and
/// what follows it.
fn split_operand<'a>(src: &str, s: &'a str) -> Result<(&'a str, &'a str)> {
    if let Some(inner) = s.strip_prefix('(') {
        let mut depth = 1;
        let mut in_str = false;
        for (i, c) in inner.char_indices() {
            match c {
                '"' => in_str = !in_str,
                '(' if !in_str => depth += 1,
                ')' if !in_str => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok((&inner[..i], &inner[i + 1..]));
                    }
                }
                _ => {}
            }
        }
        bail!("invalid --format {src:?}: unbalanced parentheses");
    }
    Ok(s.split_once(char::is_whitespace).unwrap_or((s, "")))
}

/// The keys of an `index` call after its first operand: quoted keys or list positions.
fn index_keys(src: &str, mut rest: &str) -> Result<Vec<String>> {
    let mut keys = Vec::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        if let Some(q) = rest.strip_prefix('"') {
            let Some(end) = q.find('"') else {
                bail!("invalid --format {src:?}: unclosed string in index");
            };
            keys.push(q[..end].to_string());
            rest = &q[end + 1..];
        } else {
            let (tok, r) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            if tok.parse::<usize>().is_err() {
                bail!("invalid --format {src:?}: index takes quoted keys or numbers, not {tok:?}");
            }
            keys.push(tok.to_string());
            rest = r;
        }
    }
    if keys.is_empty() {
        bail!("invalid --format {src:?}: index needs a key, as in {{{{index .Labels \"key\"}}}}");
    }
    Ok(keys)
}

fn header_name(field: &str) -> String {
    match field {
        "ID" => "CONTAINER ID".into(),
        "RunningFor" => "CREATED".into(),
        "CreatedAt" => "CREATED AT".into(),
        other => other.to_ascii_uppercase(),
    }
}

/// `inspect` output: each object through the --format template, or all of them as a JSON array.
pub fn print_inspect(format: Option<&str>, values: &[Value]) -> Result<()> {
    match format {
        Some(f) => {
            let t = Template::parse(f)?;
            for v in values {
                println!("{}", t.render(v));
            }
        }
        None => println!("{}", serde_json::to_string_pretty(values)?),
    }
    Ok(())
}

/// List output (ps, volume ls, stats): one JSON object per line with `json`, a template, or the
/// command's own table (`None` and "table").
pub fn print_rows(format: Option<&str>, rows: &[Value], table: impl FnOnce(&[Value])) -> Result<()> {
    match format {
        Some("json") => {
            for r in rows {
                println!("{r}");
            }
        }
        Some(f) if f != "table" => {
            let t = Template::parse(f)?;
            if t.table {
                println!("{}", t.header());
            }
            for r in rows {
                println!("{}", t.render(r));
            }
        }
        _ => table(rows),
    }
    Ok(())
}

/// Go's default formatting of a value: strings bare, maps as map[k:v], lists as [a b].
fn plain(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(plain).collect::<Vec<_>>().join(" ")),
        Value::Object(o) => format!(
            "map[{}]",
            o.iter()
                .map(|(k, v)| format!("{k}:{}", plain(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_paths_and_json() {
        let v = serde_json::json!({"Name": "web", "State": {"Status": "running", "Pid": 7}, "L": ["a", "b"]});
        let t = Template::parse("{{.Name}} {{.State.Status}} {{.State.Pid}} {{json .L}} {{.Nope}}").expect("parse");
        let i = Template::parse(r#"{{index .M "a.b"}} {{index .L 1}} {{json index .M "a.b"}}"#).expect("parse");
        let m = serde_json::json!({"M": {"a.b": "x"}, "L": ["a", "b"]});
        assert_eq!(i.render(&m), r#"x b "x""#);
        assert!(Template::parse(r#"{{index .M}}"#).is_err());
        assert!(Template::parse(r#"{{index .M "a}}"#).is_err());
        assert_eq!(t.render(&v), "web running 7 [\"a\",\"b\"] <no value>");
        let t = Template::parse("table {{.ID}}\\t{{.Names}}").expect("table");
        assert!(t.table);
        assert_eq!(t.header(), "CONTAINER ID\tNAMES");
        assert!(Template::parse("{{.Name").is_err());
        assert!(Template::parse("{{Name}}").is_err());
        let p = Template::parse(r#"{{(index (index .P "80/tcp") 0).HostPort}}"#).expect("nested");
        let v = serde_json::json!({"P": {"80/tcp": [{"HostPort": "8080"}]}});
        assert_eq!(p.render(&v), "8080");
        assert!(Template::parse(r#"{{(index .P "x"}}"#).is_err());
    }
}
