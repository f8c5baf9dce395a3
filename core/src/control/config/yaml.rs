//! YAML plumbing: multi-document splitting with line tracking, a best-effort "which line holds
//! this field" locator, and typed readers over `yaml_serde::Value` that report errors with the
//! field's path.
//!
//! Why not `serde` derive straight into the model: derived errors carry neither the field path nor
//! its line, and every unsupported Istio field would be either a hard error (`deny_unknown_fields`)
//! or silently dropped. Walking the value by hand gives each error and each ignored field a path,
//! and the locator turns that path into a source line.

use core::fmt;
use std::collections::BTreeSet;

use yaml_serde::{Mapping, Value};

use super::{ConfigError, ConfigErrorKind, ConfigWarning};

/// One step of a field path inside a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// A field path inside one document, e.g. `spec.http[0].route[1].weight`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Path(Vec<Seg>);

impl Path {
    pub(crate) fn key(&self, k: &str) -> Path {
        let mut p = self.0.clone();
        p.push(Seg::Key(k.to_string()));
        Path(p)
    }

    pub(crate) fn index(&self, i: usize) -> Path {
        let mut p = self.0.clone();
        p.push(Seg::Index(i));
        Path(p)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for seg in &self.0 {
            match seg {
                Seg::Key(k) => {
                    if !first {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Seg::Index(i) => write!(f, "[{i}]")?,
            }
            first = false;
        }
        Ok(())
    }
}

/// One YAML document cut out of a file, with where it starts.
#[derive(Debug)]
pub(crate) struct RawDoc {
    /// 1-based line of the document's first content line (not the `---` separator).
    pub(crate) start_line: usize,
    /// The document text, preceded by blank lines so that the YAML parser's line numbers are
    /// the file's line numbers (the cheapest way to make syntax errors line-accurate).
    pub(crate) padded: String,
    /// The document's own lines, for the field locator.
    pub(crate) lines: Vec<(usize, String)>,
    /// The locator's view of `lines`, built on first use and reused for every field: building
    /// it per lookup made loading quadratic in the number of endpoints.
    vlines: core::cell::OnceCell<Vec<VLine>>,
}

/// Splits a multi-document YAML file on `---` lines (the Kubernetes convention), skipping
/// documents that hold only comments and blank lines.
pub(crate) fn split_documents(text: &str) -> Vec<RawDoc> {
    let mut docs = Vec::new();
    let mut current: Vec<(usize, String)> = Vec::new();
    let mut flush = |current: &mut Vec<(usize, String)>| {
        let content_line = current.iter().find(|(_, l)| is_content(l)).map(|(n, _)| *n);
        if let (Some(start_line), Some((first_line, _))) = (content_line, current.first()) {
            let mut padded = "\n".repeat(first_line.saturating_sub(1));
            for (_, l) in current.iter() {
                padded.push_str(l);
                padded.push('\n');
            }
            docs.push(RawDoc {
                start_line,
                padded,
                lines: core::mem::take(current),
                vlines: core::cell::OnceCell::new(),
            });
        }
        current.clear();
    };
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let trimmed = line.trim_end();
        // A separator may carry a comment (`--- # next`); `...` ends a document.
        let is_sep =
            trimmed == "---" || trimmed.starts_with("--- ") || trimmed.starts_with("---\t");
        if is_sep || trimmed == "..." {
            flush(&mut current);
            continue;
        }
        current.push((n, line.to_string()));
    }
    flush(&mut current);
    docs
}

fn is_content(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && !t.starts_with('#')
}

/// A logical line for the locator: a `- ` sequence dash, or content, at an indentation.
#[derive(Debug)]
struct VLine {
    line: usize,
    indent: usize,
    dash: bool,
    text: String,
}

fn vlines(lines: &[(usize, String)]) -> Vec<VLine> {
    let mut out = Vec::new();
    for (n, l) in lines {
        if !is_content(l) {
            continue;
        }
        let mut indent = l.len() - l.trim_start().len();
        let mut rest = l.trim_start();
        // `- - a: b` and `- a: b`: each dash is its own item marker, the content sits 2 further.
        loop {
            if rest == "-" || rest.starts_with("- ") {
                out.push(VLine {
                    line: *n,
                    indent,
                    dash: true,
                    text: String::new(),
                });
                let after = rest.get(1..).unwrap_or("");
                let spaces = after.len() - after.trim_start().len();
                indent += 1 + spaces;
                rest = after.trim_start();
                if rest.is_empty() {
                    break;
                }
            } else {
                out.push(VLine {
                    line: *n,
                    indent,
                    dash: false,
                    text: rest.to_string(),
                });
                break;
            }
        }
    }
    out
}

fn key_matches(text: &str, key: &str) -> bool {
    let unquoted = |t: &str| -> Option<usize> {
        for q in ['"', '\''] {
            if let Some(r) = t.strip_prefix(q)
                && let Some(r) = r.strip_prefix(key)
                && r.starts_with(q)
            {
                return Some(key.len() + 2);
            }
        }
        t.strip_prefix(key).map(|_| key.len())
    };
    match unquoted(text) {
        Some(n) => {
            let r = text.get(n..).unwrap_or("").trim_start();
            r.starts_with(':')
        }
        None => false,
    }
}

/// Best-effort line of the field at `path` in block-style YAML. Walks down as far as it can and
/// returns the deepest line found, so a flow-style (`{a: 1}`) field still reports its parent.
#[cfg(test)]
pub(crate) fn locate(lines: &[(usize, String)], path: &Path) -> Option<usize> {
    locate_in(&vlines(lines), path)
}

/// [`locate`] over a prepared locator view.
fn locate_in(all: &[VLine], path: &Path) -> Option<usize> {
    let mut scope: &[VLine] = all;
    let mut found = None;
    for seg in &path.0 {
        let Some(child_indent) = scope.first().map(|v| v.indent) else {
            break;
        };
        let hit = match seg {
            Seg::Key(k) => scope
                .iter()
                .position(|v| v.indent == child_indent && !v.dash && key_matches(&v.text, k)),
            Seg::Index(i) => scope
                .iter()
                .enumerate()
                .filter(|(_, v)| v.indent == child_indent && v.dash)
                .nth(*i)
                .map(|(p, _)| p),
        };
        let Some(pos) = hit else { break };
        let Some(v) = scope.get(pos) else { break };
        found = Some(v.line);
        let rest = scope.get(pos + 1..).unwrap_or(&[]);
        // A key's block may be a sequence at the key's own indentation (`http:\n- name: a`).
        let is_key = matches!(seg, Seg::Key(_));
        let end = rest
            .iter()
            .position(|w| {
                w.indent < child_indent || (w.indent == child_indent && !(is_key && w.dash))
            })
            .unwrap_or(rest.len());
        scope = rest.get(..end).unwrap_or(&[]);
    }
    found
}

/// Parsing context for one document: where it came from, what it is (for messages), and the
/// sinks for errors and warnings.
pub(crate) struct Ctx<'a> {
    pub(crate) file: &'a str,
    pub(crate) doc: &'a RawDoc,
    /// `Kind name`, the prefix of every message about this document.
    pub(crate) what: String,
    pub(crate) errors: &'a mut Vec<ConfigError>,
    pub(crate) warnings: &'a mut Vec<ConfigWarning>,
}

