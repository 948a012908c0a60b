//! The daily figures of an import's own rows, tallied in memory as its chunks commit.
//!
//! A day that holds only rows this import inserted can then get its aggregates straight from the
//! tally instead of reading its rows back ([`crate::import`] checks that in the transaction that
//! stores them: the day's row count must equal the rows tallied). Every other day — one that had
//! rows before, one that saw an update, one evicted to keep memory bounded — is recomputed in SQL
//! by [`crate::aggregate`]. Both follow the same formulas (see that module).
//!
//! Memory is bounded: past a budget the days touched longest ago are dropped from the tally
//! (they fall back to SQL), and if the names alone (users, mostly) outgrow it the tally stops
//! altogether, so a file of any size tallies in a fixed amount of memory.

use std::collections::{BTreeMap, HashMap, HashSet};

use foldhash::{HashMap as FastMap, HashMapExt as _, HashSet as FastSet};

use crate::aggregate::{Cell, DayFigures, Subscribers};

/// Rough heap cost of one interned name or id beyond its text, in bytes.
const NAME_BYTES: usize = 64;
/// Rough heap cost of one per-conversation entry, in bytes.
const GROUP_BYTES: usize = 80;
/// Rough heap cost of one (region, user) pair, in bytes.
const PAIR_BYTES: usize = 12;

/// One stored transaction, as the tally sees it.
#[derive(Debug, Clone, Copy)]
pub struct TallyRow<'a> {
    /// UTC day.
    pub date: &'a str,
    /// The user's region.
    pub region: &'a str,
    /// The user's company (`''` when none).
    pub company: &'a str,
    /// Model.
    pub model: &'a str,
    /// Conversation.
    pub conversation: &'a str,
    /// User.
    pub user: &'a str,
    /// `prompt` or `completion`.
    pub token_type: &'a str,
    /// Tokens.
    pub tokens: i64,
    /// Cost.
    pub cost: f64,
}

/// A compensated (Neumaier) sum, so the total does not depend on the order rows come in.
#[derive(Debug, Default, Clone, Copy)]
struct Sum {
    sum: f64,
    compensation: f64,
}

impl Sum {
    fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.compensation += (self.sum - t) + x;
        } else {
            self.compensation += (x - t) + self.sum;
        }
        self.sum = t;
    }

    fn merge(&mut self, other: Sum) {
        self.add(other.sum);
        self.add(other.compensation);
    }

    fn value(self) -> f64 {
        self.sum + self.compensation
    }
}

/// Names (or ids) numbered in order of first sight.
#[derive(Debug, Default)]
struct Names {
    numbers: FastMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Names {
    /// The number of `name`, and the bytes a new entry took.
    fn number(&mut self, name: &str) -> (u32, usize) {
        if let Some(&n) = self.numbers.get(name) {
            return (n, 0);
        }
        let n = self.names.len() as u32;
        self.numbers.insert(name.into(), n);
        self.names.push(name.into());
        (n, 2 * name.len() + NAME_BYTES)
    }

    fn name(&self, n: u32) -> &str {
        &self.names[n as usize]
    }
}

/// Sums of one conversation's rows within a (region, company, model) of a day.
#[derive(Debug, Default, Clone, Copy)]
struct ConversationSums {
    cost: Sum,
    rows: i64,
    tokens: i64,
    prompt: i64,
    completion: i64,
}

/// (region, company, model, conversation) numbers.
type GroupKey = (u32, u32, u32, u32);

#[derive(Debug, Default)]
struct DayTally {
    rows: i64,
    last_touched: u64,
    bytes: usize,
    conversations: FastMap<Box<str>, u32>,
    groups: FastMap<GroupKey, ConversationSums>,
    /// (region, user) pairs that transacted.
    users: FastSet<(u32, u32)>,
}

/// Figures of one (day, region) or (day, region, model) or (day, region, company) being made.
#[derive(Debug, Default)]
struct Totals {
    cost: Sum,
    rows: i64,
    tokens: i64,
    prompt: i64,
    completion: i64,
    conversations: HashSet<u32>,
}

impl Totals {
    fn add(&mut self, conversation: u32, sums: &ConversationSums) {
        self.cost.merge(sums.cost);
        self.rows += sums.rows;
        self.tokens += sums.tokens;
        self.prompt += sums.prompt;
        self.completion += sums.completion;
        self.conversations.insert(conversation);
    }
}

/// The first name with the most (`most`) or fewest conversations; names come in order.
fn pick_by_count<'a>(counts: impl Iterator<Item = (&'a str, usize)>, most: bool) -> String {
    let mut best: Option<(&str, usize)> = None;
    for (name, n) in counts {
        let better = match best {
            None => true,
            Some((_, b)) => (most && n > b) || (!most && n < b),
        };
        if better {
            best = Some((name, n));
        }
    }
    best.map(|(name, _)| name.to_owned()).unwrap_or_default()
}

