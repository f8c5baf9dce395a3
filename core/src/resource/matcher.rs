//! String and header matchers: `envoy.type.matcher.v3.StringMatcher` (gRFC A63) and
//! `envoy.config.route.v3.HeaderMatcher` (gRFC A28), validated from the wire types.
//!
//! Matching is allocation-free except for one case: a header sent with several values whose
//! comma-joined form is longer than [`INLINE_JOIN_BYTES`] is joined on the heap.
//!
//! Regexes use the `regex` crate, whose syntax is (nearly) RE2's. Two differences are known and
//! accepted: Perl classes (`\d`, `\w`, `\s`, `\b`) are Unicode-aware here but ASCII-only in RE2,
//! which only matters for non-ASCII input (gRPC metadata values are printable ASCII, gRPC paths
//! are ASCII in practice); and RE2-only syntax such as `\C` or `\Q…\E` fails to compile, so such a
//! config is rejected instead of being misread.
#![deny(missing_docs)]

use core::fmt;

use super::{Ignored, ValidationError};
use crate::pb::envoy::config::route::v3 as route_pb;
use crate::pb::envoy::r#type::matcher::v3 as matcher_pb;

/// The longest regex pattern accepted, in bytes. RE2's `max_program_size` has no equivalent in
/// the `regex` crate, so skiff bounds the pattern text and the compiled size instead.
pub const MAX_REGEX_LEN: usize = 4096;
/// Compiled-program size limit per regex (the `regex` crate's `size_limit`).
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Lazy-DFA cache limit per regex.
const REGEX_DFA_SIZE_LIMIT: usize = 2 << 20;
/// Maximum nesting depth of a pattern: deep nesting is the usual shape of hostile patterns.
const REGEX_NEST_LIMIT: u32 = 64;

/// Joined multi-value headers up to this many bytes are built on the stack.
pub const INLINE_JOIN_BYTES: usize = 256;

/// The `content-type` gRPC routing sees when the request carries none (gRFC A28: implementations
/// that add it only after routing assume this value).
pub const GRPC_CONTENT_TYPE: &str = "application/grpc";

/// Compiles `pattern` (unanchored) with skiff's size limits, or says why it cannot.
pub(crate) fn build_regex(pattern: &str) -> Result<regex::Regex, String> {
    if pattern.len() > MAX_REGEX_LEN {
        return Err(format!(
            "regex is {} bytes long; the limit is {MAX_REGEX_LEN}",
            pattern.len()
        ));
    }
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
        .nest_limit(REGEX_NEST_LIMIT)
        .build()
        .map_err(|e| format!("invalid regex {pattern:?}: {e}"))
}

/// A validated `RegexMatcher` that must match the *whole* input (Envoy and gRPC use RE2
/// `FullMatch` for `safe_regex` matchers).
#[derive(Clone)]
pub struct SafeRegex {
    pattern: String,
    full: regex::Regex,
}

impl SafeRegex {
    /// Compiles `pattern` for full matching.
    pub fn new(pattern: &str) -> Result<Self, String> {
        // Compile the bare pattern first: it proves the parentheses balance, so wrapping it in
        // `^(?:…)$` below cannot change its meaning (e.g. `a)|(b` would otherwise escape the group).
        build_regex(pattern)?;
        let full = build_regex(&format!("^(?:{pattern})$"))?;
        Ok(SafeRegex {
            pattern: pattern.to_string(),
            full,
        })
    }

    /// Validates a wire `RegexMatcher`. Errors name the `regex` field; the deprecated
    /// `google_re2.max_program_size` is recorded as ignored (gRFC A28).
    pub fn from_proto(
        m: &matcher_pb::RegexMatcher,
        at: &str,
        ignored: &mut Ignored,
    ) -> Result<Self, ValidationError> {
        if m.engine_type.is_some() {
            ignored.note_in(at, "google_re2");
        }
        SafeRegex::new(&m.regex).map_err(|e| ValidationError::new("regex", e))
    }

    /// Whether the whole of `s` matches.
    pub fn is_full_match(&self, s: &str) -> bool {
        self.full.is_match(s)
    }

    /// The pattern as configured.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }
}

impl PartialEq for SafeRegex {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
    }
}

impl fmt::Debug for SafeRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SafeRegex").field(&self.pattern).finish()
    }
}

/// ASCII case-insensitive `starts_with`. `ignore_case` is ASCII-only, as in Envoy
/// (`absl::EqualsIgnoreCase`); gRPC header values are ASCII anyway.
pub(crate) fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// ASCII case-insensitive `ends_with`.
pub(crate) fn ends_with_ci(s: &str, suffix: &str) -> bool {
    s.len()
        .checked_sub(suffix.len())
        .and_then(|start| s.as_bytes().get(start..))
        .is_some_and(|tail| tail.eq_ignore_ascii_case(suffix.as_bytes()))
}

