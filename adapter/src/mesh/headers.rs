//! Request metadata for the router: a [`HeaderSource`] over an `http::HeaderMap`.

use http::HeaderMap;
use skiff_core::resource::matcher::HeaderSource;

/// Reads an [`http::HeaderMap`] as the core's [`HeaderSource`] (what header matchers, hash
/// policies and fault-injection headers look at). Values that are not visible ASCII are skipped,
/// as gRPC treats them as absent for matching.
#[derive(Clone, Copy, Debug)]
pub struct HeaderMapSource<'a>(pub &'a HeaderMap);

impl HeaderSource for HeaderMapSource<'_> {
    fn header_value(&self, name: &str, index: usize) -> Option<&str> {
        self.0
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .nth(index)
    }

    fn for_each_header(&self, f: &mut dyn FnMut(&str, &str)) {
        for (name, value) in self.0 {
            if let Ok(v) = value.to_str() {
                f(name.as_str(), v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn reads_values_in_order_and_skips_binary() {
        let mut h = HeaderMap::new();
        h.append("x-user", HeaderValue::from_static("a"));
        h.append("x-user", HeaderValue::from_bytes(b"\xff").unwrap());
        h.append("x-user", HeaderValue::from_static("b"));
        h.insert("te", HeaderValue::from_static("trailers"));
        let s = HeaderMapSource(&h);
        assert_eq!(s.header_value("x-user", 0), Some("a"));
        assert_eq!(s.header_value("x-user", 1), Some("b"));
        assert_eq!(s.header_value("x-user", 2), None);
        assert_eq!(s.header_value("missing", 0), None);
        assert_eq!(s.header_value("not a header name", 0), None);
        let mut all = Vec::new();
        s.for_each_header(&mut |n, v| all.push(format!("{n}={v}")));
        all.sort();
        assert_eq!(all, ["te=trailers", "x-user=a", "x-user=b"]);
    }
}
