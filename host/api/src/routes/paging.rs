//! Pages of lists: the `limit`/`offset` query and the page answered.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult};

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T: ToSchema> {
    /// The items.
    pub items: Vec<T>,
    /// How many match in all.
    pub total: u64,
    /// The page size asked for.
    pub limit: u64,
    /// Items skipped.
    pub offset: u64,
}

impl<T: ToSchema> Page<T> {
    /// The page `paging` asks for out of every item, `all`.
    pub(crate) fn slice<U>(
        all: Vec<U>,
        (limit, offset): (u64, u64),
        f: impl FnMut(U) -> T,
    ) -> Self {
        let total = all.len() as u64;
        Self {
            items: all
                .into_iter()
                .skip(usize::try_from(offset).unwrap_or(usize::MAX))
                .take(usize::try_from(limit).unwrap_or(usize::MAX))
                .map(f)
                .collect(),
            total,
            limit,
            offset,
        }
    }
}

/// Pagination.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u64>,
    /// Items to skip (default 0).
    pub offset: Option<u64>,
}

impl Paging {
    /// The page asked for, checked: `(limit, offset)`.
    pub(crate) fn get(&self) -> ApiResult<(u64, u64)> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=500).contains(&limit) {
            return Err(ApiError::field("limit", "limit must be between 1 and 500"));
        }
        // An offset past every item gives an empty page, up to the
        // largest the document allows (it is an int64).
        let offset = self.offset.unwrap_or(0);
        if offset > i64::MAX as u64 {
            return Err(ApiError::field("offset", "offset must be at most 2^63-1"));
        }
        Ok((limit, offset))
    }

    /// Refuses a `sinceMs`/`untilMs` past the document's int64 (400
    /// naming it), as [`get`](Self::get) does for `offset`.
    pub(crate) fn check_times(since_ms: Option<u64>, until_ms: Option<u64>) -> ApiResult<()> {
        for (field, value) in [("sinceMs", since_ms), ("untilMs", until_ms)] {
            if value.is_some_and(|v| v > i64::MAX as u64) {
                return Err(ApiError::field(
                    field,
                    format!("{field} must be at most 2^63-1 milliseconds"),
                ));
            }
        }
        Ok(())
    }

    /// Checks the `limit` and `offset` of a query with more filters.
    pub(crate) fn check(limit: Option<u64>, offset: Option<u64>) -> ApiResult<(u64, u64)> {
        Self { limit, offset }.get()
    }
}