/// ASCII case-insensitive `contains`.
fn contains_ci(s: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    s.as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// A validated `envoy.type.matcher.v3.StringMatcher`.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum StringMatcher {
    /// `exact`: the whole value equals `value`.
    Exact {
        /// The expected value.
        value: String,
        /// `ignore_case` (ASCII case folding, gRFC A63).
        ignore_case: bool,
    },
    /// `prefix`: the value starts with `value` (non-empty).
    Prefix {
        /// The prefix.
        value: String,
        /// `ignore_case`.
        ignore_case: bool,
    },
    /// `suffix`: the value ends with `value` (non-empty).
    Suffix {
        /// The suffix.
        value: String,
        /// `ignore_case`.
        ignore_case: bool,
    },
    /// `contains`: the value contains `value` (non-empty).
    Contains {
        /// The substring.
        value: String,
        /// `ignore_case`.
        ignore_case: bool,
    },
    /// `safe_regex`: the whole value matches. `ignore_case` does not apply (gRFC A63).
    Regex(SafeRegex),
}

impl StringMatcher {
    /// Validates a wire `StringMatcher`. Errors are relative to the message (`prefix`,
    /// `safe_regex.regex`, ...); `at` is its path, used for ignored-field notes.
    pub fn from_proto(
        m: &matcher_pb::StringMatcher,
        at: &str,
        ignored: &mut Ignored,
    ) -> Result<Self, ValidationError> {
        use matcher_pb::string_matcher::MatchPattern;
        let ignore_case = m.ignore_case;
        // Envoy's PGV rules require prefix/suffix/contains to be non-empty; an empty one is
        // almost certainly a control-plane bug, so it is rejected rather than matching everything.
        let non_empty = |field: &str, v: &str| {
            if v.is_empty() {
                Err(ValidationError::new(field, "must not be empty"))
            } else {
                Ok(v.to_string())
            }
        };
        match &m.match_pattern {
            Some(MatchPattern::Exact(v)) => Ok(StringMatcher::Exact {
                value: v.clone(),
                ignore_case,
            }),
            Some(MatchPattern::Prefix(v)) => Ok(StringMatcher::Prefix {
                value: non_empty("prefix", v)?,
                ignore_case,
            }),
            Some(MatchPattern::Suffix(v)) => Ok(StringMatcher::Suffix {
                value: non_empty("suffix", v)?,
                ignore_case,
            }),
            Some(MatchPattern::Contains(v)) => Ok(StringMatcher::Contains {
                value: non_empty("contains", v)?,
                ignore_case,
            }),
            Some(MatchPattern::SafeRegex(r)) => {
                if ignore_case {
                    // gRFC A63: ignore_case is ignored for regex matches.
                    ignored.note_in(at, "ignore_case");
                }
                let at_regex = join_path(at, "safe_regex");
                SafeRegex::from_proto(r, &at_regex, ignored)
                    .map(StringMatcher::Regex)
                    .map_err(|e| e.within("safe_regex"))
            }
            Some(MatchPattern::Custom(c)) => Err(ValidationError::new(
                "custom",
                format!("custom string matcher {:?} is not supported", c.name),
            )),
            None => Err(ValidationError::new(
                "match_pattern",
                "one of exact, prefix, suffix, contains or safe_regex is required",
            )),
        }
    }

    /// Whether `value` matches.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            StringMatcher::Exact {
                value: v,
                ignore_case,
            } => {
                if *ignore_case {
                    value.eq_ignore_ascii_case(v)
                } else {
                    value == v
                }
            }
            StringMatcher::Prefix {
                value: v,
                ignore_case,
            } => {
                if *ignore_case {
                    starts_with_ci(value, v)
                } else {
                    value.starts_with(v.as_str())
                }
            }
            StringMatcher::Suffix {
                value: v,
                ignore_case,
            } => {
                if *ignore_case {
                    ends_with_ci(value, v)
                } else {
                    value.ends_with(v.as_str())
                }
            }
            StringMatcher::Contains {
                value: v,
                ignore_case,
            } => {
                if *ignore_case {
                    contains_ci(value, v)
                } else {
                    value.contains(v.as_str())
                }
            }
            StringMatcher::Regex(r) => r.is_full_match(value),
        }
    }
}

/// How a [`HeaderMatcher`] judges the header value.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum HeaderRule {
    /// `string_match`, or one of the deprecated `exact_match`, `safe_regex_match`,
    /// `prefix_match`, `suffix_match`, `contains_match` (gRFC A63 keeps them).
    Value(StringMatcher),
    /// `range_match`: the value parses as a decimal `i64` in `[start, end)`.
    Range {
        /// Inclusive start.
        start: i64,
        /// Exclusive end.
        end: i64,
    },
    /// `present_match`: `true` matches when the header is present, `false` when it is absent.
    Present(bool),
}

