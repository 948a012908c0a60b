//! A realistic, deterministic pair of upload files for demos, tests and benchmarks: thousands of
//! users across six regions and thirty companies, six models with their own prompt and
//! completion rates, conversations of several turns, spread over the first half of 2025. The
//! same `rows` always gives the same bytes.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::Path;

use chrono::{DateTime, Utc};

/// What was written.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleSummary {
    /// Users rows.
    pub users: usize,
    /// Transactions rows.
    pub rows: u64,
    /// Σ `Calculated_Cost`.
    pub total_cost: f64,
    /// Σ `Token_Count`.
    pub total_tokens: i64,
    /// First and last day.
    pub days: (String, String),
}

const REGIONS: [(&str, u64); 6] = [("US", 30), ("EU", 25), ("JP", 15), ("IN", 12), ("BR", 10), ("AU", 8)];
const COMPANY_FIRST: [&str; 6] = ["Tech", "Blue", "Acme", "Nova", "Green", "Summit"];
const COMPANY_SECOND: [&str; 5] = ["Global", "Labs", "Systems", "Partners", "Works"];
const DEPARTMENTS: [&str; 6] = ["Engineering", "Sales", "Marketing", "Support", "Finance", "Research"];
/// Model, prompt and completion price in USD per 1k tokens, and how often it is picked.
const MODELS: [(&str, f64, f64, u64); 6] = [
    ("gpt-4o", 0.005, 0.015, 25),
    ("gpt-4o-mini", 0.00015, 0.0006, 30),
    ("claude-3.5-sonnet", 0.003, 0.015, 20),
    ("claude-3-haiku", 0.00025, 0.00125, 10),
    ("gemini-1.5-pro", 0.00125, 0.005, 10),
    ("llama-3.1-70b", 0.0009, 0.0009, 5),
];
/// 2025-01-01T00:00:00Z.
const START_MS: i64 = 1_735_689_600_000;
/// 181 days: January to June 2025.
const SPAN_MS: i64 = 181 * 86_400_000;

/// SplitMix64: tiny, fast and stable across versions (the files must not change).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn uuid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0x0fff,
            (b >> 48) & 0x3fff | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }

    fn weighted<T: Copy>(&mut self, items: &[(T, u64)]) -> T {
        let total: u64 = items.iter().map(|(_, w)| w).sum();
        let mut pick = self.below(total);
        for (item, w) in items {
            if pick < *w {
                return *item;
            }
            pick -= w;
        }
        items[0].0
    }
}

struct SampleUser {
    id: String,
    weight: u64,
}

