//! Limits as written in graph files, merged from defaults and checked.

use std::time::Duration;

use serde_saphyr::Spanned;
use weft_runtime::Limits;

use super::error::{Problems, at};
use super::file::RawLimits;
use super::{MAX_DEADLINE_MS, MAX_MEMORY_MB, MAX_OUTPUT_KB, ProblemKind};

/// Limits as merged so far: `None` means "not set at this level".
#[derive(Clone, Copy, Default)]
pub(super) struct LimitSpec {
    fuel: Option<u64>,
    deadline_ms: Option<u64>,
    max_memory_mb: Option<u64>,
    max_output_kb: Option<u64>,
}

impl LimitSpec {
    /// `self` overridden field by field by the valid fields of `raw`.
    pub fn merge(self, raw: &RawLimits, path: &str, problems: &mut Problems) -> Self {
        let mut check = |field: &str, value: &Option<Spanned<u64>>, max: u64, unit: &str| {
            let v = value.as_ref()?;
            if v.value == 0 || v.value > max {
                let message = if max == u64::MAX {
                    format!("`{field}` must be at least 1, not 0")
                } else {
                    format!(
                        "`{field}` must be between 1 and {max}{unit}, not {}",
                        v.value
                    )
                };
                problems.push(
                    ProblemKind::InvalidLimit,
                    at(v),
                    format!("{path}.{field}"),
                    message,
                );
                return None;
            }
            Some(v.value)
        };
        Self {
            fuel: check("fuel", &raw.fuel, u64::MAX, "").or(self.fuel),
            deadline_ms: check("deadline_ms", &raw.deadline_ms, MAX_DEADLINE_MS, " ms")
                .or(self.deadline_ms),
            max_memory_mb: check("max_memory_mb", &raw.max_memory_mb, MAX_MEMORY_MB, " MB")
                .or(self.max_memory_mb),
            max_output_kb: check("max_output_kb", &raw.max_output_kb, MAX_OUTPUT_KB, " KB")
                .or(self.max_output_kb),
        }
    }

    /// Applies the set fields on top of the runtime's defaults.
    pub fn to_limits(self) -> Limits {
        let mut limits = Limits::default();
        if let Some(fuel) = self.fuel {
            limits.fuel = Some(fuel);
        }
        if let Some(ms) = self.deadline_ms {
            limits.deadline = Duration::from_millis(ms);
        }
        // Bounded by MAX_MEMORY_MB / MAX_OUTPUT_KB, so the shifts cannot overflow.
        if let Some(mb) = self.max_memory_mb {
            limits.max_memory = usize::try_from(mb << 20).unwrap_or(usize::MAX);
        }
        if let Some(kb) = self.max_output_kb {
            limits.max_output = usize::try_from(kb << 10).unwrap_or(usize::MAX);
        }
        limits
    }
}