/// A validated `envoy.config.route.v3.HeaderMatcher`.
#[derive(Clone, Debug, PartialEq)]
pub struct HeaderMatcher {
    name: String,
    rule: HeaderRule,
    invert: bool,
}

impl HeaderMatcher {
    /// Builds a matcher directly (tests, the embedded control plane). `name` is lowercased.
    pub fn new(name: &str, rule: HeaderRule, invert: bool) -> Self {
        HeaderMatcher {
            name: name.to_ascii_lowercase(),
            rule,
            invert,
        }
    }

    /// Validates a wire `HeaderMatcher`. Errors are relative to the message; `at` is its path,
    /// used for ignored-field notes.
    pub fn from_proto(
        h: &route_pb::HeaderMatcher,
        at: &str,
        ignored: &mut Ignored,
    ) -> Result<Self, ValidationError> {
        #[allow(deprecated)]
        use route_pb::header_matcher::HeaderMatchSpecifier as S;
        if h.name.is_empty() {
            return Err(ValidationError::new("name", "must not be empty"));
        }
        if h.treat_missing_header_as_empty {
            // gRPC does not implement it (gRFC A28 lists the supported fields); an absent
            // header therefore never matches a value rule.
            ignored.note_in(at, "treat_missing_header_as_empty");
        }
        let legacy = |field: &str, value: &str, make: fn(String) -> StringMatcher| {
            if value.is_empty() {
                Err(ValidationError::new(field, "must not be empty"))
            } else {
                Ok(HeaderRule::Value(make(value.to_string())))
            }
        };
        #[allow(deprecated)]
        let rule = match &h.header_match_specifier {
            Some(S::ExactMatch(v)) => HeaderRule::Value(StringMatcher::Exact {
                value: v.clone(),
                ignore_case: false,
            }),
            Some(S::SafeRegexMatch(r)) => {
                let at_regex = join_path(at, "safe_regex_match");
                HeaderRule::Value(StringMatcher::Regex(
                    SafeRegex::from_proto(r, &at_regex, ignored)
                        .map_err(|e| e.within("safe_regex_match"))?,
                ))
            }
            Some(S::RangeMatch(r)) => {
                if r.end < r.start {
                    return Err(ValidationError::new(
                        "range_match",
                        format!("end {} is before start {}", r.end, r.start),
                    ));
                }
                HeaderRule::Range {
                    start: r.start,
                    end: r.end,
                }
            }
            Some(S::PresentMatch(p)) => HeaderRule::Present(*p),
            Some(S::PrefixMatch(v)) => legacy("prefix_match", v, |value| StringMatcher::Prefix {
                value,
                ignore_case: false,
            })?,
            Some(S::SuffixMatch(v)) => legacy("suffix_match", v, |value| StringMatcher::Suffix {
                value,
                ignore_case: false,
            })?,
            Some(S::ContainsMatch(v)) => {
                legacy("contains_match", v, |value| StringMatcher::Contains {
                    value,
                    ignore_case: false,
                })?
            }
            Some(S::StringMatch(m)) => {
                let at_sm = join_path(at, "string_match");
                HeaderRule::Value(
                    StringMatcher::from_proto(m, &at_sm, ignored)
                        .map_err(|e| e.within("string_match"))?,
                )
            }
            None => {
                return Err(ValidationError::new(
                    "header_match_specifier",
                    "one of exact_match, safe_regex_match, range_match, present_match, \
                     prefix_match, suffix_match, contains_match or string_match is required",
                ));
            }
        };
        Ok(HeaderMatcher {
            name: h.name.to_ascii_lowercase(),
            rule,
            invert: h.invert_match,
        })
    }

    /// The (lowercase) header name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The rule applied to the value.
    pub fn rule(&self) -> &HeaderRule {
        &self.rule
    }

    /// `invert_match`.
    pub fn invert(&self) -> bool {
        self.invert
    }

    /// Judges one (already joined) header value; `None` means the header is absent.
    ///
    /// As in gRPC (grpc-go, C-core): an absent header never matches a value or range rule, even
    /// inverted; `present_match` compares presence and is then inverted if asked.
    pub fn matches_value(&self, value: Option<&str>) -> bool {
        match (&self.rule, value) {
            (HeaderRule::Present(want), v) => (v.is_some() == *want) != self.invert,
            (_, None) => false,
            (HeaderRule::Value(m), Some(v)) => m.matches(v) != self.invert,
            (HeaderRule::Range { start, end }, Some(v)) => {
                let in_range = v.parse::<i64>().is_ok_and(|n| *start <= n && n < *end);
                in_range != self.invert
            }
        }
    }

