//! Validated resources: skiff's own model of xDS configuration.
//!
//! Each wire type is turned into a model type by validation. Unsupported *values* are rejected
//! with a precise reason (that text becomes the NACK's `error_detail`, gRFC A46); unsupported
//! *fields* are recorded as ignored and shown in the config dump (gRPC ignores them silently;
//! skiff says so).

pub mod cluster;
pub mod decode;
pub mod endpoint;
pub mod endpoint_validate;
pub mod filter;
pub mod lb_policy;
pub mod listener;
pub mod matcher;
pub mod outlier;
pub mod retry;
pub mod route;
pub mod snapshot;
pub mod tls;

pub use decode::{Decoded, Rejected, Resource, decode};

use core::fmt;

/// Why a resource was rejected: the field path (proto field names, e.g.
/// `virtual_hosts[0].routes[2].match.safe_regex.regex`) and what is wrong with its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationError {
    /// Field path inside the resource.
    pub field: String,
    /// What is wrong, in words a user can act on.
    pub reason: String,
}

impl ValidationError {
    /// An error at `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ValidationError {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Prefixes the path with an outer field (`outer.inner`), as errors bubble up.
    pub fn within(mut self, outer: &str) -> Self {
        self.field = if self.field.is_empty() {
            outer.to_string()
        } else if self.field.starts_with('[') {
            format!("{outer}{}", self.field)
        } else {
            format!("{outer}.{}", self.field)
        };
        self
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.field, self.reason)
        }
    }
}

impl std::error::Error for ValidationError {}

/// Fields that were set but that skiff does not act on (recorded, logged once, shown in the
/// config dump). Paths use the same form as [`ValidationError::field`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ignored {
    fields: Vec<String>,
}

impl Ignored {
    /// Records that `field` was set and is ignored.
    pub fn note(&mut self, field: impl Into<String>) {
        let f = field.into();
        if !self.fields.contains(&f) {
            self.fields.push(f);
        }
    }

    /// Records `field` with `prefix` (`prefix.field`).
    pub fn note_in(&mut self, prefix: &str, field: &str) {
        if prefix.is_empty() {
            self.note(field);
        } else {
            self.note(format!("{prefix}.{field}"));
        }
    }

    /// The ignored field paths, in the order first seen.
    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    /// Whether nothing was ignored.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

/// Converts a protobuf `Duration` into a `core::time::Duration`, rejecting negative or
/// out-of-range values (protobuf requires `nanos` in `0..1e9` for non-negative durations).
pub fn duration(
    field: &str,
    d: &prost_types::Duration,
) -> Result<core::time::Duration, ValidationError> {
    if d.seconds < 0 || d.nanos < 0 || d.nanos >= 1_000_000_000 {
        return Err(ValidationError::new(
            field,
            format!("invalid duration {}s {}ns", d.seconds, d.nanos),
        ));
    }
    let secs = u64::try_from(d.seconds).unwrap_or(0);
    let nanos = u32::try_from(d.nanos).unwrap_or(0);
    Ok(core::time::Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_paths_compose() {
        let e = ValidationError::new("regex", "bad")
            .within("safe_regex")
            .within("[2]")
            .within("routes");
        assert_eq!(e.to_string(), "routes[2].safe_regex.regex: bad");
    }

    #[test]
    fn durations_validate() {
        let ok = prost_types::Duration {
            seconds: 1,
            nanos: 5,
        };
        assert_eq!(duration("t", &ok).unwrap(), core::time::Duration::new(1, 5));
        let neg = prost_types::Duration {
            seconds: -1,
            nanos: 0,
        };
        assert!(duration("t", &neg).is_err());
    }
}