impl Ctx<'_> {
    pub(crate) fn line(&self, path: &Path) -> usize {
        let view = self.doc.vlines.get_or_init(|| vlines(&self.doc.lines));
        locate_in(view, path).unwrap_or(self.doc.start_line)
    }

    pub(crate) fn error(&mut self, kind: ConfigErrorKind, path: &Path, msg: impl fmt::Display) {
        let line = self.line(path);
        let message = if self.what.is_empty() && path.0.is_empty() {
            format!("document: {msg}")
        } else if self.what.is_empty() {
            format!("{path}: {msg}")
        } else if path.0.is_empty() {
            format!("{}: {msg}", self.what)
        } else {
            format!("{}: {path}: {msg}", self.what)
        };
        self.errors.push(ConfigError {
            file: self.file.to_string(),
            line,
            kind,
            message,
        });
    }

    pub(crate) fn warn(&mut self, path: &Path, msg: impl fmt::Display) {
        let line = self.line(path);
        self.warnings.push(ConfigWarning {
            file: self.file.to_string(),
            line,
            message: format!("{}: {path}: {msg}", self.what),
        });
    }

    pub(crate) fn invalid(&mut self, path: &Path, msg: impl fmt::Display) {
        self.error(ConfigErrorKind::Invalid, path, msg);
    }
}

/// A mapping being read field by field; fields never asked for are reported as ignored (or as
/// errors, for the security kinds where ignoring a field would widen or narrow access).
pub(crate) struct Obj<'v> {
    /// `None` for a null value, which Kubernetes treats as an empty mapping.
    map: Option<&'v Mapping>,
    pub(crate) path: Path,
    used: BTreeSet<String>,
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

