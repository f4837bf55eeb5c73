//! Times as every output writes them: RFC 3339 in UTC with a `Z`,
//! milliseconds only when they are not zero ([`crate::time_spec::format_time`]).

use chrono::{DateTime, Utc};
use serde::Serializer;

/// Serializes a time.
pub(crate) fn at<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    crate::time_spec::with_time_text(*t, |text| s.serialize_str(text))
}

/// Serializes an optional time (`null` when absent).
pub(crate) fn opt<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => at(t, s),
        None => s.serialize_none(),
    }
}
