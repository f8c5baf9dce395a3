//! Validated outlier detection: `Cluster.outlier_detection` (gRFC A50), plus Envoy's two
//! consecutive-failure detectors that gRPC leaves out.
//!
//! gRFC A50 supports two ejection algorithms, success rate and failure percentage, and says
//! exactly when each is on: success rate unless `enforcing_success_rate` is explicitly 0,
//! failure percentage only when `enforcing_failure_percentage` is set above 0. skiff keeps that
//! rule. It also keeps Envoy's `consecutive_5xx` and `consecutive_gateway_failure` detectors,
//! which A50 drops ("Rationale: Consecutive 5xx ...") because they are defined on HTTP status
//! codes; skiff models them with Envoy's defaults (5 failures; enforced 100% and 0%) so the
//! resilience layer can decide how a gRPC status maps onto them. That is a skiff extension: a
//! gRPC client given the same resource would not act on them.

use core::time::Duration;

use super::{Ignored, ValidationError, duration};
use crate::pb::envoy::config::cluster::v3 as clusterpb;

/// `interval` when unset (gRFC A50).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
/// `base_ejection_time` when unset (gRFC A50).
pub const DEFAULT_BASE_EJECTION_TIME: Duration = Duration::from_secs(30);
/// `max_ejection_time` when unset (gRFC A50).
pub const DEFAULT_MAX_EJECTION_TIME: Duration = Duration::from_secs(300);
/// `max_ejection_percent` when unset (gRFC A50).
pub const DEFAULT_MAX_EJECTION_PERCENT: u32 = 10;

/// Outlier detection for one cluster, with every default filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutlierDetection {
    /// Time between ejection sweeps (`interval`, default 10 s). May be zero: A50 only requires
    /// a non-negative duration, so whoever arms the timer must put a floor under it.
    pub interval: Duration,
    /// `base_ejection_time` (default 30 s): ejection time is this times the ejection count.
    pub base_ejection_time: Duration,
    /// `max_ejection_time` as configured (default 300 s). Use
    /// [`OutlierDetection::effective_max_ejection_time`] for the cap A50 applies.
    pub max_ejection_time: Duration,
    /// `max_ejection_percent` (default 10, at most 100). A50 still ejects one address even when
    /// this rounds down to zero.
    pub max_ejection_percent: u32,
    /// The success-rate algorithm, or `None` when `enforcing_success_rate` is 0 (A50).
    pub success_rate: Option<SuccessRateEjection>,
    /// The failure-percentage algorithm, or `None` unless `enforcing_failure_percentage` is set
    /// above 0 (A50).
    pub failure_percentage: Option<FailurePercentageEjection>,
    /// skiff extension: Envoy's `consecutive_5xx` detector, or `None` when its enforcement is 0.
    pub consecutive_5xx: Option<ConsecutiveFailureEjection>,
    /// skiff extension: Envoy's `consecutive_gateway_failure` detector, or `None` when its
    /// enforcement is 0 (Envoy's default).
    pub consecutive_gateway_failure: Option<ConsecutiveFailureEjection>,
}

impl OutlierDetection {
    /// The longest an address stays ejected: `max(base_ejection_time, max_ejection_time)`
    /// (gRFC A50, "Outlier Detection Behavior" step 5).
    pub fn effective_max_ejection_time(&self) -> Duration {
        self.max_ejection_time.max(self.base_ejection_time)
    }

    /// Whether any algorithm is on. When none is, A50 says the picker does not count calls and
    /// the sweep timer is not started.
    pub fn any_enabled(&self) -> bool {
        self.success_rate.is_some()
            || self.failure_percentage.is_some()
            || self.consecutive_5xx.is_some()
            || self.consecutive_gateway_failure.is_some()
    }
}

