//! Reference data ("mock DB"): the original's JSON tables, loaded once at start and used to
//! enrich calculation events with a missing account id or enterprise number.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A client (`clients.json`).
#[derive(Debug, Clone, Deserialize)]
pub struct Client {
    /// `client_001`.
    pub id: String,
    /// 10-digit enterprise number.
    pub enterprise_number: String,
    /// Account id.
    pub account_id: Option<String>,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// City.
    pub city: Option<String>,
}

/// An invoice (`invoices.json`).
#[derive(Debug, Clone, Deserialize)]
pub struct Invoice {
    /// `inv_0001`.
    pub id: String,
    /// Owning client.
    pub client_id: String,
    /// Amount.
    pub amount: f64,
    /// Whether it is paid.
    pub is_paid: bool,
}

/// A product a client holds (`client_products.json`).
#[derive(Debug, Clone, Deserialize)]
pub struct ClientProduct {
    /// `up_001`.
    pub id: String,
    /// Owning client.
    pub client_id: String,
    /// Product name.
    pub product_name: String,
    /// Whether it is current.
    pub is_active: bool,
}

/// An employee of a client (`client_employees.json`).
#[derive(Debug, Clone, Deserialize)]
pub struct ClientEmployee {
    /// `emp_001`.
    pub id: String,
    /// Employer.
    pub client_id: String,
    /// Gross monthly income.
    pub monthly_income: f64,
    /// Whether this is the client's primary contact.
    pub is_primary_contact: bool,
}

/// Loaded reference tables and the identifier indexes built from them.
#[derive(Debug, Default)]
pub struct ReferenceData {
    /// Where they were loaded from (`None` when the directory was absent).
    pub dir: Option<PathBuf>,
    /// Clients.
    pub clients: Vec<Client>,
    /// Invoices.
    pub invoices: Vec<Invoice>,
    /// Client products.
    pub client_products: Vec<ClientProduct>,
    /// Client employees.
    pub client_employees: Vec<ClientEmployee>,
    by_account: HashMap<String, usize>,
    by_enterprise: HashMap<String, usize>,
}

/// A reference file that could not be read, naming file and row.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceDataError {
    /// Unreadable file.
    #[error("{file}: {message}")]
    File {
        /// Path.
        file: String,
        /// Problem.
        message: String,
    },
    /// A row of the wrong shape.
    #[error("{file} row {row}: {message}")]
    Row {
        /// Path.
        file: String,
        /// 1-based position in the array.
        row: usize,
        /// Problem.
        message: String,
    },
}

/// Row counts, with the original's key names.
#[derive(Debug, Serialize, ToSchema, PartialEq)]
#[schema(example = json!({"users": 40, "invoices": 200, "user_products": 90, "client_employees": 160, "source": "examples/mock_db"}))]
pub struct Overview {
    /// Clients (the original calls them users).
    pub users: usize,
    /// Invoices.
    pub invoices: usize,
    /// Client products.
    pub user_products: usize,
    /// Client employees.
    pub client_employees: usize,
    /// Directory loaded from, or null.
    pub source: Option<String>,
}

fn load_table<T: DeserializeOwned>(dir: &Path, name: &str) -> Result<Vec<T>, ReferenceDataError> {
    let path = dir.join(name);
    let file = path.display().to_string();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ReferenceDataError::File { file, message: e.to_string() }),
    };
    let value: Value = serde_json::from_str(&text).map_err(|e| ReferenceDataError::File {
        file: file.clone(),
        message: format!("not valid JSON: {e}"),
    })?;
    let Value::Array(rows) = value else {
        return Err(ReferenceDataError::File { file, message: "must be a JSON array of objects".into() });
    };
    rows.into_iter()
        .enumerate()
        .map(|(i, row)| {
            serde_json::from_value(row).map_err(|e| ReferenceDataError::Row {
                file: file.clone(),
                row: i + 1,
                message: e.to_string(),
            })
        })
        .collect()
}

