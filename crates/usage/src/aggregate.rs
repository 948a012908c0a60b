//! The daily figures, recomputed from the transactions for whole days, so the daily tables always
//! equal what the transactions say (an import recomputes every day whose figures it changed, a group of days at
//! a time, except the days that hold only its own new rows: those come from its tally, see
//! [`crate::tally`]).
//!
//! This file holds what the figures are ([`DayFigures`], made of `Cell`s, and the
//! [`Subscribers`] they depend on); their SQL is in [`crate::store::daily`], which computes a
//! group of days from the transactions and stores them.
//!
//! Formulas (per day and region; the seed's SQL version, see `docs/usage.md`):
//! - `total_cost` = Σ cost; `total_conversations` = distinct conversations;
//!   `transaction_count` = rows; `avg_spending` = `total_cost / transaction_count`.
//! - `total_prompt_tokens` / `total_completion_tokens` = Σ tokens by type;
//!   `avg_token_consumption` = (prompt + completion) / `total_conversations`.
//! - `highest_model_used` / `least_used_model` = the model with the most / fewest distinct
//!   conversations; `costliest_model` = the highest Σ cost (ties go to the first name).
//! - `active_subscriber_utilization_rate` = active subscribers who transacted that day in the
//!   region / active subscribers in the region, a fraction 0..1 (0 when there are none).
//! - `daily_model_metrics` per model: Σ cost, distinct conversations, Σ tokens, rows.
//! - `daily_company_metrics` per company (`''` when the user has none): Σ cost, distinct
//!   conversations, and its most / least used model by distinct conversations.

use std::collections::{HashMap, HashSet};

/// A computed cell.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Text(String),
    Int(i64),
    Real(f64),
}

/// Which users are active subscribers, and how many each region has, when figures are made.
#[derive(Debug, Default)]
pub struct Subscribers {
    /// Ids of active subscribers (among the users asked about).
    pub active: HashSet<String>,
    /// Active subscribers per region.
    pub per_region: HashMap<String, i64>,
}

/// The rows of the three daily tables for a group of days, computed but not yet stored.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct DayFigures {
    /// The model, company and daily tables' rows, in [`crate::store::daily`]'s column order.
    pub(crate) tables: [Vec<Vec<Cell>>; 3],
}

impl DayFigures {
    /// Adds a `daily_model_metrics` row (cells in the table's column order).
    pub(crate) fn push_model(&mut self, row: Vec<Cell>) {
        self.tables[0].push(row);
    }

    /// Adds a `daily_company_metrics` row.
    pub(crate) fn push_company(&mut self, row: Vec<Cell>) {
        self.tables[1].push(row);
    }

    /// Adds a `daily_metrics` row.
    pub(crate) fn push_daily(&mut self, row: Vec<Cell>) {
        self.tables[2].push(row);
    }

    /// The rows: model, company, then daily.
    #[cfg(test)]
    pub(crate) fn rows(&self) -> &[Vec<Vec<Cell>>; 3] {
        &self.tables
    }
}