/// gRFC A50 `success_rate_ejection`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SuccessRateEjection {
    /// `success_rate_stdev_factor` in thousandths (default 1900, i.e. 1.9).
    pub stdev_factor: u32,
    /// `enforcing_success_rate`: percent chance an outlier is ejected (default 100, 1..=100 here).
    pub enforcement_percentage: u32,
    /// `success_rate_minimum_hosts` (default 5).
    pub minimum_hosts: u32,
    /// `success_rate_request_volume` (default 100).
    pub request_volume: u32,
}

/// gRFC A50 `failure_percentage_ejection`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailurePercentageEjection {
    /// `failure_percentage_threshold` (default 85, at most 100).
    pub threshold: u32,
    /// `enforcing_failure_percentage` (1..=100 here: 0 disables the algorithm).
    pub enforcement_percentage: u32,
    /// `failure_percentage_minimum_hosts` (default 5).
    pub minimum_hosts: u32,
    /// `failure_percentage_request_volume` (default 50).
    pub request_volume: u32,
}

/// skiff extension: an Envoy consecutive-failure detector (`consecutive_5xx` or
/// `consecutive_gateway_failure`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConsecutiveFailureEjection {
    /// Consecutive failures that make an address an outlier (Envoy default 5).
    pub consecutive: u32,
    /// Percent chance the outlier is ejected (1..=100 here: 0 disables the detector).
    pub enforcement_percentage: u32,
}

/// A percentage field: at most 100 (gRFC A50 "Validation"; Envoy's proto has the same bound).
fn percent(field: &str, value: Option<u32>, default: u32) -> Result<u32, ValidationError> {
    let v = value.unwrap_or(default);
    if v > 100 {
        return Err(ValidationError::new(
            field,
            format!("{v} is not a percentage: must be at most 100 (gRFC A50)"),
        ));
    }
    Ok(v)
}

/// A duration field: valid and non-negative (gRFC A50 "Validation").
fn opt_duration(
    field: &str,
    d: Option<&prost_types::Duration>,
    default: Duration,
) -> Result<Duration, ValidationError> {
    match d {
        Some(d) => duration(field, d),
        None => Ok(default),
    }
}