    /// Judges a request's headers as gRPC routing sees them (see [`with_rpc_header`]).
    pub fn matches(&self, headers: &dyn HeaderSource) -> bool {
        with_rpc_header(headers, &self.name, |v| self.matches_value(v))
    }
}

/// Read access to a request's headers (gRPC metadata), implemented by adapters over their own
/// header map so the router never copies headers. Over `http::HeaderMap`, for example:
///
/// ```text
/// struct Headers<'a>(&'a http::HeaderMap);
/// impl HeaderSource for Headers<'_> {
///     fn header_value(&self, name: &str, index: usize) -> Option<&str> {
///         self.0.get_all(name).iter().filter_map(|v| v.to_str().ok()).nth(index)
///     }
///     fn for_each_header(&self, f: &mut dyn FnMut(&str, &str)) {
///         for (k, v) in self.0 {
///             if let Ok(v) = v.to_str() {
///                 f(k.as_str(), v);
///             }
///         }
///     }
/// }
/// ```
///
/// The trait is object-safe so [`RequestHead`](crate::router::RequestHead) can hold a
/// `&dyn HeaderSource` and stay a plain, non-generic value.
pub trait HeaderSource {
    /// The `index`-th value (0-based, in order of appearance) of the header `name`, which is
    /// given in lowercase; `None` past the last value or when the header is absent. Values that
    /// are not valid UTF-8 should be skipped (gRPC ASCII metadata is always printable ASCII).
    fn header_value(&self, name: &str, index: usize) -> Option<&str>;

    /// The first value of the header `name` (lowercase), and whether it has more values: what
    /// routing asks for every header it matches or hashes, before joining several values.
    ///
    /// The default asks [`Self::header_value`] for values 0 and 1; a source that can answer in
    /// one lookup (one pass over a list, one probe of a map) should override it, with the same
    /// result.
    fn first_header_value(&self, name: &str) -> Option<(&str, bool)> {
        let first = self.header_value(name, 0)?;
        Some((first, self.header_value(name, 1).is_some()))
    }

    /// Calls `f` with every `(name, value)` pair, names in lowercase. The data plane uses it to
    /// keep a copy of an RPC's metadata when the RPC must wait for configuration before it can
    /// be routed (the only time the core copies headers).
    fn for_each_header(&self, f: &mut dyn FnMut(&str, &str));
}

/// A [`HeaderSource`] over a slice of `(name, value)` pairs; names compare ASCII
/// case-insensitively. Meant for tests, benchmarks and simple drivers.
#[derive(Clone, Copy, Debug, Default)]
pub struct SliceHeaders<'a> {
    pairs: &'a [(&'a str, &'a str)],
}

impl<'a> SliceHeaders<'a> {
    /// Wraps `pairs`.
    pub const fn new(pairs: &'a [(&'a str, &'a str)]) -> Self {
        SliceHeaders { pairs }
    }
}

/// ASCII case-insensitive name equality, with a fast path for the common case of names that are
/// already equal byte for byte (HTTP/2 sends lowercase names).
#[inline]
fn same_name(a: &str, b: &str) -> bool {
    a.len() == b.len() && (a.as_bytes() == b.as_bytes() || a.eq_ignore_ascii_case(b))
}

impl HeaderSource for SliceHeaders<'_> {
    fn header_value(&self, name: &str, index: usize) -> Option<&str> {
        self.pairs
            .iter()
            .filter(|(n, _)| same_name(n, name))
            .nth(index)
            .map(|(_, v)| *v)
    }

    fn first_header_value(&self, name: &str) -> Option<(&str, bool)> {
        let mut values = self.pairs.iter().filter(|(n, _)| same_name(n, name));
        let (_, first) = values.next()?;
        Some((first, values.next().is_some()))
    }

    fn for_each_header(&self, f: &mut dyn FnMut(&str, &str)) {
        for (n, v) in self.pairs {
            f(n, v);
        }
    }
}

/// Whether routing treats header `name` (lowercase) as absent whatever the request carries.
///
/// gRFC A28: only custom metadata takes part in matching; `-bin` headers are never matched (as
/// if absent), and transport headers are not visible: HTTP/2 pseudo-headers (`:path`,
/// `:authority`, ...) and `te` (the one hop-by-hop header HTTP/2 allows; gRFC A41 treats it as
/// absent for the same reason).
pub fn is_hidden_from_routing(name: &str) -> bool {
    name.ends_with("-bin") || name.starts_with(':') || name == "te"
}

