//! Who the players are: the league's player list (stats.nba.com's `commonallplayers`) and name
//! search with the original's normalisation (case, accents, punctuation and the suffixes Jr, Sr,
//! II, III, IV ignored): an exact match of the normalised name first, else the first name that
//! contains the query.

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization as _;

use crate::nba::ResultSet;

/// One player of the list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlayerEntry {
    /// stats.nba.com person id.
    pub id: i64,
    /// "First Last".
    pub full_name: String,
    /// His team's id (0 when none).
    pub team_id: i64,
    /// His team's abbreviation (`""` when none).
    pub team: String,
}

/// `name` as searches compare it: accents and case dropped, punctuation as spaces, the suffixes
/// Jr, Sr, II, III and IV left out, spaces collapsed.
pub fn normalise(name: &str) -> String {
    let plain: String = name
        .nfkd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .map(|c| if c.is_alphanumeric() { c.to_ascii_lowercase() } else { ' ' })
        .collect();
    plain
        .split_whitespace()
        .filter(|w| !matches!(*w, "jr" | "sr" | "ii" | "iii" | "iv"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The player list, searchable.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Directory {
    players: Vec<PlayerEntry>,
}

impl Directory {
    /// The list of a `commonallplayers` answer.
    pub fn from_result_set(set: &ResultSet) -> Self {
        let (Some(id), Some(name)) = (set.column("PERSON_ID"), set.column("DISPLAY_FIRST_LAST")) else {
            return Self::default();
        };
        let team_id = set.column("TEAM_ID");
        let team = set.column("TEAM_ABBREVIATION");
        let players = set
            .rows
            .iter()
            .filter_map(|row| {
                Some(PlayerEntry {
                    id: row.get(id)?.as_i64()?,
                    full_name: row.get(name)?.as_str()?.to_owned(),
                    team_id: team_id.and_then(|i| row.get(i)?.as_i64()).unwrap_or(0),
                    team: team.and_then(|i| row.get(i)?.as_str().map(str::to_owned)).unwrap_or_default(),
                })
            })
            .collect();
        Self { players }
    }

    /// Every player.
    pub fn players(&self) -> &[PlayerEntry] {
        &self.players
    }

    /// The player `query` names, if any.
    pub fn find(&self, query: &str) -> Option<&PlayerEntry> {
        let wanted = normalise(query);
        if wanted.is_empty() {
            return None;
        }
        self.players
            .iter()
            .find(|p| normalise(&p.full_name) == wanted)
            .or_else(|| self.players.iter().find(|p| normalise(&p.full_name).contains(&wanted)))
    }

    /// Up to `limit` players whose name contains `query` (normalised), those it starts first.
    pub fn search(&self, query: &str, limit: usize) -> Vec<&PlayerEntry> {
        let wanted = normalise(query);
        if wanted.is_empty() {
            return Vec::new();
        }
        let mut found: Vec<(bool, &PlayerEntry)> = self
            .players
            .iter()
            .filter_map(|p| {
                let name = normalise(&p.full_name);
                name.contains(&wanted).then(|| (!name.starts_with(&wanted), p))
            })
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.full_name.cmp(&b.1.full_name)));
        found.into_iter().take(limit).map(|(_, p)| p).collect()
    }

    /// The player with `id`.
    pub fn by_id(&self, id: i64) -> Option<&PlayerEntry> {
        self.players.iter().find(|p| p.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: i64, name: &str) -> PlayerEntry {
        PlayerEntry { id, full_name: name.into(), team_id: 0, team: String::new() }
    }

    #[test]
    fn names_match_whatever_their_accents_case_punctuation_and_suffix() {
        assert_eq!(normalise("  Nikola JOKIĆ "), "nikola jokic");
        assert_eq!(normalise("Jaren Jackson Jr."), "jaren jackson");
        assert_eq!(normalise("Shaquille O'Neal"), "shaquille o neal");
        assert_eq!(normalise("Marvin Bagley III"), "marvin bagley");
        let directory = Directory {
            players: vec![entry(1, "LeBron James"), entry(2, "Bronny James Jr."), entry(3, "Luka Dončić")],
        };
        assert_eq!(directory.find("lebron james").map(|p| p.id), Some(1));
        assert_eq!(directory.find("Bronny James").map(|p| p.id), Some(2), "exact before contains");
        assert_eq!(directory.find("luka doncic").map(|p| p.id), Some(3));
        assert_eq!(directory.find("James").map(|p| p.id), Some(1), "the first containing it");
        assert_eq!(directory.find("..."), None);
        assert_eq!(directory.find("Nobody"), None);
        let found: Vec<i64> = directory.search("jam", 10).iter().map(|p| p.id).collect();
        assert_eq!(found, vec![2, 1], "both contain it, alphabetically");
        assert_eq!(directory.search("lu", 10).first().map(|p| p.id), Some(3), "starting with it first");
    }
}