/// Validates `Cluster.outlier_detection` (field paths relative to that message).
///
/// Rejects what gRFC A50 "xDS Validation" rejects (invalid or negative durations, percentages
/// above 100) and, for skiff's consecutive-failure extension, enforcement percentages above
/// 100. Fields of a disabled algorithm and fields gRPC does not support are recorded in
/// `ignored`.
pub fn validate_outlier_detection(
    od: &clusterpb::OutlierDetection,
    ignored: &mut Ignored,
) -> Result<OutlierDetection, ValidationError> {
    let interval = opt_duration("interval", od.interval.as_ref(), DEFAULT_INTERVAL)?;
    let base_ejection_time = opt_duration(
        "base_ejection_time",
        od.base_ejection_time.as_ref(),
        DEFAULT_BASE_EJECTION_TIME,
    )?;
    let max_ejection_time = opt_duration(
        "max_ejection_time",
        od.max_ejection_time.as_ref(),
        DEFAULT_MAX_EJECTION_TIME,
    )?;
    let max_ejection_percent = percent(
        "max_ejection_percent",
        od.max_ejection_percent,
        DEFAULT_MAX_EJECTION_PERCENT,
    )?;

    // Every bounded field is checked even when its algorithm ends up disabled: A50 validates
    // the message as a whole before deciding which algorithms run.
    let enforcing_success_rate = percent("enforcing_success_rate", od.enforcing_success_rate, 100)?;
    let failure_threshold = percent(
        "failure_percentage_threshold",
        od.failure_percentage_threshold,
        85,
    )?;
    let enforcing_failure_percentage = percent(
        "enforcing_failure_percentage",
        od.enforcing_failure_percentage,
        0,
    )?;
    let enforcing_5xx = percent(
        "enforcing_consecutive_5xx",
        od.enforcing_consecutive_5xx,
        100,
    )?;
    let enforcing_gateway = percent(
        "enforcing_consecutive_gateway_failure",
        od.enforcing_consecutive_gateway_failure,
        0,
    )?;

    // A50: "if the enforcing_success_rate field is set to 0, the config success_rate_ejection
    // field will be null and all success_rate_* fields will be ignored" (unset means 100).
    let success_rate = if enforcing_success_rate == 0 {
        for (name, set) in [
            (
                "success_rate_stdev_factor",
                od.success_rate_stdev_factor.is_some(),
            ),
            (
                "success_rate_minimum_hosts",
                od.success_rate_minimum_hosts.is_some(),
            ),
            (
                "success_rate_request_volume",
                od.success_rate_request_volume.is_some(),
            ),
        ] {
            if set {
                ignored.note(name);
            }
        }
        None
    } else {
        Some(SuccessRateEjection {
            stdev_factor: od.success_rate_stdev_factor.unwrap_or(1900),
            enforcement_percentage: enforcing_success_rate,
            minimum_hosts: od.success_rate_minimum_hosts.unwrap_or(5),
            request_volume: od.success_rate_request_volume.unwrap_or(100),
        })
    };

    // A50: "If the enforcing_failure_percent field is set to 0 or null, the config
    // failure_percent_ejection field will be null and all failure_percent_* fields will be
    // ignored."
    let failure_percentage = if enforcing_failure_percentage == 0 {
        for (name, set) in [
            (
                "failure_percentage_threshold",
                od.failure_percentage_threshold.is_some(),
            ),
            (
                "failure_percentage_minimum_hosts",
                od.failure_percentage_minimum_hosts.is_some(),
            ),
            (
                "failure_percentage_request_volume",
                od.failure_percentage_request_volume.is_some(),
            ),
        ] {
            if set {
                ignored.note(name);
            }
        }
        None
    } else {
        Some(FailurePercentageEjection {
            threshold: failure_threshold,
            enforcement_percentage: enforcing_failure_percentage,
            minimum_hosts: od.failure_percentage_minimum_hosts.unwrap_or(5),
            request_volume: od.failure_percentage_request_volume.unwrap_or(50),
        })
    };

    // skiff extension, with Envoy's defaults (outlier_detection.proto): 5 consecutive
    // failures; 5xx enforced 100%, gateway failures 0%.
    let consecutive_5xx = consecutive(
        "consecutive_5xx",
        od.consecutive_5xx,
        enforcing_5xx,
        ignored,
    );
    let consecutive_gateway_failure = consecutive(
        "consecutive_gateway_failure",
        od.consecutive_gateway_failure,
        enforcing_gateway,
        ignored,
    );

    note_unsupported(od, ignored);

    Ok(OutlierDetection {
        interval,
        base_ejection_time,
        max_ejection_time,
        max_ejection_percent,
        success_rate,
        failure_percentage,
        consecutive_5xx,
        consecutive_gateway_failure,
    })
}

fn consecutive(
    field: &str,
    count: Option<u32>,
    enforcement: u32,
    ignored: &mut Ignored,
) -> Option<ConsecutiveFailureEjection> {
    if enforcement == 0 {
        if count.is_some() {
            ignored.note(field);
        }
        return None;
    }
    Some(ConsecutiveFailureEjection {
        consecutive: count.unwrap_or(5),
        enforcement_percentage: enforcement,
    })
}