/// Calls `f` with the value of header `name` (lowercase) as gRPC routing sees it, or `None` when
/// it counts as absent: hidden headers (see [`is_hidden_from_routing`]) are absent; several
/// values are joined with `,` and no spaces (gRFC A28/A41); a missing `content-type` reads as
/// `application/grpc` (gRFC A28).
pub fn with_rpc_header<R>(
    headers: &dyn HeaderSource,
    name: &str,
    f: impl FnOnce(Option<&str>) -> R,
) -> R {
    if is_hidden_from_routing(name) {
        return f(None);
    }
    match headers.first_header_value(name) {
        None if name == "content-type" => f(Some(GRPC_CONTENT_TYPE)),
        None => f(None),
        Some((first, false)) => f(Some(first)),
        Some((_, true)) => with_joined(headers, name, f),
    }
}

/// Joins every value of `name` with `,` into a stack buffer (heap only past
/// [`INLINE_JOIN_BYTES`]) and calls `f` with it.
fn with_joined<R>(headers: &dyn HeaderSource, name: &str, f: impl FnOnce(Option<&str>) -> R) -> R {
    let mut inline = [0u8; INLINE_JOIN_BYTES];
    let mut len = 0usize;
    let mut spill: Option<String> = None;
    let mut push = |piece: &str, inline: &mut [u8; INLINE_JOIN_BYTES], len: &mut usize| {
        if let Some(s) = spill.as_mut() {
            s.push_str(piece);
            return;
        }
        let end = len.saturating_add(piece.len());
        if let Some(dst) = inline.get_mut(*len..end) {
            dst.copy_from_slice(piece.as_bytes());
            *len = end;
        } else {
            let mut s = String::with_capacity(end.saturating_mul(2));
            // The buffer only ever holds whole `&str` pieces and ASCII commas: valid UTF-8.
            s.push_str(core::str::from_utf8(inline.get(..*len).unwrap_or(&[])).unwrap_or(""));
            s.push_str(piece);
            spill = Some(s);
        }
    };
    let mut index = 0usize;
    while let Some(v) = headers.header_value(name, index) {
        if index > 0 {
            push(",", &mut inline, &mut len);
        }
        push(v, &mut inline, &mut len);
        index += 1;
    }
    // `push` borrows `spill` mutably; its last use above ends that borrow.
    match spill {
        Some(s) => f(Some(&s)),
        None => match core::str::from_utf8(inline.get(..len).unwrap_or(&[])) {
            Ok(s) => f(Some(s)),
            Err(_) => f(None),
        },
    }
}

