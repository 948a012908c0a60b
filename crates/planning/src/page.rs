//! The original's pagination: `page` (≥ 1, default 1) and `page_size` (1–100, default 20) in, a
//! `{items, total, page, page_size, total_pages}` wrapper out.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::PlanningError;

/// `page` and `page_size` as asked (the query of a list with no filters).
#[derive(Debug, Clone, Copy, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page, from 1.
    pub page: Option<i64>,
    /// Items a page, 1–100 (20).
    pub page_size: Option<i64>,
}

/// A checked page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Page, from 1.
    pub page: i64,
    /// Items a page.
    pub page_size: i64,
}

impl PageRequest {
    /// Checks `page ≥ 1` and `1 ≤ page_size ≤ 100`.
    pub fn parse(q: PageQuery) -> Result<Self, PlanningError> {
        let page = q.page.unwrap_or(1);
        let page_size = q.page_size.unwrap_or(20);
        let mut errors = Vec::new();
        if page < 1 {
            errors.push(sightline_platform::error::FieldError::new("page", "must be at least 1"));
        }
        if !(1..=100).contains(&page_size) {
            errors.push(sightline_platform::error::FieldError::new("page_size", "must be 1 to 100"));
        }
        if !errors.is_empty() {
            return Err(PlanningError::Invalid(errors));
        }
        Ok(Self { page, page_size })
    }

    /// Rows to skip.
    pub fn offset(&self) -> i64 {
        (self.page - 1) * self.page_size
    }
}

/// A page of `T`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Page<T> {
    /// This page's items.
    pub items: Vec<T>,
    /// Items in all pages.
    pub total: i64,
    /// This page.
    pub page: i64,
    /// Items a page.
    pub page_size: i64,
    /// Pages (0 when there are no items).
    pub total_pages: i64,
}

impl<T> Page<T> {
    /// The page `request` of `total` items.
    pub fn new(items: Vec<T>, total: i64, request: PageRequest) -> Self {
        Self {
            items,
            total,
            page: request.page,
            page_size: request.page_size,
            total_pages: (total + request.page_size - 1) / request.page_size,
        }
    }
}