/// Writes `users.csv` and `transactions.csv` with `rows` transactions into `dir`, calling
/// `progress` with the rows written so far every 10,000 rows.
pub fn write_sample(dir: &Path, rows: u64, mut progress: impl FnMut(u64)) -> std::io::Result<SampleSummary> {
    std::fs::create_dir_all(dir)?;
    // Every sample has the same users (the first `user_count` of one list)…
    let mut rng = Rng(0x5167_4C1E_0000_0001);
    let user_count = (rows / 100).clamp(100, 5_000) as usize;
    let mut users = Vec::with_capacity(user_count);
    let mut out = BufWriter::with_capacity(1 << 20, File::create(dir.join("users.csv"))?);
    writeln!(out, "User_ID,User_Name,Region,Is_Active_Sub,Department,Company_Name,Signup_Date")?;
    let regions: Vec<(&str, u64)> = REGIONS.to_vec();
    for i in 0..user_count {
        let id = rng.uuid();
        let region = rng.weighted(&regions);
        let active = rng.below(10) < 7;
        let department = DEPARTMENTS[rng.below(DEPARTMENTS.len() as u64) as usize];
        // One user in fifty has no company.
        let company = if rng.below(50) == 0 {
            String::new()
        } else {
            let c = rng.below(30) as usize;
            format!("{} {}", COMPANY_FIRST[c % 6], COMPANY_SECOND[c / 6])
        };
        let signup =
            DateTime::<Utc>::from_timestamp_millis(START_MS - 1 - rng.below(365 * 86_400_000) as i64)
                .expect("in range")
                .format("%Y-%m-%d %H:%M:%S");
        writeln!(out, "{id},user_{i:05},{region},{active},{department},{company},{signup}")?;
        // Heavy and light users: a few do most of the work.
        users.push(SampleUser { id, weight: 1 + rng.below(20).pow(2) });
    }
    out.flush()?;

    // Cumulative weights, searched by bisection: a linear scan per conversation is too slow.
    let cumulative: Vec<u64> = users
        .iter()
        .scan(0u64, |sum, u| {
            *sum += u.weight;
            Some(*sum)
        })
        .collect();
    let weight_total = *cumulative.last().expect("at least 100 users");
    // …and transactions of its own: row and conversation ids are drawn from a stream seeded by
    // the size, so loading a small sample after a large one adds rows instead of rewriting some.
    let mut rng = Rng(0x5167_4C1E_0000_0002 ^ rows.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let models: Vec<(usize, u64)> = MODELS.iter().enumerate().map(|(i, m)| (i, m.3)).collect();
    let mut out = BufWriter::with_capacity(1 << 20, File::create(dir.join("transactions.csv"))?);
    writeln!(out, "RowId,User_ID,Model_Name,Conversation_ID,Token_Type,Token_Count,Rate_Per_1k,Calculated_Cost,Timestamp")?;
    let (mut total_cost, mut total_tokens) = (0.0, 0i64);
    let (mut user, mut model, mut conversation, mut turns_left, mut turn) =
        (0usize, 0usize, String::new(), 0u64, 0u64);
    let mut first_day = String::new();
    let mut last_day = String::new();
    for i in 0..rows {
        if turns_left == 0 {
            let pick = rng.below(weight_total);
            user = cumulative.partition_point(|c| *c <= pick);
            model = rng.weighted(&models);
            conversation = rng.uuid();
            turns_left = 2 * (1 + rng.below(4));
            turn = 0;
        }
        turns_left -= 1;
        let (name, prompt_rate, completion_rate, _) = MODELS[model];
        let prompt = turn % 2 == 0;
        turn += 1;
        let (token_type, rate, tokens) = if prompt {
            ("prompt", prompt_rate, 50 + rng.below(1_500) as i64)
        } else {
            ("completion", completion_rate, 20 + rng.below(800) as i64)
        };
        // Costs are kept to 8 decimals, as written.
        let cost = ((tokens as f64) * rate / 1000.0 * 1e8).round() / 1e8;
        total_cost += cost;
        total_tokens += tokens;
        let at =
            START_MS + ((i as i128 * SPAN_MS as i128) / rows.max(1) as i128) as i64 + rng.below(1000) as i64;
        let stamp = DateTime::<Utc>::from_timestamp_millis(at).expect("in range");
        let day = stamp.format("%Y-%m-%d").to_string();
        if first_day.is_empty() {
            first_day = day.clone();
        }
        writeln!(
            out,
            "{},{},{name},{conversation},{token_type},{tokens},{rate},{cost:.8},{}",
            rng.uuid(),
            users[user].id,
            stamp.format("%Y-%m-%dT%H:%M:%S%.3fZ")
        )?;
        last_day = day;
        if (i + 1) % 10_000 == 0 {
            progress(i + 1);
        }
    }
    out.flush()?;
    progress(rows);
    Ok(SampleSummary { users: user_count, rows, total_cost, total_tokens, days: (first_day, last_day) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_rows_give_the_same_files() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let sa = write_sample(a.path(), 2_000, |_| {}).unwrap();
        let sb = write_sample(b.path(), 2_000, |_| {}).unwrap();
        assert_eq!(sa, sb);
        for f in ["users.csv", "transactions.csv"] {
            assert_eq!(std::fs::read(a.path().join(f)).unwrap(), std::fs::read(b.path().join(f)).unwrap());
        }
        let text = std::fs::read_to_string(a.path().join("transactions.csv")).unwrap();
        assert_eq!(text.lines().count(), 2_001);
        assert_eq!(sa.users, 100);
        assert_eq!(sa.days.0, "2025-01-01");
    }

    #[test]
    fn samples_of_different_sizes_share_their_users_but_no_row_id() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        write_sample(a.path(), 2_000, |_| {}).unwrap();
        write_sample(b.path(), 30_000, |_| {}).unwrap();
        let column = |dir: &tempfile::TempDir, file: &str, n: usize| -> std::collections::HashSet<String> {
            let text = std::fs::read_to_string(dir.path().join(file)).unwrap();
            text.lines().skip(1).map(|l| l.split(',').nth(n).unwrap().to_owned()).collect()
        };
        let (rows_a, rows_b) = (column(&a, "transactions.csv", 0), column(&b, "transactions.csv", 0));
        assert!(rows_a.is_disjoint(&rows_b), "RowIds are drawn per sample");
        let (users_a, users_b) = (column(&a, "users.csv", 0), column(&b, "users.csv", 0));
        assert!(
            users_a.is_subset(&users_b) && users_b.len() > users_a.len(),
            "the larger has more of the same users"
        );
    }
}