/// `prefix.field`, or `field` when there is no prefix.
pub(crate) fn join_path(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_string()
    } else {
        format!("{prefix}.{field}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use matcher_pb::string_matcher::MatchPattern;
    use proptest::prelude::*;
    use route_pb::header_matcher::HeaderMatchSpecifier as S;

    fn sm(p: MatchPattern, ignore_case: bool) -> Result<StringMatcher, ValidationError> {
        let m = matcher_pb::StringMatcher {
            ignore_case,
            match_pattern: Some(p),
        };
        StringMatcher::from_proto(&m, "m", &mut Ignored::default())
    }

    fn regex_pb(r: &str) -> matcher_pb::RegexMatcher {
        matcher_pb::RegexMatcher {
            regex: r.to_string(),
            engine_type: None,
        }
    }

    fn hm(name: &str, s: S, invert: bool) -> HeaderMatcher {
        let h = route_pb::HeaderMatcher {
            name: name.to_string(),
            invert_match: invert,
            treat_missing_header_as_empty: false,
            header_match_specifier: Some(s),
        };
        HeaderMatcher::from_proto(&h, "h", &mut Ignored::default()).unwrap()
    }

    fn exact_sm(v: &str) -> S {
        S::StringMatch(matcher_pb::StringMatcher {
            ignore_case: false,
            match_pattern: Some(MatchPattern::Exact(v.into())),
        })
    }

    #[test]
    fn string_matcher_kinds() {
        let e = sm(MatchPattern::Exact("Foo".into()), false).unwrap();
        assert!(e.matches("Foo") && !e.matches("foo") && !e.matches("Foox"));
        let e = sm(MatchPattern::Exact("Foo".into()), true).unwrap();
        assert!(e.matches("fOO") && !e.matches("fOOx"));
        let p = sm(MatchPattern::Prefix("ab".into()), false).unwrap();
        assert!(p.matches("abc") && !p.matches("Abc") && !p.matches("a"));
        let p = sm(MatchPattern::Prefix("ab".into()), true).unwrap();
        assert!(p.matches("ABc"));
        let s = sm(MatchPattern::Suffix("yz".into()), false).unwrap();
        assert!(s.matches("xyz") && !s.matches("xYz") && !s.matches("z"));
        let s = sm(MatchPattern::Suffix("yz".into()), true).unwrap();
        assert!(s.matches("XYZ"));
        let c = sm(MatchPattern::Contains("mid".into()), false).unwrap();
        assert!(c.matches("amidb") && !c.matches("aMIDb") && !c.matches("mi"));
        let c = sm(MatchPattern::Contains("mid".into()), true).unwrap();
        assert!(c.matches("aMIDb"));
        let r = sm(MatchPattern::SafeRegex(regex_pb("a[0-9]+")), false).unwrap();
        assert!(r.matches("a12") && !r.matches("a12b") && !r.matches("xa12"));
    }

    #[test]
    fn ignore_case_does_not_apply_to_regex() {
        let mut ignored = Ignored::default();
        let m = matcher_pb::StringMatcher {
            ignore_case: true,
            match_pattern: Some(MatchPattern::SafeRegex(regex_pb("abc"))),
        };
        let r = StringMatcher::from_proto(&m, "x.string_match", &mut ignored).unwrap();
        assert!(r.matches("abc") && !r.matches("ABC"));
        assert_eq!(ignored.fields(), ["x.string_match.ignore_case"]);
    }

    #[test]
    fn string_matcher_rejects_bad_input() {
        let e = sm(MatchPattern::Prefix(String::new()), false).unwrap_err();
        assert_eq!(e.field, "prefix");
        let e = sm(MatchPattern::SafeRegex(regex_pb("a(")), false).unwrap_err();
        assert_eq!(e.field, "safe_regex.regex");
        assert!(e.reason.contains("invalid regex"), "{e}");
        let e = StringMatcher::from_proto(
            &matcher_pb::StringMatcher::default(),
            "",
            &mut Ignored::default(),
        )
        .unwrap_err();
        assert_eq!(e.field, "match_pattern");
        // Exact "" is allowed: it matches only the empty value.
        assert!(
            sm(MatchPattern::Exact(String::new()), false)
                .unwrap()
                .matches("")
        );
    }

    #[test]
    fn regex_cannot_escape_its_anchors() {
        // `a)|(b` is not a valid pattern on its own: wrapping must not make it one.
        assert!(SafeRegex::new("a)|(b").is_err());
        // Alternation is fully anchored: `a|ab` must match "ab" as a whole.
        let r = SafeRegex::new("a|ab").unwrap();
        assert!(r.is_full_match("ab") && r.is_full_match("a") && !r.is_full_match("abc"));
        // Regex limits: too long, and nested too deep.
        assert!(SafeRegex::new(&"a".repeat(MAX_REGEX_LEN + 1)).is_err());
        assert!(SafeRegex::new(&format!("{}a{}", "(".repeat(200), ")".repeat(200))).is_err());
        // Backreferences and look-around are not RE2: rejected.
        assert!(SafeRegex::new(r"(a)\1").is_err());
        assert!(SafeRegex::new(r"a(?=b)").is_err());
        assert_eq!(SafeRegex::new("x+").unwrap().pattern(), "x+");
    }

    #[test]
    fn header_matcher_kinds() {
        let h = SliceHeaders::new(&[
            ("x-num", "42"),
            ("x-str", "hello"),
            ("x-key-bin", "AAEC"),
            ("content-type", "application/grpc+proto"),
        ]);
        assert!(hm("x-str", exact_sm("hello"), false).matches(&h));
        assert!(!hm("x-str", exact_sm("hello"), true).matches(&h));
        assert!(
            hm("X-Str", exact_sm("hello"), false).matches(&h),
            "names are lowercased"
        );
        assert!(
            hm(
                "x-num",
                S::RangeMatch(crate::pb::envoy::r#type::v3::Int64Range { start: 40, end: 43 }),
                false
            )
            .matches(&h)
        );
        assert!(
            !hm(
                "x-num",
                S::RangeMatch(crate::pb::envoy::r#type::v3::Int64Range { start: 43, end: 50 }),
                false
            )
            .matches(&h)
        );
        assert!(
            !hm(
                "x-str",
                S::RangeMatch(crate::pb::envoy::r#type::v3::Int64Range { start: 0, end: 50 }),
                false
            )
            .matches(&h)
        );
        assert!(hm("x-str", S::PresentMatch(true), false).matches(&h));
        assert!(!hm("x-nope", S::PresentMatch(true), false).matches(&h));
        assert!(hm("x-nope", S::PresentMatch(false), false).matches(&h));
        assert!(hm("x-nope", S::PresentMatch(true), true).matches(&h));
        #[allow(deprecated)]
        {
            assert!(hm("x-str", S::ExactMatch("hello".into()), false).matches(&h));
            assert!(hm("x-str", S::PrefixMatch("he".into()), false).matches(&h));
            assert!(hm("x-str", S::SuffixMatch("lo".into()), false).matches(&h));
            assert!(hm("x-str", S::ContainsMatch("ell".into()), false).matches(&h));
            assert!(hm("x-str", S::SafeRegexMatch(regex_pb("h.*o")), false).matches(&h));
            assert!(!hm("x-str", S::SafeRegexMatch(regex_pb("h.*o")), true).matches(&h));
        }
        // An absent header never matches a value rule, inverted or not.
        assert!(!hm("x-nope", exact_sm("a"), false).matches(&h));
        assert!(!hm("x-nope", exact_sm("a"), true).matches(&h));
        // The client's content-type is used when present.
        assert!(hm("content-type", exact_sm("application/grpc+proto"), false).matches(&h));
    }

    #[test]
    fn bin_pseudo_and_te_headers_are_absent() {
        let h = SliceHeaders::new(&[
            ("x-key-bin", "AAEC"),
            (":authority", "svc"),
            ("te", "trailers"),
        ]);
        for name in ["x-key-bin", ":authority", "te"] {
            assert!(
                !hm(name, S::PresentMatch(true), false).matches(&h),
                "{name}"
            );
            assert!(
                hm(name, S::PresentMatch(false), false).matches(&h),
                "{name}"
            );
        }
        assert!(!hm("x-key-bin", exact_sm("AAEC"), false).matches(&h));
    }

    #[test]
    fn content_type_defaults_to_application_grpc() {
        let h = SliceHeaders::new(&[]);
        assert!(hm("content-type", exact_sm("application/grpc"), false).matches(&h));
    }

    #[test]
    fn multiple_values_are_joined_with_commas() {
        let h = SliceHeaders::new(&[("x-a", "1"), ("x-b", "z"), ("x-a", "2"), ("X-A", "3")]);
        assert!(hm("x-a", exact_sm("1,2,3"), false).matches(&h));
        assert!(!hm("x-a", exact_sm("1"), false).matches(&h));
        // A multi-valued header never parses as an integer.
        assert!(
            !hm(
                "x-a",
                S::RangeMatch(crate::pb::envoy::r#type::v3::Int64Range { start: 0, end: 10 }),
                false
            )
            .matches(&h)
        );
        // Long joined values spill to the heap and still match.
        let long = "v".repeat(200);
        let pairs = [("x-l", long.as_str()), ("x-l", long.as_str())];
        let h = SliceHeaders::new(&pairs);
        assert!(hm("x-l", exact_sm(&format!("{long},{long}")), false).matches(&h));
    }

    #[test]
    fn header_matcher_validation_errors() {
        let mut ig = Ignored::default();
        let bad = route_pb::HeaderMatcher {
            name: String::new(),
            header_match_specifier: Some(S::PresentMatch(true)),
            ..Default::default()
        };
        assert_eq!(
            HeaderMatcher::from_proto(&bad, "", &mut ig)
                .unwrap_err()
                .field,
            "name"
        );
        let bad = route_pb::HeaderMatcher {
            name: "x".into(),
            header_match_specifier: Some(S::RangeMatch(crate::pb::envoy::r#type::v3::Int64Range {
                start: 5,
                end: 1,
            })),
            ..Default::default()
        };
        assert_eq!(
            HeaderMatcher::from_proto(&bad, "", &mut ig)
                .unwrap_err()
                .field,
            "range_match"
        );
        let bad = route_pb::HeaderMatcher {
            name: "x".into(),
            header_match_specifier: Some(S::StringMatch(matcher_pb::StringMatcher {
                ignore_case: false,
                match_pattern: Some(MatchPattern::SafeRegex(regex_pb("("))),
            })),
            ..Default::default()
        };
        assert_eq!(
            HeaderMatcher::from_proto(&bad, "", &mut ig)
                .unwrap_err()
                .field,
            "string_match.safe_regex.regex"
        );
        let bad = route_pb::HeaderMatcher {
            name: "x".into(),
            ..Default::default()
        };
        assert_eq!(
            HeaderMatcher::from_proto(&bad, "", &mut ig)
                .unwrap_err()
                .field,
            "header_match_specifier"
        );
        let odd = route_pb::HeaderMatcher {
            name: "x".into(),
            treat_missing_header_as_empty: true,
            header_match_specifier: Some(S::PresentMatch(true)),
            ..Default::default()
        };
        HeaderMatcher::from_proto(&odd, "hdr", &mut ig).unwrap();
        assert_eq!(ig.fields(), ["hdr.treat_missing_header_as_empty"]);
    }

    fn ascii() -> impl Strategy<Value = String> {
        "[ -~]{0,24}"
    }

    proptest! {
        #[test]
        fn slice_headers_first_value_agrees_with_header_value(
            pairs in proptest::collection::vec(("[aAbB-]{1,3}", "[a-z]{0,3}"), 0..8),
            name in "[ab-]{1,3}",
        ) {
            let refs: Vec<(&str, &str)> =
                pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            let h = SliceHeaders::new(&refs);
            let expected = h
                .header_value(&name, 0)
                .map(|first| (first, h.header_value(&name, 1).is_some()));
            prop_assert_eq!(h.first_header_value(&name), expected);
            // The header_value scan itself: case-insensitive names, in order.
            let by_hand: Vec<&str> = refs
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(&name))
                .map(|(_, v)| *v)
                .collect();
            for (i, v) in by_hand.iter().enumerate() {
                prop_assert_eq!(h.header_value(&name, i), Some(*v));
            }
            prop_assert_eq!(h.header_value(&name, by_hand.len()), None);
        }

        #[test]
        fn exact_prefix_suffix_contains_agree_with_std(v in ascii(), p in "[a-zA-Z0-9]{1,6}") {
            let m = |pat: MatchPattern, ic| sm(pat, ic).unwrap();
            prop_assert_eq!(m(MatchPattern::Exact(p.clone()), false).matches(&v), v == p);
            prop_assert_eq!(m(MatchPattern::Prefix(p.clone()), false).matches(&v), v.starts_with(&p));
            prop_assert_eq!(m(MatchPattern::Suffix(p.clone()), false).matches(&v), v.ends_with(&p));
            prop_assert_eq!(m(MatchPattern::Contains(p.clone()), false).matches(&v), v.contains(&p));
            let (lv, lp) = (v.to_ascii_lowercase(), p.to_ascii_lowercase());
            prop_assert_eq!(m(MatchPattern::Exact(p.clone()), true).matches(&v), lv == lp);
            prop_assert_eq!(m(MatchPattern::Prefix(p.clone()), true).matches(&v), lv.starts_with(&lp));
            prop_assert_eq!(m(MatchPattern::Suffix(p.clone()), true).matches(&v), lv.ends_with(&lp));
            prop_assert_eq!(m(MatchPattern::Contains(p.clone()), true).matches(&v), lv.contains(&lp));
        }

        #[test]
        fn escaped_regex_is_exact_match(v in ascii(), p in ascii()) {
            let r = SafeRegex::new(&regex::escape(&p)).unwrap();
            prop_assert_eq!(r.is_full_match(&v), v == p);
            prop_assert!(r.is_full_match(&p));
        }

        #[test]
        fn range_agrees_with_integer_compare(n in any::<i64>(), a in any::<i64>(), b in any::<i64>()) {
            let (start, end) = (a.min(b), a.max(b));
            let m = HeaderMatcher::new("x", HeaderRule::Range { start, end }, false);
            let s = n.to_string();
            prop_assert_eq!(m.matches_value(Some(&s)), start <= n && n < end);
            let inv = HeaderMatcher::new("x", HeaderRule::Range { start, end }, true);
            prop_assert_eq!(inv.matches_value(Some(&s)), !(start <= n && n < end));
            prop_assert!(!inv.matches_value(None));
        }

        #[test]
        fn invert_flips_value_rules_on_present_headers(v in ascii(), p in "[a-z]{1,4}") {
            let rule = HeaderRule::Value(StringMatcher::Contains { value: p, ignore_case: false });
            let m = HeaderMatcher::new("x", rule.clone(), false);
            let inv = HeaderMatcher::new("x", rule, true);
            prop_assert_eq!(m.matches_value(Some(&v)), !inv.matches_value(Some(&v)));
        }

        #[test]
        fn present_match_tracks_visibility(
            name in "[a-z]{1,6}(-bin)?",
            present in any::<bool>(),
            want in any::<bool>(),
            invert in any::<bool>(),
        ) {
            let pairs = [(name.as_str(), "v")];
            let h = SliceHeaders::new(if present { &pairs[..] } else { &[] });
            let m = HeaderMatcher::new(&name, HeaderRule::Present(want), invert);
            // `-bin` headers (and `te`) count as absent even when sent (gRFC A28).
            let visible = present && !name.ends_with("-bin") && name != "te";
            prop_assert_eq!(is_hidden_from_routing(&name), name.ends_with("-bin") || name == "te");
            prop_assert_eq!(m.matches(&h), (visible == want) != invert);
        }

        #[test]
        fn joined_view_equals_naive_join(values in proptest::collection::vec("[ -+--~]{0,90}", 1..6)) {
            let pairs: Vec<(&str, &str)> = values.iter().map(|v| ("x-m", v.as_str())).collect();
            let h = SliceHeaders::new(&pairs);
            let expected = values.join(",");
            let seen = with_rpc_header(&h, "x-m", |v| v.map(str::to_string));
            prop_assert_eq!(seen, Some(expected));
            let bin = with_rpc_header(&h, "x-m-bin", |v| v.map(str::to_string));
            prop_assert_eq!(bin, None);
        }
    }
}