impl<'v> Obj<'v> {
    /// Reads `v` as a mapping (null counts as an empty mapping, as in Kubernetes).
    pub(crate) fn new(ctx: &mut Ctx<'_>, v: &'v Value, path: Path) -> Option<Obj<'v>> {
        match v {
            Value::Mapping(map) => Some(Obj {
                map: Some(map),
                path,
                used: BTreeSet::new(),
            }),
            Value::Null => Some(Obj {
                map: None,
                path,
                used: BTreeSet::new(),
            }),
            other => {
                ctx.invalid(
                    &path,
                    format!("expected a mapping, found {}", type_name(other)),
                );
                None
            }
        }
    }

    /// The value of `key`, if present and not null.
    pub(crate) fn get(&mut self, key: &str) -> Option<(&'v Value, Path)> {
        self.used.insert(key.to_string());
        match self.map.and_then(|m| m.get(key)) {
            None | Some(Value::Null) => None,
            Some(v) => Some((v, self.path.key(key))),
        }
    }

    pub(crate) fn str(&mut self, ctx: &mut Ctx<'_>, key: &str) -> Option<String> {
        let (v, p) = self.get(key)?;
        as_str(ctx, v, &p)
    }

    pub(crate) fn obj(&mut self, ctx: &mut Ctx<'_>, key: &str) -> Option<Obj<'v>> {
        let (v, p) = self.get(key)?;
        Obj::new(ctx, v, p)
    }

    pub(crate) fn seq(&mut self, ctx: &mut Ctx<'_>, key: &str) -> Vec<(&'v Value, Path)> {
        let Some((v, p)) = self.get(key) else {
            return Vec::new();
        };
        match v {
            Value::Sequence(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| (item, p.index(i)))
                .collect(),
            other => {
                ctx.invalid(&p, format!("expected a list, found {}", type_name(other)));
                Vec::new()
            }
        }
    }

    pub(crate) fn str_list(&mut self, ctx: &mut Ctx<'_>, key: &str) -> Vec<(String, Path)> {
        self.seq(ctx, key)
            .into_iter()
            .filter_map(|(v, p)| as_str(ctx, v, &p).map(|s| (s, p)))
            .collect()
    }

    pub(crate) fn str_map(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &str,
    ) -> std::collections::BTreeMap<String, String> {
        let mut out = std::collections::BTreeMap::new();
        let Some(mut o) = self.obj(ctx, key) else {
            return out;
        };
        for (k, v) in o.map.into_iter().flatten() {
            let Some(k) = k.as_str() else {
                ctx.invalid(&o.path, "keys must be strings");
                continue;
            };
            let p = o.path.key(k);
            o.used.insert(k.to_string());
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => {
                    ctx.invalid(&p, format!("expected a string, found {}", type_name(other)));
                    continue;
                }
            };
            out.insert(k.to_string(), s);
        }
        out
    }

    pub(crate) fn u32(&mut self, ctx: &mut Ctx<'_>, key: &str) -> Option<u32> {
        let (v, p) = self.get(key)?;
        as_u32(ctx, v, &p)
    }

    pub(crate) fn f64(&mut self, ctx: &mut Ctx<'_>, key: &str) -> Option<f64> {
        let (v, p) = self.get(key)?;
        match v {
            Value::Number(n) => n.as_f64().or_else(|| {
                ctx.invalid(&p, "not a valid number");
                None
            }),
            other => {
                ctx.invalid(&p, format!("expected a number, found {}", type_name(other)));
                None
            }
        }
    }

    pub(crate) fn duration(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &str,
    ) -> Option<core::time::Duration> {
        let (v, p) = self.get(key)?;
        let s = as_str(ctx, v, &p)?;
        match parse_duration(&s) {
            Ok(d) => Some(d),
            Err(e) => {
                ctx.invalid(&p, e);
                None
            }
        }
    }

    /// Entries of the mapping in document order (for `headers:` and the like).
    pub(crate) fn entries(&mut self) -> Vec<(String, &'v Value, Path)> {
        let mut out = Vec::new();
        for (k, v) in self.map.into_iter().flatten() {
            if let Some(k) = k.as_str() {
                self.used.insert(k.to_string());
                out.push((k.to_string(), v, self.path.key(k)));
            }
        }
        out
    }

    /// Reports fields that were never read as ignored (skiff says so rather than dropping them
    /// silently, the most requested debugging aid in proxyless meshes).
    pub(crate) fn finish(self, ctx: &mut Ctx<'_>) {
        for k in self.unused() {
            let p = self.path.key(&k);
            ctx.warn(&p, "not supported by skiff; ignored");
        }
    }

    /// Like [`Obj::finish`], but unknown fields are errors: used where ignoring a field would
    /// change who is allowed in (AuthorizationPolicy, PeerAuthentication).
    pub(crate) fn finish_strict(self, ctx: &mut Ctx<'_>) {
        for k in self.unused() {
            let p = self.path.key(&k);
            ctx.error(
                ConfigErrorKind::Unsupported,
                &p,
                "not supported by skiff, and ignoring it would change access decisions",
            );
        }
    }

    fn unused(&self) -> Vec<String> {
        self.map
            .into_iter()
            .flatten()
            .filter_map(|(k, _)| k.as_str())
            .filter(|k| !self.used.contains(*k))
            .map(str::to_string)
            .collect()
    }
}