/// Fields neither gRFC A50 nor skiff's extension acts on ("All other fields will be ignored").
fn note_unsupported(od: &clusterpb::OutlierDetection, ignored: &mut Ignored) {
    for (name, set) in [
        (
            "split_external_local_origin_errors",
            od.split_external_local_origin_errors,
        ),
        (
            "consecutive_local_origin_failure",
            od.consecutive_local_origin_failure.is_some(),
        ),
        (
            "enforcing_consecutive_local_origin_failure",
            od.enforcing_consecutive_local_origin_failure.is_some(),
        ),
        (
            "enforcing_local_origin_success_rate",
            od.enforcing_local_origin_success_rate.is_some(),
        ),
        (
            "enforcing_failure_percentage_local_origin",
            od.enforcing_failure_percentage_local_origin.is_some(),
        ),
        (
            "max_ejection_time_jitter",
            od.max_ejection_time_jitter.is_some(),
        ),
        (
            "successful_active_health_check_uneject_host",
            od.successful_active_health_check_uneject_host.is_some(),
        ),
        ("monitors", !od.monitors.is_empty()),
        ("always_eject_one_host", od.always_eject_one_host.is_some()),
        ("detect_degraded_hosts", od.detect_degraded_hosts.is_some()),
    ] {
        if set {
            ignored.note(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: i64) -> prost_types::Duration {
        prost_types::Duration {
            seconds: s,
            nanos: 0,
        }
    }

    #[test]
    fn empty_message_gets_a50_and_envoy_defaults() {
        let mut ig = Ignored::default();
        let od =
            validate_outlier_detection(&clusterpb::OutlierDetection::default(), &mut ig).unwrap();
        assert_eq!(od.interval, Duration::from_secs(10));
        assert_eq!(od.base_ejection_time, Duration::from_secs(30));
        assert_eq!(od.max_ejection_time, Duration::from_secs(300));
        assert_eq!(od.max_ejection_percent, 10);
        assert_eq!(
            od.success_rate,
            Some(SuccessRateEjection {
                stdev_factor: 1900,
                enforcement_percentage: 100,
                minimum_hosts: 5,
                request_volume: 100,
            })
        );
        // Envoy's enforcing_failure_percentage defaults to 0: off.
        assert_eq!(od.failure_percentage, None);
        assert_eq!(
            od.consecutive_5xx,
            Some(ConsecutiveFailureEjection {
                consecutive: 5,
                enforcement_percentage: 100,
            })
        );
        assert_eq!(od.consecutive_gateway_failure, None);
        assert!(ig.is_empty());
    }

    #[test]
    fn success_rate_off_only_when_enforcement_is_zero() {
        let mut ig = Ignored::default();
        let pb = clusterpb::OutlierDetection {
            enforcing_success_rate: Some(0),
            success_rate_stdev_factor: Some(1000),
            ..Default::default()
        };
        let od = validate_outlier_detection(&pb, &mut ig).unwrap();
        assert_eq!(od.success_rate, None);
        assert_eq!(ig.fields(), ["success_rate_stdev_factor"]);

        let pb = clusterpb::OutlierDetection {
            enforcing_success_rate: Some(40),
            success_rate_minimum_hosts: Some(2),
            ..Default::default()
        };
        let od = validate_outlier_detection(&pb, &mut Ignored::default()).unwrap();
        let sr = od.success_rate.unwrap();
        assert_eq!(sr.enforcement_percentage, 40);
        assert_eq!(sr.minimum_hosts, 2);
    }

    #[test]
    fn failure_percentage_on_only_when_enforced() {
        let mut ig = Ignored::default();
        let pb = clusterpb::OutlierDetection {
            failure_percentage_threshold: Some(50),
            ..Default::default()
        };
        let od = validate_outlier_detection(&pb, &mut ig).unwrap();
        assert_eq!(od.failure_percentage, None);
        assert_eq!(ig.fields(), ["failure_percentage_threshold"]);

        let pb = clusterpb::OutlierDetection {
            enforcing_failure_percentage: Some(100),
            ..Default::default()
        };
        let od = validate_outlier_detection(&pb, &mut Ignored::default()).unwrap();
        assert_eq!(
            od.failure_percentage,
            Some(FailurePercentageEjection {
                threshold: 85,
                enforcement_percentage: 100,
                minimum_hosts: 5,
                request_volume: 50,
            })
        );
    }

    #[test]
    fn percentages_above_100_are_rejected() {
        for (field, pb) in [
            (
                "max_ejection_percent",
                clusterpb::OutlierDetection {
                    max_ejection_percent: Some(101),
                    ..Default::default()
                },
            ),
            (
                "enforcing_success_rate",
                clusterpb::OutlierDetection {
                    enforcing_success_rate: Some(101),
                    ..Default::default()
                },
            ),
            (
                // Checked even though failure percentage is disabled.
                "failure_percentage_threshold",
                clusterpb::OutlierDetection {
                    failure_percentage_threshold: Some(200),
                    ..Default::default()
                },
            ),
            (
                "enforcing_failure_percentage",
                clusterpb::OutlierDetection {
                    enforcing_failure_percentage: Some(101),
                    ..Default::default()
                },
            ),
            (
                "enforcing_consecutive_5xx",
                clusterpb::OutlierDetection {
                    enforcing_consecutive_5xx: Some(150),
                    ..Default::default()
                },
            ),
        ] {
            let err = validate_outlier_detection(&pb, &mut Ignored::default()).unwrap_err();
            assert_eq!(err.field, field);
        }
        let ok = clusterpb::OutlierDetection {
            max_ejection_percent: Some(100),
            ..Default::default()
        };
        assert!(validate_outlier_detection(&ok, &mut Ignored::default()).is_ok());
    }

    #[test]
    fn negative_or_invalid_durations_are_rejected() {
        let pb = clusterpb::OutlierDetection {
            interval: Some(secs(-1)),
            ..Default::default()
        };
        let err = validate_outlier_detection(&pb, &mut Ignored::default()).unwrap_err();
        assert_eq!(err.field, "interval");
        let pb = clusterpb::OutlierDetection {
            base_ejection_time: Some(prost_types::Duration {
                seconds: 1,
                nanos: 1_000_000_000,
            }),
            ..Default::default()
        };
        let err = validate_outlier_detection(&pb, &mut Ignored::default()).unwrap_err();
        assert_eq!(err.field, "base_ejection_time");
        let pb = clusterpb::OutlierDetection {
            max_ejection_time: Some(secs(-5)),
            ..Default::default()
        };
        let err = validate_outlier_detection(&pb, &mut Ignored::default()).unwrap_err();
        assert_eq!(err.field, "max_ejection_time");
    }

    #[test]
    fn effective_max_ejection_time_is_at_least_base() {
        let pb = clusterpb::OutlierDetection {
            base_ejection_time: Some(secs(600)),
            ..Default::default()
        };
        let od = validate_outlier_detection(&pb, &mut Ignored::default()).unwrap();
        assert_eq!(od.max_ejection_time, Duration::from_secs(300));
        assert_eq!(od.effective_max_ejection_time(), Duration::from_secs(600));
    }

    #[test]
    fn consecutive_detectors_follow_envoy_defaults() {
        let mut ig = Ignored::default();
        let pb = clusterpb::OutlierDetection {
            consecutive_5xx: Some(3),
            enforcing_consecutive_5xx: Some(0),
            consecutive_gateway_failure: Some(2),
            enforcing_consecutive_gateway_failure: Some(50),
            enforcing_success_rate: Some(0),
            ..Default::default()
        };
        let od = validate_outlier_detection(&pb, &mut ig).unwrap();
        assert_eq!(od.consecutive_5xx, None);
        assert_eq!(
            od.consecutive_gateway_failure,
            Some(ConsecutiveFailureEjection {
                consecutive: 2,
                enforcement_percentage: 50,
            })
        );
        assert_eq!(ig.fields(), ["consecutive_5xx"]);
        assert!(od.any_enabled());
    }

    #[test]
    fn unsupported_fields_are_recorded() {
        let mut ig = Ignored::default();
        let pb = clusterpb::OutlierDetection {
            split_external_local_origin_errors: true,
            max_ejection_time_jitter: Some(secs(1)),
            ..Default::default()
        };
        validate_outlier_detection(&pb, &mut ig).unwrap();
        assert_eq!(
            ig.fields(),
            [
                "split_external_local_origin_errors",
                "max_ejection_time_jitter"
            ]
        );
    }
}