/// Per-day figures of one import's inserted rows.
#[derive(Debug)]
pub struct Tally {
    days: FastMap<String, DayTally>,
    /// Days that can no longer be tallied (updated, or evicted).
    spoiled: HashSet<String>,
    regions: Names,
    companies: Names,
    models: Names,
    users: Names,
    bytes: usize,
    budget: usize,
    clock: u64,
    /// The names alone outgrew the budget: nothing is tallied any more.
    closed: bool,
}

impl Tally {
    /// An empty tally that keeps about `budget` bytes at most.
    pub fn new(budget: usize) -> Self {
        Self {
            days: FastMap::new(),
            spoiled: HashSet::new(),
            regions: Names::default(),
            companies: Names::default(),
            models: Names::default(),
            users: Names::default(),
            bytes: 0,
            budget,
            clock: 0,
            closed: false,
        }
    }

    /// Adds rows that were all newly inserted, in one committed chunk.
    pub fn add<'a>(&mut self, rows: impl IntoIterator<Item = TallyRow<'a>>) {
        if self.closed {
            return;
        }
        self.clock += 1;
        for row in rows {
            if self.spoiled.contains(row.date) {
                continue;
            }
            let (region, b1) = self.regions.number(row.region);
            let (company, b2) = self.companies.number(row.company);
            let (model, b3) = self.models.number(row.model);
            let (user, b4) = self.users.number(row.user);
            self.bytes += b1 + b2 + b3 + b4;
            let day = match self.days.get_mut(row.date) {
                Some(d) => d,
                None => self.days.entry(row.date.to_owned()).or_default(),
            };
            day.last_touched = self.clock;
            day.rows += 1;
            let mut bytes = 0;
            let conversation = match day.conversations.get(row.conversation) {
                Some(&n) => n,
                None => {
                    let n = day.conversations.len() as u32;
                    day.conversations.insert(row.conversation.into(), n);
                    bytes += row.conversation.len() + NAME_BYTES;
                    n
                }
            };
            let sums = day.groups.entry((region, company, model, conversation)).or_insert_with(|| {
                bytes += GROUP_BYTES;
                ConversationSums::default()
            });
            sums.cost.add(row.cost);
            sums.rows += 1;
            sums.tokens += row.tokens;
            if row.token_type == "prompt" {
                sums.prompt += row.tokens;
            } else {
                sums.completion += row.tokens;
            }
            if day.users.insert((region, user)) {
                bytes += PAIR_BYTES;
            }
            day.bytes += bytes;
            self.bytes += bytes;
        }
        if self.bytes > self.budget {
            self.evict();
        }
    }

    /// Gives up tallying `date`: its aggregates will be recomputed in SQL.
    pub fn spoil(&mut self, date: &str) {
        if let Some(day) = self.days.remove(date) {
            self.bytes -= day.bytes;
        }
        self.spoiled.insert(date.to_owned());
    }

    /// Drops the days touched longest ago until a quarter of the budget is free; if the names
    /// alone outgrow it, drops everything and stops tallying.
    fn evict(&mut self) {
        let mut by_age: Vec<(u64, String)> =
            self.days.iter().map(|(date, d)| (d.last_touched, date.clone())).collect();
        by_age.sort_unstable();
        for (_, date) in by_age {
            if self.bytes <= self.budget / 4 * 3 {
                break;
            }
            self.spoil(&date);
        }
        if self.bytes > self.budget / 4 * 3 {
            self.closed = true;
            self.days = FastMap::new();
            self.regions = Names::default();
            self.companies = Names::default();
            self.models = Names::default();
            self.users = Names::default();
            self.bytes = 0;
        }
    }

    /// Rows tallied for `date`, if it is still tallied.
    pub fn rows(&self, date: &str) -> Option<i64> {
        if self.closed {
            return None;
        }
        self.days.get(date).map(|d| d.rows)
    }

    /// Estimated bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The users seen on `dates`.
    pub fn users<'a>(&'a self, dates: &'a [String]) -> impl Iterator<Item = &'a str> + 'a {
        let mut seen = HashSet::new();
        dates
            .iter()
            .filter_map(|d| self.days.get(d))
            .flat_map(|d| d.users.iter().map(|(_, u)| *u))
            .filter(move |u| seen.insert(*u))
            .map(|u| self.users.name(u))
    }

    /// The three daily tables' rows for `dates` (all tallied), by the formulas of
    /// [`crate::aggregate`].
    pub fn figures(&self, dates: &[String], subscribers: &Subscribers) -> DayFigures {
        let mut figures = DayFigures::default();
        for date in dates {
            let Some(day) = self.days.get(date) else { continue };
            // Per region, then per model and per company within it, names in order.
            let mut regions: BTreeMap<&str, Totals> = BTreeMap::new();
            let mut models: BTreeMap<(&str, &str), Totals> = BTreeMap::new();
            let mut companies: BTreeMap<(&str, &str), Totals> = BTreeMap::new();
            let mut company_models: BTreeMap<(&str, &str, &str), HashSet<u32>> = BTreeMap::new();
            for (&(region, company, model, conversation), sums) in &day.groups {
                let (region, company, model) =
                    (self.regions.name(region), self.companies.name(company), self.models.name(model));
                regions.entry(region).or_default().add(conversation, sums);
                models.entry((region, model)).or_default().add(conversation, sums);
                companies.entry((region, company)).or_default().add(conversation, sums);
                company_models.entry((region, company, model)).or_default().insert(conversation);
            }
            let mut active: HashMap<&str, i64> = HashMap::new();
            for &(region, user) in &day.users {
                if subscribers.active.contains(self.users.name(user)) {
                    *active.entry(self.regions.name(region)).or_default() += 1;
                }
            }
            let text = |s: &str| Cell::Text(s.to_owned());
            for (&(region, model), m) in &models {
                figures.push_model(vec![
                    text(date),
                    text(region),
                    text(model),
                    Cell::Real(m.cost.value()),
                    Cell::Int(m.conversations.len() as i64),
                    Cell::Int(m.tokens),
                    Cell::Int(m.rows),
                ]);
            }
            for (&(region, company), c) in &companies {
                let counts = || {
                    company_models
                        .range((region, company, "")..)
                        .take_while(|((r, c, _), _)| (*r, *c) == (region, company))
                        .map(|((_, _, model), set)| (*model, set.len()))
                };
                figures.push_company(vec![
                    text(date),
                    text(region),
                    text(company),
                    Cell::Text(pick_by_count(counts(), true)),
                    Cell::Text(pick_by_count(counts(), false)),
                    Cell::Real(c.cost.value()),
                    Cell::Int(c.conversations.len() as i64),
                ]);
            }
            for (&region, r) in &regions {
                let region_models = || models.range((region, "")..).take_while(|((r, _), _)| *r == region);
                let counts = || region_models().map(|((_, name), m)| (*name, m.conversations.len()));
                let mut costliest: Option<(&str, f64)> = None;
                for ((_, name), m) in region_models() {
                    let cost = m.cost.value();
                    if costliest.is_none_or(|(_, best)| cost > best) {
                        costliest = Some((name, cost));
                    }
                }
                let conversations = r.conversations.len() as i64;
                let active = active.get(region).copied().unwrap_or(0);
                let subscribers = subscribers.per_region.get(region).copied().unwrap_or(0);
                let cost = r.cost.value();
                figures.push_daily(vec![
                    text(date),
                    text(region),
                    Cell::Text(pick_by_count(counts(), true)),
                    Cell::Real(cost / r.rows as f64),
                    Cell::Text(costliest.map(|(n, _)| n.to_owned()).unwrap_or_default()),
                    Cell::Text(pick_by_count(counts(), false)),
                    Cell::Real((r.prompt + r.completion) as f64 / conversations as f64),
                    Cell::Int(r.prompt),
                    Cell::Int(r.completion),
                    Cell::Real(if subscribers == 0 { 0.0 } else { active as f64 / subscribers as f64 }),
                    Cell::Real(cost),
                    Cell::Int(conversations),
                    Cell::Int(r.rows),
                    Cell::Int(active),
                    Cell::Int(subscribers),
                ]);
            }
        }
        figures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row<'a>(date: &'a str, model: &'a str, conversation: &'a str, cost: f64) -> TallyRow<'a> {
        TallyRow {
            date,
            region: "EU",
            company: "Acme",
            model,
            conversation,
            user: "u1",
            token_type: "prompt",
            tokens: 10,
            cost,
        }
    }

    #[test]
    fn sums_do_not_depend_on_order() {
        let mut a = Sum::default();
        let mut b = Sum::default();
        let xs = [1e16, 1.0, -1e16, 0.1, 0.2, 0.3];
        xs.iter().for_each(|x| a.add(*x));
        xs.iter().rev().for_each(|x| b.add(*x));
        assert_eq!(a.value(), b.value());
        assert!((a.value() - 1.6).abs() < 1e-12);
    }

    #[test]
    fn ties_go_to_the_first_name() {
        let mut t = Tally::new(1 << 20);
        t.add([row("2025-01-01", "b", "c1", 1.0), row("2025-01-01", "a", "c2", 1.0)]);
        let subs = Subscribers {
            active: HashSet::from(["u1".to_owned()]),
            per_region: HashMap::from([("EU".into(), 2)]),
        };
        let f = t.figures(&["2025-01-01".into()], &subs);
        let daily = &f.rows()[2][0];
        assert_eq!(daily[2], Cell::Text("a".into()), "most used: tie goes to the first name");
        assert_eq!(daily[4], Cell::Text("a".into()), "costliest: tie goes to the first name");
        assert_eq!(daily[5], Cell::Text("a".into()), "least used: tie goes to the first name");
        assert_eq!(daily[9], Cell::Real(0.5), "one of two subscribers transacted");
        assert_eq!(daily[11], Cell::Int(2));
    }

    #[test]
    fn memory_stays_within_the_budget() {
        let mut t = Tally::new(20_000);
        let dates: Vec<String> = (1..=28).map(|d| format!("2025-02-{d:02}")).collect();
        for (i, date) in dates.iter().enumerate() {
            let ids: Vec<String> = (0..50).map(|n| format!("conversation-{i}-{n}")).collect();
            t.add(ids.iter().map(|id| row(date, "m", id, 1.0)));
            assert!(t.bytes() <= 20_000, "{}", t.bytes());
        }
        assert_eq!(t.rows(&dates[0]), None, "the oldest days were dropped");
        assert_eq!(t.rows(&dates[27]), Some(50));
        t.add([row(&dates[0], "m", "late", 1.0)]);
        assert_eq!(t.rows(&dates[0]), None, "a dropped day is never tallied again");
    }

    #[test]
    fn names_that_outgrow_the_budget_stop_the_tally() {
        let mut t = Tally::new(20_000);
        let users: Vec<String> = (0..1_000).map(|n| format!("user-{n}")).collect();
        t.add(users.iter().map(|u| TallyRow { user: u, ..row("2025-03-01", "m", "c", 1.0) }));
        assert_eq!(t.rows("2025-03-01"), None);
        assert_eq!(t.bytes(), 0, "everything was let go");
        t.add([row("2025-03-02", "m", "c", 1.0)]);
        assert_eq!(t.rows("2025-03-02"), None, "nothing is tallied any more");
    }
}