pub(crate) fn as_str(ctx: &mut Ctx<'_>, v: &Value, p: &Path) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        other => {
            ctx.invalid(p, format!("expected a string, found {}", type_name(other)));
            None
        }
    }
}

pub(crate) fn as_u32(ctx: &mut Ctx<'_>, v: &Value, p: &Path) -> Option<u32> {
    match v {
        Value::Number(n) => match n.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) => Some(n),
            None => {
                ctx.invalid(
                    p,
                    format!("expected a whole number from 0 to {}, found {n}", u32::MAX),
                );
                None
            }
        },
        other => {
            ctx.invalid(p, format!("expected a number, found {}", type_name(other)));
            None
        }
    }
}

/// Parses a duration the way Istio users write them: Go-style (`1h`, `1m30s`, `1.5s`, `250ms`,
/// `10us`, `5ns`), which also covers the protobuf JSON form (`1.500s`).
pub(crate) fn parse_duration(s: &str) -> Result<core::time::Duration, String> {
    let bad = || format!("invalid duration {s:?} (examples: 10s, 1.5s, 250ms, 1m30s)");
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    if rest == "0" {
        return Ok(core::time::Duration::ZERO);
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (num, tail) = rest.split_at(num_len);
        if num.is_empty() {
            return Err(bad());
        }
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "h" => 3_600_000_000_000,
            "m" => 60_000_000_000,
            "s" => 1_000_000_000,
            "ms" => 1_000_000,
            "us" | "µs" => 1_000,
            "ns" => 1,
            _ => return Err(bad()),
        };
        let (whole, frac) = match num.split_once('.') {
            Some((w, f)) => (w, f),
            None => (num, ""),
        };
        if (whole.is_empty() && frac.is_empty()) || frac.contains('.') {
            return Err(bad());
        }
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad())?
        };
        let mut frac_nanos: u128 = 0;
        let mut scale = unit_nanos;
        for c in frac.chars() {
            scale /= 10;
            let d = u128::from(c.to_digit(10).ok_or_else(bad)?);
            frac_nanos += d * scale;
        }
        total = whole
            .checked_mul(unit_nanos)
            .and_then(|w| w.checked_add(frac_nanos))
            .and_then(|w| w.checked_add(total))
            .ok_or_else(bad)?;
        rest = tail;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| bad())?;
    let nanos = u32::try_from(total % 1_000_000_000).map_err(|_| bad())?;
    Ok(core::time::Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(segs: &[&str]) -> Path {
        let mut path = Path::default();
        for s in segs {
            path = match s.parse::<usize>() {
                Ok(i) => path.index(i),
                Err(_) => path.key(s),
            };
        }
        path
    }

    #[test]
    fn splits_documents_and_keeps_lines() {
        let text = "# header\n---\napiVersion: v1\nkind: A\n---\n\n# only comment\n---\nkind: B\n";
        let docs = split_documents(text);
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].start_line, 3);
        assert_eq!(docs[1].start_line, 9);
        let v: Value = yaml_serde::from_str(&docs[1].padded).unwrap();
        assert_eq!(v["kind"].as_str(), Some("B"));
    }

    #[test]
    fn locates_nested_fields() {
        let text = "\
kind: VirtualService
spec:
  hosts:
  - reviews
  http:
  - name: a
    route:
    - destination:
        host: reviews
      weight: 50
    - destination: {host: ratings}
      weight: 40
";
        let docs = split_documents(text);
        let lines = &docs[0].lines;
        assert_eq!(locate(lines, &p(&["spec", "http"])), Some(5));
        assert_eq!(locate(lines, &p(&["spec", "http", "0"])), Some(6));
        assert_eq!(locate(lines, &p(&["spec", "http", "0", "route"])), Some(7));
        assert_eq!(
            locate(lines, &p(&["spec", "http", "0", "route", "1", "weight"])),
            Some(12)
        );
        assert_eq!(
            locate(
                lines,
                &p(&["spec", "http", "0", "route", "0", "destination", "host"])
            ),
            Some(9)
        );
        // Flow style: the deepest block-style ancestor.
        assert_eq!(
            locate(
                lines,
                &p(&["spec", "http", "0", "route", "1", "destination", "host"])
            ),
            Some(11)
        );
        assert_eq!(locate(lines, &p(&["spec", "nope"])), Some(2));
    }

    #[test]
    fn durations() {
        use core::time::Duration;
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("1.2.3s").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