impl ReferenceData {
    /// Loads the four tables from `dir`; a missing directory gives empty tables, a bad file an
    /// error naming file and row.
    pub fn load(dir: &Path) -> Result<Self, ReferenceDataError> {
        if !dir.is_dir() {
            tracing::warn!(dir = %dir.display(), "mock_db.not_found");
            return Ok(Self::default());
        }
        let mut data = Self {
            dir: Some(dir.to_path_buf()),
            clients: load_table(dir, "clients.json")?,
            invoices: load_table(dir, "invoices.json")?,
            client_products: load_table(dir, "client_products.json")?,
            client_employees: load_table(dir, "client_employees.json")?,
            ..Default::default()
        };
        for (i, c) in data.clients.iter().enumerate() {
            data.by_enterprise.insert(c.enterprise_number.clone(), i);
            if let Some(acc) = &c.account_id {
                data.by_account.insert(acc.clone(), i);
            }
        }
        let known: std::collections::HashSet<&str> = data.clients.iter().map(|c| c.id.as_str()).collect();
        let orphans = data
            .invoices
            .iter()
            .map(|r| &r.client_id)
            .chain(data.client_products.iter().map(|r| &r.client_id))
            .chain(data.client_employees.iter().map(|r| &r.client_id))
            .filter(|id| !known.contains(id.as_str()))
            .count();
        if orphans > 0 {
            tracing::warn!(orphans, "mock_db.rows_with_unknown_client");
        }
        let o = data.overview();
        tracing::info!(
            dir = %dir.display(),
            users = o.users,
            invoices = o.invoices,
            user_products = o.user_products,
            client_employees = o.client_employees,
            "mock_db.loaded"
        );
        Ok(data)
    }

    /// Row counts.
    pub fn overview(&self) -> Overview {
        Overview {
            users: self.clients.len(),
            invoices: self.invoices.len(),
            user_products: self.client_products.len(),
            client_employees: self.client_employees.len(),
            source: self.dir.as_ref().map(|d| d.display().to_string()),
        }
    }

    /// Fills a missing account id or enterprise number from the known client pairs.
    pub fn enrich(&self, enterprise_number: &mut Option<String>, account_id: &mut Option<String>) {
        match (enterprise_number.as_ref(), account_id.as_ref()) {
            (Some(en), None) => {
                if let Some(&i) = self.by_enterprise.get(en) {
                    account_id.clone_from(&self.clients[i].account_id);
                }
            }
            (None, Some(acc)) => {
                if let Some(&i) = self.by_account.get(acc) {
                    *enterprise_number = Some(self.clients[i].enterprise_number.clone());
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> ReferenceData {
        ReferenceData::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/mock_db")).unwrap()
    }

    #[test]
    fn the_shipped_reference_data_loads_with_the_seed_clients() {
        let data = shipped();
        assert!(data.clients.len() >= 3);
        let (mut en, mut acc) = (None, Some("acc_123".to_string()));
        data.enrich(&mut en, &mut acc);
        assert_eq!(en.as_deref(), Some("0123456789"));
        let (mut en, mut acc) = (Some("1111111111".to_string()), None);
        data.enrich(&mut en, &mut acc);
        assert_eq!(acc.as_deref(), Some("acc_999"));
    }

    #[test]
    fn a_bad_row_is_reported_with_file_and_row_number() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("clients.json"),
            r#"[{"id":"c1","enterprise_number":"1"},{"id":"c2"}]"#,
        )
        .unwrap();
        let err = ReferenceData::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("clients.json row 2"), "{err}");
        assert!(err.contains("enterprise_number"), "{err}");
    }

    #[test]
    fn a_missing_directory_gives_empty_tables() {
        let data = ReferenceData::load(Path::new("/nonexistent/mock_db")).unwrap();
        assert_eq!(
            data.overview(),
            Overview { users: 0, invoices: 0, user_products: 0, client_employees: 0, source: None }
        );
    }
}
